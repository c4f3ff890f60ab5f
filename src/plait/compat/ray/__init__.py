"""The Ray Core API on plait: ``import plait.compat.ray as ray`` and a Ray program runs on
plait's engine (every core of this machine by default; ``ray.init(engine="ray")`` or
``engine="dask"`` runs it on a cluster through plait).

What maps one to one: ``@ray.remote`` functions and classes with their options,
``.remote()``/``.options()``, ``num_returns``, ``max_retries``/``retry_exceptions``,
``max_restarts``, ``max_concurrency``, async actors, named actors and ``get_if_exists``,
``get``/``wait``/``put``/``cancel``/``kill``/``get_actor``, ObjectRefs (``plait.Future``)
nested in containers passed unresolved as Ray passes them, ``ray.util.ActorPool`` and
``ray.exceptions``. What differs, and what raises ``plait.NotSupported``, is listed in
``docs/compat.md``.
"""

from __future__ import annotations

import math
from typing import Any

import plait
from plait.compat.ray import exceptions, util
from plait.compat.ray._remote import ActorClass, ActorHandle, RemoteFunction, method, ray_arguments, remote
from plait.compat.ray.exceptions import raised_as_ray
from plait.errors import NotSupported
from plait.runtime import context
from plait.runtime.future import PENDING, Future

ObjectRef = Future
ObjectID = Future

__all__ = [
    "ActorClass",
    "ActorHandle",
    "ObjectRef",
    "RemoteFunction",
    "available_resources",
    "cancel",
    "cluster_resources",
    "exceptions",
    "get",
    "get_actor",
    "init",
    "is_initialized",
    "kill",
    "method",
    "put",
    "ray_arguments",
    "remote",
    "shutdown",
    "util",
    "wait",
]

# ray.init keywords that change nothing a program can observe on plait
_HARMLESS = {
    "log_to_driver",
    "logging_level",
    "logging_format",
    "configure_logging",
    "include_dashboard",
    "dashboard_host",
    "dashboard_port",
    "_temp_dir",
    "_system_config",
}


def init(
    address: str | None = None,
    *,
    num_cpus: float | None = None,
    num_gpus: int | None = None,
    resources: dict[str, float] | None = None,
    object_store_memory: int | None = None,
    local_mode: bool = False,
    ignore_reinit_error: bool = False,
    namespace: str | None = None,
    runtime_env: dict | None = None,
    engine: str | None = None,
    **kwargs: Any,
) -> Any:
    """``ray.init``: starts plait's engine. ``engine=`` (plait's own keyword) picks it:
    ``"local"`` by default, ``"inline"`` for ``local_mode=True``, ``"ray"`` to run on a
    real Ray cluster (``address=`` then goes to Ray), ``"dask"``."""
    unknown = sorted(set(kwargs) - _HARMLESS)
    if unknown:
        raise NotSupported(
            f"ray.init({', '.join(unknown)}=...) has no counterpart in plait.compat.ray; "
            "remove it, or see docs/compat.md for what ray.init accepts"
        )
    if runtime_env:
        raise NotSupported(
            f"ray.init(runtime_env={runtime_env!r}): plait runs tasks in this Python environment "
            "and working directory; install the packages and set the variables before starting"
        )
    if namespace is not None:
        raise NotSupported(
            f"ray.init(namespace={namespace!r}): plait has one namespace per driver; named actors "
            "are found by name alone"
        )
    if address is not None and engine != "ray":
        raise NotSupported(
            f"ray.init(address={address!r}) joins a Ray cluster: pass engine='ray' as well to run "
            "this program on it through plait, or leave address out to run on plait's local engine"
        )
    if plait.is_initialized():
        if ignore_reinit_error:
            return context.current_engine()
        raise RuntimeError(
            "Maybe you called ray.init twice by accident? This error can be suppressed by passing "
            "ignore_reinit_error=True, or by calling ray.shutdown() first"
        )
    name = engine or ("inline" if local_mode else None)
    options: dict[str, Any] = {}
    if num_cpus is not None:
        options["num_cpus"] = num_cpus
        if name in (None, "local") and num_cpus >= 1:
            options["workers"] = math.ceil(num_cpus)  # Ray runs num_cpus one-CPU tasks at once
    if num_gpus is not None:
        options["num_gpus"] = num_gpus
    if resources:
        options["resources"] = resources
    if object_store_memory is not None:
        options["object_store_memory"] = object_store_memory
    if address is not None:
        options["address"] = address
    return plait.init(name, **options).engine


def is_initialized() -> bool:
    return plait.is_initialized()


def shutdown() -> None:
    plait.shutdown()


def get(object_refs: Any, *, timeout: float | None = None) -> Any:
    if not isinstance(object_refs, (Future, list)):
        raise ValueError(
            f"'object_refs' must either be an ObjectRef or a list of ObjectRefs, got {type(object_refs).__name__}"
        )
    if isinstance(object_refs, list):
        for ref in object_refs:
            if not isinstance(ref, Future):
                raise ValueError(f"'object_refs' must either be an ObjectRef or a list of ObjectRefs, got {ref!r}")
    with raised_as_ray():
        return plait.get(object_refs, timeout=timeout)


def wait(
    object_refs: list, *, num_returns: int = 1, timeout: float | None = None, fetch_local: bool = True
) -> tuple[list, list]:
    if not isinstance(object_refs, list):
        raise TypeError(f"wait() expected a list of ray.ObjectRef, got {type(object_refs).__name__}")
    for ref in object_refs:
        if not isinstance(ref, Future):
            raise TypeError(f"wait() expected a list of ray.ObjectRef, got a list holding {ref!r}")
    if num_returns > len(object_refs):
        raise ValueError("num_returns cannot be greater than the number of objects provided to ray.wait")
    with raised_as_ray():
        return plait.wait(object_refs, num_returns=num_returns, timeout=timeout)


def put(value: Any) -> Future:
    if isinstance(value, Future):
        raise TypeError("Calling 'put' on an ray.ObjectRef is not allowed: pass the ObjectRef itself on")
    with raised_as_ray():
        return plait.put(value)


def cancel(object_ref: Future, *, force: bool = False, recursive: bool = True) -> None:
    """Cancel a task. A running task call is stopped (its worker with it, as ``force=True``
    does on Ray; Ray's default interrupts the task with ``KeyboardInterrupt`` instead); a
    running call of an async actor has its coroutine cancelled, as on Ray; a running call
    of a synchronous actor runs on, as on Ray."""
    if not isinstance(object_ref, Future):
        raise TypeError(f"ray.cancel() only supported for object refs, got {type(object_ref).__name__}")
    with raised_as_ray():
        try:
            cancelled = object_ref.cancel(force)
        except NotSupported as exc:  # force=True of a running actor call: Ray refuses it so
            raise ValueError(f"force=True is not supported for actor calls: {exc}") from None
        if cancelled or force or object_ref._state != PENDING:
            return
        try:
            object_ref.cancel(force=True)
        except NotSupported:  # an actor call: stopping it would kill the actor
            pass


def kill(actor: ActorHandle, *, no_restart: bool = True) -> None:
    if not isinstance(actor, plait.ActorHandle):
        raise ValueError(f"ray.kill() only supported for actors. For tasks, try ray.cancel(). Got: {actor!r}")
    if not no_restart:
        raise NotSupported(
            "ray.kill(actor, no_restart=False): plait restarts an actor only when its process dies; "
            "a killed actor stays dead. Create a new actor instead"
        )
    plait.kill(actor)


def get_actor(name: str, namespace: str | None = None) -> ActorHandle:
    if namespace is not None:
        raise NotSupported(f"ray.get_actor(namespace={namespace!r}): plait has one namespace per driver")
    try:
        found = plait.get_actor(name)
    except ValueError:
        raise ValueError(f"Failed to look up actor with name '{name}'") from None
    return ActorHandle.of(found)


def cluster_resources() -> dict[str, float]:
    return _resources()[0]


def available_resources() -> dict[str, float]:
    return _resources()[1]


def _resources() -> tuple[dict[str, float], dict[str, float]]:
    engine = context.current_engine()
    known = engine.resources()
    if known is None:
        raise NotSupported(f"the {engine.name} engine cannot tell its resources here (inside a task, say)")
    total, free = known
    shown = lambda amounts: {k: float(v) for k, v in amounts.items() if v}  # noqa: E731 - Ray omits zeros
    return shown(total), shown(free)


_ELSEWHERE = {
    "data": "plait.data (partitioned datasets)",
    "dag": "@plait.parallel (a plain function made a graph) or plait.graph",
    "workflow": "plait's graph IR and @plait.parallel",
    "get_runtime_context": "nothing yet",
    "get_gpu_ids": "the CUDA_VISIBLE_DEVICES a task sees",
    "nodes": "plait.status()",
    "timeline": "plait.timeline(path)",
    "remote_function": "plait.compat.ray.remote",
    "train": "nothing",
    "tune": "nothing",
    "serve": "nothing",
    "rllib": "nothing",
    "job_submission": "nothing",
    "client": "ray.init(engine='ray', address=...)",
    "cross_language": "nothing",
}


def __getattr__(name: str) -> Any:
    if name in _ELSEWHERE:
        raise NotSupported(f"ray.{name} is not part of plait.compat.ray; plait's equivalent: {_ELSEWHERE[name]}")
    raise AttributeError(f"module 'plait.compat.ray' has no attribute {name!r}")
