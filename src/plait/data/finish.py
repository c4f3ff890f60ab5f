"""How an action combines what its partitions' last tasks returned (each a one-item list
for counts, sums and folds; the rows themselves for ``collect``).

The same functions run in the driver for a plain call and in a task for the future an
action returns under ``@parallel``.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable
from typing import Any

from plait.data import kernels
from plait.runtime.options import task_options
from plait.runtime.task import TaskFunction


def rows(_: Any, parts: list) -> list:
    return [row for part in parts for row in kernels.as_records(part)]


def table(_: Any, parts: list) -> Any:
    from plait.data import columnar

    return columnar.concat(list(parts))


def data_frame(_: Any, parts: list) -> Any:
    return table(_, parts).to_pandas()


def first(n: int, parts: list) -> list:
    out: list = []
    for part in parts:
        out += kernels.as_records(part)
        if len(out) >= n:
            break
    return out[:n]


def total(start: Any, parts: list) -> Any:
    return sum((part[0] for part in parts), start)


def reduced(fn: Callable, parts: list) -> Any:
    partials = [part[0] for part in parts if part]
    if not partials:
        raise TypeError("Dataset.reduce() of an empty dataset: there is no first value to start from")
    return functools.reduce(fn, partials)


def aggregated(arg: tuple, parts: list) -> Any:
    zero, comb_op = arg
    return functools.reduce(comb_op, (part[0] for part in parts), copy.deepcopy(zero))


def written(directory: str, parts: list) -> list[str]:
    return [part[0] for part in parts]


def remove_temporaries(directory: str) -> None:
    """The hidden temporaries a task's earlier attempt left (a worker killed mid-write)."""
    for name in os.listdir(directory):
        if name.startswith("." + kernels.PART_PREFIX) and name.endswith(".tmp"):
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:
                pass


def _finish(combine: Callable, arg: Any, cleanup: Callable | None, *parts: Any) -> Any:
    """An action's end under ``@parallel``: its partitions' outputs combined, or the
    failure among them that a sequential run meets first."""
    try:
        failed = kernels.first_failure(parts)
        if failed is not None:
            raise failed.exception()
        return combine(arg, list(parts))
    finally:
        if cleanup is not None:
            cleanup(arg)


finish_task = TaskFunction(_finish, task_options("data", name="data:finish"))
