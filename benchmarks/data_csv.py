"""A filtered aggregate over CSV files: plait.data with the reader pushdown (Arrow parses the
file, only the columns used, the ``where`` applied as each block is read) and without it
(Python's ``csv``, a dict per record, then the columnar operators), against DuckDB and
Polars reading the same files, pandas in one process, and a hand-written
ProcessPoolExecutor over ``csv.reader``, in one run.

The files (``--rows`` records in one file per core times two: an int id, a key of 100
values, an int quantity, a float price, and a comment with commas and quotes) are written
once to a temporary directory. The query is the sum of price and the count per key
where quantity > 25. Every system must give the same answer; times are medians of
``--repeat`` runs from warm workers.

    .venv/bin/python benchmarks/data_csv.py --rows 2000000 --repeat 5
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor

import plait
from plait import data
from plait.data import col, count, optimize
from timing import median_time


def generate(directory: str, rows: int, files: int) -> list[str]:
    rng = random.Random(11)
    paths = []
    per = -(-rows // files)
    for f in range(files):
        path = os.path.join(directory, f"part{f}.csv")
        with open(path, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["id", "key", "qty", "price", "comment"])
            for i in range(f * per, min(rows, (f + 1) * per)):
                writer.writerow([i, f"k{rng.randrange(100)}", rng.randrange(50), round(rng.uniform(1, 1000), 2),
                                 f'item {i}, "note" {rng.random():.6f}'])  # fmt: skip
        paths.append(path)
    return paths


def answer(rows: list[tuple[str, float, int]]) -> list[tuple[str, float, int]]:
    return sorted((k, round(t, 2), int(n)) for k, t, n in rows)


def plait_query(directory: str) -> list:
    ds = data.read_csv(os.path.join(directory, "*.csv"), types={"qty": int, "price": float})
    out = ds.where(col("qty") > 25).group_by("key").agg(total=data.sum("price"), n=count()).collect()
    return answer([(r["key"], r["total"], r["n"]) for r in out])


def _count_file(path: str) -> dict:
    totals: dict = {}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        next(reader)
        for _, key, qty, price, _ in reader:
            if int(qty) > 25:
                t = totals.setdefault(key, [0.0, 0])
                t[0] += float(price)
                t[1] += 1
    return totals


def ppe_query(pool: ProcessPoolExecutor, paths: list[str]) -> list:
    merged: dict = {}
    for part in pool.map(_count_file, paths):
        for key, (t, n) in part.items():
            m = merged.setdefault(key, [0.0, 0])
            m[0] += t
            m[1] += n
    return answer([(k, t, n) for k, (t, n) in merged.items()])


def duckdb_query(directory: str) -> list:
    import duckdb

    con = duckdb.connect()
    rows = con.execute(
        f"SELECT key, sum(price), count(*) FROM read_csv('{directory}/*.csv', header=true) "
        "WHERE qty > 25 GROUP BY key"
    ).fetchall()
    return answer(rows)


def polars_query(directory: str) -> list:
    import polars as pl

    frame = (
        pl.scan_csv(os.path.join(directory, "*.csv"))
        .filter(pl.col("qty") > 25)
        .group_by("key")
        .agg(pl.col("price").sum(), pl.len())
        .collect()
    )
    return answer(frame.rows())


def pandas_query(paths: list[str]) -> list:
    import pandas as pd

    frame = pd.concat([pd.read_csv(p, usecols=["key", "qty", "price"]) for p in paths])
    grouped = frame[frame.qty > 25].groupby("key").price.agg(["sum", "count"])
    return answer([(k, r["sum"], r["count"]) for k, r in grouped.iterrows()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    directory = tempfile.mkdtemp(prefix="plait-csv-bench-")
    try:
        paths = generate(directory, args.rows, 2 * cores)
        size = sum(os.path.getsize(p) for p in paths) / 1e6
        print(f"{args.rows} rows, {len(paths)} files, {size:.0f} MB, {cores} cores, median of {args.repeat}")
        results: dict[str, tuple[float, list]] = {}

        def timed(name: str, run) -> None:
            out: list = []
            seconds = median_time(lambda: out.append(run()), args.repeat)
            results[name] = (seconds, out[-1])

        with plait.init(engine="local", workers=cores):
            timed("plait, reader pushdown", lambda: plait_query(directory))
            passes = optimize.PASSES
            optimize.PASSES = tuple(p for p in passes if p is not optimize.push_into_reader)
            try:
                timed("plait, record reader (no pushdown)", lambda: plait_query(directory))
            finally:
                optimize.PASSES = passes
        with ProcessPoolExecutor(cores) as pool:
            timed("ProcessPoolExecutor + csv.reader", lambda: ppe_query(pool, paths))
        timed("DuckDB", lambda: duckdb_query(directory))
        timed("Polars", lambda: polars_query(directory))
        timed("pandas (one process)", lambda: pandas_query(paths))
        reference = results["DuckDB"][1]
        base = results["plait, reader pushdown"][0]
        print("| system | median s | / plait pushdown | same answer |")
        print("|---|---|---|---|")
        for name, (seconds, out) in results.items():
            print(f"| {name} | {seconds:.3f} | {seconds / base:.2f}x | {out == reference} |")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
