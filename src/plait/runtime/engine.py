"""The Engine protocol: the one interface every front end lowers to.

An engine runs task calls and actor calls and keeps their results. Front ends
(the task API, ``@parallel``, datasets, streams) talk only to this protocol,
so every engine runs every front end. Engines live in ``plait.engines`` and
are imported only when chosen; each one subclasses ``Engine`` (so it inherits
the defaults of the capabilities it does not offer), and
``tests/test_engine_conformance.py`` runs every engine against it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    from plait.runtime.actor import ActorClass, ActorHandle
    from plait.runtime.calls import Call
    from plait.runtime.future import Future
    from plait.runtime.options import ActorOptions, EngineConfig, TaskOptions
    from plait.runtime.task import TaskFunction


@runtime_checkable
class Engine(Protocol):
    """What an engine implements. Rules besides the signatures:

    - a future changes state only through ``plait.runtime.future.complete``
      (under the futures lock, once: later settlements of a settled future are
      ignored; ``settled`` makes one final from the start, and
      ``failed_after_all``, for a value found lost, and the holder's own
      ``Future.release()`` are the only changes of a final state), and its value only through ``Future.offer_value`` (the
      first fetched object stays); an engine sets ``_payload`` (its handle of
      the result) only on a future it has just made;
    - when ``wait_for`` returns, every finished future among those given is in
      its final state, because front ends read that state without calling
      ``result()``;
    - an engine holds its pending futures strongly until they finish: a caller
      may keep a future only through a callback it registered;
    - an engine completes its futures itself, as calls end: a done-callback
      (and so ``await``) runs without any thread waiting for the future.
    """

    name: ClassVar[str]
    # capabilities, declared by each engine (front ends read them, never guess)
    concurrent_clients: ClassVar[bool] = False  # several threads may call it at once
    tracing: ClassVar[bool] = False  # calls are recorded into a graph, not run
    # ``await future`` waits through ``wait_for`` on a thread, not by a done-callback: the
    # engine must see the caller wait (a local worker then hands back its queued calls and
    # lends its CPU, so the awaited calls cannot queue behind the call awaiting them)
    awaits_by_waiting: ClassVar[bool] = False
    # a call's inputs reach it through a scheduler, each hop milliseconds (a cluster): a front
    # end then computes a small operation over results in the driver rather than in a task
    distant_workers: ClassVar[bool] = False
    config: EngineConfig | None = None  # what plait.init asked for (None inside workers)
    # who made an actor handle (``ActorHandle._owner``): actor ids restart with every engine,
    # so each engine, and its workers' engines, refuse handles of another session
    session: str = ""

    # tasks and values
    def submit(self, fn: TaskFunction, args: tuple, kwargs: dict, options: TaskOptions) -> Future: ...
    def submit_many(self, fn: TaskFunction, calls: list[tuple[tuple, dict]], options: TaskOptions) -> list[Future]:
        """Many calls of one task, ``(args, kwargs)`` each, submitted together (one exchange
        with the scheduler where the engine can); their futures, in order. This default
        submits them one by one."""
        return [self.submit(fn, args, kwargs, options) for args, kwargs in calls]
    def submit_graph(self, calls: list[Call]) -> list[Future]:
        """Calls of any tasks submitted together, each ``Call(fn, args, kwargs, options)``
        with arguments that may hold ``Earlier(i)``, the future of call ``i`` before it
        (``plait.runtime.calls``); their futures, in order. An engine that can take a
        whole graph in one exchange overrides it; this default checks the graph and
        submits the calls one by one."""
        from plait.runtime.calls import check_graph, submit_one_by_one

        check_graph(calls)
        return submit_one_by_one(self, calls)
    def submit_near(self, fn: TaskFunction, args: tuple, kwargs: dict, options: TaskOptions, near: Future) -> Future:
        """A task call placed where ``near``'s value is, as a hint (``f.options(near=x)``):
        an engine that cannot tell where values are, or that has them everywhere, runs it
        as any call. This default ignores the hint."""
        return self.submit(fn, args, kwargs, options)

    def submit_returning(
        self, fn: TaskFunction, args: tuple, kwargs: dict, options: TaskOptions
    ) -> tuple[Future, ...] | None:
        """A call with ``options.num_returns = k`` other than 1: one future per item of the
        tuple it returns (None for k=0). This default lowers it to the call and one small
        task per item; an engine that stores the items of one result apart overrides it."""
        from plait.runtime.task import lowered_returning

        return lowered_returning(self, fn, args, kwargs, options)

    def put(self, value: Any) -> Future: ...
    def wait_for(self, futures: list[Future], num_returns: int, timeout: float | None) -> None:
        """Block until ``num_returns`` of ``futures`` are done, or ``timeout`` passes."""
    def value_of(self, future: Future) -> Any:
        """The value of a finished future (deserialized here, on demand)."""
    def values_of(self, futures: list[Future]) -> list[Any]:
        """The values of finished futures, in order, fetched together where the engine can
        (one exchange for all instead of one each); raises as ``value_of`` would for the
        first that failed. This default fetches them one by one."""
        return [self.value_of(f) for f in futures]
    def refresh(self, future: Future) -> None:
        """Bring a future's state up to date where the engine does not push it."""
    def watch(self, future: Future) -> None:
        """``future`` (pending) got its first done-callback: an engine whose framework can say
        when a call ends (Dask's and Ray's own callbacks) settles it then, rather than at
        its watcher's next look. This default does nothing."""
    def cancel(self, future: Future, force: bool = False) -> bool:
        """Cancel a call not started yet; with ``force``, stop a running one (its worker is
        stopped). True if the future is now cancelled."""
    def release(self, object_id: int) -> None:
        """A future was dropped: the engine may free its value (called from ``__del__``)."""
    def adopt(self, object_id: int, name: str) -> Future:
        """A future arrived inside an unpickled value: give a live one for its id."""
    def reduce_future(self, future: Future) -> tuple | None:
        """How one of this engine's futures pickles inside a value (``Future.__reduce__``):
        a reduce tuple that carries the engine's own handle, so a framework that pickles
        the value counts the reference; None (this default): by id, adopted on arrival."""
        return None

    # actors
    def create_actor(
        self, cls: ActorClass, args: tuple, kwargs: dict, options: ActorOptions
    ) -> ActorHandle: ...
    def call_actor(self, handle: ActorHandle, method: str, args: tuple, kwargs: dict) -> Future: ...
    def kill_actor(self, handle: ActorHandle) -> None: ...
    def get_actor(self, name: str) -> ActorHandle:
        """The live actor created with ``.options(name=name)``; ``ValueError`` if none."""

    # scheduling hints (optional: the defaults say "unknown")
    def idle_capacity(self) -> int | None:
        """How many more task calls could start right now, or None if the engine cannot tell
        (``@parallel`` speculates only within this budget)."""
        return None

    def resources(self) -> tuple[dict[str, float], dict[str, float]] | None:
        """``(total, free)`` amounts of each resource (``CPU``, ``GPU``, ``memory`` in bytes,
        custom ones), or None where the engine cannot tell (inside a task, say)."""
        return None

    def typical_run_time(self, name: str) -> float | None:
        """Mean run time in seconds of the task called ``name``, once measured, else None
        (granularity control runs measured-tiny tasks in place)."""
        return None

    # capacity (optional: the default says "cannot")
    def scale(self, workers: int) -> bool:
        """Grow or shrink the engine to ``workers`` task workers; False where it cannot
        (a cluster engine's size is its cluster's)."""
        return False

    # tools
    def status(self) -> list[dict[str, Any]]:
        """One record per unfinished task: what it is and why it is not done."""
    def timeline_events(self) -> list[dict[str, Any]]:
        """Finished task spans as Chrome trace events."""
    def shutdown(self) -> None: ...
