"""What a task runs for the columnar operators: a partition is an Arrow table.

Loaded only when a columnar step runs (``kernels`` imports it on first use), so
``plait.data`` works without pyarrow for record queries. A step gets the partition as a
table (record rows that are dicts are turned into one), and the record operators that
follow get its rows as dicts again (``kernels.as_records``).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from plait.data.expr import Agg, Expr

_JOIN_TYPES = {"inner": "inner", "left": "left outer", "right": "right outer", "outer": "full outer"}


def to_table(rows: Any, note: Callable[[BaseException, Any], None]) -> pa.Table:
    if type(rows) is pa.Table:
        return rows
    rows = rows if type(rows) is list else list(rows)
    for row in rows:
        if not isinstance(row, dict):
            exc = TypeError(
                f"a columnar operator needs rows that are dicts (one key per column), got {row!r}: "
                "map the rows to dicts first, or read the data with read_parquet/from_arrow/from_pandas"
            )
            note(exc, row)
            raise exc
    try:
        return normalize(pa.Table.from_pylist(rows))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        note(exc, None)
        raise


def normalize(table: pa.Table) -> pa.Table:
    """String views as plain strings (not every compute kernel takes views)."""
    schema = _plain_strings(table.schema)
    return table if schema is table.schema else table.cast(schema)


def _plain_strings(schema: pa.Schema) -> pa.Schema:
    if not any(t == pa.string_view() for t in schema.types):
        return schema
    return pa.schema([f.with_type(pa.string()) if f.type == pa.string_view() else f for f in schema])


def concat(parts: list) -> pa.Table:
    tables = [p for p in parts if type(p) is pa.Table]
    if len(tables) < len(parts):  # record buckets among them: as tables
        tables = [p if type(p) is pa.Table else pa.Table.from_pylist(list(p)) for p in parts]
        tables = [t for t in tables if t.num_columns or t.num_rows]
        if not tables:
            return pa.table({})
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")


def _array(values: Any, length: int) -> Any:
    """An expression's values as a column (a scalar repeated)."""
    if isinstance(values, pa.Scalar):
        return pa.repeat(values, length)
    return values


# ------------------------------------------------------------------ steps
def where(table: pa.Table, condition: Expr) -> pa.Table:
    """The rows for which ``condition`` is true. The parts of a conjunction run one after
    another, cheapest first, each over the rows the ones before kept (a row passes an
    ``&`` of conditions only if it passes each)."""
    parts = _conjuncts(condition)
    if len(parts) > 1:
        parts.sort(key=lambda c: _cost(c, table.schema))
    for part in parts:
        mask = part.evaluate(table)
        if isinstance(mask, pa.Scalar):
            if not pa.types.is_boolean(mask.type) and not pa.types.is_null(mask.type):
                raise TypeError(f"where({condition}): {part} gives a {mask.type} value, not a boolean")
            if not mask.as_py():
                table = table.slice(0, 0)
            continue
        if pa.types.is_null(mask.type):  # nulls only (of no type): no row passes
            mask = mask.cast(pa.bool_())
        if not pa.types.is_boolean(mask.type):
            raise TypeError(f"where({condition}): the condition gives {mask.type} values, not booleans")
        table = table.filter(mask)
    return table


def _conjuncts(condition: Expr) -> list[Expr]:
    if condition.op == "and":
        return [*_conjuncts(condition.args[0]), *_conjuncts(condition.args[1])]
    return [condition]


_SLOW_OPS = frozenset({"isin", "contains", "starts_with", "ends_with", "cast"})


def _cost(e: Expr, schema: pa.Schema) -> int:
    """A rough price of evaluating ``e`` per row: string columns and string matching cost
    more than fixed-width comparisons."""
    if e.op == "col":
        name = e.args[0]
        if name in schema.names:
            t = schema.field(name).type
            return 4 if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) else 1
        return 1
    own = 4 if e.op in _SLOW_OPS else 0
    return own + sum(_cost(a, schema) for a in e.args if type(a) is Expr)


def select(table: pa.Table, columns: tuple[Expr, ...]) -> pa.Table:
    n = table.num_rows
    return pa.table({c.output_name: _array(c.evaluate(table), n) for c in columns})


def with_column(table: pa.Table, name: str, value: Expr) -> pa.Table:
    values = _array(value.evaluate(table), table.num_rows)
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, values)
    return table.append_column(name, values)


def _inputs(table: pa.Table, keys: tuple[str, ...], aggs: tuple[tuple[str, Agg], ...]) -> pa.Table:
    n = table.num_rows
    columns = {k: table.column(k) for k in keys}
    for i, (_, agg) in enumerate(aggs):
        if agg.expr is None:
            columns[f"__in{i}"] = pa.repeat(pa.scalar(1, pa.int64()), n)  # count(): count ones
        else:
            columns[f"__in{i}"] = _array(agg.expr.evaluate(table), n)
    return pa.table(columns)


_PARTIAL = {"sum": ("sum",), "count": ("count",), "mean": ("sum", "count"), "min": ("min",), "max": ("max",)}
_FINAL = {"sum": "sum", "count": "sum", "min": "min", "max": "max"}  # of the partials


def partial_aggregate(table: pa.Table, keys: tuple, aggs: tuple) -> pa.Table:
    """Per group of one partition: each aggregate's partial values (a mean's sum and count)."""
    if not table.num_columns:
        return table
    inputs = _inputs(table, keys, aggs)
    wanted = [(f"__in{i}", fn) for i, (_, agg) in enumerate(aggs) for fn in _PARTIAL[agg.fn]]
    out = inputs.group_by(list(keys), use_threads=False).aggregate(wanted)
    return out.select([*keys, *(f"{c}_{fn}" for c, fn in wanted)])


def final_aggregate(table: pa.Table, keys: tuple, aggs: tuple) -> pa.Table:
    """Per group, over the partials every partition sent: the aggregates, named."""
    if not table.num_columns:  # rows that were never a table (an empty list): no columns known
        if not keys:  # one group, of no rows: as SQL, a count of 0 and the other aggregates null
            return pa.table({n: pa.array([0] if agg.fn == "count" else [None]) for n, agg in aggs})
        return pa.table({name: pa.array([], pa.null()) for name in (*keys, *(n for n, _ in aggs))})
    wanted = []
    for i, (_, agg) in enumerate(aggs):
        if agg.fn == "mean":
            wanted += [(f"__in{i}_sum", "sum"), (f"__in{i}_count", "sum")]
        else:
            part = _PARTIAL[agg.fn][0]
            wanted.append((f"__in{i}_{part}", _FINAL[agg.fn]))
    out = table.group_by(list(keys), use_threads=False).aggregate(wanted)
    columns: dict[str, Any] = {k: out.column(k) for k in keys}
    for i, (name, agg) in enumerate(aggs):
        if agg.fn == "mean":
            total = pc.cast(out.column(f"__in{i}_sum_sum"), pa.float64())
            counted = pc.cast(out.column(f"__in{i}_count_sum"), pa.float64())
            columns[name] = pc.if_else(pc.equal(counted, 0.0), pa.scalar(None, pa.float64()), pc.divide(total, counted))
        elif agg.fn == "count":
            columns[name] = pc.fill_null(out.column(f"__in{i}_count_sum"), 0)
        else:
            columns[name] = out.column(f"__in{i}_{_PARTIAL[agg.fn][0]}_{_FINAL[agg.fn]}")
    return pa.table(columns)


def aggregate(table: pa.Table, keys: tuple, aggs: tuple) -> pa.Table:
    return final_aggregate(partial_aggregate(table, keys, aggs), keys, aggs)


def sort(table: pa.Table, names: tuple[str, ...], descending: tuple[bool, ...]) -> pa.Table:
    order = [(n, "descending" if d else "ascending") for n, d in zip(names, descending, strict=True)]
    return table.sort_by(order)  # nulls at the end, the default


def explode(table: pa.Table, name: str) -> pa.Table:
    if name not in table.column_names:
        raise KeyError(f"explode({name!r}): no column {name!r}; the columns are {table.column_names}")
    column = table.column(name)
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
        raise TypeError(f"explode({name!r}): the column holds {column.type}, not lists (col(...).split() makes lists)")
    items = pc.list_flatten(column)
    if table.num_columns == 1:
        return pa.table({name: items})
    rest = table.drop_columns([name]).take(pc.list_parent_indices(column))
    return rest.add_column(table.column_names.index(name), name, items)


def lines_table(lines: list[str], name: str) -> pa.Table:
    return pa.table({name: pa.array(lines, pa.string())})


def utf8_lines(body: bytes, name: str) -> pa.Table | None:
    """The lines of ``body`` as a string column, cut and copied in numpy: each line
    without its ``\n`` and one ``\r`` before it, as the reader of str rows gives them.
    None if the bytes are not valid UTF-8 (that reader then names the line)."""
    data = np.frombuffer(body, dtype=np.uint8)
    newlines = np.flatnonzero(data == 10)
    ends = newlines if data.size == 0 or data[-1] == 10 else np.append(newlines, data.size)
    starts = np.concatenate([[0], newlines[: ends.size - 1] + 1]).astype(np.int64)
    dropped = np.zeros(data.size, dtype=bool)
    dropped[newlines] = True
    returns = (ends > starts) & (data[np.maximum(ends - 1, 0)] == 13) if data.size else np.zeros(0, dtype=bool)
    dropped[ends[returns] - 1] = True
    ends = ends - returns
    lengths = ends - starts
    offsets = np.zeros(ends.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    kept = data[~dropped] if newlines.size or returns.any() else data
    large = offsets[-1] >= 1 << 31
    string_type = pa.large_string() if large else pa.string()
    offsets = offsets if large else offsets.astype(np.int32)
    column = pa.Array.from_buffers(string_type, ends.size, [None, pa.py_buffer(offsets), pa.py_buffer(kept)])
    try:
        column.validate(full=True)
    except pa.ArrowInvalid:
        return None
    return pa.table({name: column})


def map_batches(table: pa.Table, fn: Callable, batch_format: str) -> pa.Table:
    if batch_format == "arrow":
        batch: Any = table
    elif batch_format == "pandas":
        batch = table.to_pandas()
    else:
        batch = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    return from_batch(fn(batch), batch_format)


def from_batch(out: Any, batch_format: str) -> pa.Table:
    if type(out) is pa.Table:
        return out
    if isinstance(out, pa.RecordBatch):
        return pa.Table.from_batches([out])
    if isinstance(out, dict):
        return pa.table(out)
    if type(out).__name__ == "DataFrame":
        return pa.Table.from_pandas(out, preserve_index=False)
    if isinstance(out, list) and all(isinstance(r, dict) for r in out):
        return pa.Table.from_pylist(out)
    raise TypeError(
        f"map_batches(batch_format={batch_format!r}): the function returned {type(out).__name__}; "
        "return a pyarrow Table, a pandas DataFrame, a dict of columns or a list of dicts"
    )


# ------------------------------------------------------------------ splitting
def _column(table: pa.Table, name: str) -> pa.Array:
    column = table.column(name)
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def hash_buckets(table: pa.Table, keys: tuple[str, ...], count: int, stable_hash: Callable) -> np.ndarray:
    """Each row's bucket by its key columns: one hash per distinct value of a partition,
    not per row. Numbers get the hash record keys get (``stable_hash``, which for an int
    is Python's), so equal keys of different types meet; strings and bytes, which equal
    only their own kind, the CRC-32 of their bytes."""
    mixed = np.zeros(table.num_rows, dtype=np.uint64)
    for name in keys:
        column = _column(table, name)
        hashes = _int_hashes(column, stable_hash)
        if hashes is None:
            encoded = pc.dictionary_encode(column)
            uniques = encoded.dictionary
            found = _bytes_hashes(uniques)
            if found is None:
                found = [stable_hash(v) for v in uniques.to_pylist()]
            distinct = np.array([*found, stable_hash(None)], dtype=np.uint64)
            hashes = distinct[pc.fill_null(encoded.indices, len(uniques)).to_numpy(zero_copy_only=False)]
        with np.errstate(over="ignore"):
            mixed = (mixed * np.uint64(1000003)) ^ hashes
    return (mixed % np.uint64(count)).astype(np.int64)


def _bytes_hashes(values: pa.Array) -> list[int] | None:
    """The CRC-32 of each value of a string or binary array, read from its buffers (no
    Python object per value); None for other types."""
    t = values.type
    if pa.types.is_string(t) or pa.types.is_binary(t):
        width = np.int32
    elif pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        width = np.int64
    else:
        return None
    _, offsets_buffer, data = values.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=width)[values.offset : values.offset + len(values) + 1].tolist()
    body = memoryview(data) if data is not None else memoryview(b"")
    crc = zlib.crc32
    return [crc(body[a:b]) for a, b in zip(offsets, offsets[1:], strict=False)]


_MODULUS = (1 << 61) - 1  # Python hashes an int by its value modulo this prime


def _int_hashes(column: pa.Array, stable_hash: Callable) -> np.ndarray | None:
    """``stable_hash`` of each value of an integer column, computed in numpy: Python's
    hash of an int (its value modulo 2**61 - 1, -1 made -2), so an int key and an equal
    float or decimal key on the other side of a join still meet."""
    if not pa.types.is_integer(column.type) or pa.types.is_uint64(column.type):
        return None
    values = pc.fill_null(column.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
    if values.size and values.min() == np.iinfo(np.int64).min:
        return None  # its absolute value is no int64
    reduced = np.abs(values) % _MODULUS
    signed = np.where(values < 0, -reduced, reduced)
    signed[signed == -1] = -2
    hashes = signed.view(np.uint64)
    if column.null_count:
        hashes = hashes.copy()
        hashes[column.is_null().to_numpy(zero_copy_only=False)] = np.uint64(stable_hash(None))
    return hashes


def split_by(table: pa.Table, buckets: np.ndarray, count: int) -> list[pa.Table]:
    """The rows of each bucket, in their order."""
    order = np.argsort(buckets, kind="stable")
    ordered = table.take(pa.array(order))
    ends = np.cumsum(np.bincount(buckets, minlength=count))
    starts = np.concatenate([[0], ends[:-1]])
    return [ordered.slice(int(a), int(b - a)) for a, b in zip(starts, ends, strict=True)]


def range_buckets(table: pa.Table, key: Any, bounds: list, count: int) -> np.ndarray:
    """An ``order_by``'s split, on its first column: between the sampled boundaries (in
    the column's direction), nulls in the last partition (they sort last). A value's
    place is the number of boundaries at or below it, counted with one comparison of the
    column per boundary; a NaN is past every boundary."""
    first, descending = key.names[0], key.descending[0]
    column = _column(table, first)
    at = np.zeros(table.num_rows, dtype=np.int64)
    for bound in bounds:
        at += pc.fill_null(pc.greater_equal(column, bound), False).to_numpy(zero_copy_only=False)
    if pa.types.is_floating(column.type):
        at[pc.fill_null(pc.is_nan(column), False).to_numpy(zero_copy_only=False)] = len(bounds)
    out = len(bounds) - at if descending else at
    if column.null_count:
        out[column.is_null().to_numpy(zero_copy_only=False)] = count - 1
    return out


def position_buckets(table: pa.Table, offset: int, cuts: list[int]) -> np.ndarray:
    """A repartition's split: row ``i`` of the whole goes where ``cuts`` put it."""
    positions = np.arange(offset, offset + table.num_rows)
    return np.searchsorted(np.asarray(cuts), positions, side="right") - 1


def sample_keys(table: pa.Table, key: Any, count: int, index: int) -> list:
    """Up to ``count`` non-null values of the first sort column, picked at random (seeded
    by the partition), made Python values only once picked."""
    values = pc.drop_null(_column(table, key.names[0]))
    if len(values) > count:
        values = values.take(pa.array(random.Random(index).sample(range(len(values)), count), pa.int64()))
    return values.to_pylist()


# ------------------------------------------------------------------ joining
_SWAPPED = {"inner": "inner", "left": "right", "right": "left", "outer": "outer"}


def _keys_typed(left: pa.Table, left_on: tuple, right: pa.Table, right_on: tuple) -> tuple[pa.Table, pa.Table]:
    """A key column of the null type (record rows whose key was None in every row) given
    the other side's key type: Arrow joins only keys of one type."""
    for a, b in zip(left_on, right_on, strict=True):
        lt, rt = left.schema.field(a).type, right.schema.field(b).type
        if pa.types.is_null(lt) and not pa.types.is_null(rt):
            left = left.set_column(left.column_names.index(a), a, left.column(a).cast(rt))
        elif pa.types.is_null(rt) and not pa.types.is_null(lt):
            right = right.set_column(right.column_names.index(b), b, right.column(b).cast(lt))
    return left, right


def join(how: str, left: pa.Table, right: pa.Table, spec: tuple) -> pa.Table:
    """The join of the two sides. Arrow joins no column of the null type (what record rows
    that were all None make): such a column goes through as int64 nulls and comes out of
    the null type again, in the place the join puts it."""
    left_on, right_on, _ = spec
    for side, other, kept in ((left, right, ("right", "outer")), (right, left, ("left", "outer"))):
        if side.num_columns == 0 and side.num_rows == 0:  # no rows, made from none: columns unknown
            return other if how in kept else side
    left, right = _keys_typed(left, left_on, right, right_on)
    nulls = []
    sides = []
    for table, on, first in ((left, left_on, True), (right, right_on, False)):
        for i, field in enumerate(table.schema):
            if pa.types.is_null(field.type) and field.name not in on:
                table = table.set_column(i, field.name, table.column(i).cast(pa.int64()))
                nulls.append((first, i))
        sides.append(table)
    out = _join_tables(how, sides[0], sides[1], spec)
    if not nulls:
        return out
    # where each input column lands: all of the left side then the right side's non-keys,
    # or (a right join) the left side's non-keys then all of the right side
    lefts = [i for i, n in enumerate(left.column_names) if how != "right" or n not in left_on]
    rights = [i for i, n in enumerate(right.column_names) if how == "right" or n not in right_on]
    places = {(True, i): at for at, i in enumerate(lefts)} | {(False, i): len(lefts) + at for at, i in enumerate(rights)}
    for key in nulls:
        at = places[key]
        out = out.set_column(at, out.schema.field(at).name, pa.nulls(out.num_rows))
    return out


def _join_tables(how: str, left: pa.Table, right: pa.Table, spec: tuple) -> pa.Table:
    """The join of the two sides. Arrow builds its hash table from the right one, so when
    the left is the smaller it is joined the other way round, and the columns are given
    the order, names and types the join as written gives."""
    left_on, right_on, suffix = spec
    names = [*left.column_names, *right.column_names]
    if left.num_rows >= right.num_rows or len(set(left.column_names)) + len(set(right.column_names)) < len(names):
        return _join(how, left, right, left_on, right_on, suffix)
    shape = _join(how, left.slice(0, 0), right.slice(0, 0), left_on, right_on, suffix).schema
    # with names of their own, each output column says where it came from
    lefts = {n: f"l{i}" for i, n in enumerate(left.column_names)}
    rights = {n: f"r{i}" for i, n in enumerate(right.column_names)}
    left, right = left.rename_columns(list(lefts.values())), right.rename_columns(list(rights.values()))
    lk, rk = tuple(lefts[n] for n in left_on), tuple(rights[n] for n in right_on)
    wanted = _join(how, left.slice(0, 0), right.slice(0, 0), lk, rk, None).column_names
    swapped = _join(_SWAPPED[how], right, left, rk, lk, None)
    partner = dict(zip(lk, rk, strict=True)) | dict(zip(rk, lk, strict=True))  # a key joined into one column
    made = set(swapped.column_names)
    columns = [swapped.column(n if n in made else partner[n]) for n in wanted]
    columns = [c if c.type == f.type else c.cast(f.type) for c, f in zip(columns, shape, strict=True)]
    return pa.Table.from_arrays(columns, schema=shape)


def _join(how: str, left: pa.Table, right: pa.Table, left_on: tuple, right_on: tuple, suffix: str | None) -> pa.Table:
    return left.join(
        right, keys=list(left_on), right_keys=list(right_on), join_type=_JOIN_TYPES[how],
        right_suffix=suffix, use_threads=False,
    )  # fmt: skip


# ------------------------------------------------------------------ files
def row_groups_to_read(path: str, row_groups: tuple[int, ...], condition: Expr | None) -> list[int]:
    """The row groups whose column statistics (min, max) do not rule ``condition`` out."""
    if condition is None:
        return list(row_groups)
    meta = pq.ParquetFile(path).metadata
    names = meta.schema.names
    kept = []
    for g in row_groups:
        group = meta.row_group(g)
        stats = {}
        for i, name in enumerate(names):
            s = group.column(i).statistics
            if s is not None and s.has_min_max:
                stats[name] = (s.min, s.max)
        if _may_match(condition, stats):
            kept.append(g)
    return kept


_FLIPPED = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq", "ne": "ne"}


def _may_match(e: Expr, stats: dict) -> bool:
    """False only when no row with these (min, max) can satisfy ``e``."""
    op, args = e.op, e.args
    if op == "and":
        return _may_match(args[0], stats) and _may_match(args[1], stats)
    if op == "or":
        return _may_match(args[0], stats) or _may_match(args[1], stats)
    try:
        if op == "isin" and args[0].op == "col" and args[0].args[0] in stats:
            low, high = stats[args[0].args[0]]
            return any(v is not None and low <= v <= high for v in args[1])
        if op in _FLIPPED:
            left, right = args
            if left.op == "lit" and right.op == "col":
                left, right, op = right, left, _FLIPPED[op]
            if left.op != "col" or right.op != "lit" or left.args[0] not in stats or right.args[0] is None:
                return True
            low, high = stats[left.args[0]]
            v = right.args[0]
            return {
                "eq": lambda: low <= v <= high, "ne": lambda: not (low == high == v),
                "lt": lambda: low < v, "le": lambda: low <= v, "gt": lambda: high > v, "ge": lambda: high >= v,
            }[op]()  # fmt: skip
    except TypeError:  # statistics of a type the literal does not compare with: read it
        return True
    return True


def read_parquet(path: str, row_groups: tuple, columns: tuple | None, condition: Expr | None) -> pa.Table:
    """The rows of some row groups of a file that satisfy ``condition``, with ``columns``."""
    kept = row_groups_to_read(path, row_groups, condition)
    wanted = None
    if columns is not None:
        wanted = list(columns) + sorted(condition.columns() - set(columns)) if condition is not None else list(columns)
    # a row group at a time, filtered as it comes: a small working set (reading many at
    # once into fresh memory was slower, and its time varied by 5x); no pre-buffering
    file = pq.ParquetFile(path, pre_buffer=False)
    parts = []
    for group in kept:
        part = normalize(file.read_row_group(group, columns=wanted, use_threads=False))
        if condition is not None:
            part = where(part, condition)
            if columns is not None:
                part = part.select(list(columns))
        parts.append(part)
    if not parts:  # every row group ruled out: no rows, with the columns
        empty = normalize(file.schema_arrow.empty_table())
        return empty.select(list(columns)) if columns is not None else empty
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


# the texts Arrow's cast turns into what Python's int() and float() make of them (Arrow
# takes more: "0x4" as an int); a column with any other text is read by Python
_EXACT_CASTS = {
    int: (pa.int64(), r"^[+-]?[0-9]+$"),
    float: (pa.float64(), r"(?i)^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]+)?|inf|infinity|nan)$"),
}


def read_csv(
    path: str,
    encoding: str,
    delimiter: str,
    header: list[str],
    types: dict,
    columns: list[str],
    finish: Callable[[pa.Table], pa.Table],
) -> pa.Table | None:
    """A CSV file's ``columns`` as strings (``types``' int and float columns converted),
    a block at a time, each given to ``finish`` as it is read; None where the file is not
    read exactly as the record reader (``csv`` with its excel dialect) reads it: a header
    with a name twice, a row of the wrong length, a conversion that is not int or float, a
    text Python would convert otherwise, a conversion of a column not there. Quoting, blank
    lines and line ends agree."""
    import pyarrow.csv as pcsv

    if len(set(header)) < len(header) or not set(types) <= set(columns):
        return None  # (a conversion of a column the file lacks makes every record bad)
    casts = {}
    for name, convert in types.items():
        if convert is not str:
            if convert not in _EXACT_CASTS:
                return None
            casts[name] = _EXACT_CASTS[convert]
    unreadable = (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeError, LookupError)
    try:
        reader = pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(encoding=encoding, use_threads=False),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                include_columns=columns,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except unreadable:
        return None
    if reader.schema.names != columns:  # a header Arrow reads otherwise (it drops a BOM)
        return None
    parts = []
    while True:
        try:
            table = _converted(pa.Table.from_batches([reader.read_next_batch()]), casts)
        except StopIteration:
            break
        except unreadable:
            return None
        if table is None:
            return None
        parts.append(finish(table))  # filtered as read: only the rows kept stay in memory
    if not parts:
        parts = [finish(_converted(reader.schema.empty_table(), casts))]
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


def _converted(table: pa.Table, casts: dict) -> pa.Table | None:
    """The columns ``casts`` names converted, or None if one holds a text the cast might
    read otherwise than Python."""
    for name, (to, texts) in casts.items():
        at = table.column_names.index(name)
        values = table.column(at)
        if table.num_rows and not pc.all(pc.match_substring_regex(values, texts)).as_py():
            return None
        table = table.set_column(at, name, pc.cast(values, to))
    return table


def parquet_layout(path: str) -> list[int]:
    """The rows of each row group of a file."""
    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def write_parquet(path: str, rows: Any, note: Callable) -> None:
    pq.write_table(to_table(rows, note), path)

