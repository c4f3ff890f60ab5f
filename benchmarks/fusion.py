"""Chains of lifted operators: fused (FUSE_MAX = 8) against one small task per link, paired.

``s += work(i)`` for n iterations (the makespan corpus's p01: sleep-based
tasks of 0.2 s, 12 workers, so cores do not limit parallelism), alternating
the two settings in one session on each engine, medians of ``--repeat`` runs
each.

    .venv/bin/python benchmarks/fusion.py --repeat 7 --n 48 --engine all
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import time

import plait
from parallel_corpus import p01_accumulate as accumulate
from parallel_corpus import work

runtime = importlib.import_module("plait.parallel.runtime")  # plait.parallel is also the decorator


def measure(engine: str, n: int, repeat: int, workers: int) -> dict[int, float]:
    times: dict[int, list[float]] = {8: [], 1: []}
    with plait.init(engine=engine, workers=workers):
        plait.get([work(i, 0.05) for i in range(workers * 2)])  # every worker warm
        for _ in range(repeat):
            for fuse_max in times:
                runtime.FUSE_MAX = fuse_max
                start = time.perf_counter()
                assert accumulate(n) == sum(range(1, n + 1))
                times[fuse_max].append(time.perf_counter() - start)
    runtime.FUSE_MAX = 8
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--engine", default="all", choices=["local", "ray", "dask", "all"])
    options = parser.parse_args()
    engines = ["local", "ray", "dask"] if options.engine == "all" else [options.engine]
    ideal = -(-options.n // options.workers) * 0.2
    print(f"\n{options.n} links, ideal {ideal:.2f} s\n")
    print("| engine | fused (s) | one task per link (s) | fused / one per link |")
    print("|---|---|---|---|")
    for engine in engines:
        got = measure(engine, options.n, options.repeat, options.workers)
        print(f"| {engine} | {got[8]:.3f} | {got[1]:.3f} | {got[8] / got[1]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
