"""``plait.ActorPool``: spread calls over a fixed set of actors, as Ray's ``ActorPool`` does.

Each call goes to an idle actor; calls beyond the actors wait in the pool
(not on the engine) until one is free, so a slow call never holds back the
others queued behind a busy actor. Results come back in submission order
(``map``, ``get_next``) or as they finish (``map_unordered``,
``get_next_unordered``). A call that raised gives its actor back and raises
its exception where its result is taken.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from plait.errors import GetTimeoutError
from plait.runtime.actor import ActorHandle
from plait.runtime.future import Future


class ActorPool:
    def __init__(self, actors: Iterable[ActorHandle]) -> None:
        self._idle: list[ActorHandle] = list(actors)
        for a in self._idle:
            if not isinstance(a, ActorHandle):
                raise TypeError(f"ActorPool takes actor handles (instances of @plait.actor classes), got {a!r}")
        self._running: dict[int, tuple[Future, ActorHandle]] = {}  # submission index -> call
        self._queued: deque[tuple[int, Callable[[ActorHandle, Any], Future], Any]] = deque()
        self._submitted = 0  # index of the next submission
        self._returned = 0  # index of the next result get_next gives
        self._taken: set[int] = set()  # indexes taken out of order (get_next_unordered)

    # submitting --------------------------------------------------------------
    def submit(self, fn: Callable[[ActorHandle, Any], Future], value: Any) -> None:
        """Schedule ``fn(actor, value)`` (it must return the future of an actor call)."""
        index = self._submitted
        self._submitted += 1
        if self._idle:
            self._start(index, fn, value, self._idle.pop())
        else:
            self._queued.append((index, fn, value))

    def _start(self, index: int, fn: Callable, value: Any, actor: ActorHandle) -> None:
        future = fn(actor, value)
        if not isinstance(future, Future):
            self._idle.append(actor)
            raise TypeError(
                f"the function given to ActorPool must return the future of an actor call "
                f"(like `lambda a, v: a.method(v)`), got {future!r}"
            )
        self._running[index] = (future, actor)

    def _release(self, actor: ActorHandle) -> None:
        if self._queued:
            index, fn, value = self._queued.popleft()
            self._start(index, fn, value, actor)
        else:
            self._idle.append(actor)

    # results -------------------------------------------------------------------
    def has_next(self) -> bool:
        """Are results left to take (running or queued)?"""
        return bool(self._running or self._queued)

    def get_next(self, timeout: float | None = None) -> Any:
        """The next result in submission order."""
        while self._returned in self._taken:
            self._taken.discard(self._returned)
            self._returned += 1
        if not self.has_next():
            raise StopIteration("no more results to get: submit() some first")
        index = self._returned
        if index not in self._running:
            # calls start in submission order, so the next one waits only if no actor is left
            raise RuntimeError("ActorPool has calls queued but no actors: push() an actor first")
        future, actor = self._running[index]
        if not _finished(future, timeout):
            raise GetTimeoutError(f"ActorPool.get_next: the next result was not ready within {timeout} s")
        del self._running[index]
        self._returned += 1
        self._release(actor)
        return future.result()

    def get_next_unordered(self, timeout: float | None = None) -> Any:
        """Any next result, the first to finish."""
        if not self.has_next():
            raise StopIteration("no more results to get: submit() some first")
        if not self._running:
            raise RuntimeError("ActorPool has calls queued but no actors: push() an actor first")
        index = self._wait_any(timeout)
        future, actor = self._running.pop(index)
        self._taken.add(index)
        self._release(actor)
        return future.result()

    def _wait_any(self, timeout: float | None) -> int:
        """Index of a finished running call (its actor still held)."""
        from plait.runtime.api import wait

        order = sorted(self._running)
        futures = [self._running[i][0] for i in order]
        done, _ = wait(futures, num_returns=1, timeout=timeout)
        if not done:
            raise GetTimeoutError(f"ActorPool: no result was ready within {timeout} s")
        return order[futures.index(done[0])]

    def map(self, fn: Callable[[ActorHandle, Any], Future], values: Iterable[Any]) -> Iterator[Any]:
        """``fn(actor, v)`` for every value, results in the order of ``values``."""
        for value in values:
            self.submit(fn, value)
        while self.has_next():
            yield self.get_next()

    def map_unordered(self, fn: Callable[[ActorHandle, Any], Future], values: Iterable[Any]) -> Iterator[Any]:
        """``fn(actor, v)`` for every value, results as they finish."""
        for value in values:
            self.submit(fn, value)
        while self.has_next():
            yield self.get_next_unordered()

    # the actors -----------------------------------------------------------------
    def has_free(self) -> bool:
        return bool(self._idle) and not self._queued

    def pop_idle(self) -> ActorHandle | None:
        """Take an idle actor out of the pool (None if all are busy)."""
        return self._idle.pop() if self.has_free() else None

    def push(self, actor: ActorHandle) -> None:
        """Add an actor to the pool (it takes a queued call at once, if any)."""
        if not isinstance(actor, ActorHandle):
            raise TypeError(f"ActorPool.push takes an actor handle, got {actor!r}")
        self._release(actor)


def _finished(future: Future, timeout: float | None) -> bool:
    from plait.runtime.api import wait

    done, _ = wait([future], num_returns=1, timeout=timeout)
    return bool(done)
