"""The inline engine: every call runs at once, in the caller's thread.

Same semantics as the local engine (arguments and results are copied through
pickle, errors and retries behave alike, resource requests are checked), but
nothing runs concurrently, so a debugger can step from the caller into a task.
Actors are plain objects in this process. The one exception: an actor that allows
several calls at once (``max_concurrency``, async methods) runs them side by side
on its threads or event loop, as every engine does, so calls that wait for one
another (a call waiting for an event a later call sets) behave as elsewhere. A task's ``timeout`` cannot
interrupt it here: a call that overran fails with ``TaskTimeoutError`` when it
returns.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
import weakref
from typing import Any

from plait.errors import ActorDiedError, TaskTimeoutError
from plait.runtime import future as fut_mod
from plait.runtime import serialization as ser
from plait.runtime.actor import ActorHandle, check_handle, name_taken, no_such_actor
from plait.runtime.engine import Engine
from plait.runtime.future import FAILED, FINISHED, Future
from plait.runtime.invoke import SideBySide, call_with_retries, format_remote, run_method
from plait.runtime.resources import ResourcePool, detect_cpus, detect_gpu_ids, detect_memory


class InlineEngine(Engine):
    name = "inline"

    def __init__(self, config: Any) -> None:
        self.config = config
        gpu_ids = config.gpu_ids or (
            [str(i) for i in range(config.num_gpus)] if config.num_gpus is not None else detect_gpu_ids()
        )
        self.pool = ResourcePool(
            config.num_cpus or config.workers or detect_cpus(),
            gpu_ids,
            config.memory or detect_memory(),
            config.resources,
        )
        self._ids = itertools.count(1)
        # every future by id while it lives, to resolve the ids pickled in values
        self._named: dict[str, ActorHandle] = {}  # .options(name=...) actors
        self._live: weakref.WeakValueDictionary[int, Future] = weakref.WeakValueDictionary()
        self._actors: dict[int, Any] = {}
        self._side_by_side: dict[int, SideBySide] = {}  # actors whose calls run at once
        self._dead_actors: dict[int, BaseException] = {}
        self._events: list[dict[str, Any]] = []
        self._thread = threading.get_ident()
        self._closed = False
        self.session = uuid.uuid4().hex

    # ------------------------------------------------------------------ tasks
    def submit(self, fn: Any, args: tuple, kwargs: dict, options: Any) -> Future:
        name = options.name or fn.name
        self.pool.check_feasible(options.shape(), f"task {name!r}")
        future = Future(self, next(self._ids), name)
        data, buffers, _ = ser.dumps_args(name, args, kwargs, owner=self)
        self._live[future._id] = future
        start = time.time()
        try:
            call_args, call_kwargs = ser.loads(data, buffers, self._resolve)
        except BaseException as exc:  # a dependency failed: this call fails the same way
            self._settle(future, FAILED, exc)
            return future
        try:
            result = call_with_retries(fn.fn, call_args, call_kwargs, options)
        except Exception as exc:
            exc.__cause__ = None
            tb = format_remote(exc, f"task {name!r}")
            self._settle(future, FAILED, ser.loads_exception(ser.dumps_exception(exc, name, tb)))
            return future
        end = time.time()
        self._record(name, start, end)
        if options.timeout is not None and end - start > options.timeout:
            self._settle(
                future,
                FAILED,
                TaskTimeoutError(f"task {name!r} ran {end - start:.3f} s, over its timeout={options.timeout} s"),
            )
            return future
        self._settle(future, FINISHED, self._dump_result(name, result))
        return future

    def _dump_result(self, name: str, result: Any) -> Any:
        try:
            return ser.dumps(result)
        except Exception as exc:  # noqa: BLE001
            raise ser.result_error(name, result, exc) from exc

    def _resolve(self, object_id: int) -> Any:
        # a dependency's value; a failed dependency fails the call the same way
        return self._live[object_id].result()

    def put(self, value: Any) -> Future:
        future = Future(self, next(self._ids), "put")
        self._live[future._id] = future
        self._settle(future, FINISHED, ser.dumps_put(value, owner=self))
        return future

    def value_of(self, future: Future) -> Any:
        data, buffers, _ = future._payload
        return ser.loads(data, buffers, self._adopt_ref)

    def _settle(self, future: Future, state: int, data: Any) -> None:
        fut_mod.run_callbacks(fut_mod.complete([(future, state, data)]))

    def wait_for(self, futures: list[Future], num_returns: int, timeout: float | None) -> None:
        # every inline future is done when it is returned, but calls running side by side
        fut_mod.wait_local(futures, num_returns, timeout)

    def refresh(self, future: Future) -> None:
        return None

    def cancel(self, future: Future, force: bool = False) -> bool:
        return False  # every inline call has run by the time its future exists

    def release(self, object_id: int) -> None:
        return None

    def adopt(self, object_id: int, name: str) -> Future:
        return fut_mod.live_future(self._live, object_id, name, self.name)

    def _adopt_ref(self, object_id: int) -> Any:
        return self._live[object_id]  # kept alive by the payload that refers to it

    # ----------------------------------------------------------------- actors
    def create_actor(self, cls: Any, args: tuple, kwargs: dict, options: Any) -> ActorHandle:
        self.pool.check_feasible(options.shape(), f"actor {cls.name!r}")
        if options.named:
            existing = self._named.get(options.name)
            if existing is not None and existing._actor_id in self._actors:
                if options.get_if_exists:
                    return existing
                raise name_taken(options.name)
        handle = self._create_actor(cls, args, kwargs, options)
        if options.named:
            self._named[options.name] = handle
        return handle

    def get_actor(self, name: str) -> ActorHandle:
        handle = self._named.get(name)
        if handle is None or handle._actor_id not in self._actors:
            raise no_such_actor(name, self.name)
        return handle

    def _create_actor(self, cls: Any, args: tuple, kwargs: dict, options: Any) -> ActorHandle:
        actor_id = next(self._ids)
        data, buffers, _ = ser.dumps_args(cls.name, args, kwargs, owner=self)
        try:
            a, k = ser.loads(data, buffers, self._resolve)
            instance = self._actors[actor_id] = cls.cls(*a, **k)
            concurrency = options.concurrency(cls.is_async)
            if concurrency > 1:
                self._side_by_side[actor_id] = SideBySide(instance, concurrency, cls.is_async)
        except Exception as exc:
            died = ActorDiedError(f"actor {cls.name!r} failed in __init__: {type(exc).__name__}: {exc}")
            died.__cause__ = exc
            self._dead_actors[actor_id] = died
        return ActorHandle(actor_id, options.name or cls.name, cls.methods, owner=self.session)

    def call_actor(self, handle: ActorHandle, method: str, args: tuple, kwargs: dict) -> Future:
        check_handle(handle, self)
        name = f"{handle._name}.{method}"
        future = Future(self, next(self._ids), name)
        self._live[future._id] = future
        if handle._actor_id in self._dead_actors:
            self._settle(future, FAILED, self._dead_actors[handle._actor_id])
            return future
        instance = self._actors[handle._actor_id]
        data, buffers, _ = ser.dumps_args(name, args, kwargs, owner=self)
        start = time.time()
        side_by_side = self._side_by_side.get(handle._actor_id)
        try:
            a, k = ser.loads(data, buffers, self._resolve)
            if side_by_side is not None:
                side_by_side.start(method, a, k, lambda ok, value: self._settle_call(future, start, ok, value))
                return future
            result = run_method(instance, method, a, k)
        except Exception as exc:
            self._settle_call(future, start, False, exc)
            return future
        self._settle_call(future, start, True, result)
        return future

    def _settle_call(self, future: Future, start: float, ok: bool, value: Any) -> None:
        name = future._name
        if not ok:
            tb = format_remote(value, f"actor call {name!r}")
            self._settle(future, FAILED, ser.loads_exception(ser.dumps_exception(value, name, tb)))
            return
        self._record(name, start, time.time())
        try:
            data = self._dump_result(name, value)
        except Exception as exc:  # noqa: BLE001 - as on the local engine: the call fails
            self._settle(future, FAILED, exc)
            return
        self._settle(future, FINISHED, data)

    def kill_actor(self, handle: ActorHandle) -> None:
        check_handle(handle, self)
        self._actors.pop(handle._actor_id, None)
        self._side_by_side.pop(handle._actor_id, None)
        self._dead_actors[handle._actor_id] = ActorDiedError(f"actor {handle._name!r} was killed")

    # ------------------------------------------------------------------ tools
    def _record(self, name: str, start: float, end: float) -> None:
        self._events.append({"name": name, "worker": 0, "start": start, "end": end})

    def resources(self) -> tuple[dict[str, float], dict[str, float]]:
        # calls run to the end when made: between them everything is free
        return dict(self.pool.total), dict(self.pool.total)

    def status(self) -> list[dict[str, Any]]:
        return []

    def timeline_events(self) -> list[dict[str, Any]]:
        return list(self._events)

    def shutdown(self) -> None:
        self._closed = True
        self._actors.clear()
        self._side_by_side.clear()
