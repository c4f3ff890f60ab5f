"""A chain of 30 dependent task calls run as a graph (``plait.run``), on each engine.

Between two calls sits an operation that waits for the first call's value, so
every step waits for a done-callback: the time per step is what an engine takes
to say that a call ended. Medians of ``--repeat`` runs.

    .venv/bin/python benchmarks/graph_chain.py --repeat 5
"""

from __future__ import annotations

import argparse
import operator

import plait
from plait.graph import Graph
from timing import median_time


@plait.task
def inc(x):
    return x + 1


def chain_graph(n: int) -> Graph:
    g = Graph(["x"])
    value = g.inputs[0]
    for _ in range(n):
        called = g.add_task(inc, (value,))
        value = g.add_op(operator.add, called, 0)  # waits for the call's value
    g.set_output(value)
    return g


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    o = parser.parse_args()
    g = chain_graph(o.steps)
    print(f"| engine | {o.steps} steps (ms) | per step (ms) |")
    print("|---|---|---|")
    for engine in ("local", "ray", "dask"):
        with plait.init(engine=engine, workers=o.workers):
            t = median_time(lambda: plait.run(g, 0), o.repeat)
        print(f"| {engine} | {t * 1e3:.0f} | {t / o.steps * 1e3:.1f} |")


if __name__ == "__main__":
    main()
