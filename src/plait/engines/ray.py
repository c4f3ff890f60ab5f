"""The Ray engine: plait tasks and actors run as Ray tasks and actors.

``plait.init(engine="ray", address=None | "auto" | "ray://host:10001" | "host:6379")``.
If this process is already connected to Ray (``ray.is_initialized()``), the
engine uses that connection and leaves it open at ``plait.shutdown()``;
otherwise it calls ``ray.init`` (starting a local Ray when ``address`` is None,
with ``num_cpus=workers``) and shuts down what it started. Extra keyword
arguments of ``plait.init`` (``runtime_env=``, ``namespace=``, ...) go to
``ray.init``.

How plait maps onto Ray:

- a task is a Ray remote function, made once per (task, options): ``num_cpus``,
  ``num_gpus``, ``memory``, ``resources`` as Ray resources, ``retries`` as
  ``max_retries`` (re-runs after a worker or node dies). Exceptions are re-run
  in place by plait (``retry_exceptions``), as on the local engine, so Ray's own
  ``retry_exceptions`` stays off;
- a plait ``Future`` holds the Ray ``ObjectRef`` of the value
  (``future._payload``); futures among the arguments, at any depth, are
  dependencies (``_remote.pack_args``). Every call has a second, small return
  value, its *status*: reading it tells whether the call failed without
  fetching the value (which may be large, on another node), carries the
  call's span for the timeline, and carries the value itself when it is
  small, so ``get`` of small results costs one Ray ``get`` of the statuses;
- a task's exception comes back as itself with its remote traceback; a worker
  lost after its retries is ``WorkerCrashedError``; ``timeout=`` interrupts the
  task in its worker (``_remote.Deadline``) and fails it with ``TaskTimeoutError``;
- an actor is a Ray actor (named ``plait-actor-<id>`` in namespace ``plait``;
  a plait handle carries Ray's own handle, and a handle rebuilt without one
  finds the actor by that name), ``max_restarts`` as Ray's, calls kept in
  order by Ray (per caller); a dead or killed actor fails calls with
  ``ActorDiedError``;
- inside a Ray worker, ``current_engine()`` is a ``RayEngine`` on the same
  cluster, so tasks can submit tasks, wait and call actors;
- timeline: the driver keeps the spans of the calls it settles (from their
  statuses); a worker that waits for calls of its own writes their spans every
  quarter second to a file per process under the node's temporary directory,
  and ``timeline_events`` reads those with one zero-CPU task per node;
- several threads of the driver may call the engine at once (``@parallel``
  looks ahead from threads of its own): Ray's API (``.remote()``, ``get``,
  ``wait``, ``put``, ``cancel``, ``kill``) may be called from any thread, and
  the engine's own tables are guarded (see ``RayEngine.__init__``). Actor
  calls keep their order per calling thread: Ray runs the calls of one
  submitter (this process) in submission order, and a thread submits its own
  calls one after the other.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import marshal
import os
import random
import shutil
import socket
import stat
import tempfile
import threading
import time
import uuid
import weakref
from collections import deque
from typing import Any

import ray
import ray.exceptions as rex

from plait.engines import _remote as rm
from plait.errors import (
    ActorDiedError,
    CancelledError,
    InfeasibleResourcesError,
    NotSupported,
    PlaitError,
    RemoteTraceback,
    WorkerCrashedError,
)
from plait.runtime import serialization as ser
from plait.runtime.actor import ActorHandle, check_handle, name_taken, no_such_actor
from plait.runtime.future import FAILED, FINISHED, Future
from plait.runtime.invoke import format_remote
from plait.runtime.options import EngineConfig
from plait.runtime.task import check_count

NAMESPACE = "plait"
SPAN_FLUSH_S = 0.25


class RayEngine(rm.ClusterEngine):
    name = "ray"
    WAIT_SLICE = 5.0
    concurrent_clients = True  # any thread may call it: @parallel may look ahead

    def __init__(self, config: EngineConfig, *, _in_worker: bool = False) -> None:
        super().__init__()
        self.config = config
        self.token = uuid.uuid4().hex[:16]
        self.in_worker = _in_worker
        self.started_ray = False
        if _in_worker:
            # inside a task @parallel runs without lookahead, as in the local engine's
            # workers: threads of its own would hold the task's slot while they wait
            self.concurrent_clients = False
        if not _in_worker and not ray.is_initialized():  # else: the connection this process has
            ray.init(**self._init_kwargs(config))
            self.started_ray = True
        # shared by the driver's threads: the remote functions made per (task, options),
        # added under _remotes_lock (read without it: a dict read is atomic in CPython);
        # the actors, under _actor_lock; the spans, under _spans_lock. _status is only
        # read, set and popped key by key (atomic dict operations, and release() pops it
        # from Future.__del__, where no lock may be taken); _killed is only added to and
        # tested, _used only set
        self._remotes: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = weakref.WeakKeyDictionary()
        self._remotes_lock = threading.Lock()
        self._actors: dict[int, Any] = {}
        self._killed: set[int] = set()
        self._status: dict[int, Any] = {}  # future id -> its task's status ObjectRef, until settled
        # num_returns items: the first records the call's span under the call's name, the
        # others none (key popped with the status)
        self._span_names: dict[int, str | None] = {}
        self._spans: deque[tuple[str, float, float, int]] = deque(maxlen=rm.SPANS_KEPT)
        self._spans_lock = threading.Lock()
        self._actor_lock = threading.Lock()
        self._used = False

    @staticmethod
    def _init_kwargs(config: EngineConfig) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"include_dashboard": False}
        kwargs.update(config.extra)
        address = config.address or os.environ.get("RAY_ADDRESS") or None
        if address:
            kwargs["address"] = address
            return kwargs
        kwargs["address"] = "local"  # a Ray of its own, even if another runs on this machine
        cpus = config.num_cpus or config.workers
        if cpus is not None:
            kwargs["num_cpus"] = cpus
        if config.num_gpus is not None:
            kwargs["num_gpus"] = config.num_gpus
        if config.memory is not None:
            kwargs.setdefault("_memory", config.memory)
        if config.resources:
            kwargs["resources"] = dict(config.resources)
        if config.object_store_memory is not None:
            kwargs["object_store_memory"] = config.object_store_memory
        return kwargs

    # ================================================================ tasks
    def submit(self, fn: Any, args: tuple, kwargs: dict, options: Any, strategy: Any = None) -> Future:
        name = options.name or fn.name
        call_args, call_kwargs = rm.pack_args(name, args, kwargs, _native, owner=self)
        # two remote functions per task: the common one takes the arguments as they are
        # (an extra argument costs Ray a few percent per call), the other the packed form
        remote, base, ray_options = self._remote_entry(fn, options, name, call_args[0] == rm.PACKED)
        if strategy is not None:  # placed: the same options, and where
            remote = base.options(**ray_options, scheduling_strategy=strategy)
        ref, status = remote.remote(*call_args[1:], **call_kwargs)
        self._used = True
        return self._tracked(name, ref, status)

    def submit_near(self, fn: Any, args: tuple, kwargs: dict, options: Any, near: Future) -> Future:
        """On the node that holds ``near``'s value (Ray's soft node affinity), once that value
        exists; before that, wherever Ray places it."""
        node = self._node_of(near)
        if node is None:
            return self.submit(fn, args, kwargs, options)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return self.submit(fn, args, kwargs, options, NodeAffinitySchedulingStrategy(node_id=node, soft=True))

    def _node_of(self, future: Future) -> str | None:
        """The id of a node holding ``future``'s value, if it is stored somewhere yet."""
        if not isinstance(future._engine, RayEngine) or future._payload is None:
            return None
        from ray.experimental import get_object_locations

        try:
            where = get_object_locations([future._payload], timeout_ms=1000).get(future._payload) or {}
        except Exception:  # noqa: BLE001 - a hint only: without it the call goes anywhere
            return None
        nodes = where.get("node_ids") or []
        return nodes[0] if nodes else None

    def submit_returning(self, fn: Any, args: tuple, kwargs: dict, options: Any) -> tuple[Future, ...] | None:
        """Ray's own ``num_returns``: one object per item, and the call's status after them
        (the items share it)."""
        count = options.num_returns
        if count < 2:
            return super().submit_returning(fn, args, kwargs, options)
        name = options.name or fn.name
        call_args, call_kwargs = rm.pack_args(name, args, kwargs, _native, owner=self)
        remote = self._remote_for(fn, options, name, call_args[0] == rm.PACKED)
        *refs, status = remote.remote(*call_args[1:], **call_kwargs)
        self._used = True
        items = []
        for i, ref in enumerate(refs):
            future_id = next(self._ids)
            self._span_names[future_id] = name if i == 0 else None
            items.append(self._tracked(f"{name}[{i}]", ref, status, future_id))
        return tuple(items)

    def _tracked(self, name: str, ref: Any, status: Any, future_id: int | None = None) -> Future:
        future = Future(self, next(self._ids) if future_id is None else future_id, name)
        future._payload = ref
        # the status first: once tracked, the watcher (or a sweep) may settle it
        self._status[future._id] = status
        self._track(future)
        return future

    def _remote_for(self, fn: Any, options: Any, name: str, packed: bool) -> Any:
        return self._remote_entry(fn, options, name, packed)[0]

    def _remote_entry(self, fn: Any, options: Any, name: str, packed: bool) -> tuple[Any, Any, dict]:
        """(the remote function with its options, the bare one, those options), made once."""
        key = (options, self.token, packed)
        per_fn = self._remotes.get(fn)
        entry = per_fn.get(key) if per_fn is not None else None
        if entry is not None:
            return entry
        # made outside the lock (it may ask the cluster its size); two threads making
        # the same one keep the first
        self._check_feasible(options.shape(), f"task {name!r}")
        runner = _task_runner(fn, options, name, self.token, packed)
        # Ray names the task after the function (``run`` is renamed for it): a
        # name= option would cost a few percent per call
        base = ray.remote(runner)
        ray_options = {
            **_resource_options(options),
            "num_returns": options.num_returns + 1 if options.num_returns >= 2 else 2,
            "max_retries": options.retries,
            "retry_exceptions": False,
        }
        entry = (base.options(**ray_options), base, ray_options)
        with self._remotes_lock:
            per_fn = self._remotes.get(fn)
            if per_fn is None:
                per_fn = self._remotes[fn] = {}
            return per_fn.setdefault(key, entry)

    def resources(self) -> tuple[dict[str, float], dict[str, float]]:
        return dict(ray.cluster_resources()), dict(ray.available_resources())

    def _free_slots(self) -> int:
        return int(ray.available_resources().get("CPU", 0))

    def _check_feasible(self, shape: tuple, what: str) -> None:
        # only where the cluster's size is known not to grow: the Ray this engine started
        if not self.started_ray:
            return
        total = ray.cluster_resources()
        for key, amount in shape:
            have = total.get(key, 0)
            if amount > have + 1e-9:
                raise InfeasibleResourcesError(
                    f"{what} asks for {key}={amount:g} but this Ray cluster has {key}={have:g} in all, "
                    "so it could never run; lower the request, or declare more in plait.init(...)"
                )

    def put(self, value: Any) -> Future:
        try:
            ref = ray.put(value)
        except Exception as exc:  # noqa: BLE001 - re-raised with what to do
            raise rm.put_error(self, value, exc) from exc
        self._used = True
        return self._done_future("put", ref)

    def value_of(self, future: Future) -> Any:
        try:
            return ray.get(future._payload)
        except Exception as err:  # noqa: BLE001 - turned into the task's own error below
            error = err
        exc = self._convert(error, future._name)
        self._mark_failed(future, exc)
        raise exc

    def values_of(self, futures: list[Future]) -> list[Any]:
        try:
            return ray.get([f._payload for f in futures])
        except Exception:  # noqa: BLE001 - one by one, so the first failure raises as its own
            return [self.value_of(f) for f in futures]

    def _convert(self, err: BaseException, name: str) -> BaseException:
        if isinstance(err, rex.RayTaskError):
            cause = getattr(err, "cause", None)
            if isinstance(cause, rm.Failure):
                return cause.unwrap()
            if isinstance(cause, rex.RayError):
                err = cause
            elif isinstance(cause, BaseException):
                cause.__cause__ = RemoteTraceback(str(err))
                return cause
        if isinstance(err, rex.RayActorError):
            text = str(err)
            if "ray.kill" in text:
                return ActorDiedError(f"actor call {name!r} failed: the actor was killed")
            return ActorDiedError(f"actor call {name!r} failed: the actor died ({_first_line(text)})")
        if isinstance(
            err, (rex.WorkerCrashedError, rex.NodeDiedError, rex.LocalRayletDiedError, rex.OutOfMemoryError)
        ):
            return WorkerCrashedError(
                f"the worker running task {name!r} died and no retries were left "
                f"({type(err).__name__}: {_first_line(str(err))}); raise retries= if the crash is transient"
            )
        if isinstance(err, rex.TaskCancelledError):
            return CancelledError(f"task {name!r} was cancelled")
        if isinstance(err, rex.ObjectLostError):
            return WorkerCrashedError(
                f"the value of {name!r} was lost with its node and could not be rebuilt: "
                f"{_first_line(str(err))}"
            )
        return err

    def _advance(self, futures: list[Future], need: int, timeout: float | None, left: float | None) -> None:
        if need >= len(futures):
            # waiting for all: one get of their small status objects (as ray.get of a list)
            statuses = [self._status.get(f._id) for f in futures]
            if None not in statuses:
                try:
                    values = ray.get(statuses, timeout=timeout)
                except rex.GetTimeoutError:
                    return  # the caller settles what is done when its own deadline comes
                except Exception:  # noqa: BLE001 - some failed: sort them out one by one below
                    timeout = 0
                else:
                    self._settle_statuses(futures, values)
                    return
        self._settle_ready(self._ready(futures, need, timeout))

    def _settle_ready(self, futures: list[Future]) -> None:
        tracked: list[Future] = []
        statuses: list[Any] = []
        untracked: list[Future] = []
        for f in futures:
            status = self._status.get(f._id)
            if status is None:
                untracked.append(f)
            else:
                tracked.append(f)
                statuses.append(status)
        if untracked:  # rebuilt from a value (or settled meanwhile): a failure shows when read
            self._finish_all(untracked)
        if not tracked:
            return
        try:
            values = ray.get(statuses, timeout=60)
        except Exception:  # noqa: BLE001 - one by one, to tell which failed
            values = []
            for status in statuses:
                try:
                    values.append(ray.get(status, timeout=60))
                except Exception as err:  # noqa: BLE001
                    values.append(_Error(err))
        self._settle_statuses(tracked, values)

    def _settle_statuses(self, futures: list[Future], statuses: list[Any]) -> None:
        # Two threads may settle the same future (two waiters, a waiter and the
        # watcher): both read the same status, so both reach the same outcome, and
        # ``_complete`` keeps the first. The status entry goes only after the future
        # is settled (a thread that then finds none sees a settled future, never a
        # pending one it would take for a rebuilt one), and whoever pops it records
        # the span, so each call has one.
        batch: list[tuple[Future, int, Any]] = []
        spans: dict[int, tuple[str, float, float, int]] = {}
        for f, status in zip(futures, statuses, strict=True):
            if type(status) is _Error:
                batch.append((f, FAILED, self._convert(status.error, f._name)))
                continue
            if len(status) == 4:  # a small value travelled with the status
                f.offer_value(status[3])
            label = self._span_names.get(f._id, f._name)
            if label is not None:
                spans[f._id] = (label, status[0], status[1], status[2])
            batch.append((f, FINISHED, f._payload))
        self._complete(batch)
        claimed = []
        for f in futures:
            if self._status.pop(f._id, None) is not None:
                self._span_names.pop(f._id, None)
                if f._id in spans:
                    claimed.append(spans[f._id])
        self._record(claimed)

    def _record(self, spans: list[tuple[str, float, float, int]]) -> None:
        if not spans:
            return
        if self.in_worker:  # a task's own calls: to this node's span files, read at timeline()
            for name, start, end, pid in spans:
                rm.record_span(self.token, name, start, end, pid)
            _ensure_flusher()
        else:
            with self._spans_lock:
                self._spans.extend(spans)

    def release(self, object_id: int) -> None:
        self._status.pop(object_id, None)
        self._span_names.pop(object_id, None)

    def _ready(self, futures: list[Future], need: int, timeout: float | None) -> list[Future]:
        by_ref: dict[Any, list[Future]] = {}
        for f in futures:
            by_ref.setdefault(f._payload, []).append(f)
        refs = list(by_ref)
        ready, _ = ray.wait(
            refs, num_returns=max(1, min(need, len(refs))), timeout=timeout, fetch_local=False
        )
        return [f for r in ready for f in by_ref[r]]

    def watch(self, future: Future) -> None:
        status = self._status.get(future._id)
        if status is not None:  # the small status object, not the value, is awaited
            status.future().add_done_callback(lambda done: self._status_arrived(future, done))

    def _status_arrived(self, future: Future, done: Any) -> None:
        """Ray's callback, in Ray's thread: the status is here, so nothing blocks. A failed
        call is left to the watcher, whose ``ray.get`` tells Ray the error was seen."""
        try:
            if done.exception() is None:
                self._settle_statuses([future], [done.result()])
        except Exception:  # noqa: BLE001 - the watcher or a waiter settles it instead
            logging.getLogger("plait").debug("settling %r from Ray's callback failed", future, exc_info=True)

    def _poll(self, futures: list[Future]) -> list[Future]:
        return self._ready(futures, len(futures), 0)

    def cancel(self, future: Future, force: bool = False) -> bool:
        ref = future._payload
        ready, _ = ray.wait([ref], timeout=0, fetch_local=False)
        if ready:
            self._settle_ready([future])
            return False
        try:
            ray.cancel(ref, force=force, recursive=True)
        except ValueError as err:  # Ray: force=True is not supported for actor tasks
            raise NotSupported(
                f"cannot force-cancel {future._name!r} on the ray engine ({err}); "
                "use plait.kill(actor) to stop the actor, or cancel() without force"
            ) from None
        self._cancel_local(future)
        self._status.pop(future._id, None)  # after: another thread's settling finds it cancelled
        return True

    def reduce_future(self, future: Future) -> Any:
        if future._payload is None:
            return None
        return (_rebuild_future, (future._payload, future._name))

    # =============================================================== actors
    def create_actor(self, cls: Any, args: tuple, kwargs: dict, options: Any) -> ActorHandle:
        name = options.name or cls.name
        self._check_feasible(options.shape(), f"actor {name!r}")
        # a named actor's id follows from its name: any process finds it through Ray
        actor_id = _named_id(name) if options.named else random.getrandbits(62)
        call_args, call_kwargs = rm.pack_args(name, args, kwargs, _native, owner=self)
        ray_opts = _resource_options(options)
        concurrency = options.concurrency(cls.is_async)
        if concurrency > 1 or cls.is_async:  # an async actor's default on Ray is 1,000
            ray_opts["max_concurrency"] = concurrency  # Ray's threaded or async actor
        try:
            native = (
                _host_class(cls.is_async)
                .options(
                    **ray_opts,
                    max_restarts=options.max_restarts,
                    max_task_retries=0,
                    name=_actor_name(actor_id),
                    namespace=NAMESPACE,
                )
                .remote(cls, name, self.token, *call_args, **call_kwargs)
            )
        except ValueError:  # Ray: the name is taken
            if not options.named:
                raise
            if options.get_if_exists:
                return self.get_actor(name)
            raise name_taken(name) from None
        self._killed.discard(actor_id)  # a name used again after its actor was killed
        with self._actor_lock:
            self._actors[actor_id] = native
        self._used = True
        return ActorHandle(actor_id, name, cls.methods, native, self.session)

    def get_actor(self, name: str) -> ActorHandle:
        actor_id = _named_id(name)
        handle = ActorHandle(actor_id, name, ())
        native = None if actor_id in self._killed else self._native_actor(handle)
        if native is None:
            raise no_such_actor(name, self.name)
        try:
            methods = ray.get(native.methods.remote(), timeout=60)
        except Exception:  # noqa: BLE001 - dead, or dying
            raise no_such_actor(name, self.name) from None
        return ActorHandle(actor_id, name, methods, native, self.session)

    def _native_actor(self, handle: ActorHandle) -> Any:
        with self._actor_lock:
            native = self._actors.get(handle._actor_id)
        if native is not None:
            return native
        if handle._payload is not None:  # Ray's own handle came with it: no lookup
            with self._actor_lock:
                return self._actors.setdefault(handle._actor_id, handle._payload)
        try:
            native = ray.get_actor(_actor_name(handle._actor_id), namespace=NAMESPACE)
        except ValueError:
            return None
        with self._actor_lock:
            self._actors[handle._actor_id] = native
        return native

    def call_actor(self, handle: ActorHandle, method: str, args: tuple, kwargs: dict) -> Future:
        check_handle(handle, self)
        name = f"{handle._name}.{method}"
        if handle._actor_id in self._killed:  # ray.kill is asynchronous: do not let a call slip in
            error = ActorDiedError(f"actor call {name!r} failed: the actor was killed")
            return self._tracked(name, *_error_refs(error, name))
        native = self._native_actor(handle)
        if native is None:
            error = ActorDiedError(
                f"actor call {name!r} failed: the actor is gone (killed, or its creator exited)"
            )
            return self._tracked(name, *_error_refs(error, name))
        call_args, call_kwargs = rm.pack_args(name, args, kwargs, _native, owner=self)
        ref, status = native.call.options(num_returns=2).remote(method, *call_args, **call_kwargs)
        return self._tracked(name, ref, status)

    def kill_actor(self, handle: ActorHandle) -> None:
        check_handle(handle, self)
        native = self._native_actor(handle)
        self._killed.add(handle._actor_id)
        if native is not None:
            ray.kill(native, no_restart=True)

    # ================================================================ tools
    def _where(self) -> str:
        return "Ray's dashboard (ray status, ray list tasks) shows whether it is queued or running"

    def timeline_events(self) -> list[dict[str, Any]]:
        if not self._used or not ray.is_initialized():
            return []
        with self._spans_lock:
            kept = list(self._spans)
        spans = [{"name": n, "worker": pid, "start": s, "end": e} for n, s, e, pid in kept]
        # spans of calls that tasks made and waited for were recorded in the workers
        time.sleep(2 * SPAN_FLUSH_S)  # let them write what they recorded
        spans += self._on_every_node(self.token, False)
        spans.sort(key=lambda s: s["start"])
        return spans[-rm.SPANS_KEPT :]

    def _on_every_node(self, token: str, remove: bool) -> list[dict[str, Any]]:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        refs = [
            _span_reader()
            .options(
                num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            )
            .remote(token, remove)
            for node in ray.nodes()
            if node.get("Alive")
        ]
        files: dict[tuple[str, int], list[dict[str, Any]]] = {}
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=60)
        for ref in ready:
            with contextlib.suppress(Exception):
                files.update(ray.get(ref))  # nodes sharing a host see the same files: once each
        return [span for spans in files.values() for span in spans]

    def shutdown(self) -> None:
        if self._closed:
            return
        self._stop_watcher()
        if self.in_worker:
            return
        pending = self.pending_futures()
        if pending and ray.is_initialized():
            done = set(map(id, self._poll(pending)))
            error = PlaitError("plait was shut down before this task finished")
            for f in pending:
                if id(f) in done:
                    continue
                with contextlib.suppress(Exception):
                    ray.cancel(f._payload, force=False, recursive=True)
                self._complete([(f, FAILED, error)])
        if not self.started_ray and ray.is_initialized():
            with self._actor_lock:
                actors = list(self._actors.values())
                self._actors.clear()
            for native in actors:
                with contextlib.suppress(Exception):
                    ray.kill(native, no_restart=True)
        if self._used and ray.is_initialized():  # the span files this session left on the nodes
            with contextlib.suppress(Exception):
                self._on_every_node(self.token, True)
        if self.started_ray:
            ray.shutdown()


# =========================================================== helpers (driver)
def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0] if lines else text


def _native(future: Future) -> Any:
    if not isinstance(future._engine, RayEngine):
        raise TypeError(
            f"{future!r} belongs to the {getattr(future._engine, 'name', '?')!r} engine and cannot be "
            "passed to a task on the ray engine"
        )
    if future._payload is None:
        exc = future._exc or PlaitError(f"{future!r} has no value")
        return _error_refs(exc, future._name)[0]
    return future._payload


def _resource_options(options: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"num_cpus": options.num_cpus, "num_gpus": options.num_gpus}
    if options.memory:
        out["memory"] = int(options.memory)
    if options.resources:
        out["resources"] = dict(options.resources)
    return out


def _actor_name(actor_id: int) -> str:
    return f"plait-actor-{actor_id:x}"


def _named_id(name: str) -> int:
    """The actor id of the actor named ``name`` (the same in every process)."""
    import hashlib

    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big") >> 2


def _ident(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_." else "_" for c in name)
    return cleaned or "task"


_raiser_remote: Any = None
_made_lock = threading.Lock()  # the remote functions made once per process, below


def _raise(failure: rm.Failure) -> None:
    raise failure


def _error_refs(exc: BaseException, name: str) -> Any:
    """A value and status ObjectRef that fail with ``exc``, for a call that failed before reaching Ray."""
    global _raiser_remote
    raiser = _raiser_remote
    if raiser is None:
        with _made_lock:
            if _raiser_remote is None:
                _raiser_remote = ray.remote(_raise).options(
                    num_cpus=0, num_returns=2, max_retries=0, name="plait-failed-call"
                )
            raiser = _raiser_remote
    return raiser.remote(rm.plain_failure(exc, name))


class _Error:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_SMALL = frozenset({int, float, bool, type(None), complex})


def _status_of(result: Any) -> tuple:
    """The second return of every call: its span and worker, and a small value riding along.

    The caller reads it to learn that the call succeeded (when it failed, this
    object holds the error), so a small value costs no second read, and the
    span costs no message of its own.
    """
    start, end = rm.last_span()
    t = type(result)
    if t in _SMALL or ((t is str or t is bytes) and len(result) <= 4096):
        return (start, end, os.getpid(), result)
    return (start, end, os.getpid())


# ========================================================== in Ray workers
_here = rm.WorkerEngine(RayEngine, lambda: RayEngine(EngineConfig(engine="ray"), _in_worker=True))
_worker_lock = _here.lock


def _engine_here() -> RayEngine:
    return _here.get()


def _enter(token: str) -> RayEngine:
    return _here.enter(token)  # a module function: tasks shipped by value refer to it by name


def _rebuild_future(ref: Any, name: str) -> Future:
    future = _engine_here()._new_future(name, ref)
    # a copy of a future made elsewhere: an unread failure is reported by the original
    future.mark_seen()
    return future


def _task_runner(fn: Any, options: Any, name: str, token: str, packed: bool) -> Any:
    call = fn.fn
    count = options.num_returns

    def returned(result: Any) -> Any:
        if count < 2:
            return result, _status_of(result)
        try:
            check_count(result, count, name)
        except ValueError as exc:
            raise rm.plain_failure(exc, name) from None
        start, end = rm.last_span()
        return (*result, (start, end, os.getpid()))  # the items, then a status with no value

    if packed:

        def run(*args: Any) -> Any:
            _enter(token)
            a, k = rm.unpack_packed(args)
            return returned(rm.run_call(call, a, k, options, name, None))

    else:

        def run(*args: Any, **kwargs: Any) -> Any:
            _enter(token)
            return returned(rm.run_call(call, args, kwargs, options, name, None))

    run.__name__ = run.__qualname__ = _ident(name)
    return run


class _ActorHost:
    """The Ray actor that holds one plait actor's instance."""

    def __init__(self, cls: Any, name: str, token: str, *args: Any, **kwargs: Any) -> None:
        _enter(token)
        self._name = name
        self._token = token
        self._methods = cls.methods
        self._instance: Any = None
        self._dead: bytes | None = None
        try:
            a, k = rm.unpack_args(args, kwargs)
            self._instance = cls.cls(*a, **k)
        except Exception as exc:  # noqa: BLE001 - every later call reports it
            died = ActorDiedError(f"actor {name!r} failed in __init__: {type(exc).__name__}: {exc}")
            self._dead = ser.dumps_exception(died, name, format_remote(exc, f"actor {name!r} __init__"))

    def methods(self) -> tuple[str, ...]:
        return self._methods

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        _enter(self._token)
        name = f"{self._name}.{method}"
        if self._dead is not None:
            raise rm.Failure(self._dead, name)
        a, k = rm.unpack_args(args, kwargs)
        result = rm.call_method(self._instance, method, a, k, name, None)
        return result, _status_of(result)


class _AsyncActorHost(_ActorHost):
    """The host of a plait actor with async methods: a Ray async actor, whose event loop
    runs the plait actor's coroutines side by side (up to ``max_concurrency``)."""

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        _enter(self._token)
        name = f"{self._name}.{method}"
        if self._dead is not None:
            raise rm.Failure(self._dead, name)
        a, k = rm.unpack_args(args, kwargs)
        result = await rm.call_method_async(self._instance, method, a, k, name, None)
        return result, _status_of(result)


_made_remotes: dict[Any, Any] = {}


def _remote(target: Any) -> Any:
    """``ray.remote(target)``, made once per process (Ray registers it on first use)."""
    made = _made_remotes.get(target)
    if made is None:
        with _made_lock:
            made = _made_remotes.get(target)
            if made is None:
                made = _made_remotes[target] = ray.remote(target)
    return made


def _host_class(is_async: bool = False) -> Any:
    return _remote(_AsyncActorHost if is_async else _ActorHost)


# spans: written to files per process, read per node
def _span_dir(token: str | None = None) -> str:
    base = os.path.join(tempfile.gettempdir(), f"plait-spans-{os.getuid()}")
    return base if token is None else os.path.join(base, token)


def _span_dir_is_ours() -> bool:
    """The span directory (made if missing) is a real directory of this user's that nobody
    else may write or read: its name is predictable, so another user could make it first
    and plant files that the reader would unmarshal."""
    base = _span_dir()
    with contextlib.suppress(FileExistsError):
        os.mkdir(base, 0o700)
    try:
        st = os.lstat(base)
    except OSError:
        return False
    ours = stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077
    if not ours:
        logging.getLogger("plait").warning(
            "plait does not use the span directory %s: it is not a private directory of this "
            "user's (someone else made it, or it is open to others); the Ray timeline stays empty", base,
        )  # fmt: skip
    return ours


_flusher: threading.Thread | None = None


def _ensure_flusher() -> None:
    global _flusher
    if _flusher is None:
        with _worker_lock:
            if _flusher is None:
                _flusher = threading.Thread(target=_flush_loop, name="plait-span-flusher", daemon=True)
                _flusher.start()


def _flush_loop() -> None:
    pid = os.getpid()
    while True:
        time.sleep(SPAN_FLUSH_S)
        with rm._spans_lock:
            batches = {t: list(buf) for t, buf in rm._spans.items() if buf}
            for buf in rm._spans.values():
                buf.clear()
        for token, items in batches.items():
            try:
                if os.path.exists(_closed_marker(token)):
                    continue  # the session ended and its files were removed
                directory = _span_dir(token)
                if not _span_dir_is_ours():
                    continue
                os.makedirs(directory, mode=0o700, exist_ok=True)
                with open(os.path.join(directory, f"{pid}.spans"), "ab") as f:
                    marshal.dump(items, f)  # one record per flush: a list of (name, start, end, pid)
            except (OSError, ValueError):
                pass  # the timeline is best effort


def _read_spans(token: str, remove: bool) -> dict[tuple[str, int], list[dict[str, Any]]]:
    directory = _span_dir(token)
    host = socket.gethostname()
    files: dict[tuple[str, int], list[dict[str, Any]]] = {}
    if not _span_dir_is_ours():
        return files
    for path in glob.glob(os.path.join(directory, "*.spans")):
        pid = int(os.path.basename(path).split(".")[0])
        out = files[(host, pid)] = []
        try:
            with open(path, "rb") as f:
                while True:
                    try:
                        items = marshal.load(f)
                    except (EOFError, ValueError, TypeError):
                        break
                    out.extend({"name": n, "worker": w, "start": s, "end": e} for n, s, e, w in items)
        except OSError:
            continue
    if remove and os.path.isdir(_span_dir()):
        shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(OSError):
            open(_closed_marker(token), "w").close()  # a late flush must not write them again
        now = time.time()
        for marker in glob.glob(_closed_marker("*")):  # markers of sessions long gone
            with contextlib.suppress(OSError):
                if now - os.path.getmtime(marker) > 3600:
                    os.remove(marker)
    return files


def _closed_marker(token: str) -> str:
    return os.path.join(_span_dir(), f".closed-{token}")


def _span_reader() -> Any:
    return _remote(_read_spans)
