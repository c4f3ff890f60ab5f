"""The user-facing runtime calls: init, shutdown, get, wait, as_completed, put."""

from __future__ import annotations

import atexit
import importlib
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from plait.errors import GetTimeoutError
from plait.runtime import context
from plait.runtime.actor import ActorHandle
from plait.runtime.future import _NO_VALUE, FINISHED, Future, Unresolved
from plait.runtime.options import EngineConfig, check_amount, check_count, check_resources

ENGINES = {
    "inline": "plait.engines.inline:InlineEngine",
    "local": "plait.engines.local.engine:LocalEngine",
    "ray": "plait.engines.ray:RayEngine",
    "dask": "plait.engines.dask:DaskEngine",
}
_PASSES_KEYWORDS_ON = {"ray", "dask"}  # engines that hand unknown keywords to their framework
_atexit_registered = False


class Session:
    """What ``plait.init`` returns; as a context manager it shuts the engine down."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        if context.engine_or_none() is self.engine:
            shutdown()

    def __repr__(self) -> str:
        return f"<plait session on the {self.engine.name!r} engine>"


def init(
    engine: str | None = None,
    *,
    workers: int | None = None,
    num_cpus: float | None = None,
    num_gpus: int | None = None,
    memory: int | None = None,
    resources: dict[str, float] | None = None,
    object_store_memory: int | None = None,
    spill_dir: str | None = None,
    trace: str | None = None,
    progress: bool = False,
    address: str | None = None,
    **extra: Any,
) -> Session:
    """Start an engine for this process; optional (first use starts the default).

    ``engine`` is ``"local"`` (default: one warm worker process per core) or
    ``"inline"`` (sequential, in-process, for stepping through in a debugger);
    ``PLAIT_ENGINE`` sets it from the environment.
    """
    global _atexit_registered
    if context.engine_or_none() is not None:
        raise RuntimeError(
            "plait is already initialized in this process; call plait.shutdown() first, "
            "or use `with plait.init(...):` to scope an engine"
        )
    name = engine or os.environ.get("PLAIT_ENGINE") or "local"
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(sorted(ENGINES))}")
    if extra and name not in _PASSES_KEYWORDS_ON:
        options = "workers, num_cpus, num_gpus, memory, resources, object_store_memory, spill_dir, trace, progress"
        raise TypeError(
            f"plait.init(engine={name!r}): unknown keyword(s) {', '.join(sorted(extra))}. "
            f"Its options are {options}; other keywords are passed on only by "
            "engine='ray' (to ray.init) and engine='dask' (to LocalCluster)"
        )
    if workers is None and os.environ.get("PLAIT_WORKERS"):
        try:
            workers = int(os.environ["PLAIT_WORKERS"])
        except ValueError:
            raise ValueError(
                f"PLAIT_WORKERS={os.environ['PLAIT_WORKERS']!r} must be a whole number of worker processes"
            ) from None
    _check_init(workers, num_cpus, num_gpus, memory, resources, object_store_memory, spill_dir)
    config = EngineConfig(
        engine=name,
        workers=workers,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        memory=memory,
        resources=dict(resources or {}),
        object_store_memory=object_store_memory,
        spill_dir=spill_dir,
        trace=trace or os.environ.get("PLAIT_TRACE") or None,
        progress=progress or os.environ.get("PLAIT_PROGRESS", "") not in ("", "0"),
        address=address,
        extra=extra,
    )
    module_name, class_name = ENGINES[name].split(":")
    engine_obj = getattr(importlib.import_module(module_name), class_name)(config)
    context.set_engine(engine_obj)
    if not _atexit_registered:
        atexit.register(shutdown)
        _atexit_registered = True
    return Session(engine_obj)


def _check_init(
    workers: Any, num_cpus: Any, num_gpus: Any, memory: Any, resources: Any, object_store_memory: Any, spill_dir: Any
) -> None:
    """Each of ``plait.init``'s amounts is of the right type, finite and in range, before an
    engine is built on it."""
    owner = "plait.init"
    check_count(owner, "workers", workers, least=1, allow_none=True)
    check_amount(owner, "num_cpus", num_cpus, allow_none=True, positive=True)
    check_count(owner, "num_gpus", num_gpus, allow_none=True)
    check_amount(owner, "memory", memory, allow_none=True, positive=True)
    check_amount(owner, "object_store_memory", object_store_memory, allow_none=True, positive=True)
    check_resources(owner, resources)
    if spill_dir is not None and not isinstance(spill_dir, (str, os.PathLike)):
        raise TypeError(f"{owner}: spill_dir={spill_dir!r} must be a path (str or os.PathLike)")


def shutdown() -> None:
    """Stop the engine and every process it started; pending futures fail."""
    engine = context.engine_or_none()
    if engine is None:
        return
    context.set_engine(None)
    trace = engine.config.trace if engine.config is not None else None
    try:
        if trace:
            _write_timeline(engine, trace)
    finally:
        engine.shutdown()


def is_initialized() -> bool:
    return context.engine_or_none() is not None


def _not_a_future(what: str, value: Any) -> TypeError:
    from plait.runtime.invoke import running_task

    message = f"{what}, got {type(value).__name__}: {value!r:.200}"
    task = running_task()
    if task is not None:
        message += (
            f". Inside task {task!r}: futures passed to a task (also inside lists, dicts and "
            "other values) arrive as their values, so there is nothing to get: use the value"
        )
    return TypeError(message)


def _engine_of(futures: list[Future]) -> Any:
    for f in futures:
        if not isinstance(f, Future):
            raise _not_a_future("expected plait.Future objects", f)
    engine = futures[0]._engine
    if engine is None:
        raise RuntimeError("this future belongs to an engine that was shut down")
    return engine


def get(refs: Any, timeout: float | None = None, *, progress: bool | None = None) -> Any:
    """The value of a future, or the values of a list/tuple of futures, in order.

    Raises the first failed task's exception (its own type, remote traceback
    attached) and ``TimeoutError`` (``GetTimeoutError``) after ``timeout`` s.
    """
    if isinstance(refs, Future):
        return refs.result(timeout)
    if not isinstance(refs, (list, tuple)):
        raise _not_a_future("plait.get takes a Future or a list of Futures", refs)
    futures = list(refs)
    if not futures:
        return []
    engine = _engine_of(futures)
    with _progress(futures, engine, progress):
        engine.wait_for(futures, len(futures), timeout)
    pending = [f for f in futures if f._state == 0]
    if pending:
        raise GetTimeoutError(
            f"{len(pending)} of {len(futures)} futures were not ready within {timeout} s "
            f"(first: {pending[0]!r}); plait.status() shows what they wait for"
        )
    unread = [f for f in futures if f._state == FINISHED and f._value is _NO_VALUE]
    if len(unread) > 1:
        try:
            values = engine.values_of(unread)  # one exchange for all, where the engine can
        except Exception:  # noqa: BLE001 - each raises in its own place below
            values = None
        if values is not None:
            for f, value in zip(unread, values, strict=True):
                f.offer_value(value)
    return [f.result() for f in futures]


def wait(
    futures: Iterable[Future],
    num_returns: int = 1,
    timeout: float | None = None,
    *,
    progress: bool | None = None,
) -> tuple[list[Future], list[Future]]:
    """``(done, pending)`` as soon as ``num_returns`` futures are done, or at ``timeout``."""
    futures = list(futures)
    if not futures:
        return [], []
    if not 0 <= num_returns <= len(futures):
        raise ValueError(f"num_returns={num_returns} must be between 0 and {len(futures)} (the futures given)")
    if len({id(f) for f in futures}) != len(futures):
        raise ValueError("plait.wait got the same future twice; pass each future once")
    engine = _engine_of(futures)
    with _progress(futures, engine, progress):
        engine.wait_for(futures, num_returns, timeout)
    # like Ray: at most num_returns are reported done, in the order given
    done = [f for f in futures if f._state != 0][: num_returns or None]
    chosen = {id(f) for f in done}
    pending = [f for f in futures if id(f) not in chosen]
    return done, pending


def as_completed(futures: Iterable[Future], timeout: float | None = None) -> Iterator[Future]:
    """Yield futures as they finish; ``TimeoutError`` if ``timeout`` runs out first."""
    pending = list(futures)
    deadline = None if timeout is None else time.monotonic() + timeout
    while pending:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        done, pending = wait(pending, num_returns=1, timeout=remaining)
        if not done:
            raise GetTimeoutError(f"{len(pending)} futures not done within {timeout} s")
        still = []
        for f in pending:
            if f._state != 0:
                done.append(f)
            else:
                still.append(f)
        pending = still
        yield from done


def put(value: Any) -> Future:
    """Store ``value`` once; pass the future to many tasks without copying it again."""
    return context.current_engine().put(value)


def unresolved(future: Future) -> Unresolved:
    """Pass ``future`` to a task as the future itself, not its value (Ray's nested
    references): the task does not wait for it to start, and may ``get`` it, pass it on
    to other tasks, or drop it unread. Works inside lists, dicts and other arguments."""
    if not isinstance(future, Future):
        raise _not_a_future("plait.unresolved takes a plait.Future", future)
    return Unresolved(future)


def get_actor(name: str) -> ActorHandle:
    """The live actor created with ``.options(name=name)``, from the driver or any task."""
    return context.current_engine().get_actor(name)


def kill(actor: Any) -> None:
    """Stop an actor now; its pending and later calls fail with ``ActorDiedError``."""
    context.current_engine().kill_actor(actor)


def status() -> StatusReport:
    """For each unfinished task: what it is doing, or what it waits for."""
    engine = context.engine_or_none()
    return StatusReport(engine.status() if engine is not None else [])


class StatusReport(list):
    def __str__(self) -> str:
        if not self:
            return "plait: no unfinished tasks"
        lines = [f"plait: {len(self)} unfinished task(s)"]
        for rec in self[:200]:
            lines.append(f"  {rec['name']}#{rec['id']:x}: {rec['state']} - {rec['why']}")
        if len(self) > 200:
            lines.append(f"  ... and {len(self) - 200} more")
        return "\n".join(lines)


def timeline(path: str) -> str:
    """Write finished task spans as a Chrome/Perfetto trace (JSON) to ``path``."""
    engine = context.engine_or_none()
    if engine is None:
        raise RuntimeError("plait is not initialized: there is no timeline to write")
    return _write_timeline(engine, path)


def _write_timeline(engine: Any, path: str) -> str:
    from plait.tools.timeline import write_trace

    return write_trace(engine.timeline_events(), path)


def progress_wanted(progress: bool | None, engine: Any) -> bool:
    """``progress=`` if given, else ``plait.init(progress=)``."""
    return progress if progress is not None else engine.config is not None and bool(engine.config.progress)


def _progress(
    futures: list[Future], engine: Any, progress: bool | None, label: str = "plait", rows: list | None = None
) -> Any:
    """A progress bar over ``futures`` where asked (``progress=``, else ``plait.init(progress=)``);
    ``rows``: futures of row counts (lists of ``(rows, bytes)``), shown as rows read."""
    from contextlib import nullcontext

    if not progress_wanted(progress, engine) or len(futures) < 2:
        return nullcontext()
    from plait.tools.progress import ProgressBar

    return ProgressBar(futures, label=label, rows=rows)
