"""plait.data's columnar operators against DuckDB: random tables and random queries,
TPC-H on real Parquet files, the pushdown and partial-aggregation rules.

The tests that take the ``engine`` fixture run on inline and local here, and on Ray
and Dask in ``test_cluster_engines.py``. The oracle is DuckDB running the same query,
written as SQL, over the same Arrow table or Parquet files.
"""

from __future__ import annotations

import collections
import csv
import datetime
import decimal
import math
import operator
import os
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from benchmarks import tpch_queries
from hypothesis import given, settings
from hypothesis import strategies as st

import plait
from plait import data
from plait.data import col, columnar, kernels, optimize, physical, when
from plait.data.expr import Expr
from tests.test_data import EXAMPLES, random_data

random_queries = random_data  # PLAIT_DATA_EXAMPLES sets how many examples, as for the record tests
random_data_many = settings(  # for tests that start no engine: cheap examples, many of them
    max_examples=EXAMPLES * 20, deadline=None, derandomize="PLAIT_DATA_EXAMPLES" not in os.environ
)


# ------------------------------------------------------------------ the oracle
def sql(e: Expr) -> str:
    """The expression as DuckDB SQL."""
    op, a = e.op, e.args
    if op == "col":
        return a[0]
    if op == "lit":
        return _sql_literal(a[0])
    infix = {"add": "+", "sub": "-", "mul": "*", "div": "/", "eq": "=", "ne": "<>", "lt": "<", "le": "<=",
             "gt": ">", "ge": ">=", "and": "AND", "or": "OR"}  # fmt: skip
    if op in infix:
        return f"({sql(a[0])} {infix[op]} {sql(a[1])})"
    if op == "not":
        return f"(NOT {sql(a[0])})"
    if op == "neg":
        return f"(- {sql(a[0])})"
    if op == "isin":
        return f"({sql(a[0])} IN ({', '.join(map(_sql_literal, a[1]))}))"
    if op == "is_null":
        return f"({sql(a[0])} IS NULL)"
    if op == "is_valid":
        return f"({sql(a[0])} IS NOT NULL)"
    if op == "when":
        return f"(CASE WHEN {sql(a[0])} THEN {sql(a[1])} ELSE {sql(a[2])} END)"
    raise AssertionError(op)


def _sql_literal(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v)


def plain(value):
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    return value


def as_multiset(rows) -> collections.Counter:
    return collections.Counter(repr(tuple(plain(v) for v in r)) for r in rows)


def duck(query: str, **tables) -> list[tuple]:
    con = duckdb.connect()
    for name, table in tables.items():
        con.register(name, table)
    return con.execute(query).fetchall()


def rows_of(ds) -> list[tuple]:
    return [tuple(r.values()) for r in ds.collect()]


# ------------------------------------------------------------------ random tables and queries
maybe = lambda s: st.one_of(st.none(), s)  # noqa: E731
row = st.fixed_dictionaries({
    "k": maybe(st.integers(0, 3)),
    "s": maybe(st.sampled_from(["a", "b", "ab", ""])),
    "x": maybe(st.integers(-5, 5)),
    "y": maybe(st.sampled_from([-1.5, 0.0, 0.25, 2.0, 3.75])),
})  # fmt: skip
SCHEMA = pa.schema([("k", pa.int64()), ("s", pa.string()), ("x", pa.int64()), ("y", pa.float64())])
tables = st.lists(row, max_size=40).map(lambda rows: pa.Table.from_pylist(rows, schema=SCHEMA))
partitions = st.integers(1, 4)

numeric = st.sampled_from([col("x"), col("y"), col("k")])
values = st.one_of(numeric, st.integers(-3, 3).map(data.lit))
arithmetic = st.one_of(
    values,
    st.tuples(values, st.sampled_from(["+", "-", "*"]), values).map(
        lambda t: t[0] + t[2] if t[1] == "+" else t[0] - t[2] if t[1] == "-" else t[0] * t[2]
    ),
    st.tuples(numeric, st.sampled_from([2, 4])).map(lambda t: t[0] / t[1]),
)
comparison = st.tuples(arithmetic, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), arithmetic).map(
    lambda t: {"<": t[0] < t[2], "<=": t[0] <= t[2], ">": t[0] > t[2], ">=": t[0] >= t[2],
               "==": t[0] == t[2], "!=": t[0] != t[2]}[t[1]]  # fmt: skip
)
atom = st.one_of(
    comparison,
    st.sampled_from([col("s").isin(["a", ""]), col("k").isin([0, 2]), col("x").is_null(), col("y").is_not_null()]),
)
conditions = st.recursive(
    atom,
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda t: t[0] & t[1]),
        st.tuples(inner, inner).map(lambda t: t[0] | t[1]),
        inner.map(lambda c: ~c),
    ),
    max_leaves=4,
)


def source(table: pa.Table, parts: int, kept: int | None) -> tuple[data.Dataset, pa.Table]:
    """The table as a dataset, and what the query reads: the table itself (``kept`` None),
    or its rows as dicts through a Python filter that keeps those whose bit of ``kept``
    is set, so some partitions come to the columnar operators empty, or with a column
    of nulls only, and never made from a table."""
    if kept is None:
        return data.from_arrow(table, partitions=parts), table
    rows = [(r, bool(kept >> i & 1)) for i, r in enumerate(table.to_pylist())]
    ds = data.from_items(rows, partitions=parts).filter(operator.itemgetter(1)).map(operator.itemgetter(0))
    return ds, pa.Table.from_pylist([r for r, keep in rows if keep], schema=SCHEMA)


sources = maybe(st.integers(0, 2**40))


@random_queries
@given(table=tables, parts=partitions, condition=conditions, made=arithmetic, kept=sources)
def test_where_and_select_give_what_duckdb_gives(engine, table, parts, condition, made, kept):
    ds, table = source(table, parts, kept)
    got = rows_of(ds.where(condition).select("k", made.alias("v"), when(condition, "yes", "no").alias("w")))
    want = duck(f"SELECT k, {sql(made)} AS v, CASE WHEN {sql(condition)} THEN 'yes' ELSE 'no' END AS w "
                f"FROM t WHERE {sql(condition)}", t=table)  # fmt: skip
    assert as_multiset(got) == as_multiset(want)


aggregates = st.lists(
    st.tuples(
        st.sampled_from(["sum", "mean", "min", "max", "count"]),
        st.one_of(st.none(), numeric, arithmetic),
    ),
    min_size=1,
    max_size=4,
)


@random_queries
@given(table=tables, parts=partitions, keys=st.sampled_from([(), ("k",), ("s",), ("k", "s")]), aggs=aggregates,
       condition=maybe(conditions), kept=sources)  # fmt: skip
def test_group_by_agg_gives_what_duckdb_gives(engine, table, parts, keys, aggs, condition, kept):
    ds, table = source(table, parts, kept)
    if condition is not None:
        ds = ds.where(condition)
    named, selects = {}, []
    for i, (fn, e) in enumerate(aggs):
        if e is None and fn != "count":
            e = col("x")
        named[f"a{i}"] = getattr(data, fn)(e) if e is not None else data.count()
        inner = "*" if e is None else sql(e)
        selects.append(f"{'avg' if fn == 'mean' else fn}({inner}) AS a{i}")
    got = rows_of(ds.group_by(*keys).agg(**named))
    where = f" WHERE {sql(condition)}" if condition is not None else ""
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    want = duck(f"SELECT {', '.join([*keys, *selects])} FROM t{where}{group}", t=table)
    assert as_multiset(got) == as_multiset(want)


@random_queries
@given(left=tables, right=tables, parts=partitions, how=st.sampled_from(["inner", "left", "right", "outer"]),
       on=st.sampled_from([("k",), ("k", "s")]), way=st.sampled_from(["broadcast", "hash", "skewed"]),
       kept=sources)  # fmt: skip
def test_join_on_columns_gives_what_duckdb_gives(engine, left, right, parts, how, on, way, kept):
    """Broadcast (small tables are), hashed, and hashed with every bucket taken for skewed."""
    right = right.rename_columns(["k", "s", "x2", "y2"])
    saved = physical.BROADCAST_ROWS, physical.BROADCAST_BYTES, physical.SKEW_FACTOR, physical.SKEW_MIN_ROWS
    if way != "broadcast":
        physical.BROADCAST_ROWS = physical.BROADCAST_BYTES = -1
    if way == "skewed":
        physical.SKEW_FACTOR, physical.SKEW_MIN_ROWS = -1, 0
    try:
        left_ds, left = source(left, parts, kept)
        joined = left_ds.join(data.from_arrow(right, partitions=2), how=how, on=on)
        got = [tuple(r.get(c) for c in ("k", "s", "x", "y", "x2", "y2")) for r in joined.collect()]
    finally:
        physical.BROADCAST_ROWS, physical.BROADCAST_BYTES, physical.SKEW_FACTOR, physical.SKEW_MIN_ROWS = saved
    if kept is not None and left.num_rows == 0:
        # a side of dict rows none of which is left has no columns (docs/data.md): a right
        # or outer join gives the right side's rows with their own columns, s among them
        want = [(r["k"], r["s"], None, None, r["x2"], r["y2"]) for r in right.to_pylist()] if how in ("right", "outer") else []
        assert as_multiset(got) == as_multiset(want)
        return
    kind = {"inner": "INNER", "left": "LEFT", "right": "RIGHT", "outer": "FULL OUTER"}[how]
    keys = ", ".join(on)
    if len(on) == 1:  # the right side's s is a column of its own: not joined on
        right = right.rename_columns(["k", "s2", "x2", "y2"])
        want = duck(f"SELECT COALESCE(l.k, r.k), l.s, l.x, l.y, r.x2, r.y2 FROM l {kind} JOIN r USING ({keys})",
                    l=left, r=right)  # fmt: skip
    else:
        want = duck(f"SELECT COALESCE(l.k, r.k), COALESCE(l.s, r.s), l.x, l.y, r.x2, r.y2 FROM l {kind} JOIN r "
                    f"USING ({keys})", l=left, r=right)  # fmt: skip
    assert as_multiset(got) == as_multiset(want)


@random_queries
@given(table=tables, parts=partitions, descending=st.tuples(st.booleans(), st.booleans()),
       n=st.integers(0, 45), kept=sources)  # fmt: skip
def test_order_by_and_limit_give_what_duckdb_gives(engine, table, parts, descending, n, kept):
    ds, table = source(table, parts, kept)
    # every column in the key: equal keys are equal rows, so the order is one order
    flags = [*descending, False, False]
    got = rows_of(ds.order_by("x", "s", "k", "y", descending=flags).limit(n))
    order = ", ".join(f"{c} {'DESC' if d else 'ASC'} NULLS LAST" for c, d in zip("x s k y".split(), flags, strict=True))
    want = duck(f"SELECT * FROM t ORDER BY {order} LIMIT {n}", t=table)
    assert [tuple(map(plain, r)) for r in got] == [tuple(map(plain, r)) for r in want]


# ------------------------------------------------------------------ TPC-H
@pytest.fixture(scope="module")
def tpch(tmp_path_factory):
    return tpch_queries.generate(str(tmp_path_factory.mktemp("tpch")), 0.01)


@pytest.mark.parametrize("number", sorted(tpch_queries.QUERIES))
def test_tpch_queries_give_duckdb_answers(engine, tpch, number):
    got = rows_of(tpch_queries.QUERIES[number](tpch_queries.tables(tpch)))
    want = tpch_queries.duckdb_answer(duckdb.connect(), tpch, number)
    assert len(got) == len(want) > 0
    assert [tuple(map(plain, r)) for r in got] == [tuple(map(plain, r)) for r in want]


# ------------------------------------------------------------------ Parquet, pushdown, optimizer rules
def sorted_parquet(path, rows=1000, groups=10) -> pa.Table:
    table = pa.table({
        "x": pa.array(range(rows), pa.int64()),
        "s": pa.array([f"s{i % 7}" for i in range(rows)]),
        "y": pa.array([i * 0.5 for i in range(rows)]),
    })  # fmt: skip
    pq.write_table(table, path, row_group_size=rows // groups)
    return table


def test_a_where_and_the_columns_used_go_into_the_parquet_reader(engine, tmp_path):
    path = str(tmp_path / "t.parquet")
    table = sorted_parquet(path)
    query = data.read_parquet(path, partitions=2).where(col("x") >= 850).group_by("s").agg(total=data.sum("y"))
    plan = query.explain()
    optimized = plan.split("== optimized plan ==")[1].split("== physical plan ==")[0]
    assert "[pushed: columns=['s', 'y']; filter=(x >= 850)]" in optimized
    assert "where" not in optimized.split("[pushed")[1]  # the where step itself is gone
    assert "(partial)" in optimized  # and the aggregation has its map side
    assert as_multiset(rows_of(query)) == as_multiset(
        duck("SELECT s, sum(y) FROM t WHERE x >= 850 GROUP BY s", t=table)
    )


def test_row_groups_ruled_out_by_their_statistics_are_not_read(tmp_path):
    path = str(tmp_path / "t.parquet")
    sorted_parquet(path)
    every = tuple(range(10))
    assert columnar.row_groups_to_read(path, every, col("x") >= 850) == [8, 9]
    assert columnar.row_groups_to_read(path, every, (col("x") < 150) | (col("x") == 500)) == [0, 1, 5]
    assert columnar.row_groups_to_read(path, every, col("x").isin([5, 999])) == [0, 9]
    assert columnar.row_groups_to_read(path, every, (col("x") > 300) & (col("y") < 200.0)) == [3]
    assert columnar.row_groups_to_read(path, every, 120 > col("x")) == [0, 1]  # a literal on the left
    assert columnar.row_groups_to_read(path, every, col("x") * 2 > 1900) == list(every)  # not a plain column
    table = columnar.read_parquet(path, every, ("y",), col("x") >= 995)
    assert table.column_names == ["y"] and table.column("y").to_pylist() == [497.5, 498.0, 498.5, 499.0, 499.5]


def test_without_the_optimizer_the_answers_are_the_same(engine, tmp_path, monkeypatch):
    path = str(tmp_path / "t.parquet")
    sorted_parquet(path, rows=300, groups=6)
    ds = data.read_parquet(path)
    queries = [
        ds.where(col("x") < 100).select("s", (col("y") * 2).alias("y2")),
        ds.where(col("s") == "s3").group_by("s").agg(n=data.count(), m=data.mean("x")),
        ds.order_by("y", descending=True).limit(7),
    ]
    optimized = [as_multiset(rows_of(q)) for q in queries]
    monkeypatch.setattr(optimize, "PASSES", ())
    assert [as_multiset(rows_of(q)) for q in queries] == optimized


def test_parquet_written_is_read_back_the_same(engine, tmp_path):
    days = [datetime.date(2024, 1, i) for i in range(1, 6)]
    table = pa.table({"a": [1, 2, None, 4, 5], "b": ["x", None, "z", "w", "v"], "d": days})
    out = tmp_path / "out"
    files = data.from_arrow(table, partitions=3).write_parquet(out)
    assert [os.path.basename(f) for f in files] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert sorted(os.listdir(out)) == sorted(os.path.basename(f) for f in files)  # no temporary left
    assert data.read_parquet(out).to_arrow().equals(table)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        data.from_arrow(table).write_parquet(out)


def test_pandas_and_arrow_round_trip_and_map_batches_in_every_format(engine):
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"a": range(10), "b": [f"r{i}" for i in range(10)]})
    ds = data.from_pandas(frame, partitions=3)
    pd.testing.assert_frame_equal(ds.to_pandas(), frame)
    doubled = frame.assign(c=frame.a * 2)
    by_pandas = ds.map_batches(lambda df: df.assign(c=df.a * 2), batch_format="pandas")
    by_arrow = ds.map_batches(lambda t: t.append_column("c", pa.compute.multiply(t["a"], 2)))
    by_numpy = ds.map_batches(lambda b: {**b, "c": b["a"] * 2}, batch_format="numpy")
    for got in (by_pandas, by_arrow, by_numpy):
        pd.testing.assert_frame_equal(got.to_pandas(), doubled, check_dtype=False)
    assert np.array_equal(ds.to_arrow().column("a").to_numpy(), np.arange(10))


def test_record_and_columnar_operators_mix(engine):
    rows = [{"name": f"n{i}", "v": i} for i in range(20)]
    ds = data.from_items(rows, partitions=3)
    assert ds.where(col("v") >= 15).map(lambda r: r["name"]).collect() == ["n15", "n16", "n17", "n18", "n19"]
    assert ds.filter(lambda r: r["v"] % 2).with_column("w", col("v") * 10).select("w").count() == 10
    assert ds.group_by().agg(total=data.sum("v")).collect() == [{"total": 190}]
    table = data.from_arrow(pa.Table.from_pylist(rows), partitions=4)
    assert table.repartition(3).union(table.limit(2)).collect() == rows + rows[:2]  # order kept
    assert table.sort(key=lambda r: -r["v"]).take(2) == [rows[19], rows[18]]  # a record key gets dicts


def test_no_rows_at_all_give_no_rows_through_every_columnar_operator(engine):
    """Partitions of dict rows that are empty have no columns; every operator takes them
    (Arrow slices a table of no columns to any length asked, which once made limit(1) of
    nothing give one empty row)."""
    for ds in (data.from_items([], partitions=1), data.from_items([{"x": 1}] * 4, partitions=3).filter(lambda r: False)):
        assert ds.order_by("x").limit(1).collect() == []
        assert ds.limit(3).collect() == [] and ds.limit(3).to_arrow().num_rows == 0
        assert ds.where(col("x") > 0).select("x").with_column("y", col("x") + 1).collect() == []
        assert ds.group_by("x").agg(n=data.count()).collect() == []
        assert ds.group_by().agg(n=data.count(), total=data.sum("x")).collect() == [{"n": 0, "total": None}]
        assert ds.join(data.from_items([{"x": 1, "z": 2}]), on="x").collect() == []
        assert ds.join(data.from_items([{"x": 1, "z": 2}]), on="x", how="right").collect() == [{"x": 1, "z": 2}]


# ------------------------------------------------------------------ text
# lines of words and every kind of whitespace Python's str.split knows, blank lines,
# CRLF endings and non-ASCII letters
text_chars = st.sampled_from(list("ab é字") + [" ", "  ", "\t", "\u3000", "\x1c", "\x85", "\u2028", "\xa0"])
texts = st.lists(st.lists(text_chars, max_size=12).map("".join), max_size=30)


def _lines_of(path):
    with open(path, encoding="utf-8", newline="") as f:
        body = f.read()
    lines = body.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


@random_queries
@given(lines=texts, crlf=st.booleans(), block=st.sampled_from([None, 7, 64]))
def test_columnar_word_count_gives_what_str_split_gives(engine, tmp_path_factory, lines, crlf, block):
    directory = tmp_path_factory.mktemp("text")
    path = directory / "words.txt"
    path.write_bytes(("\r\n" if crlf else "\n").join(lines).encode() + (b"\n" if lines else b""))
    want = collections.Counter(w for line in _lines_of(path) for w in line.split())
    words = data.read_text(str(directory), block_size=block, column="line").select(col("line").split().alias("w"))
    got = {r["w"]: r["n"] for r in words.explode("w").group_by("w").agg(n=data.count()).collect()}
    assert got == dict(want)
    assert data.read_text(str(directory), block_size=block, column="line").to_arrow().column_names in (["line"], [])
    assert [r["line"] for r in data.read_text(str(directory), block_size=block, column="line").collect()] == (
        data.read_text(str(directory), block_size=block).collect()
    )


@random_queries
@given(values=st.lists(st.one_of(st.none(), st.lists(text_chars, max_size=10).map("".join)), max_size=20),
       separator=st.sampled_from([None, " ", "a", "ab", "\t"]), parts=partitions)  # fmt: skip
def test_string_methods_and_explode_give_what_python_gives(engine, values, separator, parts):
    table = pa.table({"i": list(range(len(values))), "s": pa.array(values, pa.string())})
    ds = data.from_arrow(table, partitions=parts)
    got = ds.select("i", col("s").split(separator).alias("p"), col("s").strip().alias("t"),
                    col("s").length().alias("n")).collect()  # fmt: skip
    assert got == [
        {"i": i, "p": None if v is None else v.split(separator), "t": None if v is None else v.strip(),
         "n": None if v is None else len(v)}
        for i, v in enumerate(values)
    ]  # fmt: skip
    exploded = ds.with_column("p", col("s").split(separator)).explode("p").select("i", "p", "s").collect()
    want = [{"i": i, "p": part, "s": v} for i, v in enumerate(values) if v is not None for part in v.split(separator)]
    assert as_multiset(exploded) == as_multiset(want)
    lengths = ds.select(col("s").split(separator).length().alias("n")).collect()
    assert [r["n"] for r in lengths] == [None if v is None else len(v.split(separator)) for v in values]


def test_text_read_as_a_column_keeps_its_bad_lines_apart(engine, tmp_path):
    (tmp_path / "t.txt").write_bytes(b"good words\n\xff\xfe bad\nmore words\n")
    with pytest.raises(data.BadRecordError, match="t.txt:2"):
        data.read_text(str(tmp_path), column="line").collect()
    kept = data.read_text(str(tmp_path), column="line", on_bad_records="collect")
    assert kept.collect() == [{"line": "good words"}, {"line": "more words"}]
    assert [(b.line, b.reason.startswith("not utf-8")) for b in kept.bad_records().collect()] == [(2, True)]
    with pytest.raises(TypeError, match="column name"):
        data.read_text(str(tmp_path), column=3)
    with pytest.raises(TypeError, match="not lists"):
        data.read_text(str(tmp_path), column="line", on_bad_records="skip").explode("line").collect()
    with pytest.raises(ValueError, match="separator"):
        col("line").split("")


# ------------------------------------------------------------------ bad input
def test_bad_columnar_input_gets_a_clear_error(engine):
    ds = data.from_arrow(pa.table({"x": [1, 2, 3]}))
    with pytest.raises(TypeError, match="filter"):
        ds.where(lambda r: r["x"] > 1)
    with pytest.raises(KeyError, match=r"no column 'nope'; the columns are \['x'\]") as info:
        ds.where(col("nope") > 1).collect()
    assert any("test_data_columnar.py" in n for n in info.value.__notes__)  # the user's line
    with pytest.raises(TypeError, match="& | ~"):
        bool(col("x") > 1)
    with pytest.raises(TypeError, match="not an aggregate"):
        ds.group_by("x").agg(n=len)
    with pytest.raises(ValueError, match="twice"):
        ds.select("x", col("x"))
    with pytest.raises(TypeError, match="rows that are dicts"):
        data.from_items([1, 2, 3]).where(col("x") > 1).collect()
    with pytest.raises(TypeError, match="not booleans"):
        ds.where(col("x") + 1).collect()
    with pytest.raises(ValueError, match="not both"):
        ds.join(ds, on="x", left_on="x")


# ------------------------------------------------------------------ inside @parallel
@plait.parallel
def revenue_by_group(table):
    ds = data.from_arrow(table, partitions=2)
    totals = ds.group_by("g").agg(total=data.sum("v")).order_by("g").collect()
    n = ds.where(col("v") > 2).count()
    return totals, n


def test_columnar_actions_inside_parallel_give_what_the_sequential_program_gives(engine):
    table = pa.table({"g": ["a", "b", "a", "b", "c"], "v": [1, 2, 3, 4, 5]})
    want = ([{"g": "a", "total": 4}, {"g": "b", "total": 6}, {"g": "c", "total": 5}], 3)
    assert revenue_by_group.fn(table) == want
    assert revenue_by_group(table) == want


# ------------------------------------------------------------------ CSV pushdown
CSV_FIELD = st.one_of(
    st.integers(-(2**70), 2**70).map(str),  # past int64 too
    st.floats().map(repr),
    st.integers(-99, 99).map(str),
    st.text(alphabet=list('0123456789+-.eE_x "\n\r,aé\u0663'), max_size=6),
    st.sampled_from(["1", "-20", "+3", "0x4", "1.5", "1e3", "nan", "-inf", "Infinity", " 7", "1_0", "", "é", '"q"']),
)


@st.composite
def csv_files(draw):
    """A header (names may repeat), rows that mostly fit it, written by ``csv.writer`` or as
    raw text (quotes and delimiters as they come), and what the reader is told."""
    header = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3))
    width = len(header)
    rows = draw(
        st.lists(
            st.lists(CSV_FIELD, min_size=width, max_size=width) | st.lists(CSV_FIELD, max_size=width + 1),
            max_size=12,
        )
    )
    raw = draw(st.booleans())
    types = draw(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from([int, float, str, bool]), max_size=2))
    columns = draw(st.none() | st.lists(st.sampled_from(["a", "b", "c"]), unique=True, max_size=3))
    return header, rows, raw, types, columns, draw(st.sampled_from(["raise", "skip"])), draw(st.booleans())


def _python_condition(types: dict, name: str):
    """A ``where`` on a column and the same test in Python, for the column's type."""
    if types.get(name) in (int, float):
        return col(name) > 0, lambda row: row[name] > 0
    if types.get(name) is bool:
        return col(name) == True, lambda row: row[name] is True  # noqa: E712
    return col(name) == "1", lambda row: row[name] == "1"


@random_data_many
@given(case=csv_files())
def test_a_csv_file_read_with_pushdown_gives_the_rows_the_record_reader_gives(case):
    """The Arrow path against the record reader (Python's ``csv``, each row a dict), then the
    where and the projection in Python: the same rows, or the same bad-record error."""
    import tempfile

    from plait.data.kernels import Step

    header, rows, raw, types, columns, on_bad, filtered = case
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.csv")
        with open(path, "w", newline="", encoding="utf-8") as f:
            if raw:
                f.write("\n".join(",".join(r) for r in [header, *rows]) + "\n")
            else:
                csv.writer(f).writerows([header, *rows])
        name = header[0]
        wheres = ()
        keep = lambda row: True  # noqa: E731
        try:
            expected_rows = list(kernels._read_csv(path, "utf-8", on_bad, ",", types or None))
        except kernels.BadRecordError:
            expected_rows = kernels.BadRecordError
        if filtered and expected_rows is not kernels.BadRecordError and expected_rows:
            condition, keep = _python_condition(types, name)
            wheres = (Step("where", None, condition, f"where({condition})", "test"),)
        spec = ("csv", path, "utf-8", on_bad, ",", types or None, tuple(columns) if columns is not None else None, wheres)
        if expected_rows is not kernels.BadRecordError and (wheres or columns is not None):
            try:  # the rows as a table, as the columnar operators after the reader take them
                pa.Table.from_pylist(expected_rows)
            except Exception as exc:  # noqa: BLE001 - an int past int64: unpushed, it fails so
                expected_rows = type(exc)
        if isinstance(expected_rows, type):
            with pytest.raises(expected_rows):
                _rows(kernels.read(spec))
            return
        expected = [row for row in expected_rows if keep(row)]
        if columns is not None:
            expected = [{c: row[c] for c in columns if c in row} for row in expected]
        got_rows = _rows(kernels.read(spec))
        if columns is not None and not any(c in header for c in columns):
            expected = []  # no column left: a table with no columns has no rows to list
            got_rows = []
        assert [_same_nan(r) for r in got_rows] == [_same_nan(r) for r in expected]


def _rows(read: Any) -> list:
    if not isinstance(read, pa.Table):
        return list(read)  # the record reader, unpushed
    return read.to_pylist() if read.num_columns else []


def _same_nan(row: dict) -> dict:
    return {k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


def _write_csv(path, header, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])


def test_a_where_and_the_columns_used_go_into_the_csv_reader(engine, tmp_path):
    for part in range(3):  # a file a partition
        _write_csv(tmp_path / f"t{part}.csv", ["x", "s", "y", "note"],
                   [[i, f"s{i % 7}", i * 0.5, f"row, {i}\n"] for i in range(part * 400, part * 400 + 400)])  # fmt: skip
    ds = data.read_csv(str(tmp_path / "*.csv"), types={"x": int, "y": float})
    query = ds.where(col("x") >= 850).group_by("s").agg(total=data.sum("y"), n=data.count())
    optimized = query.explain().split("== optimized plan ==")[1].split("== physical plan ==")[0]
    assert "[pushed: columns=['s', 'y']; filter=(x >= 850)]" in optimized
    assert "where" not in optimized.split("[pushed")[1]
    expected = collections.defaultdict(lambda: [0.0, 0])
    for i in range(850, 1200):
        expected[f"s{i % 7}"][0] += i * 0.5
        expected[f"s{i % 7}"][1] += 1
    assert sorted(rows_of(query)) == sorted((k, t, n) for k, (t, n) in expected.items())
    # the same rows through a python function after the where: the table's rows are dicts
    picked = ds.where((col("s") == "s3") & (col("x") < 30)).map(lambda r: (r["x"], r["note"]))
    assert sorted(picked.collect()) == [(i, f"row, {i}\n") for i in range(30) if i % 7 == 3]


def test_an_error_in_a_where_pushed_into_the_csv_reader_names_its_line(engine, tmp_path):
    _write_csv(tmp_path / "t.csv", ["x"], [[1], [2]])
    with pytest.raises(KeyError, match="no column 'nope'") as info:
        data.read_csv(str(tmp_path / "t.csv")).where(col("nope") == "1").select("x").collect()
    assert any("test_data_columnar.py" in n for n in info.value.__notes__)  # the user's line
    with pytest.raises(kernels.BadRecordError, match=r"t\.csv:3"):  # pushed or not, bad records are found
        (tmp_path / "t.csv").write_text("x,y\n1,2\n3\n")
        data.read_csv(str(tmp_path / "t.csv")).where(col("x") == "1").select("y").collect()
