"""The local engine's driver side: the scheduler, its I/O thread and the workers it owns.

Scheduling policy
-----------------
A task call becomes a ``_Task``. It is *waiting* while some of its inputs (the
futures found in its arguments) are unfinished, *ready* once all are finished,
*assigned* once it has been sent to a worker, and it leaves ``tasks`` when it
finishes, fails or is cancelled. Ready tasks queue by *shape* (the resources a
call holds while it runs) in ``ready``.

A worker runs the tasks it is sent one after another. To run tasks of a shape
it takes a *lease* of that shape from the resource pool and holds it while it
has tasks in flight; when its queue drains, the lease goes back. A worker may
have up to ``DEPTH`` tasks in flight, so it never idles waiting for the next
message while work is queued. Calls from user threads only hand work to idle
workers; refills happen on the I/O thread when results arrive, so a burst of
submissions travels in a few large batches rather than one message per task.
While some shape is starved of resources, no worker takes on more work of
another shape than it is running.

A worker that calls ``get`` on unfinished futures hands back its unstarted
tasks and lends its CPU (not its GPUs) to the pool until the answer is sent;
if resources are free and no worker is idle, another worker is started. So a
recursive program cannot deadlock however few workers there are.

State (all guarded by ``_lock``)
--------------------------------
``tasks``       id -> _Task not yet finished
``results``     id -> (ok, payload): finished values, and errors as pickled exceptions
``refs``        id -> number of holders: driver futures, waiting dependents,
                futures held inside workers, values that contain the future
``dependents``  id -> tasks waiting for that id
``ready``       shape -> deque of ready tasks
``workers``     index -> _Worker; ``actors``: id -> _Actor

A value is freed (its store file deleted) when its task finished and its
refcount is zero. Results stay in the driver as payloads (inline bytes or a
store file id): a value that only feeds other tasks is never unpickled here.

Faults
------
A worker that dies (EOF on its socket) has its running task re-run elsewhere
while ``retries`` last, then failed with ``WorkerCrashedError``; the tasks
queued behind it are re-queued at no cost. Finished values live in the driver
or in store files, so nothing already computed is lost. An actor's death fails
its in-flight calls with ``ActorDiedError``, then restarts it (``max_restarts``)
or fails every later call too.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from typing import Any

from plait.engines.local import messages as M
from plait.engines.local.messages import ACTOR_CALL, ACTOR_INIT, OUTPUT, TASK
from plait.engines.local.store import ObjectStore, decode, delete_object, encode
from plait.engines.local.wire import Connection, pack
from plait.errors import (
    ActorDiedError,
    EngineError,
    NotSupported,
    PlaitError,
    TaskTimeoutError,
    WorkerCrashedError,
)
from plait.runtime import future as fut_mod
from plait.runtime import serialization as ser
from plait.runtime.actor import ActorHandle, check_handle, name_taken, no_such_actor
from plait.runtime.calls import Call, check_graph, with_results
from plait.runtime.engine import Engine
from plait.runtime.future import CANCELLED, FAILED, FINISHED, Future
from plait.runtime.resources import ResourcePool, detect_cpus, detect_gpu_ids, detect_memory

log = logging.getLogger("plait")

DEPTH = 64  # tasks in flight per worker
# a call whose task's mean run time (typical_run_time) is under this is short: the share of
# the queue a worker takes counts short and long calls apart (see _ReadyQueue), and a worker
# sends the results it has before it starts a call that is not short
SHORT_TASK_S = 0.001
IDLE_RETIRE_S = 5.0  # an extra worker idle this long is stopped
WAITING, READY, ASSIGNED, DONE = 0, 1, 2, 3
_MIN_EXTRA_WORKERS = 16  # workers started for blocked ones: at least this many, or one per worker


class _Task:
    __slots__ = (
        "id",
        "kind",
        "what",
        "name",
        "options",
        "args",
        "deps",
        "held",
        "outputs",
        "waiting",
        "shape",
        "retries_left",
        "state",
        "worker",
        "actor",
        "future",
        "submitted",
        "timeout",
        "short",
    )

    def __init__(
        self, tid: int, kind: int, what: Any, name: str, options: Any, args: Any, shape: Any
    ) -> None:
        self.id = tid
        self.kind = kind
        self.what = what  # function id, method name, or pickled actor class
        self.name = name
        self.options = options
        self.args = args
        self.deps: tuple[int, ...] = ()
        self.held: tuple[int, ...] = ()  # futures passed as themselves: kept alive, not awaited
        self.outputs: tuple[_Task, ...] = ()  # num_returns: one OUTPUT task per item
        self.waiting = 0
        self.shape = shape
        self.retries_left = options.retries if kind == TASK else 0
        self.state = WAITING
        self.worker: _Worker | None = None
        self.actor: _Actor | None = None
        self.future: Future | None = None
        self.submitted = time.monotonic()
        self.timeout = options.timeout if kind == TASK else None
        self.short = False  # measured much shorter than a dispatch, when it became ready


class _ReadyQueue(deque):
    """The ready tasks of one shape, in order, with a count of the short ones among them
    (``_Task.short``; kept by every place that adds or takes one): a worker's share of the
    long ones counts only those, so equal long tasks split evenly however many short ones
    (lifted operations) are mixed in."""

    def __init__(self) -> None:
        super().__init__()
        self.short = 0

    def add(self, task: _Task) -> None:
        self.append(task)
        self.short += task.short

    def add_left(self, task: _Task) -> None:
        self.appendleft(task)
        self.short += task.short

    def take(self, task: _Task) -> None:
        self.remove(task)
        self.short -= task.short

    def take_first(self) -> _Task:
        task = self.popleft()
        self.short -= task.short
        return task


_BYE = pack([(M.BYE,)])


def _flush_driver_output() -> None:
    """Workers print to the driver's own stdout: what the driver printed before a call left
    goes out first, so the two read in the order they happened (the driver's stdout, piped,
    holds its lines in a buffer; a worker's is line-buffered)."""
    with contextlib.suppress(Exception):  # None under pythonw, or a stream that cannot flush
        sys.stdout.flush()


def oom_kills() -> int | None:
    """How many processes the kernel's out-of-memory killer has stopped (``/proc/vmstat``,
    Linux 4.13+, cgroup limits included), or None where the kernel does not say."""
    try:
        with open("/proc/vmstat", "rb") as f:
            for line in f:
                if line.startswith(b"oom_kill "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


class _Exited:
    """Selector data for a worker's exit descriptor (its socket's data is the worker)."""

    __slots__ = ("worker",)

    def __init__(self, worker: _Worker) -> None:
        self.worker = worker


class _NoticesOut:
    """Selector data for a notice channel with output the socket has not taken yet."""

    __slots__ = ("worker",)

    def __init__(self, worker: _Worker) -> None:
        self.worker = worker


def _exit_fd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux, or a kernel before 5.3: the socket's end only
        return None


def worker_path(inherited: str) -> str:
    """The ``PYTHONPATH`` a worker starts with: the driver's own ``sys.path``, in its order
    (``""``, the working directory, made absolute), so a worker imports exactly what the
    driver would and nothing planted in the directory a script is run from."""
    entries = [p or os.getcwd() for p in sys.path]
    if inherited:
        entries.append(inherited)
    return os.pathsep.join(dict.fromkeys(entries))


class _Worker:
    __slots__ = (
        "index",
        "proc",
        "conn",
        "lease",
        "inflight",
        "blocked",
        "actor",
        "functions",
        "alive",
        "borrowed",
        "killed",
        "idle_since",
        "started",
        "maps",
        "exit_fd",
        "notices",
    )

    def __init__(self, index: int, proc: subprocess.Popen, conn: Connection, notices: Connection) -> None:
        self.index = index
        self.proc = proc
        self.conn = conn
        self.notices = notices  # outcomes of nested calls the worker watches (NOTICE)
        self.lease: Any = None
        self.inflight: deque[_Task] = deque()
        self.blocked: _RemoteWait | None = None
        self.actor: _Actor | None = None
        self.functions: set[int] = set()
        self.alive = True
        self.borrowed: dict[int, int] = {}
        self.killed = False  # stopped on purpose: its running task is not charged a retry
        self.idle_since = time.monotonic()
        self.started = False  # said hello: before that, no task can have started here
        self.maps: dict[int, int] = {}  # store files this process has mapped
        # readable when the process exits, even while a child it forked keeps its socket open
        self.exit_fd = _exit_fd(proc.pid)

    def close_channels(self) -> None:
        self.conn.close()
        self.notices.close()


class _Actor:
    __slots__ = (
        "id",
        "name",
        "options",
        "blob",
        "concurrency",
        "args",
        "deps",
        "held",
        "restarts_left",
        "worker",
        "queue",
        "dead",
        "grant",
        "is_async",
    )

    def __init__(
        self,
        aid: int,
        name: str,
        options: Any,
        blob: bytes,
        concurrency: int,
        args: Any,
        deps: tuple[int, ...],
        is_async: bool,
    ) -> None:
        self.id = aid
        self.name = name
        self.options = options
        self.blob = blob
        self.concurrency = concurrency  # calls at once, in the actor's process
        self.args = args
        self.deps = deps
        self.held: tuple[int, ...] = ()  # futures passed to __init__ as themselves
        self.restarts_left = options.max_restarts
        self.worker: _Worker | None = None
        self.queue: deque[_Task] = deque()  # calls not yet sent, in call order
        self.dead: BaseException | None = None
        self.grant: Any = None
        self.is_async = is_async  # its methods are coroutines: a running call can be cancelled


class _RemoteWait:
    """A worker's ``get``/``wait`` the driver answers when enough ids finish; with ``req``
    None, a ``NOTIFY``, answered on the worker's notice channel."""

    __slots__ = ("worker", "req", "ids", "needed", "deadline", "active")

    def __init__(
        self, worker: _Worker, req: int | None, ids: list[int], needed: int, deadline: float | None
    ) -> None:
        self.worker = worker
        self.req = req
        self.ids = ids
        self.needed = needed
        self.deadline = deadline
        self.active = True


class LocalEngine(Engine):
    name = "local"
    concurrent_clients = True  # any thread may submit: @parallel may look ahead

    def __init__(self, config: Any) -> None:
        self.config = config
        self.num_workers = config.workers or detect_cpus()
        gpu_ids = config.gpu_ids or (
            [str(i) for i in range(config.num_gpus)] if config.num_gpus is not None else detect_gpu_ids()
        )
        self.pool = ResourcePool(
            config.num_cpus if config.num_cpus is not None else self.num_workers,
            gpu_ids,
            config.memory or detect_memory(),
            config.resources,
        )
        self.store = ObjectStore(config.object_store_memory, config.spill_dir)
        self.session = self.store.dirs.shm  # a directory of this engine's alone; workers know it
        self._lock = threading.Lock()
        self._handlers = self._message_handlers()
        self._ids = itertools.count(1)
        self.tasks: dict[int, _Task] = {}
        self.results: dict[int, tuple[bool, Any]] = {}
        self.refs: dict[int, int] = {}
        self.contained: dict[int, list[int]] = {}
        self.dependents: dict[int, list[_Task]] = {}
        self.ready: dict[Any, _ReadyQueue] = {}
        self.workers: dict[int, _Worker] = {}
        self.actors: dict[int, _Actor] = {}
        self._named: dict[str, ActorHandle] = {}  # .options(name=...) actors
        self._pending_actors: deque[_Actor] = deque()
        self._watchers: dict[int, list[_RemoteWait]] = {}
        self._timed_waits: list[_RemoteWait] = []
        self._deadlines: dict[int, tuple[float, _Worker]] = {}
        self._function_ids: dict[tuple[Any, Any], int] = {}
        self._function_blobs: dict[int, bytes] = {}
        self._function_meta: dict[int, tuple[Any, str]] = {}
        self._options_blobs: dict[int, bytes] = {}  # a function's options as workers get them
        self._worker_functions: dict[tuple[int, int], int] = {}
        self._feasible: set[Any] = set()
        self._released: deque[int] = deque()
        self._map_deltas: deque[tuple[int, int]] = deque()
        self.maps: dict[int, int] = {}  # store files mapped, by object id, over all processes
        self._notify: list[tuple[Future, int, Any]] = []
        self._spans: deque[tuple[str, int, float, float]] = deque(maxlen=100_000)
        self._run_times: dict[str, list[float]] = {}  # task name -> [runs, total seconds]
        self._worker_seq = itertools.count(1)
        self._failed_starts = 0
        self._broken: bytes | None = None  # set when workers cannot start at all
        self._failure: EngineError | None = None  # set when the scheduler thread failed
        self._oom_kills = oom_kills() or 0  # the kernel's count, to tell an OOM kill from others
        self._starving = False  # some shape could not get resources in the last round
        self._starved = False
        self._closing = False
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._new_workers: deque[_Worker] = deque()
        self._retired: list[subprocess.Popen] = []
        self._want_write: set[_Worker] = set()
        self._woken = False
        with self._lock:
            for _ in range(self.num_workers):
                self._spawn()
        self._io_thread = threading.Thread(target=self._io_loop, name="plait-scheduler", daemon=True)
        self._io_thread.start()

    # ================================================================ processes
    def _spawn(self) -> _Worker:
        parent, child = socket.socketpair()
        notice_parent, notice_child = socket.socketpair()
        index = next(self._worker_seq)
        env = dict(os.environ)
        env["PYTHONPATH"] = worker_path(env.get("PYTHONPATH", ""))
        proc = subprocess.Popen(
            [
                sys.executable,
                "-P",  # no working directory first on sys.path: the driver's path only
                "-m",
                "plait.engines.local.worker",
                str(child.fileno()),
                str(index),
                self.store.dirs.shm,
                self.store.dirs.spill,
                str(os.getpid()),
                str(notice_child.fileno()),
            ],
            pass_fds=(child.fileno(), notice_child.fileno()),
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the driver, which stops the workers
        )
        child.close()
        notice_child.close()
        worker = _Worker(index, proc, Connection(parent), Connection(notice_parent))
        self.workers[index] = worker
        self._new_workers.append(worker)
        self._wake()
        log.debug("started worker %d (pid %d)", index, proc.pid)
        return worker

    def _wake(self) -> None:
        if not self._woken:
            self._woken = True
            try:
                os.write(self._wake_w, b"\0")
            except (BlockingIOError, OSError):
                pass

    def _send(self, worker: _Worker, messages: list[Any]) -> None:
        if not worker.conn.write(pack(messages)):
            self._want_write.add(worker)
            self._wake()

    def _send_notice(self, worker: _Worker, outcomes: list[tuple]) -> None:
        if not worker.notices.write(pack([(M.NOTICE, outcomes)])):
            self._want_write.add(worker)
            self._wake()

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [w.proc.pid for w in self.workers.values() if w.alive and w.actor is None]

    def actor_pid(self, handle: ActorHandle) -> int | None:
        with self._lock:
            actor = self.actors.get(handle._actor_id)
            return actor.worker.proc.pid if actor and actor.worker else None

    # ============================================================ the I/O thread
    def _io_loop(self) -> None:
        """The scheduler thread: it must not die silently, or every future would wait forever.
        An internal error fails every pending call with an ``EngineError`` that names it."""
        try:
            self._serve()
        except BaseException as exc:  # noqa: BLE001 - said, and every waiter is woken
            log.exception("the plait scheduler failed")
            self._fail_everything(exc)

    def _fail_everything(self, exc: BaseException) -> None:
        error = EngineError(
            f"the plait scheduler failed ({type(exc).__name__}: {exc}); this engine cannot go on: "
            "call plait.shutdown(), then plait.init() for a new one (and please report the error)"
        )
        with self._lock:
            self._failure = error
            notify = [(t.future, FAILED, error) for t in self.tasks.values() if t.future is not None]
            notify += [(o.future, FAILED, error) for t in self.tasks.values() for o in t.outputs if o.future is not None]
        fut_mod.run_callbacks(fut_mod.complete(notify))

    def _fail_call_of(self, msg: tuple, exc: Exception) -> None:
        """A handler failed on a call's outcome: that call fails with the cause, rather than
        staying pending forever (if even that fails, the scheduler cannot go on)."""
        if msg[0] != M.DONE:
            return
        task = self.tasks.get(msg[1])
        if task is not None and task.id not in self.results:
            error = EngineError(
                f"the plait scheduler could not take the outcome of {task.name!r} ({type(exc).__name__}: {exc}); "
                "please report the error"
            )
            worker = task.worker
            if worker is not None and task in worker.inflight:
                worker.inflight.remove(task)  # its worker is free for the next call
            self._finish(task, False, ser.dumps_exception(error, task.name, ""))
            if worker is not None and not worker.inflight:
                self._release_lease_if_idle(worker)

    def _serve(self) -> None:
        selector = self._selector
        while True:
            events = selector.select(self._next_timeout())
            if self._closing:
                return
            inbound: list[tuple[_Worker, list[Any]]] = []
            dead: list[_Worker] = []
            for key, mask in events:
                worker = key.data
                if type(worker) is _Exited:  # the process is gone: read what it sent, then bury it
                    worker = worker.worker
                    if worker.alive:
                        frames = worker.conn.read()
                        if frames:
                            inbound.append((worker, frames))
                        dead.append(worker)
                    continue
                if type(worker) is _NoticesOut:  # the rest of a notice the socket did not take
                    if worker.worker.notices.flush():
                        selector.unregister(key.fileobj)
                    continue
                if worker is None:
                    try:
                        while os.read(self._wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                    self._woken = False  # after draining: a wake from now on writes again
                    continue
                if mask & selectors.EVENT_WRITE and worker.conn.flush():
                    with self._lock:
                        self._want_write.discard(worker)
                    if worker.alive:
                        selector.modify(worker.conn.sock, selectors.EVENT_READ, worker)
                if mask & selectors.EVENT_READ:
                    frames = worker.conn.read()
                    if frames is None:
                        dead.append(worker)
                    elif frames:
                        inbound.append((worker, frames))
            with self._lock:
                self._register_connections()
                self._drain_released()
                for worker, frames in inbound:
                    for frame in frames:
                        for msg in frame:
                            try:
                                self._on_message(worker, msg)
                            except Exception as exc:  # a bug here must not stop the scheduler
                                log.exception("plait scheduler failed on message %r", msg[0])
                                self._fail_call_of(msg, exc)
                for worker in dead:
                    if worker.alive:
                        self._on_worker_death(worker)
                self._check_deadlines()
                self._schedule(eager=True)
                if len(self.workers) > self.num_workers:
                    self._retire_extra_workers()
                notify, self._notify = self._notify, []
            if notify:
                fut_mod.run_callbacks(fut_mod.complete(notify))
                notify = []  # no reference to the futures while this thread waits for more

    def _register_connections(self) -> None:
        while self._new_workers:
            worker = self._new_workers.popleft()
            if worker.alive:
                self._selector.register(worker.conn.sock, selectors.EVENT_READ, worker)
                if worker.exit_fd is not None:
                    self._selector.register(worker.exit_fd, selectors.EVENT_READ, _Exited(worker))
        for worker in list(self._want_write):
            if worker.alive and worker.notices.out:
                with contextlib.suppress(KeyError):  # not registered yet (else it is already)
                    self._selector.register(worker.notices.sock, selectors.EVENT_WRITE, _NoticesOut(worker))
            if worker.alive and worker.conn.out:
                self._selector.modify(worker.conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, worker)
            else:
                self._want_write.discard(worker)

    def _next_timeout(self) -> float:
        timeout = 1.0
        if self._deadlines or self._timed_waits:
            now = time.monotonic()
            for deadline, _ in self._deadlines.values():
                timeout = min(timeout, deadline - now)
            for wait in self._timed_waits:
                if wait.deadline is not None:
                    timeout = min(timeout, wait.deadline - now)
        return max(0.0, timeout)

    def _on_message(self, worker: _Worker, msg: tuple) -> None:
        """One message from a worker (``messages.py`` lists them), under the lock."""
        self._handlers[msg[0]](worker, msg)

    def _message_handlers(self) -> dict[int, Callable[[_Worker, tuple], None]]:
        return {
            M.DONE: self._on_done_message,
            M.MAPS: self._on_maps,
            M.HELLO: self._on_hello,
            M.START: self._on_start,
            M.FN: self._on_function,
            M.SUBMIT: self._on_submit,
            M.PUT: self._on_put,
            M.ADDREF: self._on_addref,
            M.RELEASE: self._on_release,
            M.ACALL: self._on_actor_call,
            M.AKILL: self._on_actor_kill,
            M.RETURN: self._on_return,
            M.WAIT: self._on_wait,
            M.CANCEL: self._on_cancel,
            M.CREATE_ACTOR: self._on_create_actor,
            M.GET_ACTOR: self._on_get_actor,
            M.NOTIFY: self._on_notify,
        }

    def _on_done_message(self, worker: _Worker, msg: tuple) -> None:
        _, tid, ok, payload, size, contained, start, end = msg
        self._on_done(worker, tid, ok, payload, size, contained, start, end)

    def _on_maps(self, worker: _Worker, msg: tuple) -> None:
        self._count_maps(msg[1], worker)

    def _on_hello(self, worker: _Worker, msg: tuple) -> None:
        worker.started = True
        self._failed_starts = 0

    def _on_start(self, worker: _Worker, msg: tuple) -> None:
        task = self.tasks.get(msg[1])
        if task is not None and task.worker is worker:
            self._deadlines[task.id] = (time.monotonic() + task.timeout, worker)

    def _on_function(self, worker: _Worker, msg: tuple) -> None:
        _, key, blob, options, name = msg
        fid = len(self._function_blobs) + 1
        self._function_blobs[fid] = blob
        self._function_meta[fid] = (options, name)
        self._worker_functions[(worker.index, key)] = fid

    def _on_submit(self, worker: _Worker, msg: tuple) -> None:
        _, tid, key, payload, size, deps, held = msg
        fid = self._worker_functions[(worker.index, key)]
        options, name = self._function_meta[fid]
        task = _Task(tid, TASK, fid, name, options, payload, options.shape())
        if size:
            self.store.added(payload, size)
        self.refs[tid] = 1
        worker.borrowed[tid] = worker.borrowed.get(tid, 0) + 1
        try:
            self._check_feasible(task.shape, name)
        except PlaitError as exc:
            self.tasks[tid] = task
            self._finish(task, False, ser.dumps_exception(exc, name, ""))
        else:
            self._add(task, deps, held)

    def _on_put(self, worker: _Worker, msg: tuple) -> None:
        _, oid, payload, size, contained = msg
        self.refs[oid] = 1
        worker.borrowed[oid] = worker.borrowed.get(oid, 0) + 1
        self._store_result(oid, True, payload, size, contained)

    def _on_addref(self, worker: _Worker, msg: tuple) -> None:
        oid = msg[1]
        if oid in self.refs:
            self.refs[oid] += 1
            worker.borrowed[oid] = worker.borrowed.get(oid, 0) + 1

    def _on_release(self, worker: _Worker, msg: tuple) -> None:
        for oid in msg[1]:
            held = worker.borrowed.get(oid, 0)
            if held <= 1:
                worker.borrowed.pop(oid, None)
            else:
                worker.borrowed[oid] = held - 1
            self._decref(oid)

    def _on_actor_call(self, worker: _Worker, msg: tuple) -> None:
        _, tid, aid, method, payload, size, deps, held = msg
        if size:
            self.store.added(payload, size)
        self.refs[tid] = 1
        worker.borrowed[tid] = worker.borrowed.get(tid, 0) + 1
        self._add_actor_call(tid, self.actors[aid], method, payload, deps, held)

    def _on_actor_kill(self, worker: _Worker, msg: tuple) -> None:
        actor = self.actors.get(msg[1])
        if actor is not None:
            self._kill_actor(actor)

    def _on_return(self, worker: _Worker, msg: tuple) -> None:
        self._requeue([t for t in (self.tasks.get(tid) for tid in msg[1]) if t is not None], worker)

    def _on_wait(self, worker: _Worker, msg: tuple) -> None:
        _, req, ids, needed, timeout, returned = msg
        self._on_remote_wait(worker, req, ids, needed, timeout, returned)

    def _on_notify(self, worker: _Worker, msg: tuple) -> None:
        oid = msg[1]
        if oid in self.results:
            self._send_notice(worker, [(oid, *self.results[oid])])
        else:
            self._watchers.setdefault(oid, []).append(_RemoteWait(worker, None, [oid], 1, None))

    def _on_cancel(self, worker: _Worker, msg: tuple) -> None:
        _, req, oid, force = msg
        try:
            cancelled = self._cancel(oid, force)
        except NotSupported:
            cancelled = False  # an actor call from inside a task: it runs on
        self._send(worker, [(M.REPLY, req, cancelled)])

    def _on_create_actor(self, worker: _Worker, msg: tuple) -> None:
        # create_actor takes the engine lock, held here: a thread of its own does it
        _, req, blob = msg
        threading.Thread(target=self._create_for_worker, args=(worker, req, blob), daemon=True).start()

    def _on_get_actor(self, worker: _Worker, msg: tuple) -> None:
        _, req, name = msg
        self._send(worker, [(M.REPLY, req, self._live_named(name))])

    # ================================================================= tasks
    def submit(self, fn: Any, args: tuple, kwargs: dict, options: Any) -> Future:
        name = options.name or fn.name
        fid, shape = self._function_id(fn, options, name)
        made = self._new_task(fid, name, options, shape, args, kwargs)
        future = made[0].future  # taken now: a task that fails at once lets go of its future
        self._admit_and_place([made])
        return future

    def submit_many(self, fn: Any, calls: list[tuple[tuple, dict]], options: Any) -> list[Future]:
        """All the calls admitted under one lock and placed in one scheduling pass."""
        name = options.name or fn.name
        fid, shape = self._function_id(fn, options, name)
        with self._encoding() as made:
            made.extend(self._new_task(fid, name, options, shape, args, kwargs) for args, kwargs in calls)
        futures = [made_task[0].future for made_task in made]  # before one failing at once drops its own
        self._admit_and_place(made)
        return futures

    def submit_graph(self, calls: list[Call]) -> list[Future]:
        """The whole graph admitted under one lock and placed in one scheduling pass: each
        call's future exists before any is admitted, so later calls encode earlier ones
        as ordinary dependencies."""
        check_graph(calls)
        futures: list[Future] = []
        with self._encoding() as made:
            for fn, args, kwargs, options in calls:
                args, kwargs = with_results((args, kwargs), futures)
                name = options.name or fn.name
                fid, shape = self._function_id(fn, options, name)
                made_task = self._new_task(fid, name, options, shape, args, kwargs)
                made.append(made_task)
                futures.append(made_task[0].future)
        self._admit_and_place(made)
        return futures

    @contextlib.contextmanager
    def _encoding(self) -> Iterator[list[tuple[_Task, int, list[int], list[int]]]]:
        """The calls encoded in its block, for one admission: if one cannot be encoded, the
        store files of those before it go too (they will never be admitted)."""
        made: list[tuple[_Task, int, list[int], list[int]]] = []
        try:
            yield made
        except BaseException:
            for task, size, _, _ in made:
                if size:
                    delete_object(self.store.dirs, task.args)
            raise

    def submit_returning(self, fn: Any, args: tuple, kwargs: dict, options: Any) -> tuple[Future, ...] | None:
        """One call whose worker stores each item of the result apart: an ``OUTPUT`` task
        per item, finished by the driver when the call finishes (no task per item)."""
        count = options.num_returns
        if count < 2:
            return super().submit_returning(fn, args, kwargs, options)
        name = options.name or fn.name
        fid, shape = self._function_id(fn, options, name)
        made = self._new_task(fid, name, options, shape, args, kwargs, own_future=False)
        task = made[0]
        outputs = []
        for i in range(count):
            oid = next(self._ids)
            item = _Task(oid, OUTPUT, task, f"{name}[{i}]", options, None, ())
            item.future = Future(self, oid, item.name)
            outputs.append(item)
        task.outputs = tuple(outputs)
        futures = tuple(item.future for item in outputs)
        self._admit_and_place([made])
        return futures

    def _function_id(self, fn: Any, options: Any, name: str) -> tuple[int, Any]:
        """The id workers know a (task, options) pair by, and its resource shape."""
        shape = options.shape()
        self._check_feasible(shape, name)
        fid = self._function_ids.get((fn, options))
        if fid is None:
            if fn.blob is None:
                import cloudpickle

                try:
                    fn.blob = cloudpickle.dumps(fn, protocol=5)
                except Exception as exc:  # noqa: BLE001
                    raise ser.SerializationError(
                        f"task {name!r} cannot be sent to a worker: pickling the function failed "
                        f"({type(exc).__name__}: {exc}); a task must not capture unpicklable objects "
                        "(locks, open files, sockets) in its closure or globals"
                    ) from exc
            with self._lock:
                fid = self._function_ids.get((fn, options))
                if fid is None:
                    fid = len(self._function_blobs) + 1
                    self._function_blobs[fid] = fn.blob
                    self._function_meta[fid] = (options, name)
                    self._function_ids[(fn, options)] = fid
        return fid, shape

    def _new_task(
        self, fid: int, name: str, options: Any, shape: Any, args: tuple, kwargs: dict, own_future: bool = True
    ) -> tuple[_Task, int, list[int], list[int]]:
        """A call with its arguments encoded (outside the lock), and its future (none for a
        num_returns call: its items have futures of their own)."""
        data, buffers, refs = ser.dumps_args(name, args, kwargs, owner=self)
        payload, size = self._encode(data, buffers)
        tid = next(self._ids)
        task = _Task(tid, TASK, fid, name, options, payload, shape)
        if own_future:
            task.future = Future(self, tid, name)
        return task, size, [r._id for r in refs], [r._id for r in refs.held]

    def _admit_and_place(self, made: list[tuple[_Task, int, list[int], list[int]]]) -> None:
        """New calls admitted under the lock, placed in one pass, their futures completed
        (outside the lock) where they finished at once."""
        _flush_driver_output()
        with self._lock:
            self._check_open()
            self._drain_released()  # values dropped before these calls are freed before they run
            for task, size, deps, held in made:
                self._admit(task, size, deps, held)
            self._schedule(eager=False)
            notify, self._notify = self._notify, []
        if notify:
            fut_mod.run_callbacks(fut_mod.complete(notify))

    def _admit(self, task: _Task, size: int, deps: list[int], held: list[int]) -> None:
        if size:
            self.store.added(task.args, size)
        for item in task.outputs:  # num_returns: each item's future holds a reference
            self.refs[item.id] = 1
            self.tasks[item.id] = item
        # the call's own future holds one; a num_returns call has none (its items do)
        self.refs[task.id] = 0 if task.outputs else 1
        self._add(task, deps, held)

    def _check_feasible(self, shape: Any, name: str) -> None:
        if shape not in self._feasible:
            self.pool.check_feasible(shape, f"task {name!r}")
            self._feasible.add(shape)

    def _encode(self, data: bytes, buffers: list[Any]) -> tuple[Any, int]:
        if not buffers and len(data) < 4096:
            return data, 0
        return encode(self.store.dirs, next(self._ids), data, buffers)

    def _check_open(self) -> None:
        if self._closing:
            raise RuntimeError("this plait engine was shut down; call plait.init() to start a new one")
        if self._failure is not None:
            raise self._failure

    def _add(self, task: _Task, dep_ids: list[int], held: Sequence[int] = ()) -> None:
        """Register a new task and its dependencies; make it ready if it can run."""
        self.tasks[task.id] = task
        failed = None
        if held:
            kept = self._hold(task.name, held)
            task.held = kept
            if len(kept) < len(set(held)):
                failed = self._freed_error(task.name)
        if dep_ids:
            deps = tuple(dict.fromkeys(dep_ids))
            task.deps = deps
            for dep in deps:
                if dep not in self.refs:
                    failed = self._freed_error(task.name)
                    continue
                self.refs[dep] += 1
                result = self.results.get(dep)
                if result is None:
                    task.waiting += 1
                    self.dependents.setdefault(dep, []).append(task)
                elif not result[0]:
                    failed = result[1]
        if task.actor is not None:
            task.actor.queue.append(task)
        if failed is not None:
            self._finish(task, False, failed)
        elif task.waiting == 0:
            self._make_ready(task)

    def _hold(self, name: str, held: Sequence[int]) -> tuple[int, ...]:
        """Count one more reference to each live future of ``held``; those counted."""
        kept = []
        for oid in dict.fromkeys(held):
            if oid in self.refs:
                self.refs[oid] += 1
                kept.append(oid)
        return tuple(kept)

    def _freed_error(self, name: str) -> bytes:
        error = LookupError(f"task {name!r} was given a future whose value was already freed")
        return ser.dumps_exception(error, name, "")

    def _make_ready(self, task: _Task) -> None:
        task.state = READY
        typical = self.typical_run_time(task.name)
        task.short = typical is not None and typical < SHORT_TASK_S
        if task.actor is not None:
            self._pump_actor(task.actor)
            return
        queue = self.ready.get(task.shape)
        if queue is None:
            queue = self.ready[task.shape] = _ReadyQueue()
        queue.add(task)

    def _requeue(self, tasks: list[_Task], worker: _Worker) -> None:
        for task in reversed(tasks):
            if task.state != ASSIGNED or task.worker is not worker:
                continue
            try:
                worker.inflight.remove(task)
            except ValueError:
                pass
            task.state = READY
            task.worker = None
            self._deadlines.pop(task.id, None)
            queue = self.ready.get(task.shape)
            if queue is None:
                queue = self.ready[task.shape] = _ReadyQueue()
            queue.add_left(task)
        self._release_lease_if_idle(worker)

    # ------------------------------------------------------------- placement
    def _schedule(self, eager: bool) -> None:
        if self._broken is not None:
            self._fail_unplaced()
            return
        self._starved = False
        pipeline = eager and not self._starving
        for shape, queue in self.ready.items():
            while queue:
                worker = self._place(shape, pipeline)
                if worker is None:
                    break
                room = DEPTH - len(worker.inflight)
                share = self._share(len(queue) - queue.short)  # short ones have a share of their own
                if not queue.short:
                    batch = [queue.popleft() for _ in range(min(room, share, len(queue)))]
                else:  # a share of each kind, in queue order
                    batch = []
                    taken = [0, 0]  # long, short
                    shares = (share, self._share(queue.short))
                    while queue and len(batch) < room:
                        kind = queue[0].short
                        if taken[kind] >= shares[kind]:
                            break
                        taken[kind] += 1
                        batch.append(queue.take_first())
                self._send_tasks(worker, batch)
        self._starving = self._starved
        if self._pending_actors:
            for _ in range(len(self._pending_actors)):
                actor = self._pending_actors.popleft()
                if actor.dead is None and not self._start_actor(actor):
                    self._pending_actors.append(actor)

    def _share(self, queued: int) -> int:
        """How many queued tasks one worker may take: its share among all task workers
        (busy ones finish and take theirs), so equal tasks finish evenly."""
        workers = sum(1 for w in self.workers.values() if w.alive and w.actor is None and w.blocked is None)
        return max(1, -(-queued // max(1, workers)))

    def _can_grow(self) -> bool:
        task_workers = sum(1 for w in self.workers.values() if w.alive and w.actor is None)
        blocked = sum(1 for w in self.workers.values() if w.alive and w.blocked is not None)
        extra = max(_MIN_EXTRA_WORKERS, self.num_workers)  # beyond it, waiting calls run what they wait for
        return task_workers < min(self.num_workers + blocked, self.num_workers + extra)

    def _place(self, shape: Any, pipeline: bool) -> _Worker | None:
        """Where the next task of ``shape`` goes, or None if it must wait.

        An idle worker that can lease the shape comes first; then, when the
        resources are free but every worker is busy (some are blocked in
        ``get``), a new worker; then (when pipelining) the least loaded worker
        already leasing the shape.
        """
        best = None
        idle = None
        for worker in self.workers.values():
            if not worker.alive or worker.actor is not None or worker.blocked is not None:
                continue
            lease = worker.lease
            if lease is None:
                if idle is None and not worker.inflight:
                    idle = worker
            elif lease.shape == shape and len(worker.inflight) < DEPTH:
                if not worker.inflight:
                    return worker
                if pipeline and (best is None or len(worker.inflight) < len(best.inflight)):
                    best = worker
        grant = self.pool.try_acquire(shape)
        if grant is None:
            if best is None:
                self._starved = True
            return best
        if idle is None:
            if not self._can_grow():
                self.pool.release(grant)
                return best
            idle = self._spawn()
        idle.lease = grant
        return idle

    def _send_tasks(self, worker: _Worker, batch: list[_Task]) -> None:
        functions, items = self._assign(worker, batch)
        self._send(worker, [(M.RUN, functions, items)])

    def _assign(self, worker: _Worker, batch: list[_Task]) -> tuple[list, list]:
        """Mark ``batch`` as the worker's; the function definitions and work items to send it."""
        functions = []
        items = []
        results = self.results
        lease = worker.lease
        gpus = lease.gpu_ids if lease is not None and lease.gpu_ids else None
        for task in batch:
            task.state = ASSIGNED
            task.worker = worker
            worker.inflight.append(task)
            if task.kind == TASK and task.what not in worker.functions:
                # the call's own options (a per-call .options() too), not the decorator's
                functions.append((task.what, self._function_blobs[task.what], *self._options_for_workers(task.what)))
                worker.functions.add(task.what)
            deps = {d: results[d][1] for d in task.deps} if task.deps else None
            what = (task.what, tuple(o.id for o in task.outputs)) if task.outputs else task.what
            items.append((task.kind, task.id, what, task.args, deps, gpus, task.timeout is not None, task.short))
        return functions, items

    def _options_for_workers(self, fid: int) -> tuple[bytes, str]:
        """A function's options pickled by value, once: ``retry_exceptions`` may name classes a
        worker cannot import (defined in the driver's ``__main__``)."""
        options, name = self._function_meta[fid]
        blob = self._options_blobs.get(fid)
        if blob is None:
            import cloudpickle

            blob = self._options_blobs[fid] = cloudpickle.dumps(options, protocol=5)
        return blob, name

    def _release_lease_if_idle(self, worker: _Worker) -> None:
        if worker.lease is not None and not worker.inflight and worker.actor is None:
            self.pool.release(worker.lease)
            worker.lease = None
            worker.idle_since = time.monotonic()

    def _retire_extra_workers(self) -> None:
        """Stop workers started while others were blocked, once they have idled a while."""
        now = time.monotonic()
        for proc in [p for p in self._retired if p.poll() is not None]:
            self._retired.remove(proc)
        task_workers = [w for w in self.workers.values() if w.alive and w.actor is None]
        extra = len(task_workers) - self.num_workers
        for worker in task_workers:
            if extra <= 0:
                break
            if worker.lease is None and not worker.inflight and now - worker.idle_since > IDLE_RETIRE_S:
                extra -= 1
                worker.alive = False
                self._unregister(worker)
                worker.conn.say_goodbye(_BYE)
                worker.close_channels()  # the worker exits
                del self.workers[worker.index]
                self._retired.append(worker.proc)
                self._running_at_death(worker)  # removes its running slot

    # ------------------------------------------------------------- completion
    def _on_done(
        self,
        worker: _Worker,
        tid: int,
        ok: bool,
        payload: Any,
        size: int,
        contained: list,
        start: float,
        end: float,
    ) -> None:
        task = self.tasks.get(tid)
        if task is None or task.state != ASSIGNED or task.worker is not worker:
            if size and tid not in self.results:  # a late result nobody wants (e.g. after a timeout)
                delete_object(self.store.dirs, tid)
            return
        inflight = worker.inflight
        if inflight and inflight[0] is task:
            inflight.popleft()
        else:
            inflight.remove(task)
        self._spans.append((task.name, worker.index, start, end))
        runs = self._run_times.get(task.name)
        if runs is None:
            runs = self._run_times[task.name] = [0, 0.0]
        runs[0] += 1
        runs[1] += end - start
        if task.timeout is not None:
            self._deadlines.pop(tid, None)
        self._finish(task, ok, payload, size, contained)
        if not inflight:
            self._release_lease_if_idle(worker)

    def _store_result(self, oid: int, ok: bool, payload: Any, size: int, contained: list) -> None:
        self.results[oid] = (ok, payload)
        if size:
            self.store.added(oid, size)
        if contained:
            for c in contained:
                if c in self.refs:
                    self.refs[c] += 1
            self.contained[oid] = contained

    def _finish(
        self, task: _Task, ok: bool, payload: Any, size: int = 0, contained: list | tuple = (), state: int = 0
    ) -> None:
        """Record a task's final outcome and move everything that depended on it."""
        stack = [(task, ok, payload, size, contained, state)]
        failed_inits = []
        while stack:
            task, ok, payload, size, contained, state = stack.pop()
            previous = task.state
            if previous == DONE:
                continue
            if task.outputs:  # num_returns: each item finishes with its part, the call with None
                for i, item in enumerate(task.outputs):
                    part = (item, True, *payload[i], 0) if ok else (item, False, payload, 0, (), state)
                    stack.append(part)
                task.outputs = ()
                if ok:
                    payload, size, contained = ser.NONE, 0, ()
            if previous == READY and task.actor is None:
                queue = self.ready.get(task.shape)
                if queue is not None:
                    try:
                        queue.take(task)
                    except ValueError:
                        pass
            task.state = DONE
            tid = task.id
            self.tasks.pop(tid, None)
            self._store_result(tid, ok, payload, size, list(contained))
            if type(task.args) is int and task.kind != ACTOR_INIT:  # an actor's: kept for restarts
                self.store.freed(task.args, recyclable=task.args not in self.maps)
            if task.kind == ACTOR_INIT:
                if not ok:
                    failed_inits.append((task.actor, payload))
            else:
                for dep in task.deps:
                    self._decref(dep)
            for oid in task.held:
                self._decref(oid)
            task.held = ()
            if task.actor is not None and previous != ASSIGNED and task in task.actor.queue:
                task.actor.queue.remove(task)
            if task.future is not None:
                if ok:
                    self._notify.append((task.future, FINISHED, payload))
                else:
                    self._notify.append((task.future, state or FAILED, ser.loads_exception(payload)))
                task.future = None
            dependents = self.dependents.pop(tid, None)
            if dependents:
                for dep_task in dependents:
                    if dep_task.state == DONE:
                        continue
                    if not ok:
                        stack.append((dep_task, False, payload, 0, (), 0))
                    else:
                        dep_task.waiting -= 1
                        if dep_task.waiting == 0:
                            self._make_ready(dep_task)
            watchers = self._watchers.pop(tid, None)
            if watchers:
                for wait in watchers:
                    if wait.active:
                        wait.needed -= 1
                        if wait.needed <= 0:
                            self._answer_wait(wait)
            if self.refs.get(tid) == 0:
                self._free(tid)
        for actor, payload in failed_inits:
            cause = ser.loads_exception(payload)
            died = ActorDiedError(f"actor {actor.name!r} failed in __init__: {type(cause).__name__}: {cause}")
            died.__cause__ = cause
            self._actor_gone(actor, died, restart=False)

    def _decref(self, oid: int) -> None:
        count = self.refs.get(oid)
        if count is None:
            return
        if count <= 1:
            self.refs[oid] = 0
            if oid in self.results:
                self._free(oid)
        else:
            self.refs[oid] = count - 1

    def _free(self, oid: int) -> None:
        del self.refs[oid]
        ok, payload = self.results.pop(oid)
        if ok and type(payload) is int:
            self.store.freed(oid, recyclable=oid not in self.maps)
        for c in self.contained.pop(oid, ()):
            self._decref(c)

    def _drain_released(self) -> None:
        deltas = self._map_deltas
        while deltas:
            self._count_maps((deltas.popleft(),))
        released = self._released
        while released:
            self._decref(released.popleft())

    # ------------------------------------------------------------ the futures
    def put(self, value: Any) -> Future:
        data, buffers, refs = ser.dumps_put(value, owner=self)
        if buffers:
            with self._lock:  # values just dropped may free a file this one can reuse
                self._drain_released()
        oid = next(self._ids)
        payload, size = encode(self.store.dirs, oid, data, buffers)
        future = Future(self, oid, "put")
        with self._lock:
            self._check_open()
            self.refs[oid] = 1
            self._store_result(oid, True, payload, size, [r._id for r in refs])
        fut_mod.complete([(future, FINISHED, payload)])
        return future

    def wait_for(self, futures: list[Future], num_returns: int, timeout: float | None) -> None:
        if threading.current_thread() is self._io_thread:
            raise RuntimeError(
                "a done-callback must not wait for futures: it runs on plait's scheduler thread; "
                "hand the work to your own thread instead"
            )
        fut_mod.wait_local(futures, num_returns, timeout)

    def value_of(self, future: Future) -> Any:
        try:
            return decode(self.store.dirs, future._payload, self._adopt_ref, self._track)
        except LookupError:
            if self._closing:  # the store went with the engine, not with this future
                raise PlaitError(
                    f"the value of {future!r} is gone: its engine was shut down before the value "
                    "was read, and the store went with it. Read values (result()) before "
                    "plait.shutdown(), or keep the engine running while you need them"
                ) from None
            raise

    def _track(self, oid: int, delta: int) -> None:
        self._map_deltas.append((oid, delta))  # may run in a finalizer, on any thread

    def _count_maps(self, deltas: Any, worker: _Worker | None = None) -> None:
        maps = self.maps
        for oid, delta in deltas:
            count = maps.get(oid, 0) + delta
            if count:
                maps[oid] = count
            else:
                maps.pop(oid, None)
            if worker is not None:
                held = worker.maps.get(oid, 0) + delta
                if held:
                    worker.maps[oid] = held
                else:
                    worker.maps.pop(oid, None)

    def refresh(self, future: Future) -> None:
        return None  # the I/O thread pushes every state change

    def release(self, object_id: int) -> None:
        if self._closing:
            return
        self._released.append(object_id)
        if len(self._released) == 1:
            self._wake()

    def adopt(self, object_id: int, name: str) -> Future:
        with self._lock:
            if object_id not in self.refs:
                raise LookupError(f"the value of future {object_id:x} was already freed")
            result = self.results.get(object_id)
            task = self.tasks.get(object_id)
            if result is None and task is not None and task.future is not None:
                return task.future  # the live future of a pending task serves as well
            self.refs[object_id] += 1
            future = Future(self, object_id, name or (task.name if task else ""))
            if result is None:
                if task is not None:
                    task.future = future
                return future
        ok, payload = result
        fut_mod.complete(
            [(future, FINISHED, payload) if ok else (future, FAILED, ser.loads_exception(payload))]
        )
        return future

    def _adopt_ref(self, object_id: int) -> Future:
        return self.adopt(object_id, "")

    def cancel(self, future: Future, force: bool = False) -> bool:
        with self._lock:
            cancelled = self._cancel(future._id, force)
            notify, self._notify = self._notify, []
        fut_mod.run_callbacks(fut_mod.complete(notify))
        return cancelled

    def _cancel(self, tid: int, force: bool = False) -> bool:
        task = self.tasks.get(tid)
        if task is None or task.state == DONE or task.kind == ACTOR_INIT:
            return False
        if task.kind == OUTPUT:  # an item of a num_returns call: the call is cancelled
            return self._cancel(task.what.id, force)
        if task.state == ASSIGNED:
            if task.kind == ACTOR_CALL and not force and task.actor.is_async:
                return self._stop_coroutine(task)
            if not force:
                return False  # handed to a worker: it runs (cancel(force=True) stops it)
            if task.kind == ACTOR_CALL:
                raise NotSupported(
                    f"cannot force-cancel actor call {task.name!r}: stopping it would kill the actor; "
                    "use plait.kill(actor) to stop the actor, or cancel() before the call starts "
                    "(a call of an async actor is stopped by cancel() without force)"
                )
            worker = task.worker
            worker.inflight.remove(task)
            self._deadlines.pop(tid, None)
            error = CancelledError(f"task {task.name!r} was cancelled while running; its worker was stopped")
            self._finish(task, False, ser.dumps_exception(error, task.name, ""), state=CANCELLED)
            self._stop_worker(worker)  # replaced; its other calls run elsewhere, retries unspent
            return True
        error = CancelledError(f"task {task.name!r} was cancelled")
        self._finish(task, False, ser.dumps_exception(error, task.name, ""), state=CANCELLED)
        return True

    def _stop_coroutine(self, task: _Task) -> bool:
        """A call an async actor was sent: cancelled here at once, and its coroutine
        cancelled there (``asyncio.CancelledError`` at its ``await``, as on Ray); the actor
        lives on, and an outcome the call still sends is dropped."""
        worker = task.worker
        worker.inflight.remove(task)
        error = CancelledError(f"actor call {task.name!r} was cancelled while running; its coroutine was cancelled")
        self._finish(task, False, ser.dumps_exception(error, task.name, ""), state=CANCELLED)
        self._send(worker, [(M.STOP, task.id)])
        return True

    # ----------------------------------------------------- workers waiting
    def _on_remote_wait(
        self,
        worker: _Worker,
        req: int,
        ids: list[int],
        needed: int,
        timeout: float | None,
        returned: list[int],
    ) -> None:
        if returned:
            self._requeue([t for t in (self.tasks.get(tid) for tid in returned) if t is not None], worker)
        done = sum(1 for oid in ids if oid in self.results)
        deadline = None if timeout is None else time.monotonic() + timeout
        wait = _RemoteWait(worker, req, ids, needed - done, deadline)
        if wait.needed <= 0 or timeout == 0:
            self._answer_wait(wait, lent=False)
            return
        if timeout is None and self._help(worker, req, ids):
            return
        self._block(worker, wait)

    def _help(self, worker: _Worker, req: int, ids: list[int]) -> bool:
        """Answer a worker's wait with the awaited tasks that nobody runs yet: it runs them itself.

        Idle workers take their share first, so the waiting worker runs the
        rest depth-first, as a sequential program would, instead of blocking
        and making the engine start another process.
        """
        if worker.actor is not None or worker.lease is None:
            return False
        self._schedule(eager=False)
        shape = worker.lease.shape
        helpable = []
        for oid in dict.fromkeys(ids):  # a wait may name a future twice
            task = self.tasks.get(oid)
            if task is not None and task.state == READY and task.actor is None and task.shape == shape:
                self.ready[shape].take(task)
                helpable.append(task)
        if not helpable:
            return False
        functions, items = self._assign(worker, helpable)
        self._send(worker, [(M.REPLY, req, (M.HELP, functions, items))])
        return True

    def _block(self, worker: _Worker, wait: _RemoteWait) -> None:
        ids = wait.ids
        for oid in ids:
            if oid not in self.results:
                self._watchers.setdefault(oid, []).append(wait)
        if wait.deadline is not None:
            self._timed_waits.append(wait)
        worker.blocked = wait
        if worker.lease is not None and worker.actor is None:
            self.pool.release_cpu_only(worker.lease)  # lend the CPU while it waits

    def _answer_wait(self, wait: _RemoteWait, lent: bool = True) -> None:
        wait.active = False
        worker = wait.worker
        if wait.deadline is not None and wait in self._timed_waits:
            self._timed_waits.remove(wait)
        if lent and worker.blocked is wait:
            worker.blocked = None
            if worker.lease is not None and worker.actor is None:
                self.pool.reacquire_cpu_only(worker.lease)
        if not worker.alive:
            return
        answer = [(oid, *self.results[oid]) for oid in wait.ids if oid in self.results]
        if wait.req is None:
            self._send_notice(worker, answer)
        else:
            self._send(worker, [(M.REPLY, wait.req, (M.RESULTS, answer))])

    def _check_deadlines(self) -> None:
        if not self._deadlines and not self._timed_waits:
            return
        now = time.monotonic()
        for wait in [w for w in self._timed_waits if w.deadline is not None and w.deadline <= now]:
            self._answer_wait(wait)
        for tid, (deadline, worker) in list(self._deadlines.items()):
            if deadline > now:
                continue
            del self._deadlines[tid]
            task = self.tasks.get(tid)
            if task is None or task.worker is not worker:
                continue
            worker.inflight.remove(task)
            error = TaskTimeoutError(
                f"task {task.name!r} ran over its timeout={task.options.timeout} s; its worker was stopped"
            )
            self._finish(task, False, ser.dumps_exception(error, task.name, ""))
            self._stop_worker(worker)

    def _stop_worker(self, worker: _Worker) -> None:
        worker.killed = True
        try:
            worker.proc.kill()
        except OSError:
            pass

    # ---------------------------------------------------------- worker death
    def _unregister(self, worker: _Worker) -> None:
        """Stop watching a worker's socket and exit descriptor (closed: it is not needed again)."""
        for fd in (worker.conn.sock, worker.notices.sock, worker.exit_fd):
            if fd is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(fd)
        if worker.exit_fd is not None:
            os.close(worker.exit_fd)
            worker.exit_fd = None

    def _on_worker_death(self, worker: _Worker) -> None:
        worker.alive = False
        self._unregister(worker)
        worker.close_channels()
        self._want_write.discard(worker)
        try:
            code = worker.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            code = worker.proc.wait()
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        kills = oom_kills()
        if code == -signal.SIGKILL and not worker.killed and kills is not None and kills > self._oom_kills:
            how += (
                " by the kernel's out-of-memory killer (its count of such kills, oom_kill in "
                f"/proc/vmstat, rose from {self._oom_kills} to {kills}): the task needed more memory "
                "than was free. Give it memory= (its share of RAM) so that fewer run at once, use "
                "fewer workers, or make it use less"
            )
        if kills is not None:
            self._oom_kills = kills
        del self.workers[worker.index]
        if worker.blocked is not None:
            worker.blocked.active = False
            if worker.blocked in self._timed_waits:
                self._timed_waits.remove(worker.blocked)
        self._count_maps([(oid, -count) for oid, count in worker.maps.items()])  # its mappings died with it
        for oid, count in worker.borrowed.items():
            for _ in range(count):
                self._decref(oid)
        if worker.actor is not None:
            actor = worker.actor
            restarts = actor.worker is worker and actor.dead is None and actor.restarts_left > 0
            for task in list(worker.inflight):
                if task.kind == ACTOR_INIT and restarts and not self._closing:
                    # killed in __init__ is a death, not a failing __init__: the restart runs it again
                    self._finish(task, True, ser.NONE)
                    continue
                error = ActorDiedError(f"actor {actor.name!r} died ({how}) before {task.name!r} finished")
                self._finish(task, False, ser.dumps_exception(error, task.name, ""))
            worker.inflight.clear()
            if actor.worker is worker:
                actor.worker = None
                if actor.dead is None:
                    self._actor_gone(
                        actor, ActorDiedError(f"actor {actor.name!r} died ({how})"), restart=True
                    )
            return
        log.warning("plait worker %d (pid %d) died (%s)", worker.index, worker.proc.pid, how)
        lease = worker.lease
        if lease is not None:
            if worker.blocked is not None:
                self.pool.reacquire_cpu_only(lease)
            self.pool.release(lease)
        tasks = list(worker.inflight)
        worker.inflight.clear()
        if not worker.started and code > 0:  # it failed by itself, before running anything
            self._failed_starts += 1
            if self._failed_starts >= 5:
                for task in tasks:
                    task.state = READY
                    task.worker = None
                self._give_up(f"worker processes keep dying before they start ({how})")
                return
        running_id = self._running_at_death(worker)
        running = next((t for t in tasks if t.id == running_id), None)
        if running is not None and not worker.killed:
            tasks.remove(running)
            self._deadlines.pop(running.id, None)
            if running.retries_left > 0:
                running.retries_left -= 1
                tasks.insert(0, running)
                log.warning("re-running task %r after its worker died", running.name)
            else:
                error = WorkerCrashedError(
                    f"the worker running task {running.name!r} died ({how}) and no retries were left "
                    f"(retries={running.options.retries}); raise retries= if the crash is transient"
                )
                self._finish(running, False, ser.dumps_exception(error, running.name, ""))
        for task in reversed(tasks):
            if task.state == ASSIGNED:
                task.state = READY
                task.worker = None
                self.ready.setdefault(task.shape, _ReadyQueue()).add_left(task)
        alive = sum(1 for w in self.workers.values() if w.alive and w.actor is None)
        if alive < self.num_workers and not self._closing:
            self._spawn()

    def _running_at_death(self, worker: _Worker) -> int:
        """The task the dead worker was running, from its shared running slot (0: idle)."""
        path = f"{self.store.dirs.shm}/workers/w{worker.index}"
        try:
            with open(path, "rb") as f:
                running = int.from_bytes(f.read(8), "little")
            os.unlink(path)
        except OSError:
            return 0
        return running

    def _give_up(self, why: str) -> None:
        """Workers cannot start at all: fail what is queued rather than retry forever."""
        log.error("plait: %s", why)
        error = PlaitError(f"{why}; check that plait imports in a fresh Python process")
        self._broken = ser.dumps_exception(error, "plait", "")
        self._fail_unplaced()

    def _fail_unplaced(self) -> None:
        for task in list(self.tasks.values()):
            if task.state != ASSIGNED:
                self._finish(task, False, self._broken)

    # ================================================================= actors
    def create_actor(self, cls: Any, args: tuple, kwargs: dict, options: Any) -> ActorHandle:
        self.pool.check_feasible(options.shape(), f"actor {cls.name!r}")
        if cls.blob is None:
            import cloudpickle

            cls.blob = cloudpickle.dumps(cls, protocol=5)
        data, buffers, refs = ser.dumps_args(cls.name, args, kwargs, owner=self)
        payload, size = self._encode(data, buffers)
        deps = tuple(dict.fromkeys(r._id for r in refs))
        _flush_driver_output()
        with self._lock:
            self._check_open()
            if options.named:
                existing = self._live_named(options.name)
                if existing is not None:
                    if options.get_if_exists:
                        return existing
                    raise name_taken(options.name)
            aid = next(self._ids)
            concurrency = options.concurrency(cls.is_async)
            actor = _Actor(aid, options.name or cls.name, options, cls.blob, concurrency, payload, deps, cls.is_async)
            if options.named:
                self._named[options.name] = ActorHandle(aid, actor.name, cls.methods, owner=self.session)
            if size:
                self.store.added(payload, size)
            for dep in deps:
                self.refs[dep] += 1  # held for the actor's life: restarts re-run __init__
            actor.held = self._hold(actor.name, [r._id for r in refs.held])
            self.actors[aid] = actor
            self._queue_init(actor)
            if not self._start_actor(actor):
                self._pending_actors.append(actor)
            notify, self._notify = self._notify, []
        fut_mod.run_callbacks(fut_mod.complete(notify))
        return ActorHandle(aid, actor.name, cls.methods, owner=self.session)

    def _queue_init(self, actor: _Actor) -> None:
        tid = next(self._ids)
        what = (actor.blob, actor.concurrency)
        init = _Task(tid, ACTOR_INIT, what, f"{actor.name}.__init__", actor.options, actor.args, ())
        init.actor = actor
        self.refs[tid] = 0
        self.tasks[tid] = init
        waiting = [d for d in actor.deps if d not in self.results]
        init.deps = actor.deps  # the actor holds these refs, not the init call
        init.waiting = len(waiting)
        for dep in waiting:
            self.dependents.setdefault(dep, []).append(init)
        init.state = READY if not waiting else WAITING
        actor.queue.appendleft(init)
        failed = [self.results[d][1] for d in actor.deps if d in self.results and not self.results[d][0]]
        if failed:
            self._finish(init, False, failed[0])

    def _start_actor(self, actor: _Actor) -> bool:
        if actor.grant is None:
            actor.grant = self.pool.try_acquire(actor.options.shape())
            if actor.grant is None:
                return False
        worker = self._spawn()
        worker.actor = actor
        worker.lease = actor.grant
        actor.worker = worker
        self._pump_actor(actor)
        return True

    def _pump_actor(self, actor: _Actor) -> None:
        """Send the actor the longest prefix of its queue whose inputs are ready; an actor
        running calls side by side (async, or ``max_concurrency`` above 1) keeps no call
        order, as on Ray: it gets every ready call, past those still waiting for inputs."""
        worker = actor.worker
        if worker is None or not worker.alive or actor.dead is not None:
            return
        batch = []
        queue = actor.queue
        while queue and queue[0].waiting == 0:
            batch.append(queue.popleft())
        if actor.concurrency > 1 and queue and queue[0].kind != ACTOR_INIT:
            waiting = [task for task in queue if task.waiting]
            if len(waiting) < len(queue):
                batch.extend(task for task in queue if not task.waiting)
                queue.clear()
                queue.extend(waiting)
        if batch:
            self._send_tasks(worker, batch)

    def call_actor(self, handle: ActorHandle, method: str, args: tuple, kwargs: dict) -> Future:
        check_handle(handle, self)
        name = f"{handle._name}.{method}"
        data, buffers, refs = ser.dumps_args(name, args, kwargs, owner=self)
        payload, size = self._encode(data, buffers)
        tid = next(self._ids)
        future = Future(self, tid, name)
        _flush_driver_output()
        with self._lock:
            self._check_open()
            actor = self.actors.get(handle._actor_id)
            if actor is None:
                raise ValueError(f"{handle!r} does not belong to this engine")
            if size:
                self.store.added(payload, size)
            self.refs[tid] = 1
            task = self._add_actor_call(tid, actor, method, payload, [r._id for r in refs], [r._id for r in refs.held])
            task.future = future if task.state != DONE else None
            if task.state == DONE:
                ok, result = self.results[tid]
                self._notify.append(
                    (future, FINISHED, result) if ok else (future, FAILED, ser.loads_exception(result))
                )
            notify, self._notify = self._notify, []
        fut_mod.run_callbacks(fut_mod.complete(notify))
        return future

    def _add_actor_call(
        self, tid: int, actor: _Actor, method: str, payload: Any, deps: list[int], held: list[int]
    ) -> _Task:
        task = _Task(tid, ACTOR_CALL, method, f"{actor.name}.{method}", actor.options, payload, ())
        if actor.dead is not None:
            self.tasks[tid] = task
            self._finish(task, False, ser.dumps_exception(actor.dead, task.name, ""))
            return task
        task.actor = actor
        self._add(task, deps, held)
        return task

    def _actor_gone(self, actor: _Actor, error: ActorDiedError, restart: bool) -> None:
        worker = actor.worker
        if restart and actor.restarts_left > 0 and not self._closing:
            actor.restarts_left -= 1
            log.warning("restarting actor %r (%d restarts left)", actor.name, actor.restarts_left)
            self.pool.release(actor.grant)
            actor.grant = None
            self._queue_init(actor)
            if not self._start_actor(actor):
                self._pending_actors.append(actor)
            return
        actor.dead = error
        if actor.grant is not None:
            self.pool.release(actor.grant)
            actor.grant = None
        for dep in (*actor.deps, *actor.held):
            self._decref(dep)
        actor.deps = actor.held = ()
        if type(actor.args) is int:  # its constructor's arguments, kept until now for restarts
            self.store.freed(actor.args, recyclable=actor.args not in self.maps)
            actor.args = None
        payload = ser.dumps_exception(error, actor.name, "")
        for task in list(actor.queue):
            self._finish(task, False, payload)
        actor.queue.clear()
        if worker is not None and worker.alive:
            for task in list(worker.inflight):
                self._finish(task, False, payload)
            worker.inflight.clear()
            self._stop_worker(worker)

    def _create_for_worker(self, worker: _Worker, req: int, blob: bytes) -> None:
        """An actor created by code running in a worker: made here, its handle sent back."""
        try:
            cls, args, kwargs, options = ser.loads(blob)
            reply: Any = ("ok", self.create_actor(cls, args, kwargs, options))
        except Exception as exc:  # noqa: BLE001 - raised in the worker that asked
            reply = ("error", exc)
        with self._lock:
            if worker.alive:
                self._send(worker, [(M.REPLY, req, reply)])

    def _live_named(self, name: str) -> ActorHandle | None:
        handle = self._named.get(name)
        if handle is None:
            return None
        actor = self.actors.get(handle._actor_id)
        if actor is None or actor.dead is not None:
            del self._named[name]  # gone: the name is free again
            return None
        return handle

    def get_actor(self, name: str) -> ActorHandle:
        with self._lock:
            handle = self._live_named(name)
        if handle is None:
            raise no_such_actor(name, self.name)
        return handle

    def kill_actor(self, handle: ActorHandle) -> None:
        check_handle(handle, self)
        with self._lock:
            actor = self.actors.get(handle._actor_id)
            if actor is not None:
                self._kill_actor(actor)
            notify, self._notify = self._notify, []
        fut_mod.run_callbacks(fut_mod.complete(notify))

    def _kill_actor(self, actor: _Actor) -> None:
        if actor.dead is None:
            self._actor_gone(actor, ActorDiedError(f"actor {actor.name!r} was killed"), restart=False)

    # ================================================================== tools
    def status(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        records = []
        if self._failure is not None:
            return [{"id": 0, "name": "plait", "state": "failed", "why": str(self._failure), "age_s": 0.0}]
        with self._lock:
            for task in self.tasks.values():
                if task.kind == OUTPUT:
                    why = f"an item of {task.what.name!r}, which has not finished"
                    state = "waiting"
                elif task.state == WAITING:
                    pending = [d for d in task.deps if d not in self.results]
                    names = ", ".join(self._describe(d) for d in pending[:5])
                    why = f"waiting for {len(pending)} input(s): {names}"
                    state = "waiting"
                elif task.state == READY:
                    state = "ready"
                    actor = task.actor
                    if actor is not None and actor.worker is None and actor.grant is None:
                        shape = dict(actor.options.shape())
                        free = {k: round(v, 3) for k, v in self.pool.free.items() if k in shape}
                        holders = sorted({a.name for a in self.actors.values() if a.grant is not None and a.dead is None})
                        why = f"actor {actor.name!r} has not started: it needs {shape}; free now: {free}"
                        if holders:
                            why += f" (actors holding resources: {', '.join(holders[:5])})"
                    elif actor is not None:
                        why = f"queued on actor {actor.name!r} behind earlier calls"
                    else:
                        free = {k: round(v, 3) for k, v in self.pool.free.items() if k in dict(task.shape)}
                        why = f"needs {dict(task.shape)}; free now: {free}"
                else:
                    worker = task.worker
                    assert worker is not None
                    if worker.inflight and worker.inflight[0] is task:
                        state = "running"
                        why = f"on worker {worker.index} (pid {worker.proc.pid})"
                        if worker.blocked is not None:
                            names = ", ".join(
                                self._describe(i) for i in worker.blocked.ids if i not in self.results
                            )
                            why += f", blocked in get() waiting for {names}"
                    else:
                        state = "queued"
                        why = f"on worker {worker.index} behind {worker.inflight[0].name!r}"
                records.append(
                    {
                        "id": task.id,
                        "name": task.name,
                        "state": state,
                        "why": why,
                        "age_s": round(now - task.submitted, 3),
                    }
                )
        return records

    def _describe(self, oid: int) -> str:
        task = self.tasks.get(oid)
        return f"{task.name}#{oid:x}" if task is not None else f"#{oid:x}"

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "tasks": len(self.tasks),
                "results": len(self.results),
                "refs": len(self.refs),
                "workers": sum(1 for w in self.workers.values() if w.alive),
                "free": dict(self.pool.free),
                **self.store.stats(),
            }

    def typical_run_time(self, name: str) -> float | None:
        """Mean seconds a task of this name has run in a worker, once it has run a few times."""
        runs = self._run_times.get(name)
        if runs is None or runs[0] < 8:
            return None
        return runs[1] / runs[0]

    def resources(self) -> tuple[dict[str, float], dict[str, float]]:
        with self._lock:
            return dict(self.pool.total), dict(self.pool.free)

    def scale(self, workers: int) -> bool:
        """``workers`` task workers from now on, with one CPU each unless ``plait.init``
        declared ``num_cpus``: new ones start at once; surplus ones stop once idle."""
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"scale({workers!r}): give a whole number of workers, at least 1")
        with self._lock:
            if self.config.num_cpus is None:
                delta = workers - self.num_workers
                self.pool.total["CPU"] += delta
                self.pool.free["CPU"] += delta
            self.num_workers = workers
            alive = sum(1 for w in self.workers.values() if w.alive and w.actor is None)
            for _ in range(workers - alive):
                self._spawn()  # the I/O thread takes them on and schedules onto them
        self._wake()
        return True

    def idle_capacity(self) -> int:
        """Task workers with nothing to do and nothing queued for them: room for speculative calls."""
        with self._lock:
            idle = sum(
                1
                for w in self.workers.values()
                if w.alive and w.actor is None and w.blocked is None and not w.inflight
            )
            queued = sum(len(q) for q in self.ready.values())
        return max(0, idle - queued)

    def timeline_events(self) -> list[dict[str, Any]]:
        with self._lock:
            spans = list(self._spans)
        return [{"name": n, "worker": w, "start": s, "end": e} for n, w, s, e in spans]

    def shutdown(self) -> None:
        with self._lock:
            if self._closing:
                return
            self._closing = True
            error = PlaitError("plait was shut down before this task finished")
            notify = [(t.future, FAILED, error) for t in self.tasks.values() if t.future is not None]
            workers = list(self.workers.values())
        self._wake()
        self._io_thread.join(timeout=5)
        for worker in workers:
            worker.conn.say_goodbye(_BYE)  # an idle worker exits at once; a busy one is stopped below
            worker.close_channels()
            if worker.exit_fd is not None:
                os.close(worker.exit_fd)
                worker.exit_fd = None
        deadline = time.monotonic() + 2.0
        for proc in [w.proc for w in workers] + self._retired:
            try:
                proc.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()  # busy in a task: it has had its chance
                proc.wait()
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self.store.destroy()
        fut_mod.run_callbacks(fut_mod.complete(notify))
