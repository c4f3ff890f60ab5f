"""Task and actor options, and the resource shapes the schedulers reason about."""

from __future__ import annotations

import math
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


def check_amount(owner: str, key: str, value: Any, *, allow_none: bool = False, positive: bool = False) -> None:
    """``value`` is a finite real number (not a bool), ``>= 0`` (``> 0`` when ``positive``):
    NaN compares false with everything, so it would pass a range check and then break the
    accounting of every resource it touches."""
    if value is None and allow_none:
        return
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
    if bad or value < 0 or (positive and value == 0):
        least = "> 0" if positive else ">= 0"
        raise ValueError(f"{owner}: option {key}={value!r} must be a finite number {least}")


def check_count(owner: str, key: str, value: Any, *, least: int = 0, allow_none: bool = False) -> None:
    """``value`` is an int ``>= least`` (a bool is not a count)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{owner}: option {key}={value!r} must be an int >= {least}")


def check_resources(owner: str, resources: Any) -> tuple[tuple[str, float], ...]:
    res = resources or {}
    if not isinstance(res, dict):
        raise TypeError(f"{owner}: resources= must be a dict like {{'db': 1}}, got {res!r}")
    for k, v in res.items():
        if not isinstance(k, str) or not k:
            raise TypeError(f"{owner}: resources= takes names (str) as keys, got {k!r}")
        if k in ("CPU", "GPU", "memory"):
            raise ValueError(f"{owner}: use num_cpus/num_gpus/memory instead of resources[{k!r}]")
        check_amount(owner, f"resources[{k!r}]", v)
    return tuple(sorted(res.items()))


def _check_flag(owner: str, key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: option {key}={value!r} must be True or False")


def _normalize(owner: str, kwargs: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(
            f"{owner}: unknown option(s) {', '.join(unknown)}; the options are {', '.join(allowed)}"
        )
    out = dict(kwargs)
    for key in ("num_cpus", "num_gpus"):
        if key in out:
            check_amount(owner, key, out[key])
    if "num_gpus" in out:
        g = out["num_gpus"]
        if g > 1 and g != int(g):
            raise ValueError(f"{owner}: num_gpus={g} must be a whole number when above 1")
    if "memory" in out:
        check_amount(owner, "memory", out["memory"], allow_none=True)
    if "resources" in out:
        out["resources"] = check_resources(owner, out["resources"])
    for key in ("retries", "max_restarts", "num_returns"):
        if key in out:
            check_count(owner, key, out[key])
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
    if "timeout" in out:  # seconds a call may run: zero would stop every call at once
        check_amount(owner, "timeout", out["timeout"], allow_none=True, positive=True)
    if out.get("max_concurrency") is not None:
        check_count(owner, "max_concurrency", out["max_concurrency"], least=1)
    if out.get("name") is not None and (not isinstance(out["name"], str) or not out["name"]):
        raise TypeError(f"{owner}: option name={out['name']!r} must be a non-empty str")
    if "get_if_exists" in out:
        _check_flag(owner, "get_if_exists", out["get_if_exists"])
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
