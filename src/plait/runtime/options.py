"""Task and actor options, and the resource shapes the schedulers reason about."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

_TASK_OPTION_NAMES = (
    "num_cpus",
    "num_gpus",
    "memory",
    "resources",
    "retries",
    "retry_exceptions",
    "timeout",
    "name",
    "num_returns",
)
_ACTOR_OPTION_NAMES = (
    "num_cpus",
    "num_gpus",
    "memory",
    "resources",
    "max_restarts",
    "max_concurrency",
    "name",
    "get_if_exists",
)
# calls at once on an actor with async methods unless it says otherwise (Ray's default)
ASYNC_CONCURRENCY = 1000


@dataclass(frozen=True, slots=True)
class TaskOptions:
    num_cpus: float = 1
    num_gpus: float = 0
    memory: int | None = None
    resources: tuple[tuple[str, float], ...] = ()
    retries: int = 3
    retry_exceptions: bool | tuple[type[BaseException], ...] = False
    timeout: float | None = None
    name: str | None = None
    num_returns: int = 1  # the call gives this many futures, one per item of the returned sequence

    def shape(self) -> tuple[tuple[str, float], ...]:
        """The resources one call holds while it runs, as a hashable key."""
        return resource_shape(self.num_cpus, self.num_gpus, self.memory, self.resources)

    def should_retry(self, exc: BaseException) -> bool:
        spec = self.retry_exceptions
        if spec is True:
            return True
        if not spec:
            return False
        return isinstance(exc, spec)


@dataclass(frozen=True, slots=True)
class ActorOptions:
    num_cpus: float = 0
    num_gpus: float = 0
    memory: int | None = None
    resources: tuple[tuple[str, float], ...] = ()
    max_restarts: int = 0
    # calls run side by side (threads; coroutines on the event loop of an async actor);
    # None: one at a time, in call order, or ASYNC_CONCURRENCY for an async actor
    max_concurrency: int | None = None
    name: str | None = None
    named: bool = False  # the name came from .options(name=...): plait.get_actor(name) finds it
    get_if_exists: bool = False  # creating a named actor that exists gives the existing one

    def shape(self) -> tuple[tuple[str, float], ...]:
        return resource_shape(self.num_cpus, self.num_gpus, self.memory, self.resources)

    def concurrency(self, is_async: bool) -> int:
        """How many calls of an actor with these options may run at once."""
        if self.max_concurrency is not None:
            return self.max_concurrency
        return ASYNC_CONCURRENCY if is_async else 1


def resource_shape(
    num_cpus: float, num_gpus: float, memory: int | None, resources: tuple[tuple[str, float], ...]
) -> tuple[tuple[str, float], ...]:
    shape: dict[str, float] = {}
    if num_cpus:
        shape["CPU"] = num_cpus
    if num_gpus:
        shape["GPU"] = num_gpus
    if memory:
        shape["memory"] = memory
    for key, amount in resources:
        if amount:
            shape[key] = amount
    return tuple(sorted(shape.items()))


def _check_number(owner: str, key: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{owner}: option {key}={value!r} must be a number >= 0")


def _normalize(owner: str, kwargs: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(
            f"{owner}: unknown option(s) {', '.join(unknown)}; the options are {', '.join(allowed)}"
        )
    out = dict(kwargs)
    for key in ("num_cpus", "num_gpus"):
        if key in out:
            _check_number(owner, key, out[key])
    if "num_gpus" in out:
        g = out["num_gpus"]
        if g > 1 and g != int(g):
            raise ValueError(f"{owner}: num_gpus={g} must be a whole number when above 1")
    if "memory" in out:
        _check_number(owner, "memory", out["memory"], allow_none=True)
    if "resources" in out:
        res = out["resources"] or {}
        if not isinstance(res, dict):
            raise TypeError(f"{owner}: resources= must be a dict like {{'db': 1}}, got {res!r}")
        for k, v in res.items():
            if k in ("CPU", "GPU", "memory"):
                raise ValueError(f"{owner}: use num_cpus/num_gpus/memory instead of resources[{k!r}]")
            _check_number(owner, f"resources[{k!r}]", v)
        out["resources"] = tuple(sorted(res.items()))
    if "retries" in out or "max_restarts" in out or "num_returns" in out:
        for key in ("retries", "max_restarts", "num_returns"):
            if key in out and (not isinstance(out[key], int) or out[key] < 0):
                raise ValueError(f"{owner}: {key}={out[key]!r} must be an int >= 0")
    if "retry_exceptions" in out:
        spec = out["retry_exceptions"]
        if isinstance(spec, type) and issubclass(spec, BaseException):
            spec = (spec,)
        elif isinstance(spec, (list, tuple)):
            spec = tuple(spec)
            if not all(isinstance(t, type) and issubclass(t, BaseException) for t in spec):
                raise TypeError(f"{owner}: retry_exceptions= takes True/False or exception types")
        elif not isinstance(spec, bool):
            raise TypeError(f"{owner}: retry_exceptions= takes True/False or exception types")
        out["retry_exceptions"] = spec
    if "timeout" in out:
        _check_number(owner, "timeout", out["timeout"], allow_none=True)
    if out.get("max_concurrency") is not None:
        n = out["max_concurrency"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{owner}: max_concurrency={n!r} must be an int >= 1 (calls at once)")
    return out


def task_options(owner: str, base: TaskOptions | None = None, **kwargs: Any) -> TaskOptions:
    values = _normalize(owner, kwargs, _TASK_OPTION_NAMES)
    return replace(base or TaskOptions(), **values)


def actor_options(owner: str, base: ActorOptions | None = None, **kwargs: Any) -> ActorOptions:
    values = _normalize(owner, kwargs, _ACTOR_OPTION_NAMES)
    return replace(base or ActorOptions(), **values)


@dataclass(slots=True)
class EngineConfig:
    """What ``plait.init`` was asked for; engines read what applies to them."""

    engine: str = "local"
    workers: int | None = None
    num_cpus: float | None = None
    num_gpus: int | None = None
    gpu_ids: list[str] | None = None
    memory: int | None = None
    resources: dict[str, float] = field(default_factory=dict)
    object_store_memory: int | None = None
    spill_dir: str | None = None
    trace: str | None = None
    progress: bool = False
    address: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
