"""``plait.Future``: the handle to a value that a task will produce.

A Future is engine-agnostic. Its engine completes it (``_finish``/``_fail``) and
turns its payload into a value on demand (``engine.value_of``), so a result that
only feeds other tasks is never deserialized in the driver.

Waiting is cheap: a future keeps a list of *waiters* (objects with a
``notify(future)`` method) rather than a lock and condition of its own, so that
``get`` over ten thousand futures costs one event, not ten thousand.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import Any

from plait.errors import GetTimeoutError, ReleasedError

PENDING, FINISHED, FAILED, CANCELLED = 0, 1, 2, 3
_STATE_NAMES = {PENDING: "pending", FINISHED: "finished", FAILED: "failed", CANCELLED: "cancelled"}

# One lock guards the waiter lists and state changes of all futures. Its
# critical sections are a few attribute writes, so contention is negligible.
_lock = threading.Lock()
_NO_VALUE = object()


class Future:
    """The result of a task call, an actor call or ``plait.put``.

    Like ``concurrent.futures.Future``: ``result(timeout)``, ``done()``,
    ``exception()``, ``cancel()``, ``add_done_callback()``, and ``await``.
    Passing a future (also inside lists, tuples, dicts and sets) to a task makes
    it a dependency: the task receives the value.
    """

    __slots__ = (
        "_id",
        "_engine",
        "_name",
        "_state",
        "_payload",
        "_value",
        "_exc",
        "_waiters",
        "_callbacks",
        "_seen",
        "_released",
        "__weakref__",
    )

    def __init__(self, engine: Any, object_id: int, name: str = "") -> None:
        self._id = object_id
        self._engine = engine
        self._name = name
        self._state = PENDING
        self._payload: Any = None
        self._value: Any = _NO_VALUE
        self._exc: BaseException | None = None
        self._waiters: list | None = None
        self._callbacks: list | None = None
        self._seen = False  # something read its outcome (or took it on): a failure is not lost
        self._released = False  # its holder let go of its value (release())

    # ------------------------------------------------------------------ user API
    @property
    def id(self) -> int:
        return self._id

    @property
    def name(self) -> str:
        return self._name

    def done(self) -> bool:
        if self._state == PENDING:
            self._engine.refresh(self)
        return self._state != PENDING

    def cancelled(self) -> bool:
        return self._state == CANCELLED

    def result(self, timeout: float | None = None) -> Any:
        if self._state == PENDING:
            self._engine.wait_for([self], 1, timeout)
            if self._state == PENDING:
                raise GetTimeoutError(
                    f"task {self._name!r} did not finish within {timeout} s; "
                    "plait.status() shows what it is waiting for"
                )
        if self._state == FINISHED:
            if self._value is _NO_VALUE:
                self.offer_value(self._engine.value_of(self))
            return self._value
        if self._state == CANCELLED:
            raise CancelledError(f"task {self._name!r} was cancelled")
        assert self._exc is not None
        self._seen = True
        raise self._exc

    def __bool__(self) -> bool:
        raise TypeError(
            f"a plait.Future (of task {self._name!r}) has no truth value: `if future:` would "
            "always be true. Use future.result() for the task's value, or future.done() to ask "
            "whether it has finished"
        )

    def offer_value(self, value: Any) -> None:
        """The value, fetched by the engine or by a thread: kept unless one is there already.

        The first fetched object is *the* value: the program may hold it and change it
        in place, so threads fetching at once, or an engine prefetching late, never
        replace it."""
        with _lock:
            if self._value is _NO_VALUE and not self._released:
                self._value = value

    def exception(self, timeout: float | None = None) -> BaseException | None:
        try:
            self.result(timeout)
        except GetTimeoutError:
            raise
        except CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - the exception is the answer
            return exc
        return None

    def cancel(self, force: bool = False) -> bool:
        """Cancel the task if it has not started; True if the future is now cancelled.

        A running task: on the local engine ``cancel()`` returns False and it runs on;
        ``force=True`` stops the worker running it (replaced at once; the other calls
        queued there run elsewhere, their retries unspent). On Ray, ``cancel()``
        interrupts it (``KeyboardInterrupt`` in the task, as ``ray.cancel``) and
        ``force=True`` kills its worker. On Dask the future is cancelled at once but a
        task already running finishes, unused; ``force=True`` raises ``NotSupported``.
        A running call of an async actor: ``cancel()`` cancels its coroutine
        (``asyncio.CancelledError`` at its ``await``) and the future is cancelled at once,
        on the local engine as on Ray. Actor calls cannot be force-cancelled (that would
        kill the actor: plait.kill)."""
        if self._state == CANCELLED:
            return True
        if self._state != PENDING:
            return False
        return bool(self._engine.cancel(self, force))

    def release(self) -> None:
        """Let go of this future's value now, not when the object is collected (as Dask's
        ``Future.release``): a layer done with a value frees it at once, even while a
        traceback, a cache or a closure still refers to this object.

        The value lives on while others hold it: other futures of it, calls that read
        it, values that contain it. From now on this future is failed with
        ``ReleasedError``, and passing it to a task raises that error. A pending future
        cannot be released (its engine still completes it): cancel it, or release it
        once it is done. Releasing twice does nothing."""
        with _lock:
            if self._released:
                return
            if self._state == PENDING:
                raise ValueError(
                    f"{self!r} is still pending and cannot be released: cancel() it, or "
                    "release() it once it is done"
                )
            self._released = True
            self._seen = True
            self._state = FAILED
            self._exc = released_error(self)
            self._payload = None
            self._value = _NO_VALUE
        self._engine.release(self._id)

    def add_done_callback(self, fn: Callable[[Future], Any]) -> None:
        self._seen = True  # the callback looks at the outcome
        with _lock:
            waits = self._state == PENDING
            if waits:
                first = self._callbacks is None
                if first:
                    self._callbacks = []
                self._callbacks.append(fn)
        if not waits:
            fn(self)
        elif first and self._engine is not None:
            self._engine.watch(self)  # told once: it may ask its framework to say when done

    def __await__(self):
        import asyncio

        loop = asyncio.get_running_loop()
        if self._state == PENDING and self._engine.awaits_by_waiting:
            yield from loop.run_in_executor(None, self._engine.wait_for, [self], 1, None).__await__()
            return self.result()
        aio = loop.create_future()

        def relay(_f: Future) -> None:
            loop.call_soon_threadsafe(_settle, aio)

        self.add_done_callback(relay)
        yield from aio.__await__()
        return self.result()

    def __repr__(self) -> str:
        return f"<plait.Future {self._name or ''}#{self._id:x} {_STATE_NAMES[self._state]}>"

    def mark_seen(self) -> None:
        """A front end took this future's outcome on (a dependent task, a program that
        reports its failures): its failure is not lost if the future is dropped."""
        self._seen = True

    def __del__(self) -> None:
        if self._state == FAILED and not self._seen:
            _report_unread(self)
        engine = self._engine
        if engine is not None and not self._released:
            engine.release(self._id)

    def __reduce__(self):
        # Only reached when a future is pickled inside a value (put, a result) by a pickler
        # other than plait's (which records futures as references): its engine says how
        engine = self._engine
        if self._released:
            raise released_error(self)
        from plait.runtime import context

        pickling = context.override.engine or context.engine_or_none()
        if pickling is not None and engine is not pickling:
            # it would be rebuilt by id on arrival, as one of the pickling engine's futures
            from plait.runtime.serialization import foreign_future_error

            raise foreign_future_error(self, pickling)
        reduced = engine.reduce_future(self) if engine is not None else None
        return reduced or (_rebuild_future, (self._id, self._name))

    # ------------------------------------------------------------ engine side
    def _add_waiter(self, waiter: Any) -> bool:
        """Register ``waiter``; False if the future is already done."""
        with _lock:
            if self._state != PENDING:
                return False
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            return True

    def _remove_waiter(self, waiter: Any) -> None:
        with _lock:
            if self._waiters and waiter in self._waiters:
                self._waiters.remove(waiter)


class Unresolved:
    """A future passed to a task as itself, not as its value (``plait.unresolved``)."""

    __slots__ = ("future",)

    def __init__(self, future: Future) -> None:
        self.future = future

    def __reduce__(self) -> Any:
        # pickled by a framework (Ray, Dask): the future itself travels, with its handle
        return (_unwrapped, (self.future,))

    def __repr__(self) -> str:
        return f"plait.unresolved({self.future!r})"


def released_error(future: Future) -> ReleasedError:
    return ReleasedError(
        f"future {future._name!r} (#{future._id:x}) was released (Future.release()): its value is "
        "no longer reachable through it; keep the future unreleased while anything still reads it"
    )


def _unwrapped(future: Future) -> Future:
    return future


def _settle(aio: Any) -> None:
    if not aio.done():
        aio.set_result(None)


def _report_unread(future: Future) -> None:
    """A failure nothing read: said once, through the ``plait`` logger (as Ray reports
    unhandled errors), rather than lost."""
    try:
        import logging

        exc = future._exc
        logging.getLogger("plait").warning(
            "task %r failed and its future was dropped without its result being read: %s: %s "
            "(call result() or exception() on the futures whose failures matter)",
            future._name, type(exc).__name__, exc,
        )  # fmt: skip
    except Exception:  # noqa: BLE001 - at interpreter exit logging may be gone
        pass


def live_future(live: Any, object_id: int, name: str, engine: str) -> Future:
    """``adopt`` for engines that keep their futures in ``live`` (id -> future, weakly)."""
    future = live.get(object_id)
    if future is None:
        import pickle

        raise pickle.UnpicklingError(
            f"future {name!r} (id {object_id}) cannot be rebuilt on the {engine} engine: it is no "
            "longer alive here (its value was released); keep a reference to the future while it "
            "travels, or pass futures as task arguments or inside put() values"
        )
    return future


def _rebuild_future(object_id: int, name: str) -> Future:
    from plait.runtime.context import current_engine

    return current_engine().adopt(object_id, name)


def complete(batch: list[tuple[Future, int, Any]]) -> list[tuple[Callable, Future]]:
    """Move futures to a final state; returns the callbacks to run.

    ``batch`` holds ``(future, state, payload_or_exception)``. The caller runs
    the returned callbacks outside any engine lock: they are user code.
    """
    callbacks: list[tuple[Callable, Future]] = []
    with _lock:
        for fut, state, data in batch:
            if fut._state != PENDING:
                continue
            if state == FINISHED:
                fut._payload = data
            elif state == FAILED:
                fut._exc = data
            fut._state = state
            waiters = fut._waiters
            if waiters is not None:
                fut._waiters = None
                for w in waiters:
                    w.notify(fut)
            cbs = fut._callbacks
            if cbs is not None:
                fut._callbacks = None
                callbacks.extend((cb, fut) for cb in cbs)
    return callbacks


def settled(engine: Any, object_id: int, name: str, state: int, data: Any) -> Future:
    """A future made in its final state (a ``put``, a call refused before it ran): ``data``
    is its payload when finished, its exception when failed. Nobody waits on it yet."""
    future = Future(engine, object_id, name)
    complete([(future, state, data)])
    return future


def failed_after_all(future: Future, exc: BaseException) -> list[tuple[Callable, Future]]:
    """A future settled as finished whose value turned out not to exist (reading it
    raised: its node died with it): failed from now on, the one change of a final state.
    Returns the callbacks to run when it was still pending."""
    with _lock:
        if future._state == FINISHED:
            future._state = FAILED
            future._exc = exc
            return []
    return complete([(future, FAILED, exc)])


def run_callbacks(callbacks: list[tuple[Callable, Future]]) -> None:
    import logging

    for cb, fut in callbacks:
        try:
            cb(fut)
        except Exception:  # a callback's failure must not kill the scheduler
            logging.getLogger("plait").exception("done-callback %r of %r raised", cb, fut)


class Waiter:
    """Wakes a thread once ``needed`` of the futures it watches are done."""

    __slots__ = ("_event", "_needed", "done")

    def __init__(self, needed: int) -> None:
        self._event = threading.Event()
        self._needed = needed
        self.done: list[Future] = []
        if needed <= 0:
            self._event.set()

    def notify(self, fut: Future) -> None:  # called with the futures lock held
        self.done.append(fut)
        if len(self.done) >= self._needed:
            self._event.set()

    def wait(self, timeout: float | None) -> bool:
        return self._event.wait(timeout)


def wait_local(futures: list[Future], num_returns: int, timeout: float | None) -> None:
    """Block until ``num_returns`` of ``futures`` are done (futures completed by a thread)."""
    already = sum(1 for f in futures if f._state != PENDING)
    if already >= num_returns:
        return
    waiter = Waiter(num_returns - already)
    registered = []
    for f in futures:
        if f._add_waiter(waiter):
            registered.append(f)
        # a future that finished between the count and here counts now
    extra = len(futures) - len(registered) - already
    if extra > 0:
        with _lock:
            waiter._needed -= extra
            if len(waiter.done) >= waiter._needed:
                waiter._event.set()
    try:
        waiter.wait(timeout)
    finally:
        for f in registered:
            if f._state == PENDING:
                f._remove_waiter(waiter)
