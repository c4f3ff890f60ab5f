"""Exceptions a plait user can catch.

Every error says what happened and what to do next. Task exceptions are not
wrapped: the caller gets the task's own exception object (same type), with the
remote traceback attached as its ``__cause__``.
"""

from __future__ import annotations

from concurrent.futures import CancelledError

__all__ = [
    "ActorDiedError",
    "CancelledError",
    "EngineError",
    "GetTimeoutError",
    "InfeasibleResourcesError",
    "NotSupported",
    "ObjectStoreFullError",
    "PlaitError",
    "ReleasedError",
    "RemoteTraceback",
    "SerializationError",
    "TaskError",
    "TaskTimeoutError",
    "WorkerCrashedError",
]


class PlaitError(Exception):
    """Base class of the errors plait itself raises."""


def _by_args(self: BaseException) -> tuple:
    """Pickled as the class and its arguments: rebuilt the same on the other side."""
    return (type(self), self.args)


class RemoteTraceback(Exception):
    """Carries the formatted traceback of an exception raised in a worker.

    It is set as the ``__cause__`` of the re-raised exception, so Python prints
    the remote traceback above the local one.
    """

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return "\n\n" + self.tb


class TaskError(PlaitError):
    """A task raised an exception that could not be sent back as itself."""

    def __init__(self, task_name: str, type_name: str, message: str, tb: str = "") -> None:
        super().__init__(f"task {task_name!r} raised {type_name}: {message}")
        self.task_name = task_name
        self.type_name = type_name
        self.message = message  # the original exception's text, without this prefix
        self.remote_traceback = tb

    def __reduce__(self):
        return (type(self), (self.task_name, self.type_name, self.message, self.remote_traceback))


class WorkerCrashedError(PlaitError):
    """The worker process running a task died, and no retries were left."""

    __reduce__ = _by_args


class ActorDiedError(PlaitError):
    """The actor's process is gone: its pending and later calls fail with this."""

    __reduce__ = _by_args


class TaskTimeoutError(PlaitError, TimeoutError):
    """A task ran longer than its ``timeout=`` option; its worker was stopped."""

    __reduce__ = _by_args


class GetTimeoutError(PlaitError, TimeoutError):
    """``get(..., timeout=)`` or ``Future.result(timeout)`` ran out of time."""


class EngineError(PlaitError):
    """The engine itself failed (an internal error in its scheduler) and cannot go on: every
    pending call fails with this, and a new call says so."""

    __reduce__ = _by_args


class ObjectStoreFullError(PlaitError):
    """A value could not be stored: shared memory and the spill directory are both full."""

    __reduce__ = _by_args


class ReleasedError(PlaitError):
    """A future whose value its holder let go of (``Future.release()``) was read or passed on."""

    __reduce__ = _by_args


class SerializationError(PlaitError, TypeError):
    """A value could not be pickled to cross a process boundary."""

    __reduce__ = _by_args


class InfeasibleResourcesError(PlaitError, ValueError):
    """A task asks for more resources than the engine has in total."""


class NotSupported(PlaitError, NotImplementedError):
    """An engine cannot offer an option; the message names both."""
