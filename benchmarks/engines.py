#!/usr/bin/env python
"""What plait's ray and dask engines add on top of raw Ray and raw Dask.

For each framework the script starts one cluster (Ray: ``ray.init(num_cpus=2)``;
Dask: ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``) and
runs every workload both raw and through plait attached to that same cluster
(``plait.init(engine="ray")`` / ``plait.init(engine="dask", client=client)``).
Repetitions alternate raw and plait (the order flips every repetition), so
load from elsewhere on the machine falls on both alike. It reports medians
and the ratio plait / raw (the target: at most 1.10).

Workloads: W1 throughput, ``n`` no-op tasks submitted then gathered; W2
latency, ``n`` round trips (submit one no-op, wait for its value); W3 a chain
of ``n`` dependent tasks (each takes the previous future), one get at the end.

    .venv/bin/python benchmarks/engines.py
    .venv/bin/python benchmarks/engines.py --quick --systems dask
    .venv/bin/python benchmarks/engines.py --repeat 7 --json engines.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))

SIZES = {
    "full": {"W1": 10_000, "W2": 500, "W3": 1_000, "repeat": 5},
    "quick": {"W1": 2_000, "W2": 100, "W3": 200, "repeat": 3},
}


def noop() -> None:
    return None


def inc(x: int) -> int:
    return x + 1


class Side:
    """One way of running the workloads: submit a call, get values."""

    label = ""

    def call(self, fn: str, *args: Any) -> Any:
        raise NotImplementedError

    def get(self, handles: list[Any]) -> list[Any]:
        raise NotImplementedError

    def get1(self, handle: Any) -> Any:
        raise NotImplementedError


# ---------------------------------------------------------------------- ray
class RawRay(Side):
    label = "Ray"

    def __init__(self) -> None:
        import ray

        self.ray = ray
        self.fns = {"noop": ray.remote(noop), "inc": ray.remote(inc)}

    def call(self, fn: str, *args: Any) -> Any:
        return self.fns[fn].remote(*args)

    def get(self, handles: list[Any]) -> list[Any]:
        return self.ray.get(handles)

    def get1(self, handle: Any) -> Any:
        return self.ray.get(handle)


class RawDask(Side):
    label = "Dask"

    def __init__(self, client: Any) -> None:
        self.client = client
        self.fns = {"noop": noop, "inc": inc}

    def call(self, fn: str, *args: Any) -> Any:
        return self.client.submit(self.fns[fn], *args, pure=False)

    def get(self, handles: list[Any]) -> list[Any]:
        return self.client.gather(handles)

    def get1(self, handle: Any) -> Any:
        return handle.result()


class Plait(Side):
    def __init__(self, label: str) -> None:
        import plait

        self.plait = plait
        self.label = label
        self.fns = {"noop": plait.task(noop), "inc": plait.task(inc)}

    def call(self, fn: str, *args: Any) -> Any:
        return self.fns[fn](*args)

    def get(self, handles: list[Any]) -> list[Any]:
        return self.plait.get(handles)

    def get1(self, handle: Any) -> Any:
        return handle.result()


# ----------------------------------------------------------------- workloads
def w1(side: Side, n: int) -> float:
    t = time.perf_counter()
    side.get([side.call("noop") for _ in range(n)])
    return time.perf_counter() - t


def w2(side: Side, n: int) -> float:
    """Median round-trip latency, seconds."""
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        side.get1(side.call("noop"))
        lat.append(time.perf_counter() - t)
    return statistics.median(lat)


def w3(side: Side, n: int) -> float:
    t = time.perf_counter()
    h = side.call("inc", 0)
    for _ in range(n - 1):
        h = side.call("inc", h)
    value = side.get1(h)
    elapsed = time.perf_counter() - t
    if value != n:
        raise AssertionError(f"W3 chain returned {value!r}, expected {n}")
    return elapsed


WORKLOADS: dict[str, tuple[Callable[[Side, int], float], str]] = {
    "W1": (w1, "s total"),
    "W2": (w2, "ms median round trip"),
    "W3": (w3, "s total"),
}


def compare(raw: Side, wrapped: Side, only: list[str], sizes: dict[str, int], repeat: int) -> list[dict]:
    rows = []
    for name in only:
        fn, unit = WORKLOADS[name]
        n = sizes[name]
        fn(raw, max(1, n // 10))  # warm-up: workers started, functions shipped
        fn(wrapped, max(1, n // 10))
        times: dict[str, list[float]] = {raw.label: [], wrapped.label: []}
        for rep in range(repeat):
            order = (raw, wrapped) if rep % 2 == 0 else (wrapped, raw)
            for side in order:
                times[side.label].append(fn(side, n))
        r = statistics.median(times[raw.label])
        p = statistics.median(times[wrapped.label])
        scale = 1000.0 if name == "W2" else 1.0
        rows.append(
            {
                "workload": name,
                "n": n,
                "unit": unit,
                "raw": raw.label,
                "plait": wrapped.label,
                "raw_median": r * scale,
                "plait_median": p * scale,
                "ratio": p / r,
                "raw_all": [t * scale for t in times[raw.label]],
                "plait_all": [t * scale for t in times[wrapped.label]],
            }
        )
        print(
            f"  {name} n={n}: {raw.label} {r * scale:.3f}, {wrapped.label} {p * scale:.3f} {unit}"
            f"  (plait/raw {p / r:.3f})",
            flush=True,
        )
    return rows


def run_ray(only: list[str], sizes: dict[str, int], repeat: int) -> list[dict]:
    import ray

    import plait

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        raw = RawRay()
        with plait.init(engine="ray"):  # attaches to the Ray started above
            return compare(raw, Plait("plait ray"), only, sizes, repeat)
    finally:
        ray.shutdown()


def run_dask(only: list[str], sizes: dict[str, int], repeat: int) -> list[dict]:
    from distributed import Client, LocalCluster

    import plait

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    try:
        raw = RawDask(client)
        with plait.init(engine="dask", client=client):
            return compare(raw, Plait("plait dask"), only, sizes, repeat)
    finally:
        client.close()
        cluster.close()


def table(rows: list[dict]) -> str:
    lines = [
        "| workload | n | raw | raw median | plait median | plait / raw |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workload']} ({r['unit']}) | {r['n']} | {r['raw']} | {r['raw_median']:.3f} "
            f"| {r['plait_median']:.3f} | {r['ratio']:.3f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, 3 repetitions")
    parser.add_argument("--repeat", type=int, help="repetitions per side (default 5, quick 3)")
    parser.add_argument("--only", default="W1,W2,W3", help="workloads, comma-separated")
    parser.add_argument("--systems", default="ray,dask", help="ray, dask or both")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    options = parser.parse_args()
    sizes = SIZES["quick" if options.quick else "full"]
    repeat = options.repeat or sizes["repeat"]
    only = [w.strip().upper() for w in options.only.split(",") if w.strip()]
    unknown = set(only) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {sorted(unknown)}")
    rows: list[dict] = []
    for system in [s.strip() for s in options.systems.split(",") if s.strip()]:
        print(f"{system}:", flush=True)
        if system == "ray":
            rows += run_ray(only, sizes, repeat)
        elif system == "dask":
            rows += run_dask(only, sizes, repeat)
        else:
            parser.error(f"unknown system {system!r}")
    print()
    print(f"cores: {os.cpu_count()}, repetitions: {repeat} (alternating raw/plait), medians")
    print(table(rows))
    if options.json:
        with open(options.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
