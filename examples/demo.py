"""plait's demo: plain functions, run on every core.

A parameter sweep of a small Monte Carlo simulation: each call is a task,
results flow into a reduction without waiting, an actor keeps a running
leaderboard, and the timeline of the run is written for Perfetto.

    python examples/demo.py            # or: plait run examples/demo.py
"""

import random
import time

import plait


@plait.task
def simulate(seed: int, steps: int) -> float:
    """Estimate pi by throwing darts; deliberately CPU-bound."""
    rng = random.Random(seed)
    inside = sum(1 for _ in range(steps) if rng.random() ** 2 + rng.random() ** 2 <= 1.0)
    return 4.0 * inside / steps


@plait.task
def mean(values: list[float]) -> float:
    return sum(values) / len(values)


@plait.actor
class Leaderboard:
    def __init__(self) -> None:
        self.best: list[tuple[float, int]] = []

    def offer(self, seed: int, estimate: float) -> None:
        self.best.append((abs(estimate - 3.141592653589793), seed))
        self.best.sort()
        del self.best[3:]

    def top(self) -> list[tuple[float, int]]:
        return self.best


def main() -> None:
    start = time.perf_counter()
    board = Leaderboard()
    estimates = [simulate(seed, 1_000_000) for seed in range(16)]  # all 16 start now
    overall = mean(estimates)  # a task fed by futures: no waiting here
    for seed, estimate in zip(range(16), estimates, strict=True):
        board.offer(seed, estimate)
    print(f"pi ~ {overall.result():.5f} from {len(estimates)} simulations")
    print("closest seeds:", [(seed, round(err, 5)) for err, seed in board.top().result()])
    print(f"took {time.perf_counter() - start:.2f} s")
    plait.timeline("demo.trace.json")
    print("timeline written to demo.trace.json (open it at https://ui.perfetto.dev)")


if __name__ == "__main__":
    main()
