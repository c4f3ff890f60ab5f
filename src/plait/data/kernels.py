"""What one data task runs: make its rows, pass them through its fused steps, then split them
for the next stage or return them.

Every partition of every stage is one call of ``run_partition``; the ``Task`` it gets says
how to make its rows, so one task function serves every stage and a worker needs
nothing but this module (and the user's functions, pickled with the plan).
"""

from __future__ import annotations

import bisect
import collections
import copy
import csv
import functools
import heapq
import json
import os
import random
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any, NamedTuple

from plait.runtime.hashing import stable_hash
from plait.runtime.options import task_options
from plait.runtime.task import TaskFunction

BAD_RECORD_CHOICES = ("raise", "skip", "collect")


@dataclass(frozen=True, eq=False)
class Step:
    """One record operator as a task applies it; ``where`` is the user's line that asked for it."""

    kind: str
    fn: Any = None
    arg: Any = None
    label: str = ""
    where: str = ""


@dataclass(frozen=True)
class Task:
    """One partition of one stage: where its rows come from, its steps, how its output leaves.

    ``make`` is ``("read", spec)``, ``("rows",)`` (the one input is a partition),
    ``("concat",)`` (the inputs are buckets, concatenated in order) or
    ``("join", how, left_count, on)`` (``on``: the columns of a join of tables). ``split`` is None (return the rows as a list) or
    ``(kind, count, ...)``: return ``count`` buckets.
    """

    index: int
    make: tuple
    steps: tuple[Step, ...]
    split: tuple | None = None
    capture: bool = False  # a failure is returned as a value (Failed), not raised
    stage: int = 0
    sized: bool = False  # one more output, last: [(rows, bytes)] of each bucket it made (a join's choice)


class Failed:
    """A data task's failure, returned as its output (``Task.capture``): the tasks after it
    pass on the first one they get, and an action raises the one a sequential run meets
    first, the earliest stage's and the lowest partition's, whichever a scheduler
    happens to report first (an engine fails a task with the first failed input it sees)."""

    __slots__ = ("stage", "index", "error")

    def __init__(self, stage: int, index: int, error: bytes) -> None:
        self.stage, self.index, self.error = stage, index, error

    def __reduce__(self) -> Any:
        return (Failed, (self.stage, self.index, self.error))

    def exception(self) -> BaseException:
        from plait.runtime.serialization import loads_exception

        return loads_exception(self.error)


def first_failure(values: Iterable) -> Failed | None:
    """The failure among ``values`` that comes first in the sequential order."""
    found = [v for v in values if type(v) is Failed]
    return min(found, key=lambda f: (f.stage, f.index)) if found else None


def run_partition(task: Task, *inputs: Any) -> Any:
    if not task.capture:
        return _run_partition(task, inputs)
    failed = first_failure(inputs)
    if failed is None:
        try:
            return _run_partition(task, inputs)
        except Exception as exc:
            from plait.runtime.invoke import format_remote
            from plait.runtime.serialization import dumps_exception

            name = f"data:stage{task.stage}"
            failed = Failed(task.stage, task.index, dumps_exception(exc, name, format_remote(exc, name)))
    count = (task.split[1] if task.split is not None else 1) + task.sized
    return failed if count == 1 else (failed,) * count


def _run_partition(task: Task, inputs: tuple) -> Any:
    rows = _make(task, inputs)
    index = task.index
    for step in task.steps:
        kind = step.kind
        if kind in COLUMNAR:
            if not is_table(rows):
                rows = _columnar().to_table(rows, _noter(step, index))
        elif kind not in EITHER:
            rows = as_records(rows)  # a record operator gets dicts
        rows = STEPS[kind](step, rows, index)
    if task.split is None:
        rows = rows if type(rows) is list or is_table(rows) else list(rows)
        return (rows, [size_of(rows)]) if task.sized else rows
    buckets = split(rows, task.split, index)
    if task.sized:
        buckets.append([size_of(b) for b in buckets])
    return buckets[0] if len(buckets) == 1 else tuple(buckets)


def is_table(rows: Any) -> bool:
    return type(rows).__name__ == "Table" and type(rows).__module__.startswith("pyarrow")


def as_records(rows: Any) -> Any:
    """A partition as records: a table's rows as dicts, record rows as they are."""
    return rows.to_pylist() if is_table(rows) else rows


def _columnar() -> Any:
    """The columnar kernels (they import pyarrow, which record queries never need)."""
    from plait.data import columnar

    return columnar


def _noter(step: Step, index: int) -> Callable[[BaseException, Any], None]:
    def note(exc: BaseException, row: Any) -> None:
        _note(exc, step, index, row, has_row=row is not None)

    return note


partition_task = TaskFunction(run_partition, task_options("data", name="data"))


def _make(task: Task, inputs: tuple) -> Iterable:
    kind = task.make[0]
    if kind == "read":
        return read(task.make[1], task.index)
    if kind == "rows":
        return inputs[0]
    if kind == "concat":
        if len(inputs) == 1:
            return inputs[0]
        if any(map(is_table, inputs)):
            return _columnar().concat(list(inputs))
        return chain.from_iterable(inputs)
    if kind == "join":
        _, how, left, on = task.make
        if on is not None:  # on columns: tables
            c = _columnar()
            return c.join(how, c.concat(list(inputs[:left])), c.concat(list(inputs[left:])), on)
        return _join(how, chain.from_iterable(inputs[:left]), chain.from_iterable(inputs[left:]))
    raise AssertionError(f"unknown partition source {kind!r}")


# ------------------------------------------------------------------ errors
def _note(exc: BaseException, step: Step, index: int, row: Any = None, has_row: bool = True) -> None:
    """Say which operator, line, partition and record an exception came from (once)."""
    where = f" (at {step.where})" if step.where else ""
    record = f", on the record {_short(row)}" if has_row else ""
    note = f"raised in {step.label or step.kind}{where}, partition {index}{record}"
    if note not in getattr(exc, "__notes__", ()):
        exc.add_note(note)


def _short(value: Any, limit: int = 200) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a record whose repr fails is still named
        text = f"<{type(value).__name__} with a failing repr>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pair(row: Any, step: Step, index: int) -> tuple[Any, Any]:
    if type(row) is tuple and len(row) == 2:
        return row
    if isinstance(row, (tuple, list)) and len(row) == 2:
        return row[0], row[1]
    exc = TypeError(
        f"{step.label or step.kind} needs (key, value) pairs, got {_short(row)}: "
        "make pairs first with key_by(fn) or map(lambda r: (key, value))"
    )
    _note(exc, step, index, row)
    raise exc


# ------------------------------------------------------------------ steps
def _map(step: Step, rows: Iterable, index: int) -> Iterator:
    fn = step.fn
    for row in rows:
        try:
            out = fn(row)
        except Exception as exc:
            _note(exc, step, index, row)
            raise
        yield out


def _flat_map(step: Step, rows: Iterable, index: int) -> Iterator:
    fn = step.fn
    for row in rows:
        try:
            yield from fn(row)
        except Exception as exc:
            _note(exc, step, index, row)
            raise


def _filter(step: Step, rows: Iterable, index: int) -> Iterator:
    fn = step.fn
    for row in rows:
        try:
            keep = fn(row)
        except Exception as exc:
            _note(exc, step, index, row)
            raise
        if keep:
            yield row


def _key_by(step: Step, rows: Iterable, index: int) -> Iterator:
    fn = step.fn
    for row in rows:
        try:
            key = fn(row)
        except Exception as exc:
            _note(exc, step, index, row)
            raise
        yield (key, row)


def _map_partitions(step: Step, rows: Iterable, index: int) -> Iterator:
    try:
        yield from step.fn(iter(rows))
    except Exception as exc:
        _note(exc, step, index, has_row=False)
        raise


_MISSING = object()


def _combine(step: Step, rows: Iterable, index: int) -> Iterator:
    fn = step.fn
    acc: dict = {}
    get = acc.get
    for row in rows:
        if type(row) is tuple and len(row) == 2:
            key, value = row
        else:
            key, value = _pair(row, step, index)
        old = get(key, _MISSING)
        if old is _MISSING:
            acc[key] = value
            continue
        try:
            acc[key] = fn(old, value)
        except Exception as exc:
            _note(exc, step, index, (key, value))
            raise
    return iter(acc.items())


def _ones(step: Step, rows: Iterable, index: int) -> Iterator:
    return ((row, 1) for row in rows)


def _count_values(step: Step, rows: Iterable, index: int) -> Iterator:
    """``(row, count)`` for each distinct row of the partition, counted by ``Counter`` (in C)."""
    try:
        return iter(collections.Counter(rows).items())
    except TypeError as exc:
        _note(exc, step, index, has_row=False)
        raise


def _flat_map_count(step: Step, rows: Iterable, index: int) -> Iterator:
    """``flat_map(fn)`` then ``count_values`` without a Python step per produced row."""
    fn = step.fn
    last: list = [None]

    def tracked() -> Iterator:
        for row in rows:
            last[0] = row
            yield row

    counts: collections.Counter = collections.Counter()
    try:
        counts.update(chain.from_iterable(map(fn, tracked())))
    except Exception as exc:
        _note(exc, step, index, last[0])
        raise
    return iter(counts.items())


def _group(step: Step, rows: Iterable, index: int) -> Iterator:
    groups: dict = {}
    for row in rows:
        key, value = _pair(row, step, index)
        group = groups.get(key)
        if group is None:
            groups[key] = [value]
        else:
            group.append(value)
    return iter(groups.items())


def _distinct(step: Step, rows: Iterable, index: int) -> Iterator:
    seen: dict = {}
    for row in rows:
        try:
            seen.setdefault(row, None)
        except TypeError as exc:
            _note(exc, step, index, row)
            raise
    return iter(seen)


def _top(step: Step, rows: Iterable, index: int) -> list:
    n, key = step.arg
    return heapq.nlargest(n, rows, key=key)


def _sort(step: Step, rows: Iterable, index: int) -> list:
    key, reverse = step.arg
    try:
        return sorted(rows, key=key, reverse=reverse)
    except Exception as exc:
        _note(exc, step, index, has_row=False)
        raise


def _head(step: Step, rows: Iterable, index: int) -> Iterable:
    if is_table(rows):  # bounded: Arrow slices a table of no columns to any length asked
        return rows.slice(0, min(step.arg, len(rows)))  # type: ignore[attr-defined, arg-type]
    return islice(rows, step.arg)


def _sample(step: Step, rows: Iterable, index: int) -> Iterator:
    fraction, seed = step.arg
    rng = random.Random(f"{seed}:{index}")  # a str seed is hashed the same in every process
    return (row for row in rows if rng.random() < fraction)


def _count(step: Step, rows: Iterable, index: int) -> list:
    if type(rows) is list or is_table(rows):
        return [len(rows)]  # type: ignore[arg-type]
    return [sum(1 for _ in rows)]


def _size(step: Step, rows: Iterable, index: int) -> list:
    return [size_of(rows)]


def size_of(rows: Any) -> tuple[int, int]:
    """``(rows, bytes)`` of a partition or bucket: bytes are known for a table only (0 for
    records)."""
    if is_table(rows):
        return (len(rows), rows.nbytes)
    return (len(rows) if type(rows) is list else sum(1 for _ in rows), 0)


def _sum(step: Step, rows: Iterable, index: int) -> list:
    return [sum(rows)]


def _reduce(step: Step, rows: Iterable, index: int) -> list:
    it = iter(rows)
    first = next(it, _MISSING)
    if first is _MISSING:
        return []
    try:
        return [functools.reduce(step.fn, it, first)]
    except Exception as exc:
        _note(exc, step, index, has_row=False)
        raise


def _aggregate(step: Step, rows: Iterable, index: int) -> list:
    zero, seq_op = step.arg
    acc = copy.deepcopy(zero)
    for row in rows:
        try:
            acc = seq_op(acc, row)
        except Exception as exc:
            _note(exc, step, index, row)
            raise
    return [acc]


def sample_keys(rows: list, key: Callable | None, count: int, index: int) -> list:
    """Up to ``count`` keys of a partition's rows, drawn over all of it, for range boundaries."""
    if len(rows) > count:
        rows = random.Random(index).sample(rows, count)
    return [key(r) if key is not None else r for r in rows]


def _write(step: Step, rows: Iterable, index: int) -> list:
    fmt, directory, options = step.arg
    if fmt != "parquet":
        rows = as_records(rows)
    return [write_part(fmt, directory, index, rows, options, step)]


# ------------------------------------------------------------------ columnar steps
def _columnar_step(fn: Callable[..., Any]) -> Callable[[Step, Any, int], Any]:
    """A step over a table: an error names the operator, its line and the partition."""

    def run(step: Step, table: Any, index: int) -> Any:
        if table.num_columns == 0 and table.num_rows == 0 and step.kind != "final_agg":
            return table  # no rows, made from none: its columns are not known, and no step needs them
        try:
            return fn(_columnar(), table, step)
        except Exception as exc:
            _note(exc, step, index, has_row=False)
            raise

    return run


_where = _columnar_step(lambda c, t, step: c.where(t, step.arg))
_select = _columnar_step(lambda c, t, step: c.select(t, step.arg))
_with_column = _columnar_step(lambda c, t, step: c.with_column(t, *step.arg))
_partial_agg = _columnar_step(lambda c, t, step: c.partial_aggregate(t, *step.arg))
_final_agg = _columnar_step(lambda c, t, step: c.final_aggregate(t, *step.arg))
_agg = _columnar_step(lambda c, t, step: c.aggregate(t, *step.arg))
_order = _columnar_step(lambda c, t, step: c.sort(t, step.arg.names, step.arg.descending))
_map_batches = _columnar_step(lambda c, t, step: c.map_batches(t, step.fn, step.arg))
_explode = _columnar_step(lambda c, t, step: c.explode(t, step.arg))


STEPS: dict[str, Callable[[Step, Iterable, int], Iterable]] = {
    "map": _map,
    "flat_map": _flat_map,
    "filter": _filter,
    "key_by": _key_by,
    "map_partitions": _map_partitions,
    "combine": _combine,
    "ones": _ones,
    "count_values": _count_values,
    "flat_map_count": _flat_map_count,
    "group": _group,
    "distinct": _distinct,
    "top": _top,
    "sort": _sort,
    "head": _head,
    "sample": _sample,
    "count": _count,
    "size": _size,
    "sum": _sum,
    "reduce": _reduce,
    "aggregate": _aggregate,
    "write": _write,
    "where": _where,
    "select": _select,
    "with_column": _with_column,
    "partial_agg": _partial_agg,
    "final_agg": _final_agg,
    "agg": _agg,
    "order": _order,
    "map_batches": _map_batches,
    "explode": _explode,
}
# steps that give the same answer when applied to parts first, then to the parts' outputs
# together: the optimizer may run a copy before a shuffle (partial aggregation)
COMBINABLE = frozenset({"combine", "distinct", "top", "head"})
# steps over Arrow tables (a partition of record rows is made a table first), and steps
# that take a partition either way
COLUMNAR = frozenset(
    {"where", "select", "with_column", "partial_agg", "final_agg", "agg", "order", "map_batches", "explode"}
)
EITHER = frozenset({"count", "size", "head", "write"})


def _join(how: str, left: Iterable, right: Iterable) -> Iterator:
    table: dict = {}  # key -> the right side's rows with it (each keeps its own key: 1 and 1.0)
    for row in right:
        bucket = table.get(row[0])
        if bucket is None:
            table[row[0]] = [row]
        else:
            bucket.append(row)
    matched = set() if how in ("right", "outer") else None
    for key, value in left:
        found = table.get(key)
        if found:
            if matched is not None:
                matched.add(key)
            for _, other in found:
                yield (key, (value, other))
        elif how in ("left", "outer"):
            yield (key, (value, None))
    if matched is not None:
        for key, rows in table.items():
            if key not in matched:
                for own, other in rows:
                    yield (own, (None, other))


# ------------------------------------------------------------------ splitting
def split(rows: Iterable, how: tuple, index: int) -> list:
    kind, count = how[0], how[1]
    if is_table(rows) or _by_columns(how):
        return _split_table(rows, how, index)
    if kind == "sampled":  # the rows, and a sample of their keys (a sort's boundaries come from it)
        rows = rows if type(rows) is list else list(rows)
        return [rows, sample_keys(rows, how[2], how[3], index)]
    buckets: list[list] = [[] for _ in range(count)]
    if count == 1:
        buckets[0] = rows if type(rows) is list else list(rows)
        return buckets
    if kind == "hash":  # (key, value) pairs by key
        step = Step("split", label="hash split")
        for row in rows:
            key = row[0] if type(row) is tuple and len(row) == 2 else _pair(row, step, index)[0]
            buckets[stable_hash(key) % count].append(row)
    elif kind == "hash_rows":  # whole rows (distinct)
        for row in rows:
            buckets[stable_hash(row) % count].append(row)
    elif kind == "range":  # by key, between boundaries (equal keys stay together)
        _, _, bounds, key, reverse = how
        last = len(bounds)
        for row in rows:
            at = bisect.bisect_right(bounds, key(row) if key is not None else row)
            buckets[last - at if reverse else at].append(row)
    elif kind == "slices":  # by position: output p starts at the global row cuts[p]
        _, _, offset, cuts = how
        for i, row in enumerate(rows, offset):
            buckets[bisect.bisect_right(cuts, i) - 1].append(row)
    else:
        raise AssertionError(f"unknown split {kind!r}")
    return buckets


_KEY_AT = {"sampled": 2, "range": 3}  # where a split's key is in its description


def _by_columns(how: tuple) -> bool:
    """A split that reads columns of a table: by hash of columns, or by a sort key of columns."""
    kind = how[0]
    return kind == "hash_columns" or (kind in _KEY_AT and type(how[_KEY_AT[kind]]).__name__ == "SortKey")


def _split_table(rows: Any, how: tuple, index: int) -> list:
    """A table's split: the same kinds, by columns (``hash_columns``, a sort key of
    columns), or by the rows as dicts for a record key."""
    c = _columnar()
    kind, count = how[0], how[1]
    key = how[_KEY_AT[kind]] if kind in _KEY_AT else None
    if kind not in ("slices", "single") and not _by_columns(how):
        return split(as_records(rows), how, index)  # a key of records: it gets dicts
    table = c.to_table(rows, _noter(Step("split", label=f"{kind} split"), index))
    if kind == "sampled":
        return [table, c.sample_keys(table, key, how[3], index) if table.num_rows else []]
    if count == 1 or table.num_rows == 0:
        return [table] * count
    if kind == "hash_columns":
        buckets = c.hash_buckets(table, how[2], count, stable_hash)
    elif kind == "range":
        buckets = c.range_buckets(table, key, how[2], count)
    else:
        buckets = c.position_buckets(table, how[2], how[3])
    return c.split_by(table, buckets, count)


# ------------------------------------------------------------------ reading
class BadRecordError(ValueError):
    """A line of an input file that cannot be read as a record."""


def read(spec: tuple, index: int = 0) -> Iterable:
    kind = spec[0]
    if kind == "items":
        return spec[1]
    if kind == "range":
        return range(spec[1], spec[2])
    if kind == "text":
        return _read_text(*spec[1:])
    if kind == "json":
        return _read_json(*spec[1:])
    if kind == "csv":
        if spec[3] == ONLY_BAD or (spec[6] is None and not spec[7]):
            return _read_csv(*spec[1:6])
        return _read_csv_pushed(spec, index)
    if kind == "arrow":
        return spec[1]
    if kind == "text_column":  # the lines as one string column of a table
        return _read_text_column(*spec[1:])
    if kind == "parquet":
        return _columnar().read_parquet(*spec[1:])
    raise AssertionError(f"unknown source {kind!r}")


def _block(path: str, start: int, end: int) -> tuple[bytes, int]:
    """The bytes of the lines that start in [start, end) of a file, and where they begin: a
    line that crosses ``end`` is this range's, the next range skips it."""
    with open(path, "rb") as f:
        begin = 0
        if start:
            f.seek(start - 1)
            f.readline()
            begin = f.tell()
        if begin >= end:
            return b"", begin
        body = f.read(end - begin)
        if body and not body.endswith(b"\n"):
            body += f.readline()
        return body, begin


def _line_number(path: str, offset: int) -> int:
    count = 1
    with open(path, "rb") as f:
        while offset > 0:
            chunk = f.read(min(offset, 1 << 20))
            if not chunk:
                break
            count += chunk.count(b"\n")
            offset -= len(chunk)
    return count


class BadRecord(NamedTuple):
    """A line a reader could not take, kept with ``on_bad_records="collect"``."""

    path: str
    line: int
    record: str
    reason: str


ONLY_BAD = "only bad"  # a source that gives its bad records instead of its rows (Dataset.bad_records)


_ON_BAD_AT = {"text": 5, "text_column": 5, "json": 5, "csv": 3}  # where a reader's spec holds its on_bad_records


def collects_bad_records(spec: tuple) -> bool:
    at = _ON_BAD_AT.get(spec[0])
    return at is not None and spec[at] == "collect"


def bad_records_spec(spec: tuple) -> tuple:
    """The same reader, giving the records it drops instead of its rows."""
    at = _ON_BAD_AT[spec[0]]
    return (*spec[:at], ONLY_BAD, *spec[at + 1 :])


def _bad_record(on_bad: str, path: str, line: int, record: Any, why: str) -> BadRecord | None:
    """What a bad record becomes: an error, nothing (skipped or collected), or itself."""
    if on_bad == "raise":
        raise BadRecordError(
            f"{path}:{line}: {why}; the record: {_short(record)} (on_bad_records='skip' drops such "
            "records; 'collect' drops them and keeps them for Dataset.bad_records())"
        )
    return BadRecord(path, line, record, why) if on_bad == ONLY_BAD else None


def _read_lines(path: str, start: int, end: int, encoding: str, on_bad: str, parse: Callable | None) -> list:
    """The rows of a byte range: its lines without line endings, through ``parse`` if given
    (then blank lines are skipped). Decoded and split in one piece; read again line by
    line, counting lines, where a line is bad and the error must name it."""
    if on_bad != ONLY_BAD:
        body, _ = _block(path, start, end)
        try:
            text = body.decode(encoding)
        except UnicodeDecodeError:
            return list(_line_by_line(path, start, end, encoding, on_bad, parse))
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()  # the newline that ends the last line
        if "\r" in text:
            lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        if parse is None:
            return lines
        rows = []
        for line in lines:
            if not line.strip():
                continue
            try:
                rows.append(parse(line))
            except (ValueError, RecursionError):
                if on_bad == "raise":
                    return list(_line_by_line(path, start, end, encoding, on_bad, parse))  # raises, naming it
        return rows
    return list(_line_by_line(path, start, end, encoding, on_bad, parse))


def _line_by_line(path: str, start: int, end: int, encoding: str, on_bad: str, parse: Callable | None) -> Iterator:
    body, begin = _block(path, start, end)
    number = _line_number(path, begin)
    at = 0
    while at < len(body):
        newline = body.find(b"\n", at)
        stop = len(body) if newline < 0 else newline + 1
        raw = body[at:stop]
        at = stop
        line, number = number, number + 1
        why = None
        try:
            text = raw.decode(encoding).removesuffix("\n").removesuffix("\r")
        except UnicodeDecodeError as exc:
            text = raw.decode(encoding, "replace").removesuffix("\n").removesuffix("\r")
            why = f"not {encoding} ({exc.reason})"
        value: Any = text
        if why is None and parse is not None:
            if not text.strip():
                continue
            try:
                value = parse(text)
            except (ValueError, RecursionError) as exc:
                why = f"not JSON ({exc})"
        if why is None:
            if on_bad != ONLY_BAD:
                yield value
            continue
        bad = _bad_record(on_bad, path, line, text, why)
        if bad is not None:
            yield bad


def _read_text(path: str, start: int, end: int, encoding: str, on_bad: str) -> list[str]:
    return _read_lines(path, start, end, encoding, on_bad, None)


def _read_text_column(path: str, start: int, end: int, encoding: str, on_bad: str, name: str) -> Any:
    """The lines of a byte range as a table; UTF-8 straight from the bytes into Arrow
    (no Python string per line), anything else (another encoding, a line that is not
    UTF-8, the bad records asked for) through the reader of str rows."""
    c = _columnar()
    if on_bad != ONLY_BAD and encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        table = c.utf8_lines(_block(path, start, end)[0], name)
        if table is not None:
            return table
    lines = _read_text(path, start, end, encoding, on_bad)
    return lines if on_bad == ONLY_BAD else c.lines_table(lines, name)


def _read_json(path: str, start: int, end: int, encoding: str, on_bad: str) -> list:
    return _read_lines(path, start, end, encoding, on_bad, json.loads)


def _read_csv(path: str, encoding: str, on_bad: str, delimiter: str, types: dict | None) -> Iterator:
    with open(path, newline="", encoding=encoding) as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return
        width = len(header)
        for fields in reader:
            if not fields:
                continue  # a blank line, as csv.DictReader skips it
            why = None
            if len(fields) != width:
                why = f"{len(fields)} fields where the header has {width}"
            else:
                row = dict(zip(header, fields, strict=True))
                if types:
                    try:
                        for name, convert in types.items():
                            row[name] = convert(row[name])
                    except Exception as exc:  # noqa: BLE001 - any failing conversion is a bad record
                        why = f"column {name!r}: {type(exc).__name__}: {exc}"
            if why is None:
                if on_bad != ONLY_BAD:
                    yield row
                continue
            bad = _bad_record(on_bad, path, reader.line_num, fields, why)
            if bad is not None:
                yield bad


def _read_csv_pushed(spec: tuple, index: int) -> Any:
    """A CSV file with the projection and the ``where`` steps after it pushed in, as a table:
    parsed by Arrow where that gives what the record reader gives, else by that reader."""
    _, path, encoding, on_bad, delimiter, types, columns, wheres = spec

    def finish(table: Any) -> Any:
        for step in wheres:
            table = _where(step, table, index)
        if columns is not None and table.num_columns:
            # a column the file lacks is left for the step that uses it to name
            table = table.select([name for name in columns if name in table.column_names])
        return table

    c = _columnar()
    with open(path, newline="", encoding=encoding) as f:
        header = next(csv.reader(f, delimiter=delimiter), None)
    if header is not None:
        read_columns = header
        if columns is not None:
            needed = set(columns).union(*(step.arg.columns() for step in wheres), types or ())
            read_columns = [name for name in header if name in needed]
        table = c.read_csv(path, encoding, delimiter, header, types or {}, read_columns, finish)
        if table is not None:
            return table
    rows = list(_read_csv(path, encoding, on_bad, delimiter, types))
    return finish(c.to_table(rows, _noter(Step("read_csv", label=f"read_csv of {path}"), index)))


# ------------------------------------------------------------------ writing
PART_PREFIX = "part-"
EXTENSIONS = {"text": "txt", "json": "jsonl", "csv": "csv", "parquet": "parquet"}


def write_part(fmt: str, directory: str, index: int, rows: Iterable, options: dict, step: Step) -> str:
    """One partition to one file, written under a hidden temporary name, then renamed: no
    reader ever sees a partial file under the final name."""
    name = f"{PART_PREFIX}{index:05d}.{EXTENSIONS[fmt]}"
    final = os.path.join(directory, name)
    temporary = os.path.join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        if fmt == "parquet":
            _columnar().write_parquet(temporary, rows, _noter(step, index))
            with open(temporary, "rb") as f:
                os.fsync(f.fileno())
        else:
            with open(temporary, "w", encoding=options.get("encoding", "utf-8"), newline="") as f:
                _WRITERS[fmt](f, rows, step, index)
                f.flush()
                os.fsync(f.fileno())
        os.replace(temporary, final)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    return final


def _write_text(f: Any, rows: Iterable, step: Step, index: int) -> None:
    f.writelines(f"{row}\n" for row in rows)


def _write_json(f: Any, rows: Iterable, step: Step, index: int) -> None:
    dumps = json.dumps
    for row in rows:
        try:
            f.write(dumps(row) + "\n")
        except TypeError as exc:
            _note(exc, step, index, row)
            raise


def _write_csv(f: Any, rows: Iterable, step: Step, index: int) -> None:
    writer = None
    for row in rows:
        if not isinstance(row, dict):
            exc = TypeError(f"write_csv writes dicts (one column per key), got {_short(row)}")
            _note(exc, step, index, row)
            raise exc
        if writer is None:
            header = list(row)
            writer = csv.writer(f)
            writer.writerow(header)
        if list(row) != header:
            exc = ValueError(f"write_csv: a record with columns {list(row)} where the first had {header}")
            _note(exc, step, index, row)
            raise exc
        writer.writerow(row.values())


_WRITERS = {"text": _write_text, "json": _write_json, "csv": _write_csv}
