"""``@plait.task``: a Python function whose calls become asynchronous tasks."""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterable
from typing import Any

from plait.runtime.context import current_engine, sequential_reference
from plait.runtime.options import TaskOptions, task_options


class TaskFunction:
    """A function whose calls return ``plait.Future`` objects at once."""

    def __init__(self, fn: Callable, options: TaskOptions) -> None:
        if not callable(fn):
            raise TypeError(f"@plait.task needs a function, got {fn!r}")
        _refuse_unsupported(fn)
        self.fn = fn
        self.task_options = options
        self.name = options.name or getattr(fn, "__qualname__", repr(fn))
        self.blob: bytes | None = None  # the pickled function, made once per process
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if sequential_reference.active:
            return _values(self, call_by_value(self.fn, args, kwargs), self.task_options)
        if self.task_options.num_returns != 1:
            return submit_returning(self, args, kwargs, self.task_options)
        return current_engine().submit(self, args, kwargs, self.task_options)

    def map(self, *iterables: Iterable) -> list[Any]:
        """``[f(*items) for items in zip(*iterables, strict=True)]``, submitted together: one exchange
        with the engine for all the calls (as Dask's ``client.map``)."""
        return map_calls(self, self.task_options, iterables)

    def options(self, *, near: Any = None, **overrides: Any) -> TaskCall:
        """Per-call options: ``f.options(num_cpus=2, retries=0)(x)``. ``near=future``: a
        placement hint, run the call where that future's value is (the engine may run
        it elsewhere)."""
        if near is not None:
            from plait.runtime.future import Future

            if not isinstance(near, Future):
                raise TypeError(f"{self.name}.options(near=...) takes a plait.Future, got {type(near).__name__}")
        return TaskCall(self, task_options(self.name, self.task_options, **overrides), near)

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

    def __init__(self, task: TaskFunction, options: TaskOptions, near: Any = None) -> None:
        self.task = task
        self.task_options = options
        self.near = near  # a placement hint: a future whose value the call should run beside

    def map(self, *iterables: Iterable) -> list[Any]:
        """``TaskFunction.map`` with these options."""
        if self.near is not None:
            return [self(*items) for items in zip(*iterables, strict=True)]
        return map_calls(self.task, self.task_options, iterables)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if sequential_reference.active:
            return _values(self.task, call_by_value(self.task.fn, args, kwargs), self.task_options)
        if self.task_options.num_returns != 1:
            return submit_returning(self.task, args, kwargs, self.task_options)
        if self.near is not None:
            return current_engine().submit_near(self.task, args, kwargs, self.task_options, self.near)
        return current_engine().submit(self.task, args, kwargs, self.task_options)


def map_calls(task: TaskFunction, options: TaskOptions, iterables: tuple[Iterable, ...]) -> list[Any]:
    if not iterables:
        raise TypeError(f"{task.name}.map() needs at least one iterable of arguments")
    calls = [(items, {}) for items in zip(*iterables, strict=True)]  # unequal lengths: an error
    if sequential_reference.active or options.num_returns != 1:
        call = TaskCall(task, options)
        return [call(*args) for args, _ in calls]
    return current_engine().submit_many(task, calls, options)


def submit_returning(task: TaskFunction, args: tuple, kwargs: dict, options: TaskOptions) -> Any:
    """A call with ``num_returns=k``: one future per item (the engine's ``submit_returning``)."""
    return current_engine().submit_returning(task, args, kwargs, options)


def lowered_returning(engine: Any, task: TaskFunction, args: tuple, kwargs: dict, options: TaskOptions) -> Any:
    """``num_returns=k`` lowered for any engine: the call itself, then one small task per
    item, so each item is a future of its own (a dependency that waits for the call
    only). ``k=0``: the call runs and gives None."""
    from dataclasses import replace

    count = options.num_returns
    call = engine.submit(task, args, kwargs, replace(options, num_returns=1))
    if count == 0:
        return None
    return tuple(
        engine.submit(_nth, (call, i, count, task.name), {}, task_options(f"{task.name}[{i}]", name=f"{task.name}[{i}]", retries=0))
        for i in range(count)
    )


def check_count(value: Any, count: int, name: str) -> None:
    try:
        n = len(value)
    except TypeError:
        n = None
    if n != count:
        what = f"{n} values" if n is not None else f"a {type(value).__name__}"
        raise ValueError(
            f"task {name!r} has num_returns={count} but returned {what}: return a tuple or list of {count}"
        )


def _nth_item(value: Any, index: int, count: int, name: str) -> Any:
    check_count(value, count, name)
    return value[index]


def _values(task: TaskFunction, value: Any, options: TaskOptions) -> Any:
    """The sequential reference's result of a call: the items, as the futures would give them."""
    count = options.num_returns
    if count == 1:
        return value
    if count == 0:
        return None
    check_count(value, count, task.name)
    return tuple(value)


def _refuse_unsupported(fn: Callable) -> None:
    """Functions a task cannot be, refused where they are decorated (never a later pickling error)."""
    name = getattr(fn, "__qualname__", repr(fn))
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(
            f"@plait.task {name!r} is an async def: tasks are plain functions (their calls already "
            "run concurrently). Write a plain def, or run asyncio code inside one with asyncio.run(); "
            "async methods of a @plait.actor run on the actor's event loop"
        )
    if inspect.isgeneratorfunction(fn):
        raise TypeError(
            f"@plait.task {name!r} is a generator (it has `yield`): a task returns one value. "
            "Return a list of the items, or make each item a task call"
        )
    parts = name.split(".")
    if len(parts) > 1 and parts[-2] != "<locals>" and inspect.isfunction(fn):
        raise TypeError(
            f"@plait.task on the method {name!r}: a task is a plain function, called without an "
            "object. Make it a module-level function that takes the object as an argument, or make "
            "the class a @plait.actor (its methods then run in the actor's process)"
        )


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


_nth = TaskFunction(_nth_item, task_options("num_returns item", retries=0))
