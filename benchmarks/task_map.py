"""Many calls of one task: one call at a time against ``task.map`` (submitted together).

For each system, the time to submit n no-op calls and gather their values, as
separate calls and as one map, and the ratio; raw Dask (``client.submit`` against
``client.map``) and ``ProcessPoolExecutor`` (``submit`` against ``map``) run in
the same process for comparison. Medians of ``--repeat`` runs.

    .venv/bin/python benchmarks/task_map.py --repeat 7
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import plait
from timing import median_time


def noop(x):
    return x


noop_task = plait.task(noop)


def _median_rate(n: int, run: Callable[[int], object], repeat: int) -> float:
    run(max(10, n // 10))  # warm, at a tenth of the size
    return n / median_time(lambda: run(n), repeat)


def _row(name: str, n: int, one_by_one: Callable, together: Callable, repeat: int) -> None:
    a = _median_rate(n, one_by_one, repeat)
    b = _median_rate(n, together, repeat)
    print(f"| {name} | {n:,} | {a:,.0f}/s | {b:,.0f}/s | {b / a:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    options = parser.parse_args()
    r, w = options.repeat, options.workers
    print("| system | calls | one call at a time | submitted together | together / one at a time |")
    print("|---|---|---|---|---|")
    for engine, n in (("local", 10_000), ("dask", 2_000)):
        with plait.init(engine=engine, workers=w):
            _row(
                f"plait {engine}: calls, then `task.map`",
                n,
                lambda k: plait.get([noop_task(i) for i in range(k)]),
                lambda k: plait.get(noop_task.map(range(k))),
                r,
            )
    import distributed

    with distributed.LocalCluster(
        n_workers=w, threads_per_worker=1, dashboard_address=None, host="127.0.0.1"
    ) as cluster, distributed.Client(cluster) as client:
        _row(
            "Dask: `client.submit`, then `client.map`",
            2_000,
            lambda k: client.gather([client.submit(noop, i, pure=False) for i in range(k)]),
            lambda k: client.gather(client.map(noop, range(k), pure=False)),
            r,
        )
    with ProcessPoolExecutor(w) as pool:
        _row(
            "ProcessPoolExecutor: `submit`, then `map`",
            10_000,
            lambda k: [f.result() for f in [pool.submit(noop, i) for i in range(k)]],
            lambda k: list(pool.map(noop, range(k))),
            r,
        )


if __name__ == "__main__":
    main()
