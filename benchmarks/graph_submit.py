"""A wide graph of tiny tasks run with ``plait.run``: submitted as one graph
(``Engine.submit_graph``) against one call at a time, on each engine, and the
same graph written with dask.delayed on the same Dask cluster.

The graph: ``--leaves`` calls, sums of ``--fan`` leaves each, and one total.
Every task node is ready at the start, so the interpreter hands them all to
the engine at once. Medians of ``--repeat`` runs; the ratio is one-by-one's
time over the graph's.

    .venv/bin/python benchmarks/graph_submit.py --repeat 5
"""

from __future__ import annotations

import argparse

import plait
from plait.graph import Graph, Interpreter
from timing import median_time


@plait.task
def leaf(i):
    return i * i


@plait.task
def total(*parts):
    return sum(parts)


def wide_graph(leaves: int, fan: int) -> Graph:
    g = Graph(name="wide")
    calls = [g.add_task(leaf, (i,)) for i in range(leaves)]
    sums = [g.add_task(total, tuple(calls[i : i + fan])) for i in range(0, leaves, fan)]
    g.set_output(g.add_task(total, tuple(sums)))
    return g


class OneByOne(Interpreter):
    """Each task node submitted on its own (overriding ``task`` turns the batching off)."""

    def task(self, node, args, kwargs):
        return super().task(node, args, kwargs)


def dask_delayed(leaves: int, fan: int) -> int:
    import dask

    def square(i):
        return i * i

    def add_up(*parts):
        return sum(parts)

    calls = [dask.delayed(square, pure=False)(i) for i in range(leaves)]
    sums = [dask.delayed(add_up, pure=False)(*calls[i : i + fan]) for i in range(0, leaves, fan)]
    return dask.delayed(add_up, pure=False)(*sums).compute()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--leaves", type=int, default=500)
    parser.add_argument("--fan", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    o = parser.parse_args()
    g = wide_graph(o.leaves, o.fan)
    expected = sum(i * i for i in range(o.leaves))
    print("| engine | one graph (ms) | one by one (ms) | one by one / graph | dask.delayed (ms) |")
    print("|---|---|---|---|---|")
    for engine in ("local", "ray", "dask"):
        with plait.init(engine=engine, workers=o.workers):
            assert plait.run(g) == expected and OneByOne(g).run() == expected
            batched = median_time(lambda: plait.run(g), o.repeat)
            single = median_time(lambda: OneByOne(g).run(), o.repeat)
            native = ""
            if engine == "dask":
                assert dask_delayed(o.leaves, o.fan) == expected
                native = f"{median_time(lambda: dask_delayed(o.leaves, o.fan), o.repeat) * 1e3:.0f}"
        print(f"| {engine} | {batched * 1e3:.0f} | {single * 1e3:.0f} | {single / batched:.2f} | {native} |")


if __name__ == "__main__":
    main()
