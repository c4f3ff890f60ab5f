"""``plait.data``: partitioned collections in the manner of DryadLINQ.

A query is written as a chain of sequential-looking operators on a ``Dataset``; it is
captured lazily, optimized (record operators fused into one task per partition, partial
aggregation before a shuffle) and run as stages of tasks on the current engine, so the
same program runs on ``inline``, ``local``, ``ray`` and ``dask``.
"""

from plait.data.dataset import Dataset
from plait.data.kernels import BadRecord, BadRecordError
from plait.data.sources import expand, from_items, range, read_csv, read_json, read_text

__all__ = ["BadRecord", "BadRecordError", "Dataset", "expand", "from_items", "range", "read_csv", "read_json", "read_text"]
