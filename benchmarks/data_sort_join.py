"""Sort and join of generated records: plait.data (records, and the same rows as Arrow
tables) against plain sequential Python, dask.bag, Dask DataFrame and PySpark, with the
peak memory of each run beside its time.

The records are (key, payload) tuples, ``--rows`` of them, made inside the tasks from
a range (so nothing is shipped from the driver). The sort orders them by key; the
join matches two such tables on key (every key once on each side, so the result has
``--rows`` rows). Sequential Python does the same with ``sorted`` and a dict. dask.bag
has no sort; its join is a ``groupby`` on the union of the two sides (its ``join``
takes an in-memory right side only). The columnar systems (plait's tables, Dask
DataFrame, PySpark) make the same keys and payloads as columns in their tasks, sort
with ``order_by``/``sort_values``/``orderBy`` and gather the result in the driver,
and join on the key column. Peak memory is the growth of the high-water mark (VmHWM)
of the driver and of every worker process (Spark: the driver's JVM), summed, over the
run; beside it, for plait, the peak of its store's files in ``/dev/shm`` (sampled every
20 ms), which no process counts as its own resident memory.

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

class StorePeak:  # the most bytes a plait store's files in /dev/shm held at once, sampled every 20 ms
    def __init__(self, directory):
        import threading
        self.directory, self.peak, self._stop = directory, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
    def _sample(self):
        while not self._stop.wait(0.02):
            total = 0
            for root, _, files in os.walk(self.directory):
                for name in files:
                    try:
                        total += os.stat(os.path.join(root, name)).st_blocks * 512
                    except OSError:
                        pass
            self.peak = max(self.peak, total)
    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.peak

store = 0

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
        sampler = StorePeak(session.engine.store.dirs.shm)
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
        store = sampler.stop()
        grew = sum(peak(p) - base[p] for p in pids)
elif system == "plait-columnar":  # the same rows as Arrow tables, made in the tasks
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import plait
    from plait import data
    from plait.data import col, count
    from plait.data import sum as total_of
    parts = 4 * cores
    per = -(-rows // parts)
    def made(second):
        def make(t):
            i = t.column("part")[0].as_py()
            ids = np.arange(i * per, min(rows, (i + 1) * per), dtype=np.int64)
            keys = pa.array((ids * 2654435761) % (1 << 32))
            if second:
                return pa.table({"key": keys, "w": pa.array(ids)})
            return pa.table({"key": keys, "payload": pc.binary_join_element_wise("payload-", pc.cast(pa.array(ids), pa.string()), "")})
        return data.from_items([{"part": i} for i in range(parts)], partitions=parts).map_batches(make)
    with plait.init(engine="local", workers=cores) as session:
        made(False).order_by("key").limit(1).collect()  # workers warm
        pids = [os.getpid(), *session.engine.worker_pids()]
        base = {p: peak(p) for p in pids}
        sampler = StorePeak(session.engine.store.dirs.shm)
        start = time.perf_counter()
        if what == "sort":
            table = made(False).order_by("key").to_arrow()
            check = (table.num_rows, table.column("key")[0].as_py(), table.column("key")[-1].as_py())
        else:
            joined = made(False).join(made(True), on="key").group_by().agg(n=count(), total=total_of("w"))
            (row,) = joined.collect()
            check = (row["n"], row["total"] % 1000003)
        seconds = time.perf_counter() - start
        store = sampler.stop()
        grew = sum(peak(p) - base[p] for p in pids)
elif system == "dask-dataframe":  # on a LocalCluster of one single-threaded process per core
    import numpy as np
    import pandas as pd
    import dask
    import dask.dataframe as dd
    from distributed import Client, LocalCluster
    parts = 4 * cores
    per = -(-rows // parts)
    def frame(i, second):
        ids = np.arange(i * per, min(rows, (i + 1) * per), dtype=np.int64)
        keys = (ids * 2654435761) % (1 << 32)
        if second:
            return pd.DataFrame({"key": keys, "w": ids})
        return pd.DataFrame({"key": keys, "payload": ["payload-%d" % j for j in ids]})
    with LocalCluster(n_workers=cores, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        pids = [os.getpid(), *client.run(os.getpid).values()]
        base = {p: peak(p) for p in pids}
        start = time.perf_counter()
        left = dd.from_map(frame, range(parts), second=False)
        if what == "sort":
            out = left.sort_values("key").compute()
            check = (len(out), int(out["key"].iloc[0]), int(out["key"].iloc[-1]))
        else:
            joined = left.merge(dd.from_map(frame, range(parts), second=True), on="key")
            n, total = dask.compute(joined.shape[0], joined["w"].sum())
            check = (int(n), int(total) % 1000003)
        seconds = time.perf_counter() - start
        grew = sum(peak(p) - base[p] for p in pids)
elif system == "pyspark":  # local[cores], the JVM's memory counted; rows made by Spark
    from pyspark.sql import SparkSession, functions as F
    spark = (SparkSession.builder.master(f"local[{cores}]").appName("plait-bench")
             .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", str(4 * cores)).config("spark.driver.memory", "4g")
             .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        launched = getattr(spark.sparkContext._gateway, "proc", None)  # the JVM (spark-submit execs java)
        jvm = launched.pid if launched is not None else None
        ids = spark.range(rows, numPartitions=4 * cores)
        key = (F.col("id") * F.lit(2654435761)) % F.lit(1 << 32)
        left = ids.select(key.alias("key"), F.concat(F.lit("payload-"), F.col("id").cast("string")).alias("payload"))
        left.limit(1).collect()  # the JVM warm
        pids = [os.getpid()] + ([jvm] if jvm else [])
        base = {p: peak(p) for p in pids}
        start = time.perf_counter()
        if what == "sort":
            out = left.orderBy("key").toPandas()
            check = (len(out), int(out["key"].iloc[0]), int(out["key"].iloc[-1]))
        else:
            right = ids.select(key.alias("key"), F.col("id").alias("w"))
            row = left.join(right, "key").agg(F.count("*").alias("n"), F.sum("w").alias("total")).collect()[0]
            check = (row["n"], row["total"] % 1000003)
        seconds = time.perf_counter() - start
        grew = sum(peak(p) - base[p] for p in pids)
    finally:
        spark.stop()
elif system == "dask":
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
else:
    raise SystemExit(f"unknown system {system}")
print(json.dumps({"seconds": seconds, "check": check, "grew": grew, "store": store}))
"""


SYSTEMS = ("python", "plait", "plait-columnar", "dask.bag", "dask-dataframe", "pyspark")


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
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="which to run, of " + ", ".join(SYSTEMS))
    options = parser.parse_args()
    chosen = ["python", *(s for s in options.systems.split(",") if s != "python")]
    plan = [(what, s) for what in ("sort", "join") for s in chosen if not (what == "sort" and s == "dask.bag")]
    results: dict = {key: [] for key in plan}
    order = plan * options.repeat
    random.Random(1).shuffle(order)  # interleaved, so load on the machine falls on every system alike
    for what, system in order:
        results[(what, system)].append(run(options.rows, system.replace("dask.bag", "dask"), what))
    print(f"\n{options.rows:,} rows, {os.cpu_count()} cores, medians of {options.repeat}\n")
    print("| work | system | median (s) | / sequential Python | peak memory growth (MB) | plait store peak (MB) |")
    print("|---|---|---|---|---|---|")
    for what in ("sort", "join"):
        checks = {tuple(r["check"]) for system in chosen for r in results.get((what, system), [])}
        assert len(checks) == 1, f"{what}: the systems disagree: {checks}"
        base = statistics.median(r["seconds"] for r in results[(what, "python")])
        for system in chosen:
            runs = results.get((what, system))
            if not runs:
                continue
            t = statistics.median(r["seconds"] for r in runs)
            mb = statistics.median(r["grew"] for r in runs) / 2**20
            held = statistics.median(r.get("store", 0) for r in runs) / 2**20
            print(f"| {what} | {system} | {t:.2f} | {t / base:.2f} | {mb:.0f} | {f'{held:.0f}' if system.startswith('plait') else '-'} |")


if __name__ == "__main__":
    main()
