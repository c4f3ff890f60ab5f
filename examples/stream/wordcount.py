"""Streaming word count by epoch: each epoch's counts come out as soon as the epoch is complete.

    python examples/stream/wordcount.py [--workers 2]
"""

from __future__ import annotations

import argparse

from plait import stream


def word_counts(epochs: list[list[str]], workers: int = 2) -> dict[int, dict[str, int]]:
    """The words of each epoch's lines, counted per epoch."""
    flow = stream.Dataflow(workers=workers)
    lines = flow.input("lines")
    counts = lines.flat_map(str.split).count_by_key()
    captured = counts.capture()
    done = counts.probe()
    with flow:
        for epoch, batch in enumerate(epochs):
            lines.advance_to(epoch)
            lines.send(*batch)
            if epoch:
                done.wait(epoch - 1)  # the epoch before is complete: its counts are out already
                print(f"epoch {epoch - 1}: {sorted(captured.by_epoch()[epoch - 1])}")
    last = len(epochs) - 1
    print(f"epoch {last}: {sorted(captured.by_epoch().get(last, []))}")
    return {epoch: dict(pairs) for epoch, pairs in captured.by_epoch().items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    workers = parser.parse_args().workers
    word_counts(
        [
            ["the quick brown fox", "jumps over the lazy dog"],
            ["the dog barks", "the fox runs"],
            ["quick quick quick"],
        ],
        workers,
    )


if __name__ == "__main__":
    main()
