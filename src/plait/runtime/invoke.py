"""Running one task call where it lands: retries on exceptions, remote tracebacks."""

from __future__ import annotations

import inspect
import os
import threading
import traceback
import weakref
from collections.abc import Callable
from typing import Any

from plait.errors import CancelledError
from plait.runtime.options import TaskOptions

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


_running = threading.local()


def running_task() -> str | None:
    """The name of the task this thread is running, if it runs one (for error messages)."""
    return getattr(_running, "name", None)


def call_with_retries(fn: Callable, args: tuple, kwargs: dict, options: TaskOptions) -> Any:
    """Call ``fn``; re-run it on an exception that ``retry_exceptions`` allows."""
    attempts_left = options.retries if options.retry_exceptions else 0
    outer = getattr(_running, "name", None)
    _running.name = options.name or getattr(fn, "__qualname__", "task")
    try:
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if attempts_left > 0 and options.should_retry(exc):
                    attempts_left -= 1
                    continue
                raise
    finally:
        _running.name = outer


def format_remote(exc: BaseException, where: str) -> str:
    """The traceback a caller sees above its own: the task's frames only."""
    tb = exc.__traceback__
    # drop the runtime's own frames that precede the user's function
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb)
    text = "".join(lines[1:] if lines[0].startswith("Traceback") else lines)
    if len(text) > _TRACEBACK_MAX:  # a recursion's thousands of frames: the two ends tell it
        half = _TRACEBACK_MAX // 2
        cut = text.count("\n", half, len(text) - half)
        text = f"{text[:half]}\n  ... {cut} lines left out ...\n{text[len(text) - half:]}"
    return f"Traceback of {where}:\n" + text


_TRACEBACK_MAX = 20_000  # characters of a remote traceback kept


def run_method(instance: Any, method: str, args: tuple, kwargs: dict) -> Any:
    """Call an actor's method; an ``async def`` one runs to its end on the actor's event loop."""
    result = getattr(instance, method)(*args, **kwargs)
    if inspect.iscoroutine(result):
        return _event_loop_of(instance).run(result)
    return result


class SideBySide:
    """Runs one actor's calls side by side, where its options allow more than one at once:
    up to ``limit`` in threads, or, for an actor with async methods, as coroutines on its
    event loop (its sync methods run on the loop too, as on Ray). Calls start in the
    order ``start`` is called; each reports through ``done(ok, value_or_exception)`` from
    the thread that ran it."""

    def __init__(self, instance: Any, limit: int, is_async: bool) -> None:
        self.instance = instance
        self.is_async = is_async
        if is_async:
            import asyncio

            self.loop = _event_loop_of(instance)
            self.slots = asyncio.Semaphore(limit)  # binds to the loop that first waits on it
        else:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(limit, thread_name_prefix="plait-actor-call")

    def start(self, method: str, args: tuple, kwargs: dict, done: Callable[[bool, Any], None]) -> Any:
        """Start a call; its ``concurrent.futures.Future``, whose ``cancel()`` cancels an
        async call's coroutine (or a call not yet started)."""
        if self.is_async:
            running = self.loop.submit(self._on_loop(method, args, kwargs))
        else:
            running = self.pool.submit(getattr(self.instance, method), *args, **kwargs)

        def report(finished: Any) -> None:
            if finished.cancelled():
                done(False, CancelledError(f"actor call {method!r} was cancelled"))
                return
            error = finished.exception()
            if error is None:
                done(True, finished.result())
            else:
                done(False, error)

        running.add_done_callback(report)
        return running

    async def _on_loop(self, method: str, args: tuple, kwargs: dict) -> Any:
        async with self.slots:
            result = getattr(self.instance, method)(*args, **kwargs)
            if inspect.iscoroutine(result):
                result = await result
            return result


class _ActorLoop:
    """One event loop per actor, in a thread of its own: its coroutines share it, so their
    tasks and awaitables live across calls, as on a Ray async actor. ``run`` runs one call
    to its end; ``submit`` starts one and gives its ``concurrent.futures.Future``."""

    def __init__(self) -> None:
        import asyncio  # only where an actor has async methods

        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="plait-actor-loop", daemon=True).start()

    def run(self, coroutine: Any) -> Any:
        return self.submit(coroutine).result()

    def submit(self, coroutine: Any) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


_loops: dict[int, _ActorLoop] = {}
_loops_lock = threading.Lock()


def _event_loop_of(instance: Any) -> _ActorLoop:
    key = id(instance)
    with _loops_lock:
        loop = _loops.get(key)
        if loop is None:
            loop = _loops[key] = _ActorLoop()
            try:
                weakref.finalize(instance, _forget_loop, key)
            except TypeError:  # not weakly referable: the loop lives as long as the process
                pass
    return loop


def _forget_loop(key: int) -> None:
    with _loops_lock:
        loop = _loops.pop(key, None)
    if loop is not None:
        loop.close()
