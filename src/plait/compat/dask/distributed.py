"""``dask.distributed`` on plait: ``Client`` and ``LocalCluster`` as thin stand-ins that run
on plait's current engine (its local engine, started with the cluster's worker count, when
none is running); ``wait``, ``as_completed``, ``get_client``/``worker_client`` inside tasks,
Dask actors (``submit(cls, actor=True)``) and the coordination primitives ``Event``,
``Lock`` and ``Semaphore``, which are named plait actors every task can reach."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import deque, namedtuple
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import plait
from plait.errors import NotSupported
from plait.runtime import context
from plait.runtime.future import Future

# what submit and map take besides the function's own arguments: placement and ordering
# hints that change no result (plait places and orders calls itself)
_HINTS = ("key", "workers", "priority", "fifo_timeout", "allow_other_workers", "pure", "batch_size")


class LocalCluster:
    """Holds the size of the cluster to start: ``n_workers`` processes (plait's workers)."""

    def __init__(self, n_workers: int | None = None, threads_per_worker: int | None = None, processes: bool = True,
                 **options: Any) -> None:  # fmt: skip
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.processes = processes
        self.options = options  # dashboard_address, memory_limit...: nothing plait starts uses them

    @property
    def workers(self) -> int | None:
        """plait workers to start: one per Dask worker thread."""
        if not self.n_workers:
            return None
        return self.n_workers * (self.threads_per_worker or 1)

    def scale(self, n: int | None = None, **options: Any) -> None:
        """Resizes plait's engine to ``n`` Dask workers' worth of plait workers, where the
        engine can (the local engine can; a cluster engine's size is its cluster's)."""
        if n is None:
            raise NotSupported("LocalCluster.scale() without a worker count (adaptive sizing): give n")
        self.n_workers = n
        if plait.is_initialized():
            context.current_engine().scale(self.workers)

    @property
    def dashboard_link(self) -> str | None:
        return None

    def close(self) -> None:
        pass

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalCluster(n_workers={self.n_workers}, threads_per_worker={self.threads_per_worker})"


class Client:
    """Runs what it is given on plait's current engine, started here if none is."""

    def __init__(self, address: Any = None, **options: Any) -> None:
        if address is not None and not isinstance(address, LocalCluster):
            raise NotSupported(
                f"Client({address!r}) connects to a Dask scheduler: plait runs the program on its own "
                "engine; use plait.init(engine='dask', address=...) to run it on that cluster"
            )
        if options.get("asynchronous"):
            raise NotSupported(
                "Client(asynchronous=True): plait's client is synchronous; its futures can still be "
                "awaited (await future) inside coroutines"
            )
        cluster_options = {k: options[k] for k in ("n_workers", "threads_per_worker", "processes") if k in options}
        self.cluster = address if isinstance(address, LocalCluster) else LocalCluster(**cluster_options)
        self._started = None
        if not plait.is_initialized():
            workers = self.cluster.workers
            self._started = plait.init(**({"workers": workers} if workers else {}))
        self.engine = context.current_engine()

    @property
    def dashboard_link(self) -> str | None:
        return None

    def __repr__(self) -> str:
        return f"<Client: plait engine {type(self.engine).__name__}>"

    def submit(self, fn: Any, *args: Any, retries: int | None = None, resources: dict | None = None,
               actor: bool = False, actors: bool = False, **kwargs: Any) -> Future:  # fmt: skip
        for hint in _HINTS:
            kwargs.pop(hint, None)
        if actor or actors:
            return plait.put(_start_actor(fn, args, kwargs, resources))
        return _call_of(fn, retries, resources)(*args, **kwargs)

    def map(self, fn: Any, *iterables: Iterable, **options: Any) -> list[Future]:
        return [self.submit(fn, *args, **options) for args in zip(*iterables, strict=False)]

    def compute(self, collections: Any, sync: bool = False, **options: Any) -> Any:
        """Futures of the Delayed objects (a list for a list), or their values with ``sync``."""
        from plait.compat.dask.lower import run

        many = isinstance(collections, (list, tuple))
        items = tuple(collections) if many else (collections,)
        futures = [f if isinstance(f, Future) else plait.put(f) for f in run(items, traverse=True,
                   scheduler=self, resolve=False, options=options)]  # fmt: skip
        if sync:
            return self.gather(futures if many else futures[0])
        return futures if many else futures[0]

    def persist(self, collections: Any, **options: Any) -> Any:
        from plait.compat.dask.delayed import persist

        many = isinstance(collections, (list, tuple))
        done = persist(*(collections if many else [collections]), scheduler=self, **options)
        return list(done) if many else done[0]

    def gather(self, futures: Any, errors: str = "raise") -> Any:
        """Values in place of the futures in ``futures`` (a future, or lists, tuples and dicts of them)."""
        if errors != "raise":
            raise NotSupported(f"Client.gather(errors={errors!r}): plait raises the first error; "
                               "use plait.wait and Future.exception to see each")  # fmt: skip
        if isinstance(futures, Future):
            return futures.result()
        if type(futures) in (list, tuple):
            values = plait.get(list(futures)) if all(isinstance(f, Future) for f in futures) else [self.gather(f) for f in futures]
            return type(futures)(values)
        if type(futures) is dict:
            return {k: self.gather(v) for k, v in futures.items()}
        return futures

    def scatter(self, data: Any, broadcast: bool = False, **options: Any) -> Any:
        if type(data) in (list, tuple):
            return [plait.put(d) for d in data]
        if type(data) is dict:
            return {k: plait.put(v) for k, v in data.items()}
        return plait.put(data)

    def cancel(self, futures: Any, force: bool = False) -> None:
        for f in [futures] if isinstance(futures, Future) else futures:
            f.cancel(force=force)

    def close(self) -> None:
        if self._started is not None:
            self._started.__exit__(None, None, None)  # shuts plait down if its engine is still current
            self._started = None

    def shutdown(self) -> None:
        self.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _call_of(fn: Any, retries: int | None, resources: dict | None) -> Any:
    """The plait task that runs ``fn`` with Dask's retries (on any exception) and resources."""
    from plait.compat.dask.lower import _task_of

    task = _task_of(fn)
    options: dict[str, Any] = {}
    if retries:
        options.update(retries=retries, retry_exceptions=True)
    if resources:
        options["resources"] = dict(resources)
    return task.options(**options) if options else task


def get_client() -> Client:
    """The client of the engine this code runs on: in a task, the engine that runs it."""
    return Client()


def secede() -> None:
    """Nothing to do: a plait task that waits for other tasks lends its worker to them."""


def rejoin() -> None:
    """Nothing to do (see ``secede``)."""


@contextmanager
def worker_client(timeout: float | None = None, separate_thread: bool = True) -> Iterator[Client]:
    yield get_client()


DoneAndNotDoneFutures = namedtuple("DoneAndNotDoneFutures", ["done", "not_done"])


def wait(futures: Any, timeout: float | None = None, return_when: str = "ALL_COMPLETED") -> DoneAndNotDoneFutures:
    """Dask's ``wait``: the sets of done and not done futures; ``TimeoutError`` if ``timeout``
    passes before what ``return_when`` asks for."""
    if return_when not in ("ALL_COMPLETED", "FIRST_COMPLETED"):
        raise ValueError(f"wait(return_when={return_when!r}): use 'ALL_COMPLETED' or 'FIRST_COMPLETED'")
    items = [futures] if isinstance(futures, Future) else list(dict.fromkeys(futures))
    needed = min(1, len(items)) if return_when == "FIRST_COMPLETED" else len(items)
    plait.wait(items, num_returns=needed, timeout=timeout)
    done = {f for f in items if f.done()}
    if len(done) < needed:
        raise TimeoutError(f"wait: {len(items) - len(done)} of {len(items)} futures not done within {timeout} s")
    return DoneAndNotDoneFutures(done, set(items) - done)


class as_completed:  # noqa: N801 - Dask's name
    """Futures in the order they finish; more can be added while iterating (``add``,
    ``update``); ``batches()`` gives all that finished since the last step at once."""

    def __init__(self, futures: Iterable[Future] | None = None, with_results: bool = False,
                 raise_errors: bool = True, timeout: float | None = None) -> None:  # fmt: skip
        self.with_results = with_results
        self.raise_errors = raise_errors
        self.timeout = timeout
        self._changed = threading.Condition()
        self._waiting: set[Future] = set()  # added, not yet returned
        self._finished: deque[Future] = deque()
        self.update(futures or ())

    def add(self, future: Future) -> None:
        with self._changed:
            self._waiting.add(future)
        future.add_done_callback(self._on_done)

    def update(self, futures: Iterable[Future]) -> None:
        for f in futures:
            self.add(f)

    def _on_done(self, future: Future) -> None:
        with self._changed:
            if future in self._waiting:
                self._finished.append(future)
                self._changed.notify_all()

    def count(self) -> int:
        """Futures not yet returned, finished or not."""
        with self._changed:
            return len(self._waiting)

    def is_empty(self) -> bool:
        return self.count() == 0

    def has_ready(self) -> bool:
        with self._changed:
            return bool(self._finished)

    def clear(self) -> None:
        with self._changed:
            self._waiting.clear()
            self._finished.clear()

    def _take(self, everything: bool) -> list[Future]:
        with self._changed:
            if not self._waiting:
                raise StopIteration
            if not self._changed.wait_for(lambda: self._finished, self.timeout):
                raise TimeoutError(f"as_completed: no future finished within {self.timeout} s")
            taken = list(self._finished) if everything else [self._finished[0]]
            for f in taken:
                self._finished.popleft()
                self._waiting.discard(f)
        return taken

    def _item(self, future: Future) -> Any:
        if not self.with_results:
            return future
        if future.exception() is not None and not self.raise_errors:
            return future, future.exception()
        return future, future.result()

    def __iter__(self) -> as_completed:
        return self

    def __next__(self) -> Any:
        return self._item(self._take(everything=False)[0])

    def next_batch(self, block: bool = True) -> list[Any]:
        if not block and not self.has_ready():
            return []
        try:
            return [self._item(f) for f in self._take(everything=True)]
        except StopIteration:
            return []

    def batches(self) -> Iterator[list[Any]]:
        while True:
            try:
                batch = self._take(everything=True)
            except StopIteration:
                return
            yield [self._item(f) for f in batch]


def fire_and_forget(futures: Any) -> None:
    """Keeps the futures alive until they are done (plait runs a submitted call anyway)."""
    for f in [futures] if isinstance(futures, Future) else futures:
        _unforgotten.add(f)
        f.add_done_callback(_unforgotten.discard)


_unforgotten: set[Future] = set()


def progress(*futures: Any, **options: Any) -> None:
    """Dask's progress bar: nothing is drawn here (plait's own: plait.tools.progress)."""


# ---- Dask actors -------------------------------------------------------------------------


def _attribute(self: Any, name: str) -> Any:
    return getattr(self, name)


def _start_actor(cls: Any, args: tuple, kwargs: dict, resources: dict | None) -> Actor:
    if not isinstance(cls, type):
        raise TypeError(f"submit(..., actor=True) needs a class, got {cls!r}")
    hosted = type(cls.__name__, (cls,), {"plait_compat_attribute": _attribute})
    hosted.__qualname__ = cls.__qualname__
    factory = plait.actor(hosted, **({"resources": dict(resources)} if resources else {}))
    return Actor(factory(*args, **kwargs), cls)


class Actor:
    """A Dask actor: a method call returns a future at once; reading an attribute blocks
    until the actor returns its value."""

    def __init__(self, handle: Any, cls: type) -> None:
        self._handle = handle
        self._cls = cls

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if callable(getattr(self._cls, name, None)):
            return getattr(self._handle, name)
        return self._handle.plait_compat_attribute(name).result()

    def __dir__(self) -> list[str]:
        return sorted(n for n in dir(self._cls) if not n.startswith("_"))

    def __repr__(self) -> str:
        return f"<Actor: {self._cls.__name__}>"


# ---- coordination primitives: named actors, so every task and client reaches the same one --


@plait.actor
class _EventState:
    def __init__(self) -> None:
        self.event = asyncio.Event()

    async def set(self) -> None:
        self.event.set()

    async def clear(self) -> None:
        self.event.clear()

    async def is_set(self) -> bool:
        return self.event.is_set()

    async def wait(self, timeout: float | None) -> bool:
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except TimeoutError:
            return False
        return True


@plait.actor
class _LeaseState:
    def __init__(self, max_leases: int) -> None:
        self.free = max_leases
        self.freed = asyncio.Condition()

    async def acquire(self, timeout: float | None) -> bool:
        async with self.freed:
            try:
                await asyncio.wait_for(self.freed.wait_for(lambda: self.free > 0), timeout)
            except TimeoutError:
                return False
            self.free -= 1
            return True

    async def release(self) -> None:
        async with self.freed:
            self.free += 1
            self.freed.notify()

    async def held(self) -> bool:
        return self.free == 0


def _named(kind: str, name: str | None) -> str:
    return name if name is not None else f"{kind}-{uuid.uuid4().hex}"


class Event:
    """Dask's distributed ``Event``: one per name, shared by every task and client."""

    def __init__(self, name: str | None = None, client: Any = None) -> None:
        self.name = _named("event", name)
        self._state = _EventState.options(name=f"dask-event:{self.name}", get_if_exists=True)()

    def set(self) -> None:
        self._state.set().result()

    def clear(self) -> None:
        self._state.clear().result()

    def is_set(self) -> bool:
        return self._state.is_set().result()

    def wait(self, timeout: float | None = None) -> bool:
        return self._state.wait(timeout).result()

    def __reduce__(self) -> Any:
        return (Event, (self.name,))


class Semaphore:
    """Dask's distributed ``Semaphore``: at most ``max_leases`` holders at once, across every
    task and client that uses its name. (A lease held by a task whose worker dies is not
    given back: plait has no lease timeouts.)"""

    def __init__(self, max_leases: int = 1, name: str | None = None, **options: Any) -> None:
        if max_leases < 1:
            raise ValueError(f"Semaphore(max_leases={max_leases}): needs at least 1")
        self.max_leases = max_leases
        self.name = _named("semaphore", name)
        self._state = _LeaseState.options(name=f"dask-lease:{self.name}", get_if_exists=True)(max_leases)

    def acquire(self, timeout: float | None = None) -> bool:
        return self._state.acquire(timeout).result()

    def release(self) -> bool:
        self._state.release().result()
        return True

    def close(self) -> None:
        pass

    def __enter__(self) -> Semaphore:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __reduce__(self) -> Any:
        return (type(self), (self.max_leases, self.name))


class Lock(Semaphore):
    """Dask's distributed ``Lock``: a semaphore of one lease."""

    def __init__(self, name: str | None = None, client: Any = None, **options: Any) -> None:
        super().__init__(1, name)

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:  # type: ignore[override]
        return super().acquire(timeout if blocking else 0)

    def locked(self) -> bool:
        return self._state.held().result()

    def __reduce__(self) -> Any:
        return (Lock, (self.name,))


_NOT_OFFERED = {
    "Queue": "a Dask Queue between clients and tasks; pass futures to tasks, or use a plait actor holding a queue",
    "Variable": "a Dask Variable between clients; use a named plait actor (plait.actor(...).options(name=...))",
    "Pub": "Dask's publish/subscribe; use a named plait actor",
    "Sub": "Dask's publish/subscribe; use a named plait actor",
    "Scheduler": "starting a Dask scheduler; plait.init() starts plait's engine",
    "Worker": "starting a Dask worker; plait.init(workers=n) starts plait's workers",
    "Nanny": "starting a Dask nanny; plait restarts its own workers",
    "SSHCluster": "a Dask cluster over SSH; use plait.init(engine='dask', address=...) on a running one",
    "performance_report": "Dask's HTML performance report; use plait.timeline() for a trace",
    "get_worker": "the Dask worker object; a plait task has no worker object",
}


def __getattr__(name: str) -> Any:
    if name in _NOT_OFFERED:
        raise NotSupported(f"dask.distributed.{name}: {_NOT_OFFERED[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
