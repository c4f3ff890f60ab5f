"""A worker process of the local engine, and its client of the engine.

The driver starts ``python -m plait.engines.local.worker FD INDEX SHM SPILL
PARENT NOTICE_FD`` with one end of a socket pair as ``FD`` and one of a second
pair, the notice channel, as ``NOTICE_FD``. The worker runs the task batches it
receives in order and sends results back in batches: when its queue runs dry,
every 64 results, 2 ms after the oldest unsent one, or before a call the driver
has not measured short starts (it may run long, and the results before it must
not wait for it).

Code running in a task talks to the engine through the same ``WorkerRuntime``
(it is the worker's ``current_engine``): nested task calls, ``put``, actor
calls and ``get``/``wait``. A ``get`` that must wait hands the worker's queued,
unstarted tasks back to the driver with the request, and the driver lends the
worker's CPU to another worker until the answer is sent, so recursive programs
cannot deadlock. Every message either way, with its fields, is listed in
``messages.py``.

A nested call's future that gets a done-callback asks the driver to say when
it is done (``NOTIFY``); the answer comes on the notice channel, read by a
thread of its own (started at the first such future), so the callback runs
when the call ends even while the task that made it computes. (``await`` in a
task waits through ``wait_for`` instead, as a ``get`` does.)

An actor that allows several calls at once (``max_concurrency``, or async
methods) runs them on threads or on its event loop (``invoke.SideBySide``); the
main thread then only reads frames and starts calls, so a method waiting for an
answer from the driver (``get``, ``create_actor``) is woken by the main thread
(``_Replies``) instead of reading the socket itself. Messages to the driver
queue in ``outbox`` (appended from any thread) and leave in order, one frame per
``flush``, under ``send_lock``.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from typing import Any

from plait.engines.local import messages as M
from plait.engines.local.messages import ACTOR_CALL, ACTOR_INIT, TASK
from plait.engines.local.store import StoreDirs, decode, encode
from plait.engines.local.wire import BlockingChannel
from plait.errors import ObjectStoreFullError, PlaitError
from plait.runtime import context
from plait.runtime import future as fut_mod
from plait.runtime import serialization as ser
from plait.runtime.actor import ActorHandle, check_handle, no_such_actor
from plait.runtime.engine import Engine
from plait.runtime.future import FAILED, FINISHED, PENDING, Future
from plait.runtime.invoke import SideBySide, call_with_retries, format_remote, run_method
from plait.runtime.task import check_count

_FLUSH_COUNT = 64
# calls run inside the calls that wait for them, in one process: each level costs about
# seven Python frames, so this stays well inside the default recursion limit of 1000
MAX_NESTED_WAITS = 100
_FLUSH_DELAY = 0.002


class WorkerRuntime(Engine):
    name = "local"
    awaits_by_waiting = True  # a task awaiting a call waits for it, as a get does

    def __init__(
        self, channel: BlockingChannel, index: int, dirs: StoreDirs, parent: int, notices: BlockingChannel
    ) -> None:
        self.parent = parent
        self.channel = channel
        self.notices = notices
        self.watched: dict[int, list[Future]] = {}  # held until the driver says they are done
        self.watch_lock = threading.Lock()
        self.notice_reader: threading.Thread | None = None
        self.index = index
        self.dirs = dirs
        # each task function as the driver sent it (pickled, with its options, and its name);
        # unpickled when a call of it first runs, as that call: see _function
        self.function_blobs: dict[int, tuple[bytes, bytes, str]] = {}
        self.functions: dict[int, tuple[Any, Any]] = {}
        self.queue: deque[tuple] = deque()
        self.outbox: deque[Any] = deque()
        self.send_lock = threading.Lock()
        self.results_pending = 0
        self.oldest_result = 0.0
        self.releases: deque[int] = deque()
        self.map_deltas: deque[tuple[int, int]] = deque()  # store files mapped (+1) and let go (-1)
        self.ids = itertools.count(1)
        self.requests = itertools.count(1)
        self.function_numbers = itertools.count(1)
        self.function_keys: dict[tuple[int, Any], tuple[int, Any]] = {}
        self.actor: Any = None
        self.side_by_side: SideBySide | None = None  # an actor whose calls run at once
        self.calls_running: dict[int, Any] = {}  # its calls started and not ended, by id
        self.replies = _Replies()
        self.actor_name = ""
        self.hosts_actor = False
        self.cuda_default = os.environ.get("CUDA_VISIBLE_DEVICES")
        self.session = dirs.shm  # the driver's: its handles are good here
        self.running = running_slot(dirs, index)  # the id of the task being run, for the driver
        self.stopped = False  # the driver said BYE: an end of stream now is no death
        self.helping = 0  # awaited calls running here inside the calls that wait for them

    # ------------------------------------------------------------ main loop
    def serve(self) -> None:
        self.channel.send([(M.HELLO,)])  # the driver now knows a task could have started here
        queue = self.queue
        while True:
            if not queue:
                self.flush()
                frame = self.channel.recv()
                if frame is None:
                    return
                self.handle(frame, blocked=False)
                if self.stopped:
                    return
                continue
            item = queue.popleft()
            if self.results_pending and not item[7]:
                self.flush()  # it may run long: the results before it go now
            self.execute(item)
            if self.results_pending >= _FLUSH_COUNT or (
                self.results_pending and time.monotonic() - self.oldest_result > _FLUSH_DELAY
            ):
                self.flush()

    def handle(self, frame: list[Any], blocked: bool) -> dict[int, Any]:
        replies: dict[int, Any] = {}
        for msg in frame:
            if msg[0] == M.RUN:
                _, functions, items = msg
                self._define(functions)
                if blocked and not self.hosts_actor:
                    self.outbox.append((M.RETURN, [item[1] for item in items]))
                else:
                    self.queue.extend(items)
            elif msg[0] == M.BYE:
                self.stopped = True
            elif msg[0] == M.STOP:
                self._stop_call(msg[1])
            else:  # REPLY
                _, req, answer = msg
                if not self.replies.deliver(req, answer):
                    replies[req] = answer
        return replies

    def _stop_call(self, tid: int) -> None:
        """The driver cancelled a call of this async actor: its coroutine is cancelled (the
        driver has already failed its future, and drops what it still sends)."""
        running = self.calls_running.get(tid)
        if running is not None:
            running.cancel()
            return
        for item in self.queue:
            if item[1] == tid:  # sent, not started
                self.queue.remove(item)
                return

    def _define(self, functions: list[tuple[int, bytes, bytes, str]]) -> None:
        for fid, blob, options, name in functions:
            self.function_blobs[fid] = (blob, options, name)

    def _function(self, fid: int) -> tuple[Any, Any]:
        """A task function and its options, unpickled on first use. Unpickling runs user code
        (the function's module imports, what it captures): it runs as the call's own work, so
        that an error fails that call with it, and a process it kills charges that call's
        retries (unpickled on arrival, it killed every worker it reached, for ever)."""
        loaded = self.functions.get(fid)
        if loaded is None:
            blob, options, name = self.function_blobs[fid]
            try:
                loaded = self.functions[fid] = (ser.loads(blob), ser.loads(options))
            except Exception as exc:
                raise ser.SerializationError(
                    f"task {name!r} could not be loaded in a worker process "
                    f"({type(exc).__name__}: {exc}): a task and what it captures must unpickle in a "
                    "fresh process; define it in an importable module, and capture no object that "
                    "cannot be rebuilt there"
                ) from exc
        return loaded

    def track(self, oid: int, delta: int) -> None:
        self.map_deltas.append((oid, delta))  # may run in a finalizer: appends only

    def flush(self) -> None:
        with self.send_lock:
            out: list[Any] = []
            if self.map_deltas:
                # first in the frame: a mapping is known before any release that could free it
                out.append((M.MAPS, _drain(self.map_deltas)))
            outbox = self.outbox
            while outbox:
                out.append(outbox.popleft())
            if self.releases:
                out.append((M.RELEASE, _drain(self.releases)))
            if out:
                self.results_pending = 0
                self.channel.send(out)

    def execute(self, item: tuple) -> tuple[bool, Any]:
        previous = self.now_running
        self.now_running = item[1]
        try:
            return self._execute(item)
        finally:
            self.now_running = previous

    def _help_with(self, item: tuple) -> tuple[bool, Any]:
        """Run an awaited call here, inside the call that waits for it, unless calls already
        wait for each other too deep in this process (Python's recursion limit would end the
        chain with an error a few thousand frames long): then it fails, naming the depth."""
        if self.helping >= MAX_NESTED_WAITS:
            name = self._item_name(item)
            error = PlaitError(
                f"task {name!r} would be call {MAX_NESTED_WAITS + 1} of a chain of calls that "
                f"each wait (get) for the next inside one worker; chains deeper than {MAX_NESTED_WAITS} "
                "are refused: compute the chain in a loop, or pass futures on instead of waiting for them"
            )
            return self._report(item[0], item[1], name, time.time(), False, error)
        self.helping += 1
        try:
            return self.execute(item)
        finally:
            self.helping -= 1

    def _item_name(self, item: tuple) -> str:
        kind, what = item[0], item[2]
        if kind == TASK:
            return self.function_blobs[what[0] if type(what) is tuple else what][2]
        return f"{self.actor_name}.{what}" if kind == ACTOR_CALL else "actor.__init__"

    @property
    def now_running(self) -> int:
        return int.from_bytes(self.running[:8], "little")

    @now_running.setter
    def now_running(self, tid: int) -> None:
        self.running[:8] = tid.to_bytes(8, "little")

    def _execute(self, item: tuple) -> tuple[bool, Any]:
        """Run one work item and queue its outcome for the driver (a call of an actor whose
        calls run side by side is only started: its outcome is sent when it ends)."""
        kind, tid, what, args, deps, gpus, timed, _ = item
        if timed:
            self.outbox.append((M.START, tid))
            self.flush()
        dep_payloads = deps
        dirs = self.dirs

        def resolve(oid: int) -> Any:
            return decode(dirs, dep_payloads[oid], self._adopt_ref, self.track)

        outputs = None
        if kind == TASK:
            if type(what) is tuple:  # num_returns: each item of the result under its own id
                what, outputs = what
            name = self.function_blobs[what][2]
        elif kind == ACTOR_CALL:
            name = f"{self.actor_name}.{what}"
        else:
            name = "actor.__init__"
        start = time.time()
        try:
            if kind == ACTOR_INIT:
                blob, concurrency = what
                what = ser.loads(blob)
                name = f"{what.name}.__init__"
            if kind == TASK:
                fn, options = self._function(what)
                start = time.time()  # a first call's unpickling of its function is not its time
            call_args, call_kwargs = decode(dirs, args, resolve, self.track)
            if kind == TASK:
                if gpus is not None or os.environ.get("CUDA_VISIBLE_DEVICES") != self.cuda_default:
                    self._set_visible_gpus(gpus)
                result = call_with_retries(fn.fn, call_args, call_kwargs, options)
            elif kind == ACTOR_CALL:
                if self.side_by_side is not None:

                    def done(ok: bool, value: Any) -> None:
                        self.calls_running.pop(tid, None)
                        self._report(kind, tid, name, start, ok, value)
                        self.flush()

                    running = self.calls_running[tid] = self.side_by_side.start(what, call_args, call_kwargs, done)
                    if running.done():  # it ended before it was noted
                        self.calls_running.pop(tid, None)
                    return True, None
                result = run_method(self.actor, what, call_args, call_kwargs)
            else:
                self._set_visible_gpus(gpus)
                self.actor = what.cls(*call_args, **call_kwargs)
                self.actor_name = what.name
                self.hosts_actor = True
                if concurrency > 1:
                    self.side_by_side = SideBySide(self.actor, concurrency, what.is_async)
                result = None
            if outputs is not None:
                check_count(result, len(outputs), name)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
            return self._report(kind, tid, name, start, False, exc)
        if outputs is not None:
            return self._report_items(tid, name, start, result, outputs)
        return self._report(kind, tid, name, start, True, result)

    def _report(self, kind: int, tid: int, name: str, start: float, ok: bool, result: Any) -> tuple[bool, Any]:
        """Queue a call's outcome (its result, or the exception it raised) for the driver."""
        size = 0
        contained: list[int] = []
        if not ok:
            where = f"actor call {name!r}" if kind == ACTOR_CALL else f"task {name!r}"
            payload: Any = ser.dumps_exception(result, name, format_remote(result, where))
        else:
            ok, payload, size, contained = self._encode_result(tid, name, result)
        return self._done(tid, ok, payload, size, contained, start)

    def _report_items(self, tid: int, name: str, start: float, result: Any, outputs: tuple) -> tuple[bool, Any]:
        """The items of a ``num_returns`` call's result, each stored under its own id."""
        items = []
        for oid, value in zip(outputs, result, strict=True):
            ok, payload, size, contained = self._encode_result(oid, name, value)
            if not ok:
                return self._done(tid, False, payload, 0, [], start)
            items.append((payload, size, contained))
        return self._done(tid, True, items, 0, [], start)

    def _encode_result(self, oid: int, name: str, value: Any) -> tuple[bool, Any, int, list[int]]:
        if value is None:
            return True, ser.NONE, 0, []
        try:
            data, buffers, refs = ser.dumps(value)
            payload, size = encode(self.dirs, oid, data, buffers)
            return True, payload, size, [r._id for r in refs]
        except ObjectStoreFullError as exc:  # the call fails with what to do, the engine goes on
            return False, ser.dumps_exception(exc, name, ""), 0, []
        except Exception as exc:  # noqa: BLE001
            err = ser.result_error(name, value, exc)
            return False, ser.dumps_exception(err, name, ""), 0, []

    def _done(self, tid: int, ok: bool, payload: Any, size: int, contained: list[int], start: float) -> tuple[bool, Any]:
        if not self.results_pending:
            self.oldest_result = time.monotonic()
        self.results_pending += 1
        self.outbox.append((M.DONE, tid, ok, payload, size, contained, start, time.time()))
        return ok, payload

    def _set_visible_gpus(self, gpus: Any) -> None:
        if gpus is None:
            if self.cuda_default is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = self.cuda_default
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)

    # ------------------------------------------- the engine, as seen from a task
    def new_id(self) -> int:
        return (self.index << 40) | next(self.ids)

    def submit(self, fn: Any, args: tuple, kwargs: dict, options: Any) -> Future:
        key = (id(fn), options)
        known = self.function_keys.get(key)
        if known is None:
            if fn.blob is None:
                fn.blob = _dumps_function(fn)
            known = (next(self.function_numbers), fn)  # keep fn alive: its id is the key
            self.function_keys[key] = known
            self.outbox.append((M.FN, known[0], fn.blob, options, options.name or fn.name))
        name = options.name or fn.name
        tid = self.new_id()
        payload, size, refs, held = self._encode_args(name, args, kwargs)
        self.outbox.append((M.SUBMIT, tid, known[0], payload, size, refs, held))
        return Future(self, tid, name)

    def _encode_args(self, name: str, args: tuple, kwargs: dict) -> tuple[Any, int, list[int], list[int]]:
        data, buffers, refs = ser.dumps_args(name, args, kwargs, owner=self)
        if data is ser.EMPTY_ARGS:
            return data, 0, [], []
        payload, size = encode(self.dirs, self.new_id(), data, buffers)
        return payload, size, [r._id for r in refs], [r._id for r in refs.held]

    def put(self, value: Any) -> Future:
        oid = self.new_id()
        data, buffers, refs = ser.dumps_put(value, owner=self)
        payload, size = encode(self.dirs, oid, data, buffers)
        self.outbox.append((M.PUT, oid, payload, size, [r._id for r in refs]))
        future = Future(self, oid, "put")
        fut_mod.complete([(future, FINISHED, payload)])
        return future

    def wait_for(self, futures: list[Future], num_returns: int, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            pending = [f for f in futures if f._state == PENDING]
            needed = num_returns - (len(futures) - len(pending))
            if needed <= 0:
                return
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            returned: list[int] = []
            if remaining != 0 and not self.hosts_actor and self.queue:
                returned = [item[1] for item in self.queue]
                self.queue.clear()
            kind, *answer = self._request(
                (M.WAIT, None, [f._id for f in pending], needed, remaining, returned)
            )
            by_id: dict[int, list[Future]] = {}
            for f in pending:
                by_id.setdefault(f._id, []).append(f)
            batch = []
            if kind == M.HELP:  # nobody runs these yet: run them here, then ask again
                functions, items = answer
                self._define(functions)
                for item in items:
                    ok, payload = self._help_with(item)
                    data = payload if ok else ser.loads_exception(payload)
                    batch.extend((f, FINISHED if ok else FAILED, data) for f in by_id.get(item[1], ()))
                self.flush()
            else:
                for oid, ok, payload in answer[0]:
                    data = payload if ok else ser.loads_exception(payload)
                    batch.extend((f, FINISHED if ok else FAILED, data) for f in by_id.get(oid, ()))
            fut_mod.run_callbacks(fut_mod.complete(batch))
            if kind != M.HELP:
                return

    def _request(self, msg: tuple) -> Any:
        req = next(self.requests)
        if self.side_by_side is not None and threading.current_thread() is not threading.main_thread():
            # a call running side by side: the main thread reads the answer and hands it over
            answer = self.replies.expect(req)
            self.outbox.append((msg[0], req, *msg[2:]))
            self.flush()
            return answer.get()
        self.outbox.append((msg[0], req, *msg[2:]))
        self.flush()
        while True:
            frame = self.channel.recv()
            if frame is None:  # nobody will answer
                _end_of_stream(self, 1)
            replies = self.handle(frame, blocked=True)
            if self.stopped:
                _exit(0)
            self.flush()
            if req in replies:
                return replies[req]

    def watch(self, future: Future) -> None:
        with self.watch_lock:
            futures = self.watched.get(future._id)
            if futures is not None:
                futures.append(future)  # its NOTIFY went with the first
                return
            self.watched[future._id] = [future]
            self.outbox.append((M.NOTIFY, future._id))
            if self.notice_reader is None:
                self.notice_reader = threading.Thread(target=self._read_notices, daemon=True, name="plait-notices")
                self.notice_reader.start()
        self.flush()

    def _read_notices(self) -> None:
        """The notice channel's reader: completes watched futures and runs their callbacks."""
        while True:
            frame = self.notices.recv()
            if frame is None:
                return  # the driver is gone: the main thread sees it too
            batch = []
            for _, outcomes in frame:  # NOTICE messages only
                for oid, ok, payload in outcomes:
                    with self.watch_lock:
                        futures = self.watched.pop(oid, ())
                    try:
                        data = payload if ok else ser.loads_exception(payload)
                    except Exception as exc:  # noqa: BLE001 - this thread must go on for the others
                        data = PlaitError(f"the failure of a call could not be unpickled here: {type(exc).__name__}: {exc}")
                    batch.extend((f, FINISHED if ok else FAILED, data) for f in futures)
            fut_mod.run_callbacks(fut_mod.complete(batch))  # a callback's error is logged there

    def value_of(self, future: Future) -> Any:
        return decode(self.dirs, future._payload, self._adopt_ref, self.track)

    def refresh(self, future: Future) -> None:
        self.wait_for([future], 1, 0)

    def cancel(self, future: Future, force: bool = False) -> bool:
        return bool(self._request((M.CANCEL, None, future._id, force)))

    def release(self, object_id: int) -> None:
        self.releases.append(object_id)

    def adopt(self, object_id: int, name: str) -> Future:
        self.outbox.append((M.ADDREF, object_id))
        return Future(self, object_id, name)

    def _adopt_ref(self, object_id: int) -> Future:
        return self.adopt(object_id, "")

    def create_actor(self, cls: Any, args: tuple, kwargs: dict, options: Any) -> ActorHandle:
        """Made by the driver, like every actor: the request carries the class and arguments."""
        import cloudpickle

        try:
            blob = cloudpickle.dumps((cls, args, kwargs, options), protocol=5)
        except Exception as exc:  # noqa: BLE001 - say which actor could not travel
            raise ser.SerializationError(
                f"cannot send actor {cls.name!r} and its arguments to the driver to create it: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        kind, value = self._request((M.CREATE_ACTOR, None, blob))
        if kind == "error":
            raise value
        return value

    def call_actor(self, handle: ActorHandle, method: str, args: tuple, kwargs: dict) -> Future:
        check_handle(handle, self)
        name = f"{handle._name}.{method}"
        tid = self.new_id()
        payload, size, refs, held = self._encode_args(name, args, kwargs)
        self.outbox.append((M.ACALL, tid, handle._actor_id, method, payload, size, refs, held))
        return Future(self, tid, name)

    def get_actor(self, name: str) -> ActorHandle:
        handle = self._request((M.GET_ACTOR, None, name))
        if handle is None:
            raise no_such_actor(name, self.name)
        return handle

    def kill_actor(self, handle: ActorHandle) -> None:
        check_handle(handle, self)
        self.outbox.append((M.AKILL, handle._actor_id))

    def status(self) -> list[dict[str, Any]]:
        return []

    def timeline_events(self) -> list[dict[str, Any]]:
        return []

    def shutdown(self) -> None:
        return None


class _Replies:
    """Answers from the driver to requests made by calls running side by side, handed
    from the main thread (which alone reads the socket) to the thread that asked."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.expected: dict[int, _Answer] = {}

    def expect(self, req: int) -> _Answer:
        answer = _Answer()
        with self.lock:
            self.expected[req] = answer
        return answer

    def deliver(self, req: int, value: Any) -> bool:
        with self.lock:
            answer = self.expected.pop(req, None)
        if answer is None:
            return False
        answer.value = value
        answer.ready.set()
        return True


class _Answer:
    __slots__ = ("ready", "value")

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.value: Any = None

    def get(self) -> Any:
        self.ready.wait()
        return self.value


def _drain(items: deque) -> list:
    out = []
    while items:
        out.append(items.popleft())
    return out


def running_slot(dirs: StoreDirs, index: int) -> Any:
    """8 bytes of shared memory holding the id of the task this worker is running (0: none).

    A worker that dies leaves its last value there, so the driver charges a retry
    to the task that really was running, not to one merely queued behind it.
    """
    import mmap

    fd = os.open(f"{dirs.shm}/workers/w{index}", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        os.ftruncate(fd, 8)
        return mmap.mmap(fd, 8)
    finally:
        os.close(fd)


def _dumps_function(fn: Any) -> bytes:
    import cloudpickle

    return cloudpickle.dumps(fn, protocol=5)


def _watch_parent(parent: int, dirs: StoreDirs) -> None:
    """Exit if the driver dies while a task keeps this process busy."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            _orphaned(dirs)


def _end_of_stream(runtime: WorkerRuntime, code: int) -> None:
    """The driver's end of the channel closed. After its ``BYE`` that is a stop; without,
    the driver died, and whoever outlives it removes its store. The kernel closes a dying
    process's files before it hands its children to a new parent, so a worker may see the
    end of stream while its parent still looks alive: it waits for the handover."""
    with contextlib.suppress(OSError):  # a BYE may wait unread (a send to the closed end failed first)
        while not runtime.stopped:
            frame = runtime.channel.recv()
            if frame is None:
                break
            runtime.handle(frame, blocked=True)
    if runtime.stopped:
        _exit(code)
    deadline = time.monotonic() + 5.0
    while os.getppid() == runtime.parent and time.monotonic() < deadline:
        time.sleep(0.005)
    if os.getppid() != runtime.parent:
        _orphaned(runtime.dirs)
    _exit(code)  # the driver lives (a frame cut short): it cleans up itself


def _exit(code: int) -> None:
    """Exit without interpreter teardown (nothing left to do, and slow), but not without what
    the tasks printed: ``os._exit`` alone would drop what still waits in the stdio buffers."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _orphaned(dirs: StoreDirs) -> None:
    """The driver died without shutting down: remove its store (every worker tries) and exit."""
    import shutil

    shutil.rmtree(dirs.shm, ignore_errors=True)
    shutil.rmtree(dirs.spill, ignore_errors=True)
    _exit(1)


def main(argv: list[str]) -> None:
    fd, index, shm, spill, parent = int(argv[0]), int(argv[1]), argv[2], argv[3], int(argv[4])
    notice_fd = int(argv[5])
    # processes a task starts must not hold the channels: the driver would not see this one die
    os.set_inheritable(fd, False)
    os.set_inheritable(notice_fd, False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # what a task prints reaches the driver's terminal or file line by line, as it runs (a
    # worker's stdio is the driver's: a pipe or a file would otherwise hold it in blocks)
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)
    dirs = StoreDirs(shm, spill)
    threading.Thread(target=_watch_parent, args=(parent, dirs), daemon=True, name="plait-watchdog").start()
    channel = BlockingChannel(socket.socket(fileno=fd))
    notices = BlockingChannel(socket.socket(fileno=notice_fd))
    runtime = WorkerRuntime(channel, index, dirs, parent, notices)
    context.set_engine(runtime)
    try:
        runtime.serve()
        if not runtime.stopped:
            runtime.flush()
    except OSError:  # the driver closed our channel: nothing left to do
        pass
    _end_of_stream(runtime, 0)  # exits, skipping interpreter teardown (nothing left, and slow)


if __name__ == "__main__":
    main(sys.argv[1:])
