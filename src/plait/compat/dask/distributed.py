"""``dask.distributed``'s ``Client`` and ``LocalCluster`` as thin stand-ins: tutorial code
that starts a client runs on plait's current engine (its local engine, started with
the cluster's worker count, when none is running)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import plait
from plait.errors import NotSupported
from plait.runtime import context
from plait.runtime.future import Future


class LocalCluster:
    """Holds the size of the cluster to start: ``n_workers`` processes (plait's workers)."""

    def __init__(self, n_workers: int | None = None, threads_per_worker: int | None = None, processes: bool = True,
                 **options: Any) -> None:  # fmt: skip
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.processes = processes
        self.options = options  # dashboard_address, memory_limit...: nothing plait starts uses them

    @property
    def dashboard_link(self) -> str | None:
        return None

    def close(self) -> None:
        pass

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Client:
    """Runs what it is given on plait's current engine, started here if none is."""

    def __init__(self, address: Any = None, **options: Any) -> None:
        if address is not None and not isinstance(address, LocalCluster):
            raise NotSupported(
                f"Client({address!r}) connects to a Dask scheduler: plait runs the program on its own "
                "engine; use plait.init(engine='dask', address=...) to run it on that cluster"
            )
        self._started = None
        if not plait.is_initialized():
            workers = None
            if isinstance(address, LocalCluster) and address.n_workers:
                workers = address.n_workers * (address.threads_per_worker or 1)
            elif options.get("n_workers"):
                workers = options["n_workers"] * (options.get("threads_per_worker") or 1)
            self._started = plait.init(**({"workers": workers} if workers else {}))
        self.engine = context.current_engine()
        self.cluster = address

    @property
    def dashboard_link(self) -> str | None:
        return None

    def submit(self, fn: Any, *args: Any, pure: bool = True, key: Any = None, **kwargs: Any) -> Future:
        from plait.compat.dask.lower import _task_of

        return _task_of(fn)(*args, **kwargs)

    def map(self, fn: Any, *iterables: Iterable, pure: bool = True, key: Any = None, **kwargs: Any) -> list[Future]:
        from plait.compat.dask.lower import _task_of

        task = _task_of(fn)
        return [task(*args, **kwargs) for args in zip(*iterables, strict=False)]

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

    def gather(self, futures: Any) -> Any:
        """Values in place of the futures in ``futures`` (a future, or lists, tuples and dicts of them)."""
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


def wait(futures: Any, timeout: float | None = None, return_when: str = "ALL_COMPLETED") -> Any:
    items = list(futures) if not isinstance(futures, Future) else [futures]
    needed = 1 if return_when == "FIRST_COMPLETED" else len(items)
    return plait.wait(items, num_returns=needed, timeout=timeout)


def as_completed(futures: Iterable[Future], with_results: bool = False) -> Any:
    for f in plait.as_completed(list(futures)):
        yield (f, f.result()) if with_results else f


def progress(*futures: Any, **options: Any) -> None:
    """Dask's progress bar: nothing is drawn here (plait's own: plait.tools.progress)."""
