"""plait.data against plain Python: every operator on random data, real files, real kills.

The tests that take the ``engine`` fixture run on inline and local here, and on Ray
and Dask in ``test_cluster_engines.py``. Random inputs come from hypothesis; the
oracle is the same computation written as plain sequential Python.
``PLAIT_DATA_EXAMPLES`` raises the number of examples for a longer hunt.
"""

from __future__ import annotations

import collections
import decimal
import fractions
import functools
import json
import operator
import os
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plait
from plait import data
from plait.data import kernels, optimize, physical

EXAMPLES = int(os.environ.get("PLAIT_DATA_EXAMPLES", "15"))
random_data = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="PLAIT_DATA_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

keys = st.one_of(
    st.integers(-5, 5),
    # 1, 1.0, True and Decimal("1.00") are one key, as in a dict, and so are the 2.5s
    st.sampled_from(["a", "b", "c", "dd", "", None, 1.0, True, 2.5, decimal.Decimal("1.00"), fractions.Fraction(5, 2)]),
    st.tuples(st.integers(0, 2), st.text("xy", max_size=2)),
)
pairs = st.lists(st.tuples(keys, st.integers(-100, 100)), max_size=40)
ints = st.lists(st.integers(-1000, 1000), max_size=60)
partitions = st.integers(1, 5)


def as_multiset(rows):
    return collections.Counter(map(repr, rows))


def plain_group(rows):
    groups: dict = {}
    for k, v in rows:
        groups.setdefault(k, []).append(v)
    return groups


# ------------------------------------------------------------------ record operators
@random_data
@given(items=ints, parts=partitions)
def test_record_operators_give_what_plain_python_gives(engine, items, parts):
    ds = (
        data.from_items(items, partitions=parts)
        .map(lambda x: x * 3)
        .filter(lambda x: x % 2 == 0)
        .flat_map(lambda x: [x, -x] if x % 4 else [x])
        .key_by(lambda x: x % 5)
        .map_partitions(lambda rows: (kv for kv in rows if kv[0] != 1))
    )
    expected = []
    for x in items:
        x *= 3
        if x % 2 == 0:
            for y in [x, -x] if x % 4 else [x]:
                if y % 5 != 1:
                    expected.append((y % 5, y))
    assert ds.collect() == expected
    assert ds.count() == len(expected)
    assert ds.take(3) == expected[:3]
    assert list(ds.iter_rows()) == expected


@random_data
@given(items=pairs, parts=partitions, out=st.one_of(st.none(), partitions))
def test_key_operators_give_what_dicts_give(engine, items, parts, out):
    ds = data.from_items(items, partitions=parts)
    groups = plain_group(items)
    reduced = ds.reduce_by_key(operator.add, partitions=out).collect()
    assert sorted(reduced, key=repr) == sorted(((k, sum(v)) for k, v in groups.items()), key=repr)
    grouped = dict(ds.group_by_key(partitions=out).collect())
    assert {k: sorted(v) for k, v in grouped.items()} == {k: sorted(v) for k, v in groups.items()}
    assert len(grouped) == len(groups)
    counts = ds.map(lambda kv: kv[0]).count_by_value(partitions=out).collect()
    assert collections.Counter(dict(counts)) == collections.Counter(k for k, _ in items)
    assert len(counts) == len(groups)
    distinct = ds.distinct(partitions=out).collect()
    assert sorted(distinct, key=repr) == sorted(set(items), key=repr)


@random_data
@given(left=pairs, right=pairs, parts=partitions, how=st.sampled_from(data.dataset.JOINS),
       way=st.sampled_from(["broadcast", "hash", "hash, every bucket cut as skewed"]))  # fmt: skip
def test_every_join_gives_what_nested_loops_give(engine, left, right, parts, how, way):
    """Inner and left joins of a small right side broadcast it, inner and right joins of a
    small left side broadcast that; outer joins, and every join when broadcasting is off,
    shuffle both sides; with every bucket taken for skewed, inner and left joins cut each
    into tasks that share the right side's bucket."""
    saved = physical.BROADCAST_ROWS, physical.SKEW_FACTOR, physical.SKEW_MIN_ROWS
    physical.BROADCAST_ROWS = saved[0] if way == "broadcast" else -1
    if way.endswith("skewed"):
        physical.SKEW_FACTOR, physical.SKEW_MIN_ROWS = -1, 0
    try:
        got = data.from_items(left, partitions=parts).join(data.from_items(right, partitions=2), how=how).collect()
    finally:
        physical.BROADCAST_ROWS, physical.SKEW_FACTOR, physical.SKEW_MIN_ROWS = saved
    expected = [(k, (v, w)) for k, v in left for k2, w in right if k == k2]
    right_keys = {k for k, _ in right}
    left_keys = {k for k, _ in left}
    if how in ("left", "outer"):
        expected += [(k, (v, None)) for k, v in left if k not in right_keys]
    if how in ("right", "outer"):
        expected += [(k, (None, w)) for k, w in right if k not in left_keys]
    assert as_multiset(got) == as_multiset(expected)


def test_equal_keys_of_different_number_types_meet_in_one_bucket(engine, monkeypatch):
    """1, 1.0, Decimal("1.00") and Fraction(1) are one dict key: a shuffle must send them to
    one bucket (they once hashed by their pickled bytes, so a hash join missed matches and
    count_by_value gave one key twice)."""
    monkeypatch.setattr(physical, "BROADCAST_ROWS", -1)  # a hash join
    ones = [1, 1.0, decimal.Decimal("1.0"), decimal.Decimal("1.00"), fractions.Fraction(2, 2), True]
    items = ones * 4 + [decimal.Decimal("2.5"), 2.5, fractions.Fraction(5, 2)]
    counted = data.from_items(items, partitions=4).count_by_value(partitions=3).collect()
    assert sorted(n for _, n in counted) == sorted(collections.Counter(items).values())
    left = [(k, i) for i, k in enumerate(items)]
    right = [(decimal.Decimal(i) / 2, -i) for i in range(8)]
    got = data.from_items(left, partitions=3).join(data.from_items(right, partitions=3)).collect()
    assert as_multiset(got) == as_multiset([(k, (v, w)) for k, v in left for k2, w in right if k == k2])


@pytest.mark.parametrize("how", ["inner", "left", "right"])
def test_a_skewed_key_of_a_hash_join_is_joined_in_several_tasks(engine, monkeypatch, how):
    monkeypatch.setattr(physical, "BROADCAST_ROWS", -1)
    monkeypatch.setattr(physical, "SKEW_MIN_ROWS", 100)
    left = [(0 if i % 3 else i, i) for i in range(1200)]  # two rows in three have key 0
    right = [(k, -k) for k in range(0, 1200, 3)] + [(0, "another")]
    ds = data.from_items(left, partitions=6).join(data.from_items(right, partitions=2), how=how, partitions=4)
    root, stages = physical.plan(optimize.optimize(ds._op))
    runner = physical.Runner()
    got = [row for part in runner.values(runner.run(root)) for row in part]
    tasks = len(runner.outputs[id(root)])
    # key 0's bucket (800 rows, the others about 130) is cut for inner and left joins only:
    # a right join would give each of the bucket's unmatched right rows once per task
    assert tasks > 4 if how != "right" else tasks == 4
    assert tasks <= 4 - 1 + physical.SKEW_SPLITS
    expected = [(k, (v, w)) for k, v in left for k2, w in right if k == k2]
    if how == "left":
        expected += [(k, (v, None)) for k, v in left if k not in {k for k, _ in right}]
    if how == "right":
        expected += [(k, (None, w)) for k, w in right if k not in {k for k, _ in left}]
    assert as_multiset(got) == as_multiset(expected)


@pytest.mark.parametrize(
    "how, sizes, way",
    [
        ("inner", (500, 3), "right broadcast"),
        ("inner", (3, 500), "left broadcast"),
        ("right", (3, 500), "left broadcast"),
        ("right", (500, 3), "hash"),  # its right side is never sent whole
        ("left", (3, 500), "hash"),  # its left side is never sent whole
        ("inner", (500, 500), "hash"),
        ("inner", (8, 3), "right broadcast"),  # both small: the smaller one
        ("inner", (3, 8), "left broadcast"),
        ("outer", (3, 3), "hash"),
    ],
)
def test_a_join_sends_the_small_side_whole_where_its_kind_allows(engine, monkeypatch, how, sizes, way):
    monkeypatch.setattr(physical, "BROADCAST_ROWS", 10)
    left = [(i % 7, i) for i in range(sizes[0])]
    right = [(i % 5, -i) for i in range(sizes[1])]
    ds = data.from_items(left, partitions=3).join(data.from_items(right, partitions=4), how=how)
    root, stages = physical.plan(optimize.optimize(ds._op))
    runner = physical.Runner()
    got = [row for part in runner.values(runner.run(root)) for row in part]
    (join,) = [s for s in stages if s.kind == "join"]
    assert (id(join.shuffle_right) in runner.outputs) == (way == "hash")  # the right side moved by key
    tasks = len(runner.outputs[id(root)])
    assert tasks == {"right broadcast": 3, "left broadcast": 4, "hash": join.partitions}[way]
    expected = [(k, (v, w)) for k, v in left for k2, w in right if k == k2]
    if how in ("left", "outer"):
        expected += [(k, (v, None)) for k, v in left if k not in {k for k, _ in right}]
    if how in ("right", "outer"):
        expected += [(k, (None, w)) for k, w in right if k not in {k for k, _ in left}]
    assert as_multiset(got) == as_multiset(expected)


@random_data
@given(items=st.lists(st.tuples(st.integers(0, 6), st.integers()), max_size=60), parts=partitions, reverse=st.booleans())
def test_sort_is_sorted_and_stable_in_both_directions(engine, items, parts, reverse):
    ds = data.from_items(items, partitions=parts)
    assert ds.sort(key=lambda r: r[0], reverse=reverse).collect() == sorted(items, key=lambda r: r[0], reverse=reverse)
    assert ds.sort(reverse=reverse).collect() == sorted(items, reverse=reverse)


@random_data
@given(items=ints, parts=partitions, n=st.integers(1, 8))
def test_actions_give_what_plain_python_gives(engine, items, parts, n):
    ds = data.from_items(items, partitions=parts)
    assert ds.top(n).collect() == sorted(items, reverse=True)[:n]
    assert ds.top(n, key=lambda x: abs(x)).collect() == sorted(items, key=abs, reverse=True)[:n]
    assert ds.take(n) == items[:n]
    assert ds.count() == len(items)
    assert ds.sum() == sum(items)
    assert ds.aggregate([], lambda acc, x: acc + [x], operator.add) == items
    assert ds.aggregate((0, 0), lambda a, x: (a[0] + x, a[1] + 1), lambda a, b: (a[0] + b[0], a[1] + b[1])) == (
        sum(items),
        len(items),
    )
    if items:
        assert ds.reduce(max) == max(items)
        assert ds.reduce(operator.add) == functools.reduce(operator.add, items)
    else:
        with pytest.raises(TypeError, match="empty dataset"):
            ds.reduce(max)


@random_data
@given(items=ints, parts=partitions, out=partitions, more=ints)
def test_repartition_keeps_the_order_and_union_concatenates(engine, items, parts, out, more):
    ds = data.from_items(items, partitions=parts).repartition(out)
    assert ds.num_partitions == out
    assert ds.collect() == items
    both = ds.union(data.from_items(more, partitions=2), data.range(3))
    assert both.collect() == items + more + [0, 1, 2]
    assert both.map(lambda x: x + 1).count_by_value().count() == len(set(x + 1 for x in items + more + [0, 1, 2]))


@random_data
@given(items=ints, parts=partitions, fraction=st.floats(0, 1), seed=st.integers(0, 10))
def test_a_sample_is_a_subsequence_and_the_same_for_one_seed(engine, items, parts, fraction, seed):
    ds = data.from_items(items, partitions=parts)
    got = ds.sample(fraction, seed=seed).collect()
    assert got == ds.sample(fraction, seed=seed).collect()
    rest = iter(items)
    assert all(any(x == y for y in rest) for x in got)  # in order, each from items
    if fraction == 1:
        assert got == items
    if fraction == 0:
        assert got == []


def test_range_matches_the_builtin(engine):
    assert data.range(10, 50, 3, partitions=4).collect() == list(range(10, 50, 3))
    assert data.range(0).collect() == []
    assert data.range(7).num_partitions <= 7


def test_a_cached_dataset_is_computed_once(engine, tmp_path):
    log = tmp_path / "calls"

    def traced(x):
        with open(log, "a") as f:
            f.write(f"{x}\n")
        return x * 2

    ds = data.range(20, partitions=4).map(traced).cache()
    assert ds.sum() == 2 * sum(range(20))
    assert ds.filter(lambda x: x % 3 == 0).collect() == [x * 2 for x in range(20) if x * 2 % 3 == 0]
    assert ds.count() == 20
    assert sorted(int(x) for x in log.read_text().split()) == list(range(20))


# ------------------------------------------------------------------ files
text_lines = st.lists(st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]), max_size=12), max_size=30)


@random_data
@given(lines=text_lines, files=st.integers(1, 3), block=st.integers(1, 40), trailing=st.booleans())
def test_read_text_gives_every_line_once_at_any_block_size(engine, tmp_path_factory, lines, files, block, trailing):
    root = tmp_path_factory.mktemp("text")
    expected = []
    for f in range(files):
        mine = lines[f::files]
        body = "\n".join(mine) + ("\n" if trailing and mine else "")
        (root / f"part{f}.txt").write_text(body, encoding="utf-8")
        in_file = body.split("\n")
        expected += in_file[:-1] if in_file[-1] == "" else in_file  # "a\n" and "" end with no line
    ds = data.read_text(root, block_size=block)
    assert ds.collect() == expected
    assert data.read_text(str(root / "part*.txt")).collect() == expected


def test_read_text_takes_crlf_files_and_lists_of_paths(engine, tmp_path):
    (tmp_path / "a.txt").write_bytes(b"one\r\ntwo\r\n\r\nthree")
    (tmp_path / "b.txt").write_text("four\n")
    (tmp_path / ".hidden").write_text("never\n")
    assert data.read_text([tmp_path / "a.txt", tmp_path / "b.txt"], block_size=3).collect() == [
        "one", "two", "", "three", "four",
    ]  # fmt: skip
    assert data.read_text(tmp_path).collect() == ["one", "two", "", "three", "four"]


def test_word_count_over_files(engine, tmp_path):
    words = ["alpha", "beta", "gamma", "beta", "alpha", "alpha"]
    for i in range(3):
        (tmp_path / f"{i}.txt").write_text("\n".join(" ".join(words[j:] ) for j in range(i, 6)))
    expected = collections.Counter()
    for i in range(3):
        for line in (tmp_path / f"{i}.txt").read_text().splitlines():
            expected.update(line.split())
    counts = data.read_text(tmp_path / "*.txt").flat_map(str.split).count_by_value()
    assert dict(counts.collect()) == expected
    assert counts.top(2, key=lambda kv: kv[1]).collect() == sorted(expected.items(), key=lambda kv: kv[1], reverse=True)[:2]


def test_json_lines_round_trip_and_bad_lines_are_named(engine, tmp_path):
    rows = [{"id": i, "name": f"n{i}", "tags": ["x"] * (i % 3)} for i in range(50)]
    out = tmp_path / "out"
    paths = data.from_items(rows, partitions=4).write_json(out)
    assert len(paths) == 4 and all(os.path.basename(p).startswith("part-") for p in paths)
    assert sorted(os.listdir(out)) == sorted(os.path.basename(p) for p in paths)  # no temporary left
    assert data.read_json(out, block_size=100).collect() == rows

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n\n{"a": 2}\n{"a": \n{"a": 3}\n')
    with pytest.raises(data.BadRecordError, match=r"bad\.jsonl:4: not JSON .*the record: '\{\"a\": '"):
        data.read_json(bad).collect()
    assert data.read_json(bad, on_bad_records="skip", block_size=7).collect() == [{"a": 1}, {"a": 2}, {"a": 3}]
    kept = data.read_json(bad, on_bad_records="collect", block_size=7)
    assert kept.map(lambda r: r["a"]).sum() == 6
    (found,) = kept.map(lambda r: r["a"]).bad_records().collect()
    assert (found.path, found.line, found.record) == (str(bad), 4, '{"a": ') and found.reason.startswith("not JSON")
    with pytest.raises(ValueError, match="none of this dataset's readers was given on_bad_records='collect'"):
        data.read_json(bad, on_bad_records="skip").bad_records()


def test_bad_records_of_every_reader_are_collected_with_their_lines(engine, tmp_path):
    latin = tmp_path / "mixed.txt"
    latin.write_bytes(b"ok\ncaf\xe9\nfine\r\n\xff\xfe\n")
    with pytest.raises(data.BadRecordError, match=r"mixed\.txt:2: not utf-8 \(invalid continuation byte\)"):
        data.read_text(latin).collect()
    ds = data.read_text(latin, on_bad_records="collect", block_size=4)
    assert ds.collect() == ["ok", "fine"]
    assert [(b.line, b.reason.split(" (")[0]) for b in ds.bad_records().collect()] == [(2, "not utf-8"), (4, "not utf-8")]
    assert data.read_text(latin, encoding="latin-1").collect() == ["ok", "café", "fine", "ÿþ"]

    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n3\n4,x\n5,6\n")
    rows = data.read_csv(table, types={"b": int}, on_bad_records="collect")
    assert rows.collect() == [{"a": "1", "b": 2}, {"a": "5", "b": 6}]
    assert [(b.line, b.record) for b in rows.bad_records().collect()] == [(3, ["3"]), (4, ["4", "x"])]
    lines = tmp_path / "more.jsonl"
    lines.write_text('{"a": "7", "b": 8}\nnope\n')
    both = rows.union(data.read_json(lines, on_bad_records="collect"))
    assert both.map(lambda r: r["b"]).collect() == [2, 6, 8]
    assert [(os.path.basename(b.path), b.line) for b in both.bad_records().collect()] == [
        ("t.csv", 3), ("t.csv", 4), ("more.jsonl", 2),
    ]  # fmt: skip


def test_csv_with_types_and_bad_records(engine, tmp_path):
    rows = [{"k": str(i % 3), "qty": str(i), "note": 'has "quotes", a comma\nand a line break'} for i in range(12)]
    out = tmp_path / "csv"
    data.from_items(rows, partitions=3).write_csv(out)
    back = data.read_csv(out)
    assert back.collect() == rows
    typed = data.read_csv(out, types={"qty": int})
    totals = typed.map(lambda r: (r["k"], r["qty"])).reduce_by_key(operator.add).collect()
    assert sorted(totals) == [("0", 18), ("1", 22), ("2", 26)]

    short = tmp_path / "short.csv"
    short.write_text("a,b\n1,2\n3\n5,6\n")
    with pytest.raises(data.BadRecordError, match=r"short\.csv:3: 1 fields where the header has 2"):
        data.read_csv(short).collect()
    assert data.read_csv(short, on_bad_records="skip").collect() == [{"a": "1", "b": "2"}, {"a": "5", "b": "6"}]
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n4,x\n5,6\n")
    with pytest.raises(data.BadRecordError, match=r"wrong\.csv:3: column 'b': ValueError"):
        data.read_csv(wrong, types={"b": int}).collect()
    assert data.read_csv(wrong, types={"b": int}, on_bad_records="skip").collect() == [
        {"a": "1", "b": 2}, {"a": "5", "b": 6},
    ]  # fmt: skip


def test_a_sink_refuses_a_used_directory_unless_told_and_leaves_no_partial_file(engine, tmp_path):
    out = tmp_path / "t"
    data.range(10, partitions=2).write_text(out)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        data.range(5).write_text(out)
    data.range(5, partitions=1).write_text(out, overwrite=True)
    assert os.listdir(out) == ["part-00000.txt"]
    assert data.read_text(out).map(int).collect() == list(range(5))

    def fails_late(x):
        if x == 7:
            raise ValueError("no seven")
        return x

    with pytest.raises(ValueError, match="no seven"):
        data.range(10, partitions=2).map(fails_late).write_text(tmp_path / "f")
    assert not [n for n in os.listdir(tmp_path / "f") if n.endswith(".tmp")]
    assert "part-00001.txt" not in os.listdir(tmp_path / "f")


# ------------------------------------------------------------------ errors
def test_an_error_in_a_user_function_names_the_operator_line_partition_and_record(engine):
    def parse(x):
        return int(x)

    ds = data.from_items(["1", "2", "x3", "4"], partitions=2).map(parse)
    line = ds._op.steps[0].where
    with pytest.raises(ValueError, match="invalid literal") as info:
        ds.collect()
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert f"map(test_an_error_in_a_user_function_names_the_operator_line_partition_and_record.<locals>.parse) (at {line})" in notes
    assert "partition 1, on the record 'x3'" in notes

    with pytest.raises(TypeError, match=r"needs \(key, value\) pairs, got 5: make pairs first with key_by"):
        data.from_items([5, 6]).reduce_by_key(operator.add).collect()


def test_bad_arguments_are_refused_where_they_are_given(tmp_path):
    ds = data.range(3)
    with pytest.raises(TypeError, match="takes a function"):
        ds.map(3)
    with pytest.raises(ValueError, match="partitions=0 must be a positive int"):
        ds.reduce_by_key(operator.add, partitions=0)
    with pytest.raises(ValueError, match="how='cross'; it is one of inner, left, right, outer"):
        ds.join(ds, how="cross")
    with pytest.raises(ValueError, match="partitions=-1"):
        data.from_items([1], partitions=-1)
    with pytest.raises(ValueError, match="on_bad_records='ignore'; it is one of raise, skip, collect"):
        data.read_text(tmp_path, on_bad_records="ignore")
    with pytest.raises(FileNotFoundError, match="no file matches"):
        data.read_text(str(tmp_path / "*.nothing"))
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        data.read_json(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="fraction=2"):
        ds.sample(2)
    with pytest.raises(TypeError, match="use collect"):
        list(ds)


def test_a_dataset_copies_as_itself_and_is_refused_as_a_task_argument_with_what_to_do(engine):
    import copy

    ds = data.range(3)
    assert copy.copy(ds) is ds and copy.deepcopy([ds])[0] is ds  # immutable (check=True copies arguments)

    @plait.task
    def size(rows):
        return len(rows)

    with pytest.raises(Exception, match="cannot be passed to a task: run an action"):
        plait.get(size(data.range(3)))


# ------------------------------------------------------------------ the optimizer
def _plans(ds):
    logical, rest = ds.explain().split("== optimized plan ==")
    optimized, physical = rest.split("== physical plan ==")
    return logical, optimized, [line for line in physical.splitlines() if line.startswith("stage")]


def test_explain_shows_each_rewrite_of_the_optimizer():
    logical, optimized, stages = _plans(data.range(100, partitions=4).map(str).filter(bool).count_by_value())
    assert f"[{os.path.basename(__file__)}:" in logical
    assert "(map side:" not in logical and "pair with 1" in logical
    # fused, pipelined into the exchange's map side, counted by a Counter
    assert "(map side: map(str) -> filter(bool) -> count with Counter)" in optimized
    assert len(stages) == 2
    assert "read range(0, 100, 1) -> map(str) -> filter(bool) -> count with Counter -> split into 4 (by key hash)" in stages[0]
    assert "concatenate the buckets sent here -> count_by_value <- stage 1" in stages[1]

    _, optimized, stages = _plans(data.from_items(["a b"]).flat_map(str.split).count_by_value())
    assert "(map side: flat_map(str.split) counted)" in optimized
    _, optimized, _ = _plans(data.from_items([(1, 2)]).map(tuple).reduce_by_key(max))
    assert "(map side: map(tuple) -> reduce_by_key(max) (partial))" in optimized
    _, _, stages = _plans(data.from_items([(1, 2)]).join(data.from_items([(1, 3)])))
    assert "it sends the smaller side whole to every task of the other if that side has at most 20,000 rows" in stages[-1]
    _, optimized, _ = _plans(data.from_items([1]).map(abs).map(str).filter(bool))
    assert optimized.strip().startswith("map(abs) [") and "-> map(str) [" in optimized and "-> filter(bool) [" in optimized


def _queries():
    words = data.from_items(["a b", "b c", "c c", "d"] * 5, partitions=3).flat_map(str.split)
    pairs = words.key_by(len).map(lambda kv: (kv[1], kv[0]))
    return (
        words.count_by_value().top(2, key=lambda kv: (kv[1], kv[0])).collect(),
        words.distinct().sort().collect(),
        words.map(len).sum(),
        sorted(pairs.reduce_by_key(operator.add).collect()),
        sorted(words.map(lambda w: (w, 1)).reduce_by_key(operator.add).collect()),
    )


@pytest.mark.parametrize("left_out", [p.__name__ for p in optimize.PASSES] + ["all"])
def test_results_are_the_same_with_an_optimizer_pass_left_out(engine, monkeypatch, left_out):
    expected = ([("c", 15), ("b", 10)], ["a", "b", "c", "d"], 35, [("a", 5), ("b", 10), ("c", 15), ("d", 5)], [("a", 5), ("b", 10), ("c", 15), ("d", 5)])
    kept = tuple(p for p in optimize.PASSES if left_out not in (p.__name__, "all"))
    monkeypatch.setattr(optimize, "PASSES", kept)
    assert _queries() == expected


def test_stable_hash_is_the_same_in_another_process():
    keys = ["word", ("a", 1), 17, -3.5, None, b"raw", frozenset({"x", "y"}), True]
    here = [kernels.stable_hash(k) for k in keys]
    code = f"from plait.data import kernels; print([kernels.stable_hash(k) for k in {keys!r}])"
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True, check=True
        )
        assert json.loads(out.stdout) == here
    assert kernels.stable_hash(1) == kernels.stable_hash(1.0) == kernels.stable_hash(True)


# ------------------------------------------------------------------ faults
def _die_once(marker: str):
    def step(x):
        if not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return x

    return step


def test_a_worker_killed_mid_shuffle_leaves_the_answer_exact(local, tmp_path):
    """A real SIGKILL of the worker running a map-side task, then of one running a reduce:
    the tasks run again and the word count is exact."""
    words = [f"w{i % 37}" for i in range(5000)]
    expected = collections.Counter(words)
    map_side = _die_once(str(tmp_path / "map-died"))
    reduce_side = _die_once(str(tmp_path / "reduce-died"))
    counts = (
        data.from_items(words, partitions=6)
        .map(map_side)
        .count_by_value(partitions=4)
        .map(reduce_side)
    )
    assert dict(counts.collect()) == expected
    assert (tmp_path / "map-died").exists() and (tmp_path / "reduce-died").exists()


# ------------------------------------------------------------------ inside @parallel
@plait.task
def span_of(delay):
    start = time.time()
    time.sleep(delay)
    return start, time.time()


def slow_span(_):
    start = time.time()
    time.sleep(0.5)
    return start, time.time()


@plait.parallel
def query_between_tasks(n):
    before = span_of(0.5)
    rows = data.range(n, partitions=n).map(slow_span).collect()  # a future: the program goes on
    after = span_of(0.5)
    return [before, *rows, after]


def test_an_action_inside_parallel_returns_a_future_and_runs_beside_the_tasks_around_it():
    with plait.init(engine="local", workers=4):
        plait.get([span_of(0) for _ in range(4)])
        spans = query_between_tasks(2)
    assert len(spans) == 4
    assert max(s for s, _ in spans) < min(e for _, e in spans), spans  # all four ran at once


@plait.parallel
def counted_words(lines):
    words = data.from_items(lines, partitions=2).flat_map(str.split)
    counts = words.count_by_value().collect()
    total = words.count()
    try:
        words.map(int).sum()
        parsed = "all numbers"
    except ValueError as exc:
        parsed = str(exc)
    return sorted(counts), total, parsed


def parse_late(word):
    if word == "b":
        time.sleep(0.5)  # the first partition's failure comes last in time
    return int(word)


@plait.parallel
def first_failure_of_an_action(lines):
    try:
        data.from_items(lines, partitions=3).map(parse_late).sum()
    except ValueError as exc:
        return str(exc)
    return "all numbers"


def test_an_action_inside_parallel_raises_the_failure_of_its_first_partition_not_the_first_in_time(engine):
    lines = ["b", "c", "d"]
    want = "invalid literal for int() with base 10: 'b'"
    assert first_failure_of_an_action.fn(lines) == want
    assert first_failure_of_an_action(lines) == want


def test_actions_inside_parallel_give_what_the_sequential_program_gives(engine):
    from tests.outcomes import outcome, sequential_outcome

    lines = ["b a", "c 1", "a a"]
    got = outcome(counted_words, lines)
    assert got == sequential_outcome(counted_words.fn, lines)
    expected = ([("1", 1), ("a", 3), ("b", 1), ("c", 1)], 6, "invalid literal for int() with base 10: 'b'")
    assert got[0] == ("returned", expected)


# ------------------------------------------------------------------ memory
_STREAMING_RUN = r"""
import collections, json, os, sys
import plait
from plait import data

def peak(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM"))

root, out, store = sys.argv[1], sys.argv[2], int(sys.argv[3])
with plait.init(engine="local", workers=2, object_store_memory=store) as session:
    engine = session.engine
    pids = engine.worker_pids()
    ds = data.read_text(root, block_size=256 << 10)
    ds.map(str.upper).filter(bool).take(1)  # every worker has imported what the runs need
    data.range(8, partitions=8).map(abs).count_by_value().collect()
    base = {pid: peak(pid) for pid in pids}
    driver = peak(os.getpid())
    lines = chars = 0
    for n in ds.map(len).iter_rows():  # read in the driver, a partition at a time
        lines += 1
        chars += n
    written = ds.map(str.upper).write_text(out)
    heads = dict(ds.map(lambda line: line[:3]).count_by_value().collect())
    bounded = engine.stats()["spills"]
    driver_growth = peak(os.getpid()) - driver
    everything = sum(1 for _ in ds.iter_rows(ahead=100_000))  # no back-pressure: the store overflows
    report = {
        "lines": lines, "chars": chars, "heads": heads, "files": len(written), "everything": everything,
        "spills_bounded": bounded, "spills_unbounded": engine.stats()["spills"] - bounded,
        "worker_growth": max(peak(pid) - base[pid] for pid in pids), "driver_growth": driver_growth,
        "same_workers": engine.worker_pids() == pids,
    }
print(json.dumps(report))
"""


def test_a_dataset_five_times_the_store_streams_through_in_bounded_memory(tmp_path):
    """40 MB of text through an 8 MB store: read in the driver with back-pressure, written
    out, counted; the store never spills and no worker grows by more than a few blocks."""
    store = 8 << 20
    root = tmp_path / "in"
    root.mkdir()
    expected_lines = expected_chars = 0
    heads: collections.Counter = collections.Counter()
    for f in range(4):
        lines = [f"{(f * 7 + i) % 50:03d} " + "x" * (60 + i % 40) for i in range(130_000)]
        (root / f"{f}.txt").write_text("\n".join(lines) + "\n")
        expected_lines += len(lines)
        expected_chars += sum(map(len, lines))
        heads.update(line[:3] for line in lines)
    total = sum(p.stat().st_size for p in root.iterdir())
    assert total > 5 * store
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-c", _STREAMING_RUN, str(root), str(out), str(store)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.splitlines()[-1])
    assert (report["lines"], report["chars"], report["heads"]) == (expected_lines, expected_chars, dict(heads))
    assert report["everything"] == expected_lines and report["same_workers"]
    written = sorted(out.iterdir())
    assert len(written) == report["files"] == sum(-(-p.stat().st_size // (256 << 10)) for p in root.iterdir())
    assert sum(1 for p in written for _ in p.open()) == expected_lines
    assert report["spills_bounded"] == 0  # never more in the store than its memory
    assert report["spills_unbounded"] > 0  # what the same read does without back-pressure
    assert report["worker_growth"] < total / 4, report
    assert report["driver_growth"] < total / 4, report


def test_an_action_draws_a_progress_bar_over_its_tasks_when_asked(capsys):
    with plait.init(engine="local", workers=2):
        ds = data.range(40, partitions=4).map(abs).count_by_value(partitions=2)
        assert ds.count(progress=True) == 40
        drawn = capsys.readouterr().err
        assert "plait data, 2 stage(s): [" in drawn and "6/6 tasks" in drawn  # 4 map-side, 2 reduce-side
        assert drawn.rstrip().endswith("rows/s") and "  40 rows read  " in drawn.splitlines()[-1].split("\r")[-1]
        assert ds.count() == 40
        assert capsys.readouterr().err == ""


def test_to_graph_gives_the_stages_as_a_graph_that_runs_to_the_same_partitions(engine):
    pairs_ = data.from_items([(i % 4, i) for i in range(30)], partitions=3)
    queries = [
        pairs_.reduce_by_key(operator.add, partitions=2),
        data.range(20, partitions=3).map(lambda x: (x * 7) % 11).sort().repartition(2),
        pairs_.join(data.from_items([(1, "a"), (2, "b")]), how="left"),
        pairs_.union(data.range(2).key_by(abs)).group_by_key(),
    ]
    for ds in queries:
        graph = ds.to_graph()
        assert [n.op for n in graph.nodes].count("task") >= ds.num_partitions
        partitions = plait.run(graph)
        assert len(partitions) == ds.num_partitions
        assert as_multiset(row for part in partitions for row in part) == as_multiset(ds.collect())
    assert "digraph" in queries[0].to_graph().to_dot()


@plait.task
def refuses(x):
    raise ValueError(f"refused {x}")


@plait.parallel
def fails_then_writes(out):
    first = refuses(1)
    data.range(3).write_text(out)  # sequentially never reached
    return first


def test_a_sink_inside_parallel_does_not_write_after_an_earlier_call_failed(engine, tmp_path):
    from tests.outcomes import outcome, sequential_outcome

    out = tmp_path / "never"
    got = outcome(fails_then_writes, str(out))
    assert got[0] == ("raised", "ValueError", "refused 1")
    assert not out.exists()
    assert got == sequential_outcome(fails_then_writes.fn, str(out))

