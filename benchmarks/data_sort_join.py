"""Sort and join of generated records: plait.data against plain sequential Python and
dask.bag, with the peak memory of each run beside its time.

The records are (key, payload) tuples, ``--rows`` of them, made inside the tasks from
a range (so nothing is shipped from the driver). The sort orders them by key; the
join matches two such tables on key (every key once on each side, so the result has
``--rows`` rows). Sequential Python does the same with ``sorted`` and a dict. dask.bag
has no sort; its join is a ``groupby`` on the union of the two sides (its ``join``
takes an in-memory right side only). Peak memory is the growth of the high-water mark
(VmHWM) of the driver and of every worker process, summed, over the run.

    .venv/bin/python benchmarks/data_sort_join.py --rows 2000000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys

RUNNER = r"""
import json, os, random, sys, time
rows, system, what = int(sys.argv[1]), sys.argv[2], sys.argv[3]

def peak(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM"))
    except OSError:
        return 0

def record(i):
    return ((i * 2654435761) % (1 << 32), "payload-%d" % i)

def other(i):
    return ((i * 2654435761) % (1 << 32), i)

cores = os.cpu_count()
if system == "python":
    start = time.perf_counter()
    base = peak(os.getpid())
    if what == "sort":
        out = sorted((record(i) for i in range(rows)), key=lambda r: r[0])
        check = (len(out), out[0][0], out[-1][0])
    else:
        right = dict(other(i) for i in range(rows))
        out = [(k, (v, right[k])) for k, v in (record(i) for i in range(rows)) if k in right]
        check = (len(out), sum(w for _, (_, w) in out) % 1000003)
    seconds = time.perf_counter() - start
    grew = peak(os.getpid()) - base
elif system == "plait":
    import plait
    from plait import data
    with plait.init(engine="local", workers=cores) as session:
        data.range(100, partitions=cores).map(abs).sort().collect()  # workers warm
        pids = [os.getpid(), *session.engine.worker_pids()]
        base = {p: peak(p) for p in pids}
        start = time.perf_counter()
        left = data.range(rows, partitions=4 * cores).map(record)
        if what == "sort":
            first = last = None
            n = 0
            for r in left.sort(key=lambda r: r[0]).iter_rows():
                if first is None:
                    first = r[0]
                last = r[0]
                n += 1
            check = (n, first, last)
        else:
            right = data.range(rows, partitions=4 * cores).map(other)
            n, total = left.join(right).aggregate(  # both in one pass, as the others compute them
                (0, 0), lambda acc, kv: (acc[0] + 1, acc[1] + kv[1][1]), lambda a, b: (a[0] + b[0], a[1] + b[1])
            )
            check = (n, total % 1000003)
        seconds = time.perf_counter() - start
        grew = sum(peak(p) - base[p] for p in pids)
else:
    import dask
    import dask.bag as db
    start = time.perf_counter()
    base = peak(os.getpid())
    left = db.range(rows, npartitions=4 * cores).map(record)
    right = db.range(rows, npartitions=4 * cores).map(other)
    tagged = db.concat([left.map(lambda r: (r[0], 0, r[1])), right.map(lambda r: (r[0], 1, r[1]))])
    grouped = tagged.groupby(lambda t: t[0], shuffle="disk")
    def pairs(group):
        key, items = group
        vs = [v for _, side, v in items if side == 0]
        ws = [w for _, side, w in items if side == 1]
        return [(key, (v, w)) for v in vs for w in ws]
    joined = grouped.map(pairs).flatten()
    n, total = dask.compute(joined.count(), joined.map(lambda kv: kv[1][1]).sum(), scheduler="processes", num_workers=cores)
    check = (n, total % 1000003)
    seconds = time.perf_counter() - start
    grew = peak(os.getpid()) - base  # its worker processes end with the call: not counted
print(json.dumps({"seconds": seconds, "check": check, "grew": grew}))
"""


def run(rows: int, system: str, what: str) -> dict:
    import json

    out = subprocess.run(
        [sys.executable, "-c", RUNNER, str(rows), system, what], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    plan = [("sort", "python"), ("sort", "plait"), ("join", "python"), ("join", "plait"), ("join", "dask.bag")]
    results: dict = {key: [] for key in plan}
    order = plan * options.repeat
    random.Random(1).shuffle(order)  # interleaved, so load on the machine falls on every system alike
    for what, system in order:
        results[(what, system)].append(run(options.rows, system.split(".")[0], what))
    print(f"\n{options.rows:,} rows, {os.cpu_count()} cores, medians of {options.repeat}\n")
    print("| work | system | median (s) | / sequential Python | peak memory growth (MB) |")
    print("|---|---|---|---|---|")
    for what in ("sort", "join"):
        checks = {tuple(r["check"]) for system in ("python", "plait", "dask.bag") for r in results.get((what, system), [])}
        assert len(checks) == 1, f"{what}: the systems disagree: {checks}"
        base = statistics.median(r["seconds"] for r in results[(what, "python")])
        for system in ("python", "plait", "dask.bag"):
            runs = results.get((what, system))
            if not runs:
                continue
            t = statistics.median(r["seconds"] for r in runs)
            mb = statistics.median(r["grew"] for r in runs) / 2**20
            print(f"| {what} | {system} | {t:.2f} | {t / base:.2f} | {mb:.0f} |")


if __name__ == "__main__":
    main()
