"""Components that follow a growing graph: each epoch brings new edges, and the
components of the graph so far come out for that epoch.

The edges of every epoch are kept by an operator of our own and sent again at each later
epoch, so each epoch's loop runs on the graph so far. The operator's records all go to
one worker (``exchange`` on a constant): it must hear of every epoch that brings edges,
which a worker given none of that epoch's records would not. The loop itself spreads
the edges over every worker again, by node.

    python examples/stream/incremental_components.py [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from components import propagate  # noqa: E402

from plait import stream  # noqa: E402


def so_far(ctx: stream.Context, time: tuple, records: list) -> None:
    """Hold the records of each epoch (a later epoch's may arrive before an earlier one
    is complete), and ask to hear when the epoch is complete."""
    ctx.state.setdefault(time, []).extend(records)
    ctx.notify_at(time)


def resend(ctx: stream.Context, time: tuple) -> None:
    """An epoch is complete: its records join those of the epochs before, and all of
    them are sent at this epoch."""
    kept = ctx.state.setdefault("kept", [])
    kept.extend(ctx.state.pop(time))
    ctx.emit_many(kept)


def growing_components(batches: list[list[tuple]], workers: int = 2) -> dict[int, dict]:
    """``{epoch: {node: smallest node of its component}}`` for the edges of epochs 0..epoch."""
    flow = stream.Dataflow(workers=workers)
    edge_input = flow.input("edges")
    edges = edge_input.exchange(lambda e: 0).unary(so_far, resend, name="edges so far")
    nodes = edges.flat_map(lambda e: e).count_by_key().map(lambda kc: kc[0])  # each node once per epoch
    labels = nodes.map(lambda n: (n, n)).iterate(lambda x, scope: propagate(x, scope, edges))
    out = labels.capture()
    with flow:
        for epoch, batch in enumerate(batches):
            edge_input.advance_to(epoch)
            edge_input.send(*batch)
    return {epoch: dict(pairs) for epoch, pairs in out.by_epoch().items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    workers = parser.parse_args().workers
    batches = [[(1, 2), (3, 4)], [(5, 6), (2, 3)], [(6, 1)]]
    for epoch, labels in growing_components(batches, workers).items():
        groups: dict = {}
        for node, label in sorted(labels.items()):
            groups.setdefault(label, []).append(node)
        print(f"epoch {epoch}: {sorted(groups.values())}")


if __name__ == "__main__":
    main()
