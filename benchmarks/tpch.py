"""TPC-H queries 1, 3, 5, 6, 10 and 12 from Parquet: plait.data's columnar API against
DuckDB, Polars, PySpark and Dask DataFrame, each on every core, in one run.

The tables are made by ``tpchgen-cli`` (scale factor 1 by default, about 345 MB of
Parquet). Each system runs in a process of its own and runs every query ``--repeat``
times after one warm-up; the table gives the median of each query and its ratio to
DuckDB's. Every system's answers are checked against DuckDB's before any time is
reported. Dask runs on a ``distributed.LocalCluster`` of one single-threaded worker
process per core; DuckDB and Polars with one thread per core, PySpark on ``local[cores]``
(Polars and PySpark run the queries' SQL; ``pip install polars pyspark``, and PySpark
needs Java 17).

    .venv/bin/python benchmarks/tpch.py --scale 1 --repeat 5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from benchmarks import tpch_queries  # noqa: E402


def dask_queries(directory: str) -> dict:
    """The same six queries in Dask DataFrame (numbers as floats: Dask has no decimal sums)."""
    from datetime import date

    import dask.dataframe as dd

    def load(name: str, columns: list[str]):
        frame = dd.read_parquet(os.path.join(directory, f"{name}.parquet"), columns=columns)
        decimals = {c: "float64" for c in columns if c.endswith(("price", "discount", "tax", "quantity", "acctbal"))}
        return frame.astype(decimals) if decimals else frame

    def day(y: int, m: int, d: int):
        import pandas as pd

        return pd.Timestamp(date(y, m, d))

    def dates(frame, *names):
        for n in names:
            frame[n] = frame[n].astype("datetime64[ns]") if frame[n].dtype != "datetime64[ns]" else frame[n]
        return frame

    def q1():
        li = dates(load("lineitem", ["l_returnflag", "l_linestatus", "l_quantity", "l_extendedprice", "l_discount",
                                     "l_tax", "l_shipdate"]), "l_shipdate")  # fmt: skip
        li = li[li.l_shipdate <= day(1998, 9, 2)]
        li = li.assign(disc_price=li.l_extendedprice * (1 - li.l_discount))
        li = li.assign(charge=li.disc_price * (1 + li.l_tax))
        out = li.groupby(["l_returnflag", "l_linestatus"]).agg(
            sum_qty=("l_quantity", "sum"), sum_base_price=("l_extendedprice", "sum"),
            sum_disc_price=("disc_price", "sum"), sum_charge=("charge", "sum"), avg_qty=("l_quantity", "mean"),
            avg_price=("l_extendedprice", "mean"), avg_disc=("l_discount", "mean"), count_order=("l_quantity", "size"),
        )  # fmt: skip
        return out.compute().sort_index().reset_index()

    def q3():
        c = load("customer", ["c_custkey", "c_mktsegment"])
        c = c[c.c_mktsegment == "BUILDING"][["c_custkey"]]
        o = dates(load("orders", ["o_orderkey", "o_custkey", "o_orderdate", "o_shippriority"]), "o_orderdate")
        o = o[o.o_orderdate < day(1995, 3, 15)]
        li = dates(load("lineitem", ["l_orderkey", "l_extendedprice", "l_discount", "l_shipdate"]), "l_shipdate")
        li = li[li.l_shipdate > day(1995, 3, 15)]
        j = li.merge(o, left_on="l_orderkey", right_on="o_orderkey").merge(c, left_on="o_custkey", right_on="c_custkey")
        j = j.assign(revenue=j.l_extendedprice * (1 - j.l_discount))
        out = j.groupby(["l_orderkey", "o_orderdate", "o_shippriority"]).revenue.sum().reset_index()
        out = out.compute().sort_values(["revenue", "o_orderdate"], ascending=[False, True]).head(10)
        return out[["l_orderkey", "revenue", "o_orderdate", "o_shippriority"]]

    def q5():
        r = load("region", ["r_regionkey", "r_name"])
        r = r[r.r_name == "ASIA"]
        n = load("nation", ["n_nationkey", "n_name", "n_regionkey"]).merge(r, left_on="n_regionkey", right_on="r_regionkey")
        s = load("supplier", ["s_suppkey", "s_nationkey"]).merge(n, left_on="s_nationkey", right_on="n_nationkey")
        o = dates(load("orders", ["o_orderkey", "o_custkey", "o_orderdate"]), "o_orderdate")
        o = o[(o.o_orderdate >= day(1994, 1, 1)) & (o.o_orderdate < day(1995, 1, 1))]
        c = load("customer", ["c_custkey", "c_nationkey"])
        li = load("lineitem", ["l_orderkey", "l_suppkey", "l_extendedprice", "l_discount"])
        j = li.merge(o.merge(c, left_on="o_custkey", right_on="c_custkey"), left_on="l_orderkey", right_on="o_orderkey")
        j = j.merge(s, left_on=["l_suppkey", "c_nationkey"], right_on=["s_suppkey", "s_nationkey"])
        j = j.assign(revenue=j.l_extendedprice * (1 - j.l_discount))
        return j.groupby("n_name").revenue.sum().compute().sort_values(ascending=False).reset_index()

    def q6():
        li = dates(load("lineitem", ["l_extendedprice", "l_discount", "l_quantity", "l_shipdate"]), "l_shipdate")
        li = li[(li.l_shipdate >= day(1994, 1, 1)) & (li.l_shipdate < day(1995, 1, 1))
                & (li.l_discount >= 0.05 - 1e-9) & (li.l_discount <= 0.07 + 1e-9) & (li.l_quantity < 24)]  # fmt: skip
        return (li.l_extendedprice * li.l_discount).sum().compute()

    def q10():
        o = dates(load("orders", ["o_orderkey", "o_custkey", "o_orderdate"]), "o_orderdate")
        o = o[(o.o_orderdate >= day(1993, 10, 1)) & (o.o_orderdate < day(1994, 1, 1))]
        li = load("lineitem", ["l_orderkey", "l_extendedprice", "l_discount", "l_returnflag"])
        li = li[li.l_returnflag == "R"]
        c = load("customer", ["c_custkey", "c_name", "c_acctbal", "c_phone", "c_nationkey", "c_address", "c_comment"])
        n = load("nation", ["n_nationkey", "n_name"])
        j = li.merge(o, left_on="l_orderkey", right_on="o_orderkey").merge(c, left_on="o_custkey", right_on="c_custkey")
        j = j.merge(n, left_on="c_nationkey", right_on="n_nationkey")
        j = j.assign(revenue=j.l_extendedprice * (1 - j.l_discount))
        keys = ["c_custkey", "c_name", "c_acctbal", "c_phone", "n_name", "c_address", "c_comment"]
        out = j.groupby(keys).revenue.sum().reset_index().compute().sort_values("revenue", ascending=False).head(20)
        return out[["c_custkey", "c_name", "revenue", "c_acctbal", "n_name", "c_address", "c_phone", "c_comment"]]

    def q12():
        li = dates(load("lineitem", ["l_orderkey", "l_shipmode", "l_commitdate", "l_receiptdate", "l_shipdate"]),
                   "l_commitdate", "l_receiptdate", "l_shipdate")  # fmt: skip
        li = li[li.l_shipmode.isin(["MAIL", "SHIP"]) & (li.l_commitdate < li.l_receiptdate)
                & (li.l_shipdate < li.l_commitdate) & (li.l_receiptdate >= day(1994, 1, 1))
                & (li.l_receiptdate < day(1995, 1, 1))]  # fmt: skip
        o = load("orders", ["o_orderkey", "o_orderpriority"])
        j = li.merge(o, left_on="l_orderkey", right_on="o_orderkey")
        high = j.o_orderpriority.isin(["1-URGENT", "2-HIGH"])
        j = j.assign(high=high.astype("int64"), low=(~high).astype("int64"))
        return j.groupby("l_shipmode")[["high", "low"]].sum().compute().sort_index().reset_index()

    return {1: q1, 3: q3, 5: q5, 6: q6, 10: q10, 12: q12}


def _rows(result) -> list[tuple]:
    """Any system's answer as rows of plain numbers and strings."""
    import datetime
    import decimal

    if isinstance(result, (int, float)):
        rows = [(result,)]
    elif hasattr(result, "to_pylist"):  # an Arrow table
        rows = [tuple(r.values()) for r in result.to_pylist()]
    elif hasattr(result, "itertuples"):
        rows = [tuple(r) for r in result.itertuples(index=False)]
    else:
        rows = [tuple(r) for r in result]

    def plain(v):
        if isinstance(v, decimal.Decimal):
            return float(v)
        if hasattr(v, "to_pydatetime"):
            return v.to_pydatetime().date()
        if isinstance(v, datetime.datetime):
            return v.date()
        if hasattr(v, "item"):
            return v.item()
        return v

    return [tuple(plain(v) for v in r) for r in rows]


def _same(a: list[tuple], b: list[tuple]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            if isinstance(u, float) or isinstance(v, float):
                if abs(float(u) - float(v)) > 1e-6 * max(1.0, abs(float(v))):
                    return False
            elif u != v:
                return False
    return True


@contextlib.contextmanager
def _system(system: str, directory: str, cores: int) -> Iterator[Callable[[int], Any]]:
    """A way to run query ``n`` on ``system`` (started here, stopped after): its answer."""
    if system == "duckdb":
        import duckdb

        con = duckdb.connect()
        con.execute(f"set threads={cores}")
        yield lambda n: tpch_queries.duckdb_answer(con, directory, n)
    elif system == "plait":
        import plait

        with plait.init(engine="local", workers=cores):
            tables = tpch_queries.tables(directory)
            yield lambda n: tpch_queries.QUERIES[n](tables).to_arrow()
    elif system == "polars":  # its SQL front end over lazy Parquet scans
        os.environ["POLARS_MAX_THREADS"] = str(cores)
        import polars as pl

        context = pl.SQLContext({t: pl.scan_parquet(os.path.join(directory, f"{t}.parquet")) for t in tpch_queries.TABLES})
        yield lambda n: context.execute(tpch_queries.SQL[n]).collect().rows()
    elif system == "pyspark":  # Spark SQL on local[cores], loopback only
        from pyspark.sql import SparkSession

        spark = (
            SparkSession.builder.master(f"local[{cores}]").appName("plait-tpch")
            .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", str(2 * cores)).config("spark.driver.memory", "4g")
            .getOrCreate()
        )  # fmt: skip
        spark.sparkContext.setLogLevel("ERROR")
        try:
            for t in tpch_queries.TABLES:
                spark.read.parquet(os.path.join(directory, f"{t}.parquet")).createOrReplaceTempView(t)
            yield lambda n: [tuple(r) for r in spark.sql(tpch_queries.SQL[n]).collect()]
        finally:
            spark.stop()
    else:
        from distributed import Client, LocalCluster

        queries = dask_queries(directory)
        with LocalCluster(n_workers=cores, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            with Client(cluster):
                yield lambda n: queries[n]()


def run_system(system: str, directory: str, repeat: int) -> dict:
    """Each query's median time on ``system``, after its answer is checked against
    DuckDB's and one warm-up run."""
    import time

    import duckdb

    answers = {n: _rows(tpch_queries.duckdb_answer(duckdb.connect(), directory, n)) for n in tpch_queries.QUERIES}
    times: dict = {}
    with _system(system, directory, os.cpu_count() or 1) as query:
        for n in tpch_queries.QUERIES:
            got = _rows(query(n))
            assert _same(got, answers[n]), f"{system} Q{n} differs from DuckDB: {got[:3]} vs {answers[n][:3]}"
            times[n] = []
            for _ in range(repeat):
                start = time.perf_counter()
                query(n)
                times[n].append(time.perf_counter() - start)
    return {str(n): statistics.median(t) for n, t in times.items()}


SYSTEMS = {"duckdb": "DuckDB", "plait": "plait", "polars": "Polars", "pyspark": "PySpark", "dask": "Dask DataFrame"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--data", default=None, help="where the tables are (made there if missing)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="which to run, of " + ", ".join(SYSTEMS))
    parser.add_argument("--system", default=None, help=argparse.SUPPRESS)
    options = parser.parse_args()
    directory = options.data or os.path.join("/tmp", f"plait-tpch-sf{options.scale:g}")
    if options.system:
        print(json.dumps(run_system(options.system, directory, options.repeat)))
        return
    tpch_queries.generate(directory, options.scale)
    results = {}
    for system in options.systems.split(","):
        out = subprocess.run(
            [sys.executable, __file__, "--system", system, "--data", directory, "--repeat", str(options.repeat)],
            capture_output=True, text=True,
        )  # fmt: skip
        if out.returncode:
            print(f"{system} failed:\n{out.stderr[-3000:]}")
            continue
        results[system] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\nTPC-H SF{options.scale:g}, {os.cpu_count()} cores, medians of {options.repeat} (seconds; x: / DuckDB)\n")
    shown = [s for s in results if s != "duckdb"]
    print("| query | DuckDB | " + " | ".join(f"{SYSTEMS[s]} | x" for s in shown) + " |")
    print("|---" * (2 + 2 * len(shown)) + "|")
    for n in map(str, tpch_queries.QUERIES):
        base = results.get("duckdb", {}).get(n)
        cells = [f"Q{n}", f"{base:.3f}" if base else "-"]
        for system in shown:
            t = results[system].get(n)
            cells += [f"{t:.3f}", f"{t / base:.1f}x"] if t and base else ["-", "-"]
        print("| " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main()
