"""``@plait.task``: a Python function whose calls become asynchronous tasks."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from plait.runtime.context import current_engine, sequential_reference
from plait.runtime.options import TaskOptions, task_options


class TaskFunction:
    """A function whose calls return ``plait.Future`` objects at once."""

    def __init__(self, fn: Callable, options: TaskOptions) -> None:
        if not callable(fn):
            raise TypeError(f"@plait.task needs a function, got {fn!r}")
        self.fn = fn
        self.task_options = options
        self.name = options.name or getattr(fn, "__qualname__", repr(fn))
        self.blob: bytes | None = None  # the pickled function, made once per process
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if sequential_reference.active:
            return call_by_value(self.fn, args, kwargs)
        return current_engine().submit(self, args, kwargs, self.task_options)

    def options(self, **overrides: Any) -> TaskCall:
        """Per-call options: ``f.options(num_cpus=2, retries=0)(x)``."""
        return TaskCall(self, task_options(self.name, self.task_options, **overrides))

    def __repr__(self) -> str:
        return f"<plait.task {self.name}>"

    def __reduce__(self) -> Any:
        module = sys.modules.get(getattr(self.fn, "__module__", ""), None)
        qualname = getattr(self.fn, "__qualname__", "")
        if module is not None and module.__name__ != "__main__":
            target: Any = module
            for part in qualname.split("."):
                target = getattr(target, part, None)
            if target is self:
                return (_import_task, (module.__name__, qualname))
        code = getattr(self.fn, "__code__", None)
        return (_rebuild_task, (self.fn, self.task_options, code.co_filename if code else None))


class TaskCall:
    """A task with call-site options; calling it submits."""

    def __init__(self, task: TaskFunction, options: TaskOptions) -> None:
        self.task = task
        self.task_options = options

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if sequential_reference.active:
            return call_by_value(self.task.fn, args, kwargs)
        return current_engine().submit(self.task, args, kwargs, self.task_options)


def call_by_value(fn: Callable, args: tuple, kwargs: dict) -> Any:
    """Call ``fn`` in place as a task would run: on copies of the arguments, returning a copy."""
    from plait.runtime import serialization as ser

    data, buffers, _ = ser.dumps((args, kwargs))
    args, kwargs = ser.loads(data, buffers)
    data, buffers, _ = ser.dumps(fn(*args, **kwargs))
    return ser.loads(data, buffers)


def _rebuild_task(fn: Callable, options: TaskOptions, filename: str | None) -> TaskFunction:
    # cloudpickle blanks the file name of code it ships by value; put it back
    # so remote tracebacks point at the user's source lines
    code = getattr(fn, "__code__", None)
    if filename and code is not None and code.co_filename != filename:
        fn.__code__ = code.replace(co_filename=filename)
    return TaskFunction(fn, options)


def _import_task(module: str, qualname: str) -> TaskFunction:
    import importlib

    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def task(fn: Callable | None = None, **options: Any) -> Any:
    """Make ``fn`` a task: ``@plait.task`` or ``@plait.task(num_cpus=2, retries=0)``."""
    if fn is None:
        return lambda f: TaskFunction(f, task_options(getattr(f, "__qualname__", "task"), **options))
    if options:
        raise TypeError("use @plait.task(...) with keyword options only")
    return TaskFunction(fn, task_options(getattr(fn, "__qualname__", "task")))
