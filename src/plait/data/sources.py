"""Where datasets come from: items in the driver, a range, Arrow tables and DataFrames,
files (text, JSON lines, CSV, Parquet).

A source is cut into partitions when the dataset is made: items into contiguous slices,
files into byte ranges that tasks read on their own (a line belongs to the range it
starts in), so a large file is read by many tasks and nothing passes through the driver.
"""

from __future__ import annotations

import builtins
import glob
import math
import os
from collections.abc import Callable, Iterable
from typing import Any

from plait.data.dataset import Dataset, caller
from plait.data.kernels import BAD_RECORD_CHOICES
from plait.data.plan import Source, parallelism
from plait.parallel.callees import pure

BLOCK_SIZE = 32 << 20  # bytes of a file one task reads, at most
MIN_BLOCK = 64 << 10  # a small file is not cut finer than this to fill the workers


def _count(name: str, partitions: int | None, default: int) -> int:
    if partitions is None:
        return max(1, default)
    if type(partitions) is not int or partitions < 1:
        raise ValueError(f"{name}: partitions={partitions!r} must be a positive int")
    return partitions


def _cuts(total: int, parts: int) -> list[tuple[int, int]]:
    return [(total * p // parts, total * (p + 1) // parts) for p in builtins.range(parts)]


def from_items(items: Iterable, partitions: int | None = None) -> Dataset:
    """The items of an iterable (read now, in the driver), as contiguous partitions in order."""
    rows = list(items)
    parts = _count("from_items", partitions, min(len(rows), parallelism()))
    specs = tuple(("items", rows[a:b]) for a, b in _cuts(len(rows), parts))
    return Dataset(Source(f"from_items({len(rows)} items)", caller(), specs))


@pure  # under @parallel it does not wait for earlier work (from_items does: its items may be pending)
def range(start: int, stop: int | None = None, step: int = 1, *, partitions: int | None = None) -> Dataset:  # noqa: A001
    """The integers of ``range(start, stop, step)``; each task makes its own slice."""
    whole = builtins.range(start) if stop is None else builtins.range(start, stop, step)
    parts = _count("range", partitions, min(len(whole), parallelism()))
    specs = tuple(("items", whole[a:b]) for a, b in _cuts(len(whole), parts))
    return Dataset(Source(f"range({whole.start}, {whole.stop}, {whole.step})", caller(), specs))


def expand(paths: str | os.PathLike | Iterable[str | os.PathLike], name: str) -> list[str]:
    """Files named by a path, a directory (its files, hidden ones and ``_*`` left out) or a
    glob, or a list of those; sorted, each once. None found is an error."""
    given = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    found: list[str] = []
    for p in map(os.fspath, given):
        if os.path.isdir(p):
            names = sorted(n for n in os.listdir(p) if not n.startswith((".", "_")))
            found += [os.path.join(p, n) for n in names if os.path.isfile(os.path.join(p, n))]
        elif glob.has_magic(p):
            matched = sorted(m for m in glob.glob(p, recursive=True) if os.path.isfile(m))
            if not matched:
                raise FileNotFoundError(f"{name}: no file matches {p!r}")
            found += matched
        elif os.path.isfile(p):
            found.append(p)
        else:
            raise FileNotFoundError(f"{name}: no such file or directory: {p!r}")
    if not found:
        raise FileNotFoundError(f"{name}: {given!r} holds no files")
    return list(dict.fromkeys(found))


def _check_bad(name: str, on_bad_records: str) -> None:
    if on_bad_records not in BAD_RECORD_CHOICES:
        raise ValueError(f"{name}: on_bad_records={on_bad_records!r}; it is one of {', '.join(BAD_RECORD_CHOICES)}")


def _byte_ranges(files: list[str], block_size: int | None) -> list[tuple[str, int, int]]:
    sizes = [os.path.getsize(f) for f in files]
    if block_size is None:
        block_size = max(MIN_BLOCK, min(BLOCK_SIZE, math.ceil(sum(sizes) / parallelism())))
    elif type(block_size) is not int or block_size < 1:
        raise ValueError(f"block_size={block_size!r} must be a positive int (bytes)")
    ranges = []
    for path, size in zip(files, sizes, strict=True):
        parts = max(1, math.ceil(size / block_size))
        ranges += [(path, a, b) for a, b in _cuts(size, parts)]
    return ranges


def _lines_source(
    kind: str, name: str, paths: Any, encoding: str, on_bad_records: str, block_size: int | None, extra: tuple = ()
) -> Dataset:
    _check_bad(name, on_bad_records)
    files = expand(paths, name)
    specs = tuple((kind, path, a, b, encoding, on_bad_records, *extra) for path, a, b in _byte_ranges(files, block_size))
    shown = paths if isinstance(paths, (str, os.PathLike)) else f"{len(files)} files"
    return Dataset(Source(f"{name}({os.fspath(shown) if isinstance(shown, os.PathLike) else shown!r})", caller(), specs))


def read_text(
    paths: Any,
    *,
    encoding: str = "utf-8",
    on_bad_records: str = "raise",
    block_size: int | None = None,
    column: str | None = None,
) -> Dataset:
    """One row per line (without its line ending), from files, directories or globs: a
    str, or with ``column`` a table of one string column of that name, for the columnar
    operators (``select(col("line").split().alias("word")).explode("word")``)."""
    if column is None:
        return _lines_source("text", "read_text", paths, encoding, on_bad_records, block_size)
    if not isinstance(column, str) or not column:
        raise TypeError(f"read_text: column= takes a column name, got {column!r}")
    return _lines_source("text_column", "read_text", paths, encoding, on_bad_records, block_size, (column,))


def read_json(
    paths: Any, *, encoding: str = "utf-8", on_bad_records: str = "raise", block_size: int | None = None
) -> Dataset:
    """JSON lines: one row per non-blank line, parsed with ``json.loads``."""
    return _lines_source("json", "read_json", paths, encoding, on_bad_records, block_size)


def read_csv(
    paths: Any,
    *,
    types: dict[str, Callable[[str], Any]] | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
    on_bad_records: str = "raise",
) -> Dataset:
    """One dict per record, keys from each file's header; values are str unless ``types``
    maps a column to a conversion (``{"qty": int}``). A file is one partition (a quoted
    field may hold a line break, so a file cannot be cut at any newline). Before columnar
    operators, the file is parsed by Arrow, with only the columns the query uses and the
    ``where`` right after it applied as each block is read; the rows are the same."""
    _check_bad("read_csv", on_bad_records)
    if types is not None and not all(isinstance(k, str) and callable(v) for k, v in types.items()):
        raise TypeError("read_csv: types= maps column names to conversions, such as {'qty': int}")
    files = expand(paths, "read_csv")
    # the last two: the columns to keep and the where steps to apply, pushed in by the optimizer
    specs = tuple(("csv", f, encoding, on_bad_records, delimiter, types, None, ()) for f in files)
    return Dataset(Source(f"read_csv({len(files)} file(s))", caller(), specs))


def from_arrow(table: Any, partitions: int | None = None) -> Dataset:
    """The rows of a ``pyarrow.Table`` (or RecordBatch), as contiguous slices of it."""
    import pyarrow as pa

    from plait.data.columnar import normalize

    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if not isinstance(table, pa.Table):
        raise TypeError(f"from_arrow takes a pyarrow.Table, got {type(table).__name__}")
    table = normalize(table)
    parts = _count("from_arrow", partitions, min(table.num_rows, parallelism()))
    specs = tuple(("arrow", table.slice(a, b - a)) for a, b in _cuts(table.num_rows, parts))
    return Dataset(Source(f"from_arrow({table.num_rows} rows, {table.num_columns} columns)", caller(), specs))


def from_pandas(frame: Any, partitions: int | None = None) -> Dataset:
    """The rows of a pandas DataFrame (its index is not a column: ``reset_index()`` first to keep it)."""
    import pyarrow as pa

    if type(frame).__name__ != "DataFrame":
        raise TypeError(f"from_pandas takes a pandas.DataFrame, got {type(frame).__name__}")
    return from_arrow(pa.Table.from_pandas(frame, preserve_index=False), partitions)


def read_parquet(paths: Any, *, columns: Iterable[str] | None = None, partitions: int | None = None) -> Dataset:
    """Parquet files (files, directories or globs), a partition per run of row groups. A
    ``where`` right after it is applied while reading (row groups whose statistics rule
    it out are skipped), and only the columns the query uses are read."""
    from plait.data.columnar import parquet_layout

    files = expand(paths, "read_parquet")
    if columns is not None:
        columns = (columns,) if isinstance(columns, str) else tuple(columns)
        if not all(isinstance(c, str) for c in columns):
            raise TypeError(f"read_parquet: columns= takes column names, got {list(columns)!r}")
    try:
        layouts = [parquet_layout(f) for f in files]
    except Exception as exc:  # noqa: BLE001 - any file that is not Parquet is named
        raise ValueError(f"read_parquet: cannot read the footer of a file in {paths!r}: {exc}") from exc
    total = builtins.max(1, sum(sum(rows) for rows in layouts))
    want = _count("read_parquet", partitions, parallelism())
    specs = []
    for path, rows in zip(files, layouts, strict=True):
        groups = list(builtins.range(len(rows)))
        if not groups:
            continue
        parts = builtins.min(len(groups), builtins.max(1, math.ceil(want * sum(rows) / total)))
        specs += [("parquet", path, tuple(groups[a:b]), columns, None) for a, b in _cuts(len(groups), parts)]
    if not specs:
        specs = [("arrow", _empty(files[0], columns))]
    shown = paths if isinstance(paths, str) else f"{len(files)} files"
    return Dataset(Source(f"read_parquet({shown!r})", caller(), tuple(specs)))


def _empty(path: str, columns: tuple | None) -> Any:
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=list(columns) if columns is not None else None)
    return table.slice(0, 0)
