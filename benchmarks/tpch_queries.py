"""TPC-H queries 1, 3, 5, 6, 10 and 12 in plait's columnar API, beside their SQL.

The tests check each against DuckDB's answer on the same Parquet files (a small scale
factor made by ``tpchgen-cli``); ``benchmarks/tpch.py`` times them against DuckDB and
Dask DataFrame.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date

from plait import data
from plait.data import col, count, mean, when
from plait.data import sum as total

TABLES = ("customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier")


def generate(directory: str, scale: float) -> str:
    """The eight tables as Parquet files in ``directory`` (made once)."""
    if all(os.path.exists(os.path.join(directory, f"{t}.parquet")) for t in TABLES):
        return directory
    os.makedirs(directory, exist_ok=True)
    tool = shutil.which("tpchgen-cli") or os.path.join(os.path.dirname(sys.executable), "tpchgen-cli")
    subprocess.run([tool, "parquet", "-s", str(scale), f"--output-dir={directory}"], check=True, capture_output=True)
    return directory


def tables(directory: str) -> dict[str, data.Dataset]:
    return {t: data.read_parquet(os.path.join(directory, f"{t}.parquet")) for t in TABLES}


def _revenue():
    return col("l_extendedprice") * (1 - col("l_discount"))


def q1(t: dict) -> data.Dataset:
    price = _revenue()
    return (
        t["lineitem"]
        .where(col("l_shipdate") <= date(1998, 9, 2))
        .group_by("l_returnflag", "l_linestatus")
        .agg(
            sum_qty=total("l_quantity"),
            sum_base_price=total("l_extendedprice"),
            sum_disc_price=total(price),
            sum_charge=total(price * (1 + col("l_tax"))),
            avg_qty=mean("l_quantity"),
            avg_price=mean("l_extendedprice"),
            avg_disc=mean("l_discount"),
            count_order=count(),
        )
        .order_by("l_returnflag", "l_linestatus")
    )


def q3(t: dict) -> data.Dataset:
    customer = t["customer"].where(col("c_mktsegment") == "BUILDING").select("c_custkey")
    orders = (
        t["orders"]
        .where(col("o_orderdate") < date(1995, 3, 15))
        .select("o_orderkey", "o_custkey", "o_orderdate", "o_shippriority")
    )
    lineitem = (
        t["lineitem"].where(col("l_shipdate") > date(1995, 3, 15)).select("l_orderkey", "l_extendedprice", "l_discount")
    )
    return (
        lineitem.join(orders, left_on="l_orderkey", right_on="o_orderkey")
        .join(customer, left_on="o_custkey", right_on="c_custkey")
        .group_by("l_orderkey", "o_orderdate", "o_shippriority")
        .agg(revenue=total(_revenue()))
        .select("l_orderkey", "revenue", "o_orderdate", "o_shippriority")
        .order_by("revenue", "o_orderdate", descending=[True, False])
        .limit(10)
    )


def q5(t: dict) -> data.Dataset:
    region = t["region"].where(col("r_name") == "ASIA").select("r_regionkey")
    nation = t["nation"].select("n_nationkey", "n_name", "n_regionkey").join(
        region, left_on="n_regionkey", right_on="r_regionkey"
    )
    supplier = t["supplier"].select("s_suppkey", "s_nationkey").join(nation, left_on="s_nationkey", right_on="n_nationkey")
    orders = (
        t["orders"]
        .where((col("o_orderdate") >= date(1994, 1, 1)) & (col("o_orderdate") < date(1995, 1, 1)))
        .select("o_orderkey", "o_custkey")
    )
    customer = t["customer"].select("c_custkey", "c_nationkey")
    lineitem = t["lineitem"].select("l_orderkey", "l_suppkey", "l_extendedprice", "l_discount")
    placed = orders.join(customer, left_on="o_custkey", right_on="c_custkey")
    return (
        lineitem.join(placed, left_on="l_orderkey", right_on="o_orderkey")
        .join(supplier, left_on=["l_suppkey", "c_nationkey"], right_on=["s_suppkey", "s_nationkey"])
        .group_by("n_name")
        .agg(revenue=total(_revenue()))
        .order_by("revenue", descending=True)
    )


def q6(t: dict) -> data.Dataset:
    from decimal import Decimal

    return (
        t["lineitem"]
        .where(
            (col("l_shipdate") >= date(1994, 1, 1))
            & (col("l_shipdate") < date(1995, 1, 1))
            & (col("l_discount") >= Decimal("0.05"))
            & (col("l_discount") <= Decimal("0.07"))
            & (col("l_quantity") < 24)
        )
        .group_by()
        .agg(revenue=total(col("l_extendedprice") * col("l_discount")))
    )


def q10(t: dict) -> data.Dataset:
    orders = (
        t["orders"]
        .where((col("o_orderdate") >= date(1993, 10, 1)) & (col("o_orderdate") < date(1994, 1, 1)))
        .select("o_orderkey", "o_custkey")
    )
    lineitem = t["lineitem"].where(col("l_returnflag") == "R").select("l_orderkey", "l_extendedprice", "l_discount")
    customer = t["customer"].select(
        "c_custkey", "c_name", "c_acctbal", "c_phone", "c_nationkey", "c_address", "c_comment"
    )
    nation = t["nation"].select("n_nationkey", "n_name")
    return (
        lineitem.join(orders, left_on="l_orderkey", right_on="o_orderkey")
        .join(customer, left_on="o_custkey", right_on="c_custkey")
        .join(nation, left_on="c_nationkey", right_on="n_nationkey")
        .group_by("o_custkey", "c_name", "c_acctbal", "c_phone", "n_name", "c_address", "c_comment")
        .agg(revenue=total(_revenue()))
        .select(
            col("o_custkey").alias("c_custkey"), "c_name", "revenue", "c_acctbal", "n_name", "c_address", "c_phone",
            "c_comment",
        )
        .order_by("revenue", descending=True)
        .limit(20)
    )  # fmt: skip


def q12(t: dict) -> data.Dataset:
    lineitem = t["lineitem"].where(
        col("l_shipmode").isin(["MAIL", "SHIP"])
        & (col("l_commitdate") < col("l_receiptdate"))
        & (col("l_shipdate") < col("l_commitdate"))
        & (col("l_receiptdate") >= date(1994, 1, 1))
        & (col("l_receiptdate") < date(1995, 1, 1))
    ).select("l_orderkey", "l_shipmode")
    orders = t["orders"].select("o_orderkey", "o_orderpriority")
    high = col("o_orderpriority").isin(["1-URGENT", "2-HIGH"])
    return (
        lineitem.join(orders, left_on="l_orderkey", right_on="o_orderkey")
        .group_by("l_shipmode")
        .agg(high_line_count=total(when(high, 1, 0)), low_line_count=total(when(high, 0, 1)))
        .order_by("l_shipmode")
    )


QUERIES = {1: q1, 3: q3, 5: q5, 6: q6, 10: q10, 12: q12}

SQL = {
    1: """select l_returnflag, l_linestatus, sum(l_quantity) as sum_qty, sum(l_extendedprice) as sum_base_price,
        sum(l_extendedprice * (1 - l_discount)) as sum_disc_price,
        sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) as sum_charge, avg(l_quantity) as avg_qty,
        avg(l_extendedprice) as avg_price, avg(l_discount) as avg_disc, count(*) as count_order
        from lineitem where l_shipdate <= date '1998-09-02'
        group by l_returnflag, l_linestatus order by l_returnflag, l_linestatus""",
    3: """select l_orderkey, sum(l_extendedprice * (1 - l_discount)) as revenue, o_orderdate, o_shippriority
        from customer, orders, lineitem
        where c_mktsegment = 'BUILDING' and c_custkey = o_custkey and l_orderkey = o_orderkey
        and o_orderdate < date '1995-03-15' and l_shipdate > date '1995-03-15'
        group by l_orderkey, o_orderdate, o_shippriority order by revenue desc, o_orderdate limit 10""",
    5: """select n_name, sum(l_extendedprice * (1 - l_discount)) as revenue
        from customer, orders, lineitem, supplier, nation, region
        where c_custkey = o_custkey and l_orderkey = o_orderkey and l_suppkey = s_suppkey
        and c_nationkey = s_nationkey and s_nationkey = n_nationkey and n_regionkey = r_regionkey
        and r_name = 'ASIA' and o_orderdate >= date '1994-01-01' and o_orderdate < date '1995-01-01'
        group by n_name order by revenue desc""",
    6: """select sum(l_extendedprice * l_discount) as revenue from lineitem
        where l_shipdate >= date '1994-01-01' and l_shipdate < date '1995-01-01'
        and l_discount between 0.05 and 0.07 and l_quantity < 24""",
    10: """select c_custkey, c_name, sum(l_extendedprice * (1 - l_discount)) as revenue, c_acctbal, n_name,
        c_address, c_phone, c_comment
        from customer, orders, lineitem, nation
        where c_custkey = o_custkey and l_orderkey = o_orderkey and o_orderdate >= date '1993-10-01'
        and o_orderdate < date '1994-01-01' and l_returnflag = 'R' and c_nationkey = n_nationkey
        group by c_custkey, c_name, c_acctbal, c_phone, n_name, c_address, c_comment
        order by revenue desc limit 20""",
    12: """select l_shipmode,
        sum(case when o_orderpriority = '1-URGENT' or o_orderpriority = '2-HIGH' then 1 else 0 end) as high_line_count,
        sum(case when o_orderpriority <> '1-URGENT' and o_orderpriority <> '2-HIGH' then 1 else 0 end)
            as low_line_count
        from orders, lineitem
        where o_orderkey = l_orderkey and l_shipmode in ('MAIL', 'SHIP') and l_commitdate < l_receiptdate
        and l_shipdate < l_commitdate and l_receiptdate >= date '1994-01-01' and l_receiptdate < date '1995-01-01'
        group by l_shipmode order by l_shipmode""",
}


def duckdb_answer(connection, directory: str, number: int) -> list[tuple]:
    """DuckDB's answer, the tables read as views of the same files."""
    for t in TABLES:
        path = os.path.join(directory, f"{t}.parquet").replace("'", "''")
        connection.execute(f"create or replace view {t} as select * from read_parquet('{path}')")
    return connection.execute(SQL[number]).fetchall()
