"""Run-time granularity control: a task call far cheaper than its dispatch runs in place.

Sending a task to a worker costs the driver tens of microseconds (arguments
pickled, bookkeeping, the result read back), so a loop of tiny tasks under
``@parallel`` would be many times slower than the plain loop while gaining
nothing from parallelism. Once the engine has seen a task run a few times
(``typical_run_time``, the local engine's measure) and it ran for less than
``INLINE_BELOW`` seconds on average, a call from ``@parallel`` code whose
arguments are ready runs in the calling thread instead, on copies of its
arguments as in a worker, and gives its value at once. A task with resource
requests, a timeout or retried exceptions always goes to a worker; so does one
whose in-place run turns out slow (it is not run in place again), and any call
from a function that looks at task results as futures (``.result()``).
``PLAIT_INLINE_TASKS=0`` turns this off.
"""

from __future__ import annotations

import os
import time
from typing import Any

from plait.runtime.context import current_engine
from plait.runtime.task import TaskFunction, call_by_value

ENABLED = os.environ.get("PLAIT_INLINE_TASKS", "1") != "0"
INLINE_BELOW = 50e-6  # seconds of run time: well under what dispatching a task costs
SLOW_FACTOR = 20  # a run in place this many times INLINE_BELOW is slow
SLOW_RUNS = 2  # slow runs in a row that send a task back to workers (one may be a preemption)
_slow: set[int] = set()  # ids of task functions that ran slowly in place: never again
_slow_in_a_row: dict[int, int] = {}


def _plain(fn: TaskFunction) -> bool:
    o = fn.task_options
    return (
        o.num_cpus <= 1
        and not o.num_gpus
        and o.memory is None
        and not o.resources
        and o.timeout is None
        and not o.retry_exceptions
        and o.num_returns == 1
    )


def tiny_task(fn: Any) -> bool:
    """Is ``fn`` a task measured to run far quicker than its dispatch?"""
    if type(fn) is not TaskFunction or id(fn) in _slow:
        return False
    typical = current_engine().typical_run_time(fn.name)
    return typical is not None and typical < INLINE_BELOW and _plain(fn)


def tiny(fn: TaskFunction, args: tuple, kwargs: dict) -> bool:
    """Should this call run in place? Only for measured tiny tasks with ready arguments."""
    if not tiny_task(fn):
        return False
    from plait.parallel.runtime import _has_pending

    return not (_has_pending(args) or _has_pending(kwargs))


def ran_slowly(fn: TaskFunction) -> None:
    _slow.add(id(fn))


def _ran(fn: TaskFunction, seconds: float) -> None:
    key = id(fn)
    if seconds <= SLOW_FACTOR * INLINE_BELOW:
        if key in _slow_in_a_row:
            del _slow_in_a_row[key]
        return
    runs = _slow_in_a_row.get(key, 0) + 1
    _slow_in_a_row[key] = runs
    if runs >= SLOW_RUNS:
        ran_slowly(fn)


def run_here(fn: TaskFunction, args: tuple, kwargs: dict) -> Any:
    start = time.perf_counter()
    try:
        return call_by_value(fn.fn, args, kwargs)
    finally:
        _ran(fn, time.perf_counter() - start)
