"""Word count over generated text: plait.data's record API and its columnar path against
dask.bag, a hand-written ProcessPoolExecutor with ``collections.Counter``, and Polars and
DuckDB as the vectorized limit, in one run.

The text (``--mb`` megabytes in 8 files, words drawn from a Zipf-like vocabulary of
50,000, about 10 to a line) is written once to a temporary directory. Every system
counts the same files with one process per core and must give the same counts. Times
are medians of ``--repeat`` runs, each from a warm pool (workers started before).

    .venv/bin/python benchmarks/data_wordcount.py --mb 200 --repeat 3
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import plait
from plait import data
from plait.data import col, count

FILES = 8


def generate(directory: str, megabytes: int) -> list[str]:
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(50_000)]
    weights = [1 / (i + 1) for i in range(len(vocabulary))]
    per_file = megabytes * (1 << 20) // FILES
    paths = []
    for f in range(FILES):
        path = os.path.join(directory, f"text{f}.txt")
        with open(path, "w") as out:
            written = 0
            while written < per_file:
                words = rng.choices(vocabulary, weights, k=10_000)
                lines = "\n".join(" ".join(words[i : i + 10]) for i in range(0, len(words), 10)) + "\n"
                out.write(lines)
                written += len(lines)
        paths.append(path)
    return paths


# ---------------------------------------------------------------- the hand-written version
def _count_range(path: str, start: int, end: int) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    with open(path, "rb") as f:
        if start:
            f.seek(start - 1)
            f.readline()
        while f.tell() < end:
            line = f.readline()
            if not line:
                break
            counts.update(line.decode().split())
    return counts


def ppe_count(pool: ProcessPoolExecutor, paths: list[str], block: int) -> dict:
    ranges = []
    for p in paths:
        size = os.path.getsize(p)
        ranges += [(p, a, min(a + block, size)) for a in range(0, size, block)]
    total: collections.Counter = collections.Counter()
    for part in pool.map(_count_range, *zip(*ranges, strict=True)):
        total.update(part)
    return dict(total)


def plait_count(directory: str, block: int) -> dict:
    return dict(data.read_text(directory, block_size=block).flat_map(str.split).count_by_value().collect())


def plait_columnar_count(directory: str, block: int) -> dict:
    words = data.read_text(directory, block_size=block, column="line").select(col("line").split().alias("word"))
    return {r["word"]: r["n"] for r in words.explode("word").group_by("word").agg(n=count()).collect()}


def polars_count(paths: list[str]) -> dict:
    """Polars reads each file's lines as one column (no quoting, a separator no line has),
    splits them on whitespace and counts, on every core."""
    import polars as pl

    lines = pl.concat(
        [pl.scan_csv(p, has_header=False, separator="\x1f", quote_char=None, new_columns=["line"]) for p in paths]
    )
    words = lines.select(pl.col("line").str.split(" ").explode().alias("word")).filter(pl.col("word") != "")
    return dict(words.group_by("word").len().collect().iter_rows())


def duckdb_count(paths: list[str]) -> dict:
    import duckdb

    con = duckdb.connect()
    con.execute(f"set threads={os.cpu_count()}")
    files = ", ".join(f"'{p}'" for p in paths)
    sql = (
        f"select word, count(*) from (select unnest(string_split(line, ' ')) as word from "
        f"read_csv([{files}], columns={{'line': 'varchar'}}, header=false, delim='\x1f', quote='', escape=''))"
        " where word <> '' group by word"
    )
    return dict(con.execute(sql).fetchall())


def dask_bag_count(paths: list[str], block: int) -> dict:
    import dask.bag as db

    bag = db.read_text(paths, blocksize=block).str.split().flatten().frequencies()
    return dict(bag.compute(scheduler="processes", num_workers=os.cpu_count()))


def timed(fn, repeat: int) -> tuple[float, dict]:
    times, result = [], {}
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--block-mb", type=int, default=16)
    options = parser.parse_args()
    block = options.block_mb << 20
    cores = os.cpu_count() or 1
    directory = tempfile.mkdtemp(prefix="plait-wordcount-")
    try:
        paths = generate(directory, options.mb)
        rows: dict[str, float] = {}
        answers: dict[str, dict] = {}
        with ProcessPoolExecutor(cores) as pool:
            list(pool.map(abs, range(cores * 4)))
            rows["ProcessPoolExecutor + Counter"], answers["ppe"] = timed(lambda: ppe_count(pool, paths, block), options.repeat)
        with plait.init(engine="local", workers=cores):
            plait_count(directory, 1 << 20)  # workers warm
            rows["plait.data record API (local)"], answers["plait"] = timed(
                lambda: plait_count(directory, block), options.repeat
            )
            plait_columnar_count(directory, 1 << 20)
            rows["plait.data columnar (local)"], answers["plait columnar"] = timed(
                lambda: plait_columnar_count(directory, block), options.repeat
            )
        for name, key, fn in (
            ("dask.bag (processes)", "dask", lambda: dask_bag_count(paths, block)),
            ("Polars (lazy scan, every core)", "polars", lambda: polars_count(paths)),
            ("DuckDB (every core)", "duckdb", lambda: duckdb_count(paths)),
        ):
            try:
                rows[name], answers[key] = timed(fn, options.repeat)
            except ImportError:
                pass
        reference = answers["ppe"]
        for name, answer in answers.items():
            assert answer == reference, f"{name} counted differently"
        base = rows["ProcessPoolExecutor + Counter"]
        print(f"\nword count, {options.mb} MB in {FILES} files, {cores} cores, medians of {options.repeat}\n")
        print("| system | median (s) | / ProcessPoolExecutor |")
        print("|---|---|---|")
        for name, t in rows.items():
            print(f"| {name} | {t:.2f} | {t / base:.2f} |")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
