"""The Engine protocol: the one interface every front end lowers to.

An engine runs task calls and actor calls and keeps their results. Front ends
(the task API, ``@parallel``, datasets, streams) talk only to this protocol,
so every engine runs every front end. Engines live in ``plait.engines`` and
are imported only when chosen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from plait.runtime.actor import ActorClass, ActorHandle
    from plait.runtime.future import Future
    from plait.runtime.options import ActorOptions, TaskOptions
    from plait.runtime.task import TaskFunction


class Engine(Protocol):
    """What an engine implements. Two rules besides the signatures:

    - when ``wait_for`` returns, every finished future among those given is in
      its final state (``_state`` set; a failed one has ``_exc``), because front
      ends read that state without calling ``result()``;
    - an engine holds its pending futures strongly until they finish: a caller
      may keep a future only through a callback it registered.
    """

    name: str

    # tasks and values
    def submit(self, fn: TaskFunction, args: tuple, kwargs: dict, options: TaskOptions) -> Future: ...
    def put(self, value: Any) -> Future: ...
    def wait_for(self, futures: list[Future], num_returns: int, timeout: float | None) -> None:
        """Block until ``num_returns`` of ``futures`` are done, or ``timeout`` passes."""
    def value_of(self, future: Future) -> Any:
        """The value of a finished future (deserialized here, on demand)."""
    def refresh(self, future: Future) -> None:
        """Bring a future's state up to date where the engine does not push it."""
    def cancel(self, future: Future) -> bool: ...
    def release(self, object_id: int) -> None:
        """A future was dropped: the engine may free its value (called from ``__del__``)."""
    def adopt(self, object_id: int, name: str) -> Future:
        """A future arrived inside an unpickled value: give a live one for its id."""

    # actors
    def create_actor(
        self, cls: ActorClass, args: tuple, kwargs: dict, options: ActorOptions
    ) -> ActorHandle: ...
    def call_actor(self, handle: ActorHandle, method: str, args: tuple, kwargs: dict) -> Future: ...
    def kill_actor(self, handle: ActorHandle) -> None: ...

    # tools
    def status(self) -> list[dict[str, Any]]:
        """One record per unfinished task: what it is and why it is not done."""
    def timeline_events(self) -> list[dict[str, Any]]:
        """Finished task spans as Chrome trace events."""
    def shutdown(self) -> None: ...
