"""The Dask engine: plait tasks run as tasks of a Dask distributed cluster.

``plait.init(engine="dask")`` starts a ``LocalCluster`` of ``workers`` worker
processes with one thread each and closes it at ``plait.shutdown()``;
``address="tcp://scheduler:8786"`` connects a new ``Client`` (closed at
shutdown, the cluster is left alone); ``client=`` (an extra keyword) uses a
``distributed.Client`` you made, e.g. for a ``dask_jobqueue.SLURMCluster``,
and leaves it open. Other extra keywords go to ``LocalCluster``.

How plait maps onto Dask:

- a task is ``client.submit(..., pure=False)`` of a small wrapper with a key
  named after the task; the arguments are pickled by plait at the call (so
  they are captured then) and futures anywhere inside them are passed as
  top-level Dask futures, which Dask resolves where the task runs
  (``_remote.pack_args``);
- ``num_gpus``, ``num_cpus`` above 1, ``memory`` and custom ``resources``
  become Dask worker resources; a request the workers do not declare raises
  ``NotSupported`` (GPUs, CPUs, memory: Dask has no such notion unless the
  workers declare it) or ``InfeasibleResourcesError`` (a custom resource);
- exceptions are re-run in place by plait (``retry_exceptions``); a task whose
  worker dies is re-run by the scheduler up to its
  ``distributed.scheduler.allowed-failures`` (default 3), then fails with
  ``WorkerCrashedError``: Dask has no per-task count for crashes;
- ``timeout=`` interrupts the task's thread at its next Python bytecode and
  fails it with ``TaskTimeoutError`` (a thread cannot be killed, so a blocking
  C call finishes first);
- a task that waits (``get``, ``wait``, ``result``) secedes from its worker's
  thread pool while it waits and rejoins after, so nested tasks cannot
  exhaust the pool;
- an actor is an instance held in one worker process (chosen at creation,
  least loaded by this engine). A method call is two tasks pinned to that
  worker: one runs the method and never fails as a Dask task (it returns
  the outcome), and depends on the same caller's previous call, so calls
  from one caller run in call order even when an earlier call waits for its
  inputs and a failed call does not stop the next; the other turns the
  outcome into the call's result or error, and is the future the caller
  gets, a Dask future like any other. If the worker leaves the cluster the
  actor is dead (``ActorDiedError``); ``max_restarts`` above 0 raises
  ``NotSupported``;
- a future's state comes from the client (no exchange); when many finish
  at once, their small values are fetched in one ``gather`` (reading values
  one by one costs a round trip each on Dask);
- a future inside a value (``put``, a result) keeps its key alive through a
  dataset published for the session (Dask does not count such references),
  removed at ``plait.shutdown()``;
- timeline: each worker process keeps the spans of the calls it ran;
  ``timeline_events`` collects them with ``client.run``;
- several threads of the driver may call the engine at once (``@parallel``
  looks ahead from threads of its own): a ``Client``'s blocking methods run
  their work on the client's event loop thread and wait for it (``sync``),
  ``submit`` builds its futures under the client's own lock, and the engine's
  own tables are guarded (see ``DaskEngine.__init__``). Waiting goes through
  the engine's client directly rather than ``Client.as_current`` (which sets
  Dask's global configuration, and restores it wrongly when threads
  interleave). Actor calls are chained under a lock in the order they are
  submitted, so each thread's calls keep their order.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import uuid
import weakref
from typing import Any

import distributed

try:
    from distributed.client import _wait as _dask_wait  # what distributed.wait runs on a client
except ImportError:  # pragma: no cover - a Dask without it: the public function, on the default client
    _dask_wait = None

from plait.engines import _remote as rm
from plait.errors import (
    ActorDiedError,
    CancelledError,
    InfeasibleResourcesError,
    NotSupported,
    PlaitError,
    SerializationError,
    WorkerCrashedError,
)
from plait.runtime import serialization as ser
from plait.runtime.actor import ActorHandle, check_handle, name_taken, no_such_actor
from plait.runtime.calls import Call, check_graph, with_results
from plait.runtime.future import CANCELLED, FAILED, FINISHED, PENDING, Future
from plait.runtime.invoke import SideBySide, format_remote
from plait.runtime.options import EngineConfig
from plait.runtime.resources import detect_cpus

RESOURCE_REFRESH_S = 5.0
PREFETCH_MIN = 4  # settling this many finished futures at once fetches their small values together
PREFETCH_MAX_BYTES = 64 * 1024
ACTOR_CHECK_S = 1.0


class _ActorInfo:
    __slots__ = ("name", "address", "last", "dead", "side_by_side")

    def __init__(
        self, name: str, address: str, last: Any = None, dead: str | None = None, side_by_side: bool = False
    ) -> None:
        self.name = name
        self.address = address
        self.last = last  # this caller's latest call (or the creation): the next call depends on it
        self.dead = dead
        self.side_by_side = side_by_side  # calls run at once: none waits for the one before


class DaskEngine(rm.ClusterEngine):
    name = "dask"
    WAIT_SLICE = ACTOR_CHECK_S
    concurrent_clients = True  # any thread may call it: @parallel may look ahead

    def __init__(self, config: EngineConfig, *, _in_worker: bool = False) -> None:
        super().__init__()
        self.config = config
        self.token = uuid.uuid4().hex[:16]
        self.in_worker = _in_worker
        self._client: Any = None
        if _in_worker:
            # inside a task @parallel runs without lookahead, as in the local engine's
            # workers: threads of its own would hold the task's slot while they wait
            self.concurrent_clients = False
        self._client_lock = threading.Lock()  # the client found lazily in a worker: one
        self._own_client = False
        self._cluster: Any = None
        if not _in_worker:
            extra = dict(config.extra)
            client = extra.pop("client", None)
            if client is not None:
                if extra:
                    raise TypeError(
                        f"plait.init(engine='dask', client=...) takes no other options: {sorted(extra)}"
                    )
                self._client = client
            elif config.address:
                if extra:
                    raise TypeError(
                        f"plait.init(engine='dask', address=...) takes no other options: {sorted(extra)}"
                    )
                self._client = distributed.Client(config.address)
                self._own_client = True
            else:
                self._start_local(config, extra)
        # shared by the driver's threads: what is made once per (task, options), added
        # under _prepare_lock (read without it: dict reads are atomic in CPython); the
        # actors, their placement, their chains of calls (_ActorInfo.last) and deaths,
        # under _actor_lock; the binding of rebuilt Dask futures to the client, under
        # _bind_lock. _resources and _actor_calls are only read, set and popped key by
        # key (atomic dict operations; release() pops _actor_calls from Future.__del__,
        # where no lock may be taken), _declared is replaced whole
        self._blobs: weakref.WeakKeyDictionary[Any, dict[Any, tuple]] = weakref.WeakKeyDictionary()
        self._prepare_lock = threading.Lock()
        self._resources: dict[Any, dict[str, float] | None] = {}
        self._declared: tuple[float, int, dict[str, float]] | None = None
        self._actors: dict[int, _ActorInfo] = {}
        self._actor_lock = threading.Lock()
        self._actor_calls: dict[int, int] = {}  # id of an actor call's future -> the actor's id
        self._placed: dict[str, int] = {}
        self._last_actor_check = 0.0
        self._bind_lock = threading.Lock()

    def _start_local(self, config: EngineConfig, extra: dict[str, Any]) -> None:
        if config.num_gpus:
            raise NotSupported(
                "the dask engine cannot honour plait.init(num_gpus=...) for a cluster it starts: Dask has "
                "no GPU notion of its own. Start workers that declare GPUs (dask worker --resources GPU=1) "
                "and pass address= or client="
            )
        n = int(config.workers or config.num_cpus or detect_cpus())
        kwargs: dict[str, Any] = {
            "n_workers": n,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
        if config.resources:
            kwargs["resources"] = dict(config.resources)
        if config.memory:
            kwargs["memory_limit"] = int(config.memory) // n
        if config.spill_dir:
            kwargs["local_directory"] = config.spill_dir
        kwargs.update(extra)
        self._cluster = distributed.LocalCluster(**kwargs)
        self._client = distributed.Client(self._cluster)
        self._own_client = True

    @property
    def client(self) -> Any:
        client = self._client
        if client is None:
            # once: get_client() in a worker's task threads may give each its own client
            # (dask/distributed#5466), and futures of one are not the other's
            with self._client_lock:
                if self._client is None:
                    self._client = distributed.get_client()
                client = self._client
        return client

    def _df(self, future: Future) -> Any:
        """The Dask future of ``future``, bound to this engine's client."""
        df = future._payload
        if df._client is None:  # rebuilt from a pickle where no client was current
            client = self.client
            with self._bind_lock:  # Dask's binding counts a reference: once per future
                if df._client is None:
                    df.bind_client(client)
                    # a client hears about a key only once it tells the scheduler it wants
                    # it (what Dask's own fire_and_forget and reconnect do)
                    client._send_to_scheduler(
                        {"op": "client-desires-keys", "keys": [df.key], "client": client.id}
                    )
        return df

    # ================================================================ tasks
    def submit(self, fn: Any, args: tuple, kwargs: dict, options: Any, **placement: Any) -> Future:
        name = options.name or fn.name
        blob, prefix, resources = self._prepared(fn, options, name)
        call_args, call_kwargs = self._pack(name, args, kwargs)
        df = self.client.submit(
            _run_task,
            blob,
            self.token,
            call_kwargs,
            *call_args,
            key=f"{prefix}-{uuid.uuid4().hex}",
            pure=False,
            resources=resources,
            **placement,
        )
        return self._new_future(name, df)

    def submit_near(self, fn: Any, args: tuple, kwargs: dict, options: Any, near: Future) -> Future:
        """On a worker that holds ``near``'s value (``workers=`` its holders, others allowed
        when they cannot run it), once that value exists; before that, wherever Dask likes."""
        holders = self._holders(near)
        if not holders:
            return self.submit(fn, args, kwargs, options)
        return self.submit(fn, args, kwargs, options, workers=holders, allow_other_workers=True)

    def _holders(self, future: Future) -> list[str]:
        if not isinstance(future._engine, DaskEngine) or future._payload is None:
            return []
        df = future._engine._df(future)
        try:
            return list(self.client.who_has([df]).get(df.key, ()))
        except Exception:  # noqa: BLE001 - a hint only: without it the call goes anywhere
            return []

    def submit_many(self, fn: Any, calls: list[tuple[tuple, dict]], options: Any) -> list[Future]:
        """One ``client.map``: one graph update for the scheduler instead of one per call."""
        if len(calls) < 2:
            return super().submit_many(fn, calls, options)
        name = options.name or fn.name
        blob, prefix, resources = self._prepared(fn, options, name)
        packed = [self._pack(name, args, kwargs) for args, kwargs in calls]
        dfs = self.client.map(
            _run_task_packed,
            [blob] * len(packed),
            [self.token] * len(packed),
            [kwargs for _, kwargs in packed],
            [args for args, _ in packed],
            key=[f"{prefix}-{uuid.uuid4().hex}" for _ in packed],
            pure=False,
            resources=resources,
        )
        return [self._new_future(name, df) for df in dfs]

    def submit_graph(self, calls: list[Call]) -> list[Future]:
        """One graph update for each run of calls that ask for the same resources (Dask takes
        resources per update): a call reads an earlier call of its run by key, and one of
        an earlier run by its Dask future."""
        check_graph(calls)
        futures: list[Future] = []
        run: list[tuple[str, Future, str, bytes, tuple, dict]] = []  # (key, future, name, blob, args, kwargs)
        run_resources: Any = None
        for fn, args, kwargs, options in calls:
            name = options.name or fn.name
            blob, prefix, resources = self._prepared(fn, options, name)
            if run and resources != run_resources:
                self._submit_run(run, run_resources)
                run = []
            run_resources = resources
            args, kwargs = with_results((args, kwargs), futures)
            future = Future(self, next(self._ids), name)  # its Dask future comes with its run's update
            futures.append(future)
            run.append((f"{prefix}-{uuid.uuid4().hex}", future, name, blob, args, kwargs))
        if run:
            self._submit_run(run, run_resources)
        return futures

    def _submit_run(self, run: list[tuple[str, Future, str, bytes, tuple, dict]], resources: Any) -> None:
        keys = {future._id: key for key, future, *_ in run}

        def native(future: Future) -> Any:
            key = keys.get(future._id) if future._engine is self else None
            return key if key is not None else self._native(future)

        dsk = {}
        for key, _, name, blob, args, kwargs in run:
            call_args, call_kwargs = rm.pack_args(
                name, args, kwargs, native, always_pickle=True, hold=self._pin, opaque=True, owner=self
            )
            dsk[key] = (_run_task, blob, self.token, call_kwargs, *call_args)
        dfs = self.client.get(dsk, list(dsk), sync=False, resources=resources)
        for (_, future, *_), df in zip(run, dfs, strict=True):
            future._payload = df
            self._track(future)
            if future._callbacks:  # one was added before its update went out
                self.watch(future)

    def _pack(self, name: str, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        return rm.pack_args(name, args, kwargs, self._native, always_pickle=True, hold=self._pin, owner=self)

    def _pin(self, future: Future) -> None:
        """A future passed to a task as itself: its key kept alive for the session (Dask
        counts no reference held inside a task's arguments)."""
        if isinstance(future._engine, DaskEngine) and future._payload is not None:
            df = future._engine._df(future)
            with contextlib.suppress(Exception):
                self.client.publish_dataset(df, name=f"plait-{self.token}-{df.key}", override=True)

    def _prepared(self, fn: Any, options: Any, name: str) -> tuple[bytes, str, dict[str, float] | None]:
        """Per (task, options), made once: the pickled function, the key prefix, the resources."""
        per_fn = self._blobs.get(fn)
        entry = per_fn.get(options) if per_fn is not None else None
        if entry is not None:
            return entry
        import cloudpickle

        # made outside the lock (it may ask the scheduler); two threads making the same
        # entry keep the first
        resources = self._resources_for(options, f"task {name!r}")
        try:
            blob = cloudpickle.dumps((fn, options, name), protocol=5)
        except Exception as exc:  # noqa: BLE001
            raise SerializationError(
                f"cannot send task {name!r} to the workers: {type(exc).__name__}: {exc}"
            ) from exc
        with self._prepare_lock:
            per_fn = self._blobs.get(fn)
            if per_fn is None:
                per_fn = self._blobs[fn] = {}
            return per_fn.setdefault(options, (blob, _ident(name), resources))

    def _native(self, future: Future) -> Any:
        engine = future._engine
        if not isinstance(engine, DaskEngine):
            raise TypeError(
                f"{future!r} belongs to the {getattr(engine, 'name', '?')!r} engine and cannot be "
                "passed to a task on the dask engine"
            )
        if future._payload is None:
            # failed before it reached Dask: a task of its own that fails the same way, made
            # for each call that reads it (rare, and the future itself stays as it was made)
            exc = future._exc or PlaitError(f"{future!r} has no value")
            return engine.client.submit(
                _raise, rm.plain_failure(exc, future._name), key=f"failed-{uuid.uuid4().hex}", pure=False
            )
        return engine._df(future)

    # resources ---------------------------------------------------------
    def _resources_for(self, options: Any, what: str) -> dict[str, float] | None:
        key = options.shape()
        if key in self._resources:
            return self._resources[key]
        need = _worker_resources(options)
        if not need:
            self._resources[key] = None
            return None
        workers, declared = self._declared_resources()
        if workers:
            self._check_declared(need, declared, what)
        self._resources[key] = need
        return need

    def _check_declared(self, need: dict[str, float], declared: dict[str, float], what: str) -> None:
        option = {"CPU": "num_cpus", "GPU": "num_gpus", "memory": "memory"}
        for key, amount in need.items():
            have = declared.get(key)
            if have is None and key in option:
                raise NotSupported(
                    f"the dask engine cannot honour {option[key]}={amount:g} for {what}: no Dask worker "
                    f"declares a {key!r} resource (start workers with --resources {key}=N)"
                )
            if have is None or have + 1e-9 < amount:
                raise InfeasibleResourcesError(
                    f"{what} asks for {key}={amount:g} but no Dask worker declares that much "
                    f"(largest: {key}={have or 0:g}), so it could never run; lower the request, or start "
                    f"workers with --resources {key}=N"
                )

    def _declared_resources(self) -> tuple[int, dict[str, float]]:
        now = time.monotonic()
        known = self._declared  # one snapshot: another thread may replace it
        if known is None or now - known[0] > RESOURCE_REFRESH_S:
            workers = self.client.scheduler_info()["workers"]
            declared: dict[str, float] = {}
            for info in workers.values():
                for k, v in (info.get("resources") or {}).items():
                    declared[k] = max(declared.get(k, 0), v)
            known = self._declared = (now, len(workers), declared)
        return known[1], known[2]

    # values ------------------------------------------------------------
    def put(self, value: Any) -> Future:
        if not ser.is_atomic(value):
            self.pin_futures_in(value)
        try:
            df = self.client.scatter([value], hash=False)[0]
        except Exception as exc:  # noqa: BLE001 - re-raised with what to do
            raise rm.put_error(self, value, exc) from exc
        return self._done_future("put", df)

    def value_of(self, future: Future) -> Any:
        try:
            df = self._df(future)
            if df.status == "finished":
                return df.result()
            with self._blocking():
                return df.result()
        except Exception as err:  # noqa: BLE001 - turned into the task's own error below
            error: BaseException = err
        exc = self._error_of(future, error)
        self._mark_failed(future, exc)
        raise exc

    def pin_futures_in(self, value: Any) -> None:
        """Keep the keys of the futures inside ``value`` alive until this session ends.

        Dask counts references to a key per client, and a value holding a
        future does not count: the key would go as soon as the client that
        made it dropped its future (a task's, when the task returns), perhaps
        before whoever reads the value asks for it. A published dataset holds
        it instead; ``shutdown`` removes this session's.
        """
        try:
            _, _, found = ser.dumps(value)
        except Exception:  # noqa: BLE001 - the framework's own pickling will say what is wrong
            return
        for f in found:
            self._pin(f)

    def reduce_future(self, future: Future) -> Any:
        if future._payload is None:
            return None
        return (_rebuild_future, (future._payload, future._name))

    # waiting -----------------------------------------------------------
    @contextlib.contextmanager
    def _blocking(self) -> Any:
        """In a task thread: leave the worker's thread pool while blocked, so others run."""
        if not self.in_worker:
            yield
            return
        from distributed.worker import thread_state

        if getattr(thread_state, "start_time", None) is None:
            yield
            return
        try:
            distributed.secede()
        except (KeyError, ValueError):  # already seceded, or not a pool thread
            yield
            return
        try:
            yield
        finally:
            distributed.rejoin()

    def _advance(self, futures: list[Future], need: int, timeout: float | None, left: float | None) -> None:
        if need >= len(futures) and not any(f._id in self._actor_calls for f in futures):
            # waiting for all, and no actor whose worker must be watched: one wait, not
            # one per slice (each wait costs the client's event loop O(futures))
            timeout = left
        self._settle_ready(self._ready(futures, need, timeout))

    def _ready(self, futures: list[Future], need: int, timeout: float | None) -> list[Future]:
        natives = list({id(f._payload): self._df(f) for f in futures}.values())
        mode = "ALL_COMPLETED" if need >= len(natives) else "FIRST_COMPLETED"
        client = self.client
        with self._blocking():
            try:
                # distributed.wait(natives, ...) with this engine's client, not the default
                # one, and without Client.as_current (see the module's docstring)
                if _dask_wait is not None:
                    client.sync(_dask_wait, natives, timeout=timeout, return_when=mode)
                else:  # pragma: no cover
                    with client.as_current():
                        distributed.wait(natives, timeout=timeout, return_when=mode)
            except (TimeoutError, CancelledError):  # timeouts; cancelled futures count as done
                pass
        done = [f for f in futures if f._payload.done()]
        if len(done) < len(futures) and self._actor_calls:
            finished = set(map(id, done))
            self._check_actors([f for f in futures if f._state == PENDING and id(f) not in finished])
        return done

    def _poll(self, futures: list[Future]) -> list[Future]:
        return [f for f in futures if self._df(f).done()]

    def watch(self, future: Future) -> None:
        if future._payload is None:
            return  # its graph update has not gone out yet: watched once it has
        self._df(future).add_done_callback(lambda _done: self._told(future))

    def _told(self, future: Future) -> None:
        """Dask's callback, on Dask's callback thread: the call ended, so its status is final."""
        try:
            self._settle_ready([future])
        except Exception:  # noqa: BLE001 - the watcher or a waiter settles it instead
            logging.getLogger("plait").debug("settling %r from Dask's callback failed", future, exc_info=True)

    def _settle_ready(self, futures: list[Future]) -> None:
        batch: list[tuple[Future, int, Any]] = []
        finished: list[Future] = []
        for f in futures:
            if f._state != PENDING:
                continue
            status = f._payload.status
            if status == "finished":
                batch.append((f, FINISHED, f._payload))
                finished.append(f)
            elif status == "cancelled":
                batch.append((f, CANCELLED, None))
            elif status == "error":
                try:
                    with self._blocking():
                        err = f._payload.exception()
                except Exception as exc:  # noqa: BLE001
                    err = exc
                batch.append((f, FAILED, self._error_of(f, err)))
        if len(finished) >= PREFETCH_MIN:
            self._prefetch(finished)
        self._complete(batch)

    def _prefetch(self, futures: list[Future]) -> None:
        """Bring the small values of many finished futures in one exchange, not one each.

        Reading a value costs a round trip per future on Dask; after a wait for
        many, their values are usually read next. Values above
        ``PREFETCH_MAX_BYTES`` stay where they are until read.
        """
        try:
            with self._blocking():
                sizes = self.client.nbytes([f._payload.key for f in futures], summary=False)
                small = [
                    f
                    for f in futures
                    if sizes.get(f._payload.key, PREFETCH_MAX_BYTES + 1) <= PREFETCH_MAX_BYTES
                ]
                if small:
                    values = self.client.gather([f._payload for f in small])
                    for f, value in zip(small, values, strict=True):
                        f.offer_value(value)
        except Exception:  # noqa: BLE001 - only an optimization: each value is read when asked for
            return

    def values_of(self, futures: list[Future]) -> list[Any]:
        try:
            with self._blocking():
                return self.client.gather([self._df(f) for f in futures])
        except Exception:  # noqa: BLE001 - one by one, so the first failure raises as its own
            return [self.value_of(f) for f in futures]

    def _error_of(self, future: Future, err: BaseException) -> BaseException:
        actor_id = self._actor_calls.get(future._id)
        if actor_id is None or isinstance(err, rm.Failure):
            return _convert(err, future._name)
        # an actor call that failed as a Dask task (not in the method): its worker went away
        self._last_actor_check = 0.0
        self._check_actors([future])
        with self._actor_lock:
            info = self._actors.get(actor_id)
        why = info.dead if info is not None and info.dead else f"{type(err).__name__}: {err}"
        died = ActorDiedError(f"actor call {future._name!r} failed: {why}")
        died.__cause__ = err
        return died

    def cancel(self, future: Future, force: bool = False) -> bool:
        df = self._df(future)
        if df.done():
            self._settle_ready([future])
            return future._state == CANCELLED
        if force:
            raise NotSupported(
                f"the dask engine cannot stop running task {future._name!r}: Dask does not interrupt "
                "a task once a worker runs it. cancel() without force cancels it if it has not started "
                "(a running one finishes, its result unused); the local and ray engines can force it"
            )
        self.client.cancel([df])
        self._cancel_local(future)
        return True

    # =============================================================== actors
    def create_actor(self, cls: Any, args: tuple, kwargs: dict, options: Any) -> ActorHandle:
        name = options.name or cls.name
        if options.max_restarts:
            raise NotSupported(
                f"the dask engine cannot honour max_restarts={options.max_restarts} for actor {name!r}: "
                "a Dask-hosted actor lives in one worker's memory and is not restarted when that worker "
                "dies; use the ray or local engine, or rebuild the actor yourself on ActorDiedError"
            )
        if options.named:
            existing = self._named_handle(name)
            if existing is not None:
                if options.get_if_exists:
                    return existing
                raise name_taken(name)
        address = self._place(options, f"actor {name!r}")
        actor_id = random.getrandbits(62)
        call_args, call_kwargs = self._pack(name, args, kwargs)
        concurrency = options.concurrency(cls.is_async)
        df = self.client.submit(
            _actor_create,
            actor_id,
            cls,
            name,
            self.token,
            concurrency,
            call_kwargs,
            *call_args,
            key=f"{_ident(name)}.__init__-{uuid.uuid4().hex}",
            workers=[address],
            allow_other_workers=False,
            pure=False,
        )
        info = _ActorInfo(name, address, last=df, side_by_side=concurrency > 1)
        with self._actor_lock:
            self._actors[actor_id] = info
        self.client.set_metadata(
            _meta_key(actor_id), {"address": address, "dead": None, "side_by_side": info.side_by_side}
        )
        handle = ActorHandle(actor_id, name, cls.methods, (address, info.side_by_side), self.session)
        if options.named:  # in the scheduler: every client and worker finds it
            self.client.set_metadata(_named_key(name), {"id": actor_id, "methods": list(cls.methods)})
        return handle

    def _named_handle(self, name: str) -> ActorHandle | None:
        entry = None
        with contextlib.suppress(KeyError):
            entry = self.client.get_metadata(_named_key(name), None)
        if not entry:
            return None
        meta = None
        with contextlib.suppress(KeyError):
            meta = self.client.get_metadata(_meta_key(entry["id"]), None)
        if not meta or meta.get("dead"):
            return None  # killed or dead: the name is free again
        where = (meta["address"], meta.get("side_by_side", False))
        return ActorHandle(entry["id"], name, tuple(entry["methods"]), where, self.session)

    def get_actor(self, name: str) -> ActorHandle:
        handle = self._named_handle(name)
        if handle is None:
            raise no_such_actor(name, self.name)
        return handle

    def _place(self, options: Any, what: str) -> str:
        workers = self.client.scheduler_info()["workers"]
        if not workers:
            self.client.wait_for_workers(1)
            workers = self.client.scheduler_info()["workers"]
        need = _worker_resources(options)
        candidates = list(workers)
        if need:
            declared: dict[str, float] = {}
            for info in workers.values():
                for k, v in (info.get("resources") or {}).items():
                    declared[k] = max(declared.get(k, 0), v)
            self._check_declared(need, declared, what)
            candidates = [
                a
                for a, info in workers.items()
                if all((info.get("resources") or {}).get(k, 0) + 1e-9 >= v for k, v in need.items())
            ]
        with self._actor_lock:
            address = min(candidates, key=lambda a: (self._placed.get(a, 0), random.random()))
            self._placed[address] = self._placed.get(address, 0) + 1
        return address

    def _actor_info(self, handle: ActorHandle) -> _ActorInfo:
        with self._actor_lock:
            info = self._actors.get(handle._actor_id)
        if info is not None:
            return info
        if handle._payload is not None:  # where it lives came with the handle: no lookup
            address, side_by_side = handle._payload
            with self._actor_lock:
                return self._actors.setdefault(
                    handle._actor_id, _ActorInfo(handle._name, address, side_by_side=side_by_side)
                )
        meta = None
        with contextlib.suppress(KeyError):
            meta = self.client.get_metadata(_meta_key(handle._actor_id), None)
        if not meta:
            info = _ActorInfo(
                handle._name, "", dead=f"actor {handle._name!r} is gone (killed, or never created here)"
            )
        else:
            info = _ActorInfo(
                handle._name, meta["address"], dead=meta.get("dead"), side_by_side=meta.get("side_by_side", False)
            )
        with self._actor_lock:
            return self._actors.setdefault(handle._actor_id, info)

    def call_actor(self, handle: ActorHandle, method: str, args: tuple, kwargs: dict) -> Future:
        check_handle(handle, self)
        name = f"{handle._name}.{method}"
        info = self._actor_info(handle)
        if info.dead:
            return self._failed_future(name, ActorDiedError(f"actor call {name!r} failed: {info.dead}"))
        call_args, call_kwargs = self._pack(name, args, kwargs)
        key = f"{_ident(name)}-{uuid.uuid4().hex}"
        pinned = {"workers": [info.address], "allow_other_workers": False, "pure": False}
        # the previous call and this one's submission, in one step: calls from several
        # threads form one chain, in which each thread's calls come in its own order
        with self._actor_lock:
            if info.dead:  # killed meanwhile
                return self._failed_future(name, ActorDiedError(f"actor call {name!r} failed: {info.dead}"))
            outcome = self.client.submit(
                _actor_call,
                handle._actor_id,
                method,
                name,
                self.token,
                info.last,
                call_kwargs,
                *call_args,
                key=f"{key}-run",
                **pinned,
            )
            if not info.side_by_side:
                info.last = outcome
        df = self.client.submit(_actor_outcome, outcome, key=key, **pinned)
        future = Future(self, next(self._ids), name)
        future._payload = df
        self._actor_calls[future._id] = handle._actor_id  # before the watcher may see it
        self._track(future)
        return future

    def release(self, object_id: int) -> None:
        self._actor_calls.pop(object_id, None)

    def kill_actor(self, handle: ActorHandle) -> None:
        check_handle(handle, self)
        info = self._actor_info(handle)
        with self._actor_lock:  # one thread marks it dead, and that one drops it
            if info.dead:
                return
            info.dead = f"actor {handle._name!r} was killed"
        self._drop_actor(handle._actor_id, info)

    def _drop_actor(self, actor_id: int, info: _ActorInfo, worker_alive: bool = True) -> None:
        with contextlib.suppress(Exception):
            self.client.set_metadata(_meta_key(actor_id), {"address": info.address, "dead": info.dead})
        if info.address and worker_alive:
            with contextlib.suppress(Exception):
                self.client.run(_actor_drop, actor_id, info.dead, workers=[info.address])
        with self._actor_lock:
            info.last = None

    def _check_actors(self, futures: list[Future]) -> None:
        """Fail the waited-for calls of actors whose worker left the cluster."""
        now = time.monotonic()
        if now - self._last_actor_check < ACTOR_CHECK_S:
            return
        ids = {self._actor_calls.get(f._id) for f in futures} - {None}
        if not ids:
            return
        self._last_actor_check = now
        alive = set(self.client.scheduler_info()["workers"])
        for actor_id in ids:
            with self._actor_lock:  # one thread marks it dead, and that one drops it
                info = self._actors.get(actor_id)
                if info is None or info.dead or not info.address or info.address in alive:
                    continue
                info.dead = f"actor {info.name!r} died: its worker {info.address} left the cluster"
            self._drop_actor(actor_id, info, worker_alive=False)
        batch = []
        for f in futures:
            actor_id = self._actor_calls.get(f._id)
            info = self._actors.get(actor_id) if actor_id is not None else None
            if info is not None and info.dead and f._state == PENDING:
                batch.append((f, FAILED, ActorDiedError(f"actor call {f._name!r} failed: {info.dead}")))
                with contextlib.suppress(Exception):
                    self.client.cancel([f._payload])
        self._complete(batch)

    # ================================================================ tools
    def resources(self) -> tuple[dict[str, float], dict[str, float]]:
        workers = self.client.scheduler_info()["workers"].values()
        total: dict[str, float] = {"CPU": 0.0, "memory": 0.0}
        for w in workers:
            total["CPU"] += int(w.get("nthreads", 1))
            total["memory"] += w.get("memory_limit") or 0
            for key, amount in (w.get("resources") or {}).items():
                total[key] = total.get(key, 0.0) + amount
        free = dict(total)
        free["CPU"] = float(self._free_slots())
        return total, free

    def _free_slots(self) -> int:
        threads = sum(int(w.get("nthreads", 1)) for w in self.client.scheduler_info()["workers"].values())
        busy = sum(len(keys) for keys in self.client.processing().values())
        return max(0, threads - busy)

    def _where(self) -> str:
        return "the Dask dashboard shows whether it is queued or running"

    def timeline_events(self) -> list[dict[str, Any]]:
        if self._client is None:
            return []
        per_worker = self.client.run(rm.take_spans, self.token)
        spans = [s for items in per_worker.values() for s in items]
        spans.sort(key=lambda s: s["start"])
        return spans[-rm.SPANS_KEPT :]

    def shutdown(self) -> None:
        if self._closed:
            return
        self._stop_watcher()
        if self.in_worker:
            return
        try:
            pending = self.pending_futures()
            if pending:
                done = set(map(id, self._poll(pending)))
                error = PlaitError("plait was shut down before this task finished")
                rest = [f for f in pending if id(f) not in done]
                with contextlib.suppress(Exception):
                    self.client.cancel([f._payload for f in rest])
                self._complete([(f, FAILED, error) for f in rest])
            if self._cluster is None:  # the cluster goes on: take our actors and spans off it
                with self._actor_lock:
                    actors = [(a, i) for a, i in self._actors.items() if not i.dead and i.address]
                for actor_id, info in actors:
                    info.dead = f"actor {info.name!r} was stopped by plait.shutdown()"
                    self._drop_actor(actor_id, info)
                with contextlib.suppress(Exception):
                    self.client.run(rm.take_spans, self.token, True)
                prefix = f"plait-{self.token}-"
                with contextlib.suppress(Exception):
                    pinned = [n for n in self.client.list_datasets() if str(n).startswith(prefix)]
                    if pinned:
                        self.client.unpublish_dataset(pinned)
        finally:
            if self._own_client:
                with contextlib.suppress(Exception):
                    self._client.close()
            if self._cluster is not None:
                with contextlib.suppress(Exception):
                    self._cluster.close()


# ============================================================ helpers
def _ident(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_." else "_" for c in name)
    return cleaned or "task"


def _meta_key(actor_id: int) -> list[str]:
    return ["plait-actors", f"{actor_id:x}"]


def _named_key(name: str) -> list[str]:
    return ["plait-named-actors", name]


def _convert(err: BaseException, name: str) -> BaseException:
    if isinstance(err, rm.Failure):
        return err.unwrap()
    if isinstance(err, distributed.KilledWorker):
        return WorkerCrashedError(
            f"the workers running task {name!r} died too often ({err}); the scheduler's "
            "distributed.scheduler.allowed-failures sets how many crashes a task survives on Dask"
        )
    if isinstance(err, (distributed.CancelledError, CancelledError)):
        return CancelledError(f"task {name!r} was cancelled")
    return err


def _worker_resources(options: Any) -> dict[str, float]:
    """The Dask worker resources a call of these options needs (one CPU is every task's)."""
    need: dict[str, float] = {}
    if options.num_cpus > 1:
        need["CPU"] = options.num_cpus
    if options.num_gpus:
        need["GPU"] = options.num_gpus
    if options.memory:
        need["memory"] = options.memory
    need.update({k: v for k, v in options.resources if v})
    return need


# ===================================================== in the worker processes
_here = rm.WorkerEngine(DaskEngine, lambda: DaskEngine(EngineConfig(engine="dask"), _in_worker=True))
_worker_lock = _here.lock


def _engine_here() -> DaskEngine:
    return _here.get()


def _enter(token: str) -> DaskEngine:
    return _here.enter(token)  # a module function: tasks shipped by value refer to it by name


def _rebuild_future(df: Any, name: str) -> Future:
    # bound to a client when first used (it may be unpickled where none is current)
    future = _engine_here()._new_future(name, df)
    # a copy of a future made elsewhere: an unread failure is reported by the original
    future.mark_seen()
    return future


_functions: dict[bytes, tuple[Any, Any, str]] = {}


def _load(blob: bytes) -> tuple[Any, Any, str]:
    entry = _functions.get(blob)
    if entry is None:
        import pickle

        if len(_functions) > 1024:
            _functions.clear()
        entry = _functions[blob] = pickle.loads(blob)
    return entry


def _run_task_packed(blob: bytes, token: str, kwargs: dict, args: tuple) -> Any:
    return _run_task(blob, token, kwargs, *args)


def _run_task(blob: bytes, token: str, kwargs: dict, *args: Any) -> Any:
    fn, options, name = _load(blob)
    engine = _enter(token)
    made = engine.made
    a, k = rm.unpack_args(args, kwargs)
    result = rm.run_call(fn.fn, a, k, options, name, token)
    if engine.made != made and not ser.is_atomic(result):
        engine.pin_futures_in(result)  # it may return a future it made
    return result


def _raise(failure: rm.Failure) -> None:
    raise failure


class _Dead:
    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


_instances: dict[int, Any] = {}
_side_by_side: dict[int, SideBySide] = {}  # actors whose calls run at once
_created: dict[int, threading.Event] = {}
_instances_lock = threading.Lock()


def _creation_event(actor_id: int) -> threading.Event:
    with _instances_lock:
        event = _created.get(actor_id)
        if event is None:
            event = _created[actor_id] = threading.Event()
        return event


def _actor_create(
    actor_id: int, cls: Any, name: str, token: str, concurrency: int, kwargs: dict, *args: Any
) -> None:
    _enter(token)
    try:
        a, k = rm.unpack_args(args, kwargs)
        instance: Any = cls.cls(*a, **k)
        if concurrency > 1:
            _side_by_side[actor_id] = SideBySide(instance, concurrency, cls.is_async)
    except Exception as exc:  # noqa: BLE001 - every call reports it
        if isinstance(exc, rm.Failure):
            exc = exc.unwrap()
        died = ActorDiedError(f"actor {name!r} failed in __init__: {type(exc).__name__}: {exc}")
        instance = _Dead(ser.dumps_exception(died, name, format_remote(exc, f"actor {name!r} __init__")))
    with _instances_lock:
        if not isinstance(_instances.get(actor_id), _Dead):  # killed before it started
            _instances[actor_id] = instance
    _creation_event(actor_id).set()


def _actor_call(
    actor_id: int, method: str, name: str, token: str, _previous: Any, kwargs: dict, *args: Any
) -> tuple[bool, Any]:
    """Run one call; never fails as a Dask task: returns (True, value) or (False, failure)."""
    engine = _enter(token)
    instance = _instances.get(actor_id)
    if instance is None:  # a call from another caller may arrive before the creation ran
        with engine._blocking():
            _creation_event(actor_id).wait(300)
        instance = _instances.get(actor_id)
        if instance is None:
            died = ActorDiedError(
                f"actor call {name!r} failed: the actor is not on this worker (it restarted)"
            )
            return False, rm.plain_failure(died, name)
    if isinstance(instance, _Dead):
        return False, rm.Failure(instance.payload, name)
    made = engine.made
    try:
        a, k = rm.unpack_args(args, kwargs)
        calls = _side_by_side.get(actor_id)
        if calls is not None:  # this task leaves the worker's pool while the call runs
            engine.client  # noqa: B018 - found here, in a task thread: the call's own thread finds none
            result = rm.call_method_side_by_side(calls, method, a, k, name, token, engine._blocking)
        else:
            result = rm.call_method(instance, method, a, k, name, token)
    except rm.Failure as failure:
        return False, failure
    if engine.made != made and not ser.is_atomic(result):
        engine.pin_futures_in(result)
    return True, result


def _actor_outcome(outcome: tuple[bool, Any]) -> Any:
    ok, value = outcome
    if not ok:
        raise value
    return value


def _actor_drop(actor_id: int, reason: str) -> None:
    died = ActorDiedError(reason)
    with _instances_lock:
        _instances[actor_id] = _Dead(ser.dumps_exception(died, "", ""))
    _side_by_side.pop(actor_id, None)
    _creation_event(actor_id).set()
