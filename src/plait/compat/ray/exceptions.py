"""``ray.exceptions`` as plait raises them: each type is also the plait error it stands for,
so ``except ray.exceptions.GetTimeoutError`` and ``except plait.GetTimeoutError`` both
catch a timed-out ``ray.get``.

A task's own exception reaches the caller as ``RayTaskError`` *and* as its own type (Ray's
``RayTaskError(ValueError)``): ``except ValueError`` and ``except RayTaskError`` both catch
it, and ``.cause`` is the task's exception itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import plait.errors as plait_errors


class RayError(Exception):
    """Base of the errors ``plait.compat.ray`` raises."""


class RayTaskError(RayError):
    """A task (or actor call) raised; ``cause`` is its exception."""

    def __init__(self, function_name: str = "", traceback_str: str = "", cause: BaseException | None = None) -> None:
        super().__init__(str(cause) if cause is not None else function_name)
        self.function_name = function_name
        self.traceback_str = traceback_str
        self.cause = cause

    def as_instanceof_cause(self) -> RayTaskError:
        return self if self.cause is None else as_task_error(self.cause)


class GetTimeoutError(RayError, plait_errors.GetTimeoutError):
    """``ray.get``/``ray.wait`` ran out of time."""


class TaskCancelledError(RayError, plait_errors.CancelledError):
    """The task was cancelled (``ray.cancel``)."""


class RayActorError(RayError):
    """The actor died before or while running the call."""


class ActorDiedError(RayActorError, plait_errors.ActorDiedError):
    """The actor's process is gone (killed, crashed, out of restarts)."""


class ActorUnavailableError(RayActorError):
    """Never raised by plait (its actors are reachable while alive); here for ``except``."""


class WorkerCrashedError(RayError, plait_errors.WorkerCrashedError):
    """The worker running the task died and no retries were left."""


class ObjectLostError(RayError, plait_errors.ReleasedError):
    """The object's value is gone (released)."""


class OutOfMemoryError(RayError, plait_errors.ObjectStoreFullError):
    """A value could not be stored."""


class ObjectStoreFullError(OutOfMemoryError):
    pass


class RaySystemError(RayError, plait_errors.EngineError):
    """The engine itself failed."""


# plait's error -> the ray.exceptions type that stands for it (most specific first)
_STANDS_FOR: tuple[tuple[type[BaseException], type[RayError]], ...] = (
    (plait_errors.GetTimeoutError, GetTimeoutError),
    (plait_errors.CancelledError, TaskCancelledError),
    (plait_errors.ActorDiedError, ActorDiedError),
    (plait_errors.WorkerCrashedError, WorkerCrashedError),
    (plait_errors.ReleasedError, ObjectLostError),
    (plait_errors.ObjectStoreFullError, ObjectStoreFullError),
    (plait_errors.EngineError, RaySystemError),
)

_task_error_types: dict[type, type] = {}


def _task_error_type(cause_type: type) -> type:
    """``RayTaskError(cause_type)``: a subclass of both, made once per cause type."""
    made = _task_error_types.get(cause_type)
    if made is None:
        try:
            made = type(
                f"RayTaskError({cause_type.__name__})",
                (RayTaskError, cause_type),
                {"__reduce__": _reduce_task_error, "__str__": _cause_text, "__module__": __name__},
            )
        except TypeError:  # a cause type that cannot be a second base (a built-in layout)
            made = RayTaskError
        made = _task_error_types.setdefault(cause_type, made)
    return made


def _reduce_task_error(self: RayTaskError) -> Any:
    return (as_task_error, (self.cause,))


def _cause_text(self: RayTaskError) -> str:
    return str(self.cause)


def as_task_error(cause: BaseException) -> RayTaskError:
    """The task's exception ``cause`` as Ray raises it: ``RayTaskError`` and its own type."""
    if isinstance(cause, RayTaskError):
        return cause
    cls = _task_error_type(type(cause))
    if cls is RayTaskError:
        error = RayTaskError(getattr(cause, "task_name", ""), _traceback_of(cause), cause)
    else:
        error = cls.__new__(cls)
        error.__dict__.update(getattr(cause, "__dict__", {}))
        error.args = cause.args
        error.function_name = getattr(cause, "task_name", "")
        error.traceback_str = _traceback_of(cause)
        error.cause = cause
    error.__cause__ = cause.__cause__
    return error


def _traceback_of(exc: BaseException) -> str:
    remote = exc.__cause__
    return remote.tb if isinstance(remote, plait_errors.RemoteTraceback) else ""


def translated(exc: BaseException) -> BaseException:
    """The error a Ray program expects in place of plait's ``exc``."""
    if isinstance(exc, RayError):
        return exc
    for plait_type, ray_type in _STANDS_FOR:
        if isinstance(exc, plait_type):
            error = ray_type(*exc.args)
            error.__cause__ = exc.__cause__
            return error
    if isinstance(exc, plait_errors.TaskError) or isinstance(exc.__cause__, plait_errors.RemoteTraceback):
        return as_task_error(exc)
    return exc


@contextlib.contextmanager
def raised_as_ray() -> Iterator[None]:
    """Errors from plait leave the block as the ``ray.exceptions`` types standing for them."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - re-raised, translated or as it was
        error = translated(exc)
        if error is exc:
            raise
        raise error from exc.__cause__
