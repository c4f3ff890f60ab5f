"""What the engines that lower to another cluster framework (Ray, Dask) share.

These engines keep no scheduler of their own: a plait task becomes a task of
the framework, a plait ``Future`` wraps the framework's handle (stored in
``future._payload``), and the framework moves values and tracks dependencies.
This module holds the parts that do not depend on the framework:

- how a call's arguments travel (``pack_args``/``unpack_args``): futures among
  the top-level arguments are passed as the framework's own handles, which it
  resolves; futures nested anywhere else (found by pickling the arguments with
  plait's pickler, as the local engine does) are passed as extra top-level
  handles next to the pickled arguments, and substituted in the worker, so a
  call waits for all of them and no value makes a trip through the driver;
- running a call in the worker (``run_call``): retries on exceptions, the
  ``timeout=`` option, the exception sent back as itself with its remote
  traceback (``Failure``), and a span for the timeline;
- ``ClusterEngine``: futures, waiting, done-callbacks, and the engine parts
  that only differ by a few framework calls.

A plait ``Future`` pickled inside a value (``put``, a result) is written with
the framework's handle in it (the engine's ``reduce_future``, which
``Future.__reduce__`` asks), so the framework counts the reference and the
receiving process rebuilds a live future.
"""

from __future__ import annotations

import ctypes
import inspect
import itertools
import os
import signal
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from plait.errors import PlaitError, TaskError, TaskTimeoutError
from plait.runtime import future as fut_mod
from plait.runtime import serialization as ser
from plait.runtime.engine import Engine
from plait.runtime.future import CANCELLED, FAILED, FINISHED, PENDING, Future, released_error
from plait.runtime.invoke import SideBySide, call_with_retries, format_remote, run_method

# how a call's arguments travel (first positional argument of the remote wrapper)
PLAIN = 0  # args and kwargs as given; top-level futures replaced by native handles
PACKED = 1  # (data, buffers, ids, *native handles): pickled by plait, futures as persistent ids


class Failure(Exception):
    """A task's exception, pickled by plait, travelling through the framework as an error.

    The framework sees a plain exception (so its own error propagation to
    dependents applies); plait turns it back into the task's exception, with
    its type and remote traceback (``unwrap``).
    """

    def __init__(self, payload: bytes, task_name: str) -> None:
        super().__init__(payload, task_name)
        self.payload = payload
        self.task_name = task_name

    def __reduce__(self) -> Any:
        return (Failure, (self.payload, self.task_name))

    def __repr__(self) -> str:
        return f"Failure({str(self)!r})"

    def __str__(self) -> str:
        try:
            exc = self.unwrap()
            if isinstance(exc, TaskError):
                return str(exc)  # it says which task raised what
            return f"task {self.task_name!r} raised {type(exc).__name__}: {exc}"
        except Exception:  # noqa: BLE001 - only a description
            return f"task {self.task_name!r} failed"

    def unwrap(self) -> BaseException:
        return ser.loads_exception(self.payload)


def failure(exc: BaseException, task_name: str, where: str) -> Failure:
    tb = format_remote(exc, where)
    exc.__cause__ = None
    exc.__traceback__ = None  # the text above is what travels (some pickle hooks would ship frames)
    return Failure(ser.dumps_exception(exc, task_name, tb), task_name)


def plain_failure(exc: BaseException, task_name: str) -> Failure:
    """A failure plait raises itself (timeouts, dead actors): no remote traceback."""
    return Failure(ser.dumps_exception(exc, task_name, ""), task_name)


# ---------------------------------------------------------------- arguments
def pack_args(
    name: str,
    args: tuple,
    kwargs: dict,
    native: Callable[[Future], Any],
    always_pickle: bool = False,
    hold: Callable[[Future], None] | None = None,
    opaque: bool = False,
    owner: Any = None,
) -> tuple[tuple, dict]:
    """The positional and keyword arguments of the framework's call of the wrapper.

    ``native(future)`` gives a future's framework handle. Arguments made only
    of atomic values and futures go as they are (the framework resolves the
    handles); others are pickled here, which also finds the futures nested
    inside them. Without nested futures and unless ``always_pickle``, the
    framework pickles the original arguments itself (so it can place large
    buffers in its own store); the pickling here then only served to find
    futures and to name an unpicklable argument. Futures passed as themselves
    (``plait.unresolved``) travel pickled by the framework (so their handles go
    with them, as the framework's own nested references), each given to
    ``hold`` first where the framework does not count such references.
    ``opaque``: every value goes pickled, so the framework sees only the handles
    (a graph in Dask's own format reads a string equal to one of its keys as
    that key). Every future must belong to ``owner``, the engine calling.
    """
    simple = not opaque
    for a in args if simple else ():
        t = type(a)
        if t is Future:
            if a._released:
                raise released_error(a)
            if a._engine is not owner:
                raise ser.foreign_future_error(a, owner)
            a._seen = True  # a dependency: its failure reaches the dependent (as in the pickler)
            continue
        if not ser.is_atomic(a):
            simple = False
            break
    if simple and kwargs:
        for v in kwargs.values():
            if type(v) is Future:
                if v._released:
                    raise released_error(v)
                if v._engine is not owner:
                    raise ser.foreign_future_error(v, owner)
                v._seen = True
            elif not ser.is_atomic(v):
                simple = False
                break
    if simple:
        call_args = tuple(native(a) if type(a) is Future else a for a in args)
        if kwargs:
            call_kwargs = {k: (native(v) if type(v) is Future else v) for k, v in kwargs.items()}
        else:
            call_kwargs = kwargs
        return (PLAIN, *call_args), call_kwargs
    data, buffers, refs = ser.dumps_args(name, args, kwargs, owner=owner)
    held = refs.held
    if hold is not None:
        for f in held:
            hold(f)
    if not refs and not (always_pickle or opaque) and not refs.shares_files:
        return (PLAIN, *args), kwargs
    ids: list[int] = []
    handles: list[Any] = []
    seen: set[int] = set()
    for f in refs:
        if f._id not in seen:
            seen.add(f._id)
            ids.append(f._id)
            handles.append(native(f))
    if always_pickle:  # the framework may pickle later: copy the buffers now
        buffers = [bytes(memoryview(b)) for b in buffers]
    held_ids = tuple(f._id for f in held)
    return (PACKED, data, buffers, tuple(ids), held_ids, tuple(held), *handles), {}


def put_error(engine: Any, value: Any, exc: BaseException) -> PlaitError:
    """Why the framework could not store ``value``: plait's own pickling says it best where a
    future inside is the cause (released, or another engine's); otherwise the framework's
    error, with what to do."""
    try:
        ser.dumps(value, owner=engine)
    except PlaitError as own:
        return own
    except Exception:  # noqa: BLE001 - the framework's error below says it
        pass
    return ser.put_error(value, exc)


def unpack_args(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """In the worker: the call's own arguments from what ``pack_args`` made."""
    if args[0] == PLAIN:
        return args[1:], kwargs
    return unpack_packed(args[1:])


def unpack_packed(args: tuple) -> tuple[tuple, dict]:
    """The arguments of a ``PACKED`` call: (data, buffers, ids, the ids of the futures
    passed as themselves, those futures (live here), *the resolved values)."""
    data, buffers, ids, held_ids, held, *values = args
    table = dict(zip(ids, values, strict=True))
    futures = dict(zip(held_ids, held, strict=True))
    return ser.loads(data, buffers, table.__getitem__, lambda oid, name: futures[oid])


# ------------------------------------------------------------------ timeouts
class _Overrun(BaseException):
    """Raised inside a task that ran past its ``timeout=`` (not an Exception: no retry catches it)."""


class Deadline:
    """Interrupts the calling thread after ``seconds``.

    In a process's main thread (Ray workers run tasks there) a ``SIGALRM``
    timer raises in the task, which also interrupts ``time.sleep`` and waits;
    in another thread (Dask's task threads) the exception is set
    asynchronously and raised at the task's next Python bytecode, so a
    blocking C call finishes first.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.active = False
        self.fired = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._old: Any = None
        self._thread_id = threading.get_ident()
        self._main = threading.current_thread() is threading.main_thread()

    def __enter__(self) -> Deadline:
        self.active = True
        if self._main:
            self._old = signal.signal(signal.SIGALRM, self._on_alarm)
            signal.setitimer(signal.ITIMER_REAL, max(self.seconds, 1e-3))
        else:
            self._timer = threading.Timer(self.seconds, self._on_timer)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _on_alarm(self, signum: int, frame: Any) -> None:
        if self.active:
            self.fired = True
            raise _Overrun()

    def _on_timer(self) -> None:
        with self._lock:
            if self.active:
                self.fired = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self._thread_id), ctypes.py_object(_Overrun)
                )

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self.active = False
            if self._main:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, self._old if self._old is not None else signal.SIG_DFL)
            else:
                assert self._timer is not None
                self._timer.cancel()
                if self.fired and exc[0] is None:  # set but not raised yet: clear it
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread_id), None)


# ------------------------------------------------------------- in the worker
SPANS_KEPT = 100_000
_spans: dict[str, deque] = {}
_spans_lock = threading.Lock()


def record_span(token: str, name: str, start: float, end: float, worker: int | None = None) -> None:
    """Keep a span for ``token``'s timeline; ``worker`` (a pid) defaults to this process."""
    with _spans_lock:
        buf = _spans.get(token)
        if buf is None:
            buf = _spans[token] = deque(maxlen=SPANS_KEPT)
        buf.append((name, start, end, worker or os.getpid()))


def take_spans(token: str, remove: bool = False) -> list[dict[str, Any]]:
    """This process's spans for ``token`` as timeline records."""
    with _spans_lock:
        buf = _spans.pop(token, None) if remove else _spans.get(token)
        items = list(buf) if buf else []
    return [{"name": n, "worker": w, "start": s, "end": e} for n, s, e, w in items]


def run_call(fn: Callable, args: tuple, kwargs: dict, options: Any, name: str, token: str | None) -> Any:
    """Run one task call: retries on exceptions, timeout, errors as ``Failure``.

    Its span goes to this process's buffer for ``token``; with ``token=None``
    the caller records it (``last_span`` holds it until the next call here).
    """
    start = time.time()
    timeout = options.timeout
    error: Failure | None = None
    try:
        if timeout is None:
            result = call_with_retries(fn, args, kwargs, options)
        else:
            with Deadline(timeout):
                result = call_with_retries(fn, args, kwargs, options)
    except _Overrun:
        error = plain_failure(_timeout_error(name, timeout), name)
    except Exception as exc:  # noqa: BLE001 - it travels inside the Failure
        error = failure(exc, name, f"task {name!r}")
    if error is not None:
        # raised outside the handler: no chain to the task's own exception, which travels
        # pickled by plait inside it (a framework pickling chains, as Dask does, could fail)
        raise error
    end = time.time()
    if timeout is not None and end - start > timeout:
        raise plain_failure(_timeout_error(name, timeout), name)
    _last.span = (start, end)
    if token is not None:
        record_span(token, name, start, end)
    return result


_last = threading.local()


def last_span() -> tuple[float, float]:
    """Start and end of the latest call run by this thread."""
    return _last.span


def _timeout_error(name: str, timeout: float) -> TaskTimeoutError:
    return TaskTimeoutError(f"task {name!r} ran over its timeout={timeout} s and was interrupted")


def call_method(instance: Any, method: str, args: tuple, kwargs: dict, name: str, token: str | None) -> Any:
    start = time.time()
    error: Failure | None = None
    result = None
    try:
        result = run_method(instance, method, args, kwargs)
    except Exception as exc:  # noqa: BLE001 - it travels inside the Failure
        error = failure(exc, name, f"actor call {name!r}")
    return _method_ended(name, token, start, error, result)


async def call_method_async(
    instance: Any, method: str, args: tuple, kwargs: dict, name: str, token: str | None
) -> Any:
    """``call_method`` on an event loop the cluster runs (a Ray async actor): a coroutine
    is awaited there, side by side with the actor's other calls."""
    start = time.time()
    error: Failure | None = None
    result = None
    try:
        result = getattr(instance, method)(*args, **kwargs)
        if inspect.iscoroutine(result):
            result = await result
    except Exception as exc:  # noqa: BLE001 - it travels inside the Failure
        error = failure(exc, name, f"actor call {name!r}")
    return _method_ended(name, token, start, error, result)


def call_method_side_by_side(
    calls: SideBySide, method: str, args: tuple, kwargs: dict, name: str, token: str | None, blocking: Any
) -> Any:
    """``call_method`` for an actor whose calls run at once (``invoke.SideBySide``): this
    thread waits for the call inside ``blocking()`` (where it lets others use its slot)."""
    start = time.time()
    ended = threading.Event()
    outcome: list = []

    def done(ok: bool, value: Any) -> None:
        outcome.append((ok, value))
        ended.set()

    calls.start(method, args, kwargs, done)
    with blocking():
        ended.wait()
    ok, value = outcome[0]
    error = None if ok else failure(value, name, f"actor call {name!r}")
    return _method_ended(name, token, start, error, value)


def _method_ended(name: str, token: str | None, start: float, error: Failure | None, result: Any) -> Any:
    if error is not None:
        raise error  # outside the handler: no chain (see run_call)
    end = time.time()
    _last.span = (start, end)
    if token is not None:
        record_span(token, name, start, end)
    return result


# ------------------------------------------------------------------ engine
class ClusterEngine(Engine):
    """Futures, waiting and callbacks for an engine whose futures wrap native handles.

    A subclass provides ``_ready(futures, need, timeout) -> ready futures``
    (blocking up to ``timeout``), ``_poll(futures) -> done futures`` (no
    blocking), and ``_settle_ready(futures)`` to give them their final state.

    The framework does not push completions to plait, so futures are brought
    up to date when someone waits (``wait_for``, ``refresh``). When
    ``wait_for`` returns, the futures it reports done are in their final
    state: finished, or failed with ``_exc`` set (front ends such as
    ``@parallel`` read ``_exc`` without asking for the value). A thread also
    watches the pending futures that have done-callbacks (``add_done_callback``,
    ``await``, progress bars), so those fire without anyone waiting.
    """

    name = "cluster"
    distant_workers = True
    WATCH_INTERVAL = 0.01
    WATCH_IDLE_MAX = 0.05
    SWEEP_INTERVAL = 1.0
    WAIT_SLICE = 1.0

    # Several driver threads may call the engine at once (``concurrent_clients``):
    # ``@parallel`` issues statements ahead from threads of its own, and the watcher
    # polls beside them. What they share is guarded here: ``_pending``, ``made`` and
    # the watcher's start by ``_pending_lock``; ``_waiting`` by ``_waiting_lock``;
    # future ids come from ``itertools.count``, whose ``next`` is atomic in CPython.
    # A future's state changes only in ``fut_mod.complete`` (under the futures lock),
    # which skips futures already settled, so two threads settling the same future
    # (two waiters, or a waiter and the watcher) leave it in the state of the first.
    # Locks are never held across a blocking call of the framework, and none of them
    # is taken by ``release``, which runs from ``Future.__del__`` (at any allocation,
    # possibly in a thread that holds one of them).

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        # every unsettled future, held strongly as the local engine holds its tasks: a
        # future whose only holder is its done-callback must still complete and call it
        self._pending: dict[int, Future] = {}
        self._live: weakref.WeakValueDictionary[int, Future] = weakref.WeakValueDictionary()
        self._pending_lock = threading.Lock()
        self.made = 0  # futures made here (a task that made none cannot return a live one)
        self._waiting = 0  # wait_for calls in progress: they settle what they wait for
        self._waiting_lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._closed = False
        self._wake = threading.Event()
        self._idle = 0
        self._idle_until = 0.0

    # futures ------------------------------------------------------------
    def _new_future(self, name: str, native: Any) -> Future:
        fut = Future(self, next(self._ids), name)
        fut._payload = native
        self._track(fut)
        return fut

    def _track(self, fut: Future) -> None:
        """Count ``fut`` as pending (the watcher and sweeps see it from now on)."""
        self._live[fut._id] = fut
        with self._pending_lock:
            self.made += 1
            self._pending[fut._id] = fut
        if self._watcher is None:
            self._start_watcher()

    def _done_future(self, name: str, native: Any) -> Future:
        fut = fut_mod.settled(self, next(self._ids), name, FINISHED, native)
        self._live[fut._id] = fut
        return fut

    def _failed_future(self, name: str, exc: BaseException) -> Future:
        fut = fut_mod.settled(self, next(self._ids), name, FAILED, exc)
        self._live[fut._id] = fut
        return fut

    def _complete(self, batch: list[tuple[Future, int, Any]]) -> None:
        if not batch:
            return
        callbacks = fut_mod.complete(batch)
        with self._pending_lock:
            for fut, _, _ in batch:
                self._pending.pop(fut._id, None)
        fut_mod.run_callbacks(callbacks)

    def _finish_all(self, futures: list[Future]) -> None:
        self._complete([(f, FINISHED, f._payload) for f in futures])

    def _mark_failed(self, fut: Future, exc: BaseException) -> None:
        """A future found to have failed after it was settled as finished (its value raised)."""
        callbacks = fut_mod.failed_after_all(fut, exc)
        with self._pending_lock:
            self._pending.pop(fut._id, None)
        fut_mod.run_callbacks(callbacks)

    def _cancel_local(self, fut: Future) -> None:
        self._complete([(fut, CANCELLED, None)])

    # room for speculative calls -------------------------------------------
    IDLE_REFRESH = 0.05  # seconds an answer of the cluster is reused

    def idle_capacity(self) -> int:
        """Task slots the cluster has free now (as its scheduler sees them, a moment ago):
        how many speculative calls ``@parallel`` may start."""
        now = time.monotonic()
        if now >= self._idle_until:
            self._idle = self._free_slots()
            self._idle_until = now + self.IDLE_REFRESH
        return self._idle

    def _free_slots(self) -> int:
        return 0

    def pending_futures(self) -> list[Future]:
        with self._pending_lock:
            return [f for f in self._pending.values() if f._state == PENDING]

    # waiting ------------------------------------------------------------
    def wait_for(self, futures: list[Future], num_returns: int, timeout: float | None) -> None:
        with self._waiting_lock:
            self._waiting += 1
        try:
            self._wait_for(futures, num_returns, timeout)
        finally:
            with self._waiting_lock:
                self._waiting -= 1

    def _wait_for(self, futures: list[Future], num_returns: int, timeout: float | None) -> None:
        unique = list({id(f): f for f in futures}.values())
        want_all = num_returns >= len(futures)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            pending = [f for f in unique if f._state == PENDING]
            if not pending:
                return
            if want_all:
                need = len(pending)
            else:
                need = num_returns - sum(1 for f in futures if f._state != PENDING)
                if need <= 0:
                    return
                need = min(need, len(pending))
            left: float | None = None
            if deadline is None:
                slice_s: float | None = self.WAIT_SLICE
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._settle_ready(self._poll(pending))
                    return
                slice_s = min(left, self.WAIT_SLICE)
            self._advance(pending, need, slice_s, left)

    def refresh(self, future: Future) -> None:
        if future._state == PENDING:
            self._settle_ready(self._poll([future]))

    def _advance(self, futures: list[Future], need: int, timeout: float | None, left: float | None) -> None:
        """Wait up to ``timeout`` for ``need`` of ``futures``; settle those that are done.

        ``timeout`` is one slice of the caller's wait; ``left`` the whole of
        what remains of it (None: no limit), for an engine that needs no slices.
        """
        self._settle_ready(self._ready(futures, need, timeout))

    def _settle_ready(self, futures: list[Future]) -> None:
        """Give done futures their final state: finished, or failed with the task's exception."""
        self._finish_all(futures)

    # the watcher --------------------------------------------------------
    def _start_watcher(self) -> None:
        with self._pending_lock:
            if self._watcher is not None:
                return
            self._watcher = threading.Thread(
                target=self._watch, name=f"plait-{self.name}-watcher", daemon=True
            )
        self._watcher.start()

    def _watch(self) -> None:
        """Fire done-callbacks of pending futures; now and then settle every pending one.

        Scanning costs O(pending) (attribute reads; a framework poll only for
        the futures with callbacks), so the intervals grow with the cost to
        keep the watcher a small share of one core, and while no future has
        callbacks the scans thin out (a new callback fires within
        ``WATCH_IDLE_MAX`` plus the framework's own delay). The sweep over all
        pending futures lets the ones nobody waits for go.
        """
        interval = self.WATCH_INTERVAL
        sweep_every = self.SWEEP_INTERVAL
        last_sweep = time.monotonic()
        while not self._closed:
            self._wake.wait(interval)
            if self._closed:
                return
            started = time.perf_counter()
            with self._pending_lock:
                pending = list(self._pending.values())
            # the sweep lets go of finished futures nobody waits for; while someone
            # waits, they do the settling, and sweeping would only double it
            sweep = not self._waiting and time.monotonic() - last_sweep >= sweep_every
            if sweep:
                watched = [f for f in pending if f._state == PENDING]
            else:
                watched = [f for f in pending if f._state == PENDING and f._callbacks]
            del pending
            found = bool(watched)
            if watched:
                try:
                    self._settle_ready(self._poll(watched))
                except Exception:  # noqa: BLE001 - the framework went away; waiting callers see why
                    if self._closed:
                        return
            del watched
            spent = time.perf_counter() - started
            if sweep:
                last_sweep = time.monotonic()
                sweep_every = max(self.SWEEP_INTERVAL, spent * 50)
            elif found:
                interval = max(self.WATCH_INTERVAL, spent * 20)
            else:  # nothing to fire lately: look less often (at most WATCH_IDLE_MAX between looks)
                interval = min(max(interval * 1.5, spent * 20), self.WATCH_IDLE_MAX)

    def _stop_watcher(self) -> None:
        self._closed = True
        self._wake.set()

    # subclass hooks -----------------------------------------------------
    def _ready(self, futures: list[Future], need: int, timeout: float | None) -> list[Future]:
        raise NotImplementedError

    def _poll(self, futures: list[Future]) -> list[Future]:
        raise NotImplementedError

    @property
    def session(self) -> str:  # type: ignore[override]
        return self.token  # an engine made in a worker takes its driver's (WorkerEngine.enter)

    # the rest of the protocol -------------------------------------------
    def release(self, object_id: int) -> None:
        return None  # the native handle held by the future is the reference

    def adopt(self, object_id: int, name: str) -> Future:
        """A future of this engine's, still alive here (across processes futures travel as
        the framework's own handles instead, see ``reduce_future``)."""
        return fut_mod.live_future(self._live, object_id, name, self.name)

    def status(self) -> list[dict[str, Any]]:
        return [
            {
                "name": f._name,
                "id": f._id,
                "state": "submitted",
                "why": f"handed to {self.name}; {self._where()}",
            }
            for f in self.pending_futures()
        ]

    def _where(self) -> str:
        return "the framework's own dashboard shows where it runs"


class WorkerEngine:
    """Which engine a cluster worker process talks to: the driver's own, or one made here once.

    Code running in a Ray or Dask worker (nested task calls, ``get``, actor
    calls) needs ``current_engine()`` to be an engine of the same kind attached
    to the same cluster; the first task to run in the process makes it.
    """

    def __init__(self, cls: type, make: Callable[[], Any]) -> None:
        self.cls = cls
        self.make = make
        self.engine: Any = None
        self.lock = threading.Lock()

    def get(self) -> Any:
        from plait.runtime import context

        engine = context.engine_or_none()
        if isinstance(engine, self.cls):
            return engine
        with self.lock:
            if self.engine is None:
                self.engine = self.make()
            if context.engine_or_none() is None:
                context.set_engine(self.engine)
            return self.engine

    def enter(self, token: str) -> Any:
        """The engine for a call about to run here; ``token`` tags the spans it records."""
        engine = self.get()
        if engine.in_worker:
            engine.token = token
        return engine
