"""``plait.data``: partitioned collections in the manner of DryadLINQ.

A query is written as a chain of sequential-looking operators on a ``Dataset``; it is
captured lazily, optimized (record operators fused into one task per partition, partial
aggregation before a shuffle) and run as stages of tasks on the current engine, so the
same program runs on ``inline``, ``local``, ``ray`` and ``dask``.
"""

from plait.data.dataset import Dataset, GroupBy
from plait.data.expr import Agg, Expr, col, count, lit, max, mean, min, sum, when
from plait.data.kernels import BadRecord, BadRecordError
from plait.data.sources import (
    expand,
    from_arrow,
    from_items,
    from_pandas,
    range,
    read_csv,
    read_json,
    read_parquet,
    read_text,
)

__all__ = [
    "Agg", "BadRecord", "BadRecordError", "Dataset", "Expr", "GroupBy", "col", "count", "expand",
    "from_arrow", "from_items", "from_pandas", "lit", "max", "mean", "min", "range", "read_csv",
    "read_json", "read_parquet", "read_text", "sum", "when",
]  # fmt: skip
