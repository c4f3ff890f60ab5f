"""``@ray.remote`` on functions and classes, as plait tasks and actors."""

from __future__ import annotations

import inspect
from typing import Any

from plait.errors import NotSupported
from plait.runtime import actor as plait_actor
from plait.runtime.future import Future, Unresolved
from plait.runtime.options import actor_options, task_options
from plait.runtime.task import TaskFunction

FOREVER = 2**31 - 1  # Ray's -1: retry or restart without limit

# Ray's option -> what to do with it: a plait option name, or None (accepted, nothing to do)
_TASK_OPTIONS = {
    "num_cpus": "num_cpus",
    "num_gpus": "num_gpus",
    "memory": "memory",
    "resources": "resources",
    "num_returns": "num_returns",
    "max_retries": "retries",
    "retry_exceptions": "retry_exceptions",
    "name": "name",
    "max_calls": None,  # a worker recycled after n calls: plait's workers are long-lived
    "scheduling_strategy": None,
}
_ACTOR_OPTIONS = {
    "num_cpus": "num_cpus",
    "num_gpus": "num_gpus",
    "memory": "memory",
    "resources": "resources",
    "max_restarts": "max_restarts",
    "max_concurrency": "max_concurrency",
    "name": "name",
    "get_if_exists": "get_if_exists",
    "max_task_retries": None,
    "lifetime": None,
    "namespace": None,
    "scheduling_strategy": None,
}
_NOT_SUPPORTED = {
    "runtime_env": "plait runs tasks in this Python environment: install the packages beforehand",
    "placement_group": "plait places by resources alone (num_cpus, num_gpus, resources=)",
    "accelerator_type": "resources={'<accelerator>': 1} with the engine started with that resource",
    "_metadata": "nothing",
    "concurrency_groups": "max_concurrency= for the whole actor",
    "enable_task_events": "nothing",
    "label_selector": "resources=",
}


def _plait_options(owner: str, given: dict[str, Any], table: dict[str, str | None]) -> dict[str, Any]:
    """Ray's options as plait's, or NotSupported naming the one plait cannot honour."""
    out: dict[str, Any] = {}
    for key, value in given.items():
        if key in _NOT_SUPPORTED and value is not None:
            raise NotSupported(f"{owner}: Ray's option {key}= is not supported by plait; instead: {_NOT_SUPPORTED[key]}")
        if key not in table:
            raise TypeError(f"{owner}: unknown option {key}=; the options are {', '.join(sorted(table))}")
        target = table[key]
        if target is None:
            _check_accepted(owner, key, value)
            continue
        if key == "num_returns" and not isinstance(value, int):
            raise NotSupported(
                f"{owner}: num_returns={value!r} (a generator's items as refs) is not supported; "
                "return a list and use num_returns=<its length>"
            )
        if key in ("max_retries", "max_restarts") and value == -1:
            value = FOREVER
        if key == "retry_exceptions" and isinstance(value, list):
            value = tuple(value)
        if key == "resources" and value:
            value = dict(value)
        if key == "memory" and value == 0:
            value = None
        out[target] = value
    return out


def _check_accepted(owner: str, key: str, value: Any) -> None:
    """An option with nothing for plait to do: fine where its value asks for nothing."""
    if key == "scheduling_strategy" and value not in (None, "DEFAULT", "SPREAD"):
        raise NotSupported(
            f"{owner}: scheduling_strategy={value!r} is not supported; plait places calls by resources "
            "(and `f.options(near=future)` as a locality hint)"
        )
    if key == "lifetime" and value == "detached":
        raise NotSupported(
            f"{owner}: lifetime='detached' is not supported: a plait actor lives as long as its engine"
        )
    if key == "max_task_retries" and value not in (None, 0):
        raise NotSupported(
            f"{owner}: max_task_retries={value!r} is not supported: a call to an actor that died fails "
            "with ActorDiedError (the actor restarts, with max_restarts=); call it again"
        )
    if key == "namespace" and value is not None:
        raise NotSupported(f"{owner}: namespace={value!r}: plait has one namespace per driver")


def ray_arguments(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Ray resolves the ObjectRefs among a call's arguments, but passes on the ones nested in
    lists, tuples, dicts and sets as refs: plait's ``unresolved`` says so."""
    return tuple(_top(a) for a in args), {k: _top(v) for k, v in kwargs.items()}


def _top(value: Any) -> Any:
    return value if isinstance(value, Future) else _nested(value)


def _nested(value: Any) -> Any:
    t = type(value)
    if t is Future:
        return Unresolved(value)
    if t in (list, tuple, set, frozenset):
        items = [_nested(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return t(items)
    if t is dict:
        changed = {_nested(k): _nested(v) for k, v in value.items()}
        if all(a is b for a, b in zip(changed.values(), value.values(), strict=True)):
            return value
        return changed
    return value


def remote(*args: Any, **options: Any) -> Any:
    """``@ray.remote`` and ``@ray.remote(num_cpus=2, ...)`` on a function or a class."""
    if len(args) == 1 and not options and callable(args[0]):
        return _made_remote(args[0], {})
    if args:
        raise TypeError("The @ray.remote decorator must be applied either with no arguments or with keywords only")
    return lambda target: _made_remote(target, options)


def _made_remote(target: Any, options: dict[str, Any]) -> Any:
    if inspect.isclass(target):
        return ActorClass(target, options)
    if inspect.isgeneratorfunction(target) or inspect.isasyncgenfunction(target):
        raise NotSupported(
            f"@ray.remote on the generator {target.__qualname__!r}: Ray's streaming generators are not "
            "supported; return a list (and num_returns=<its length> for one ref per item)"
        )
    if inspect.iscoroutinefunction(target):
        raise NotSupported(
            f"@ray.remote on the async function {target.__qualname__!r}: async tasks are not supported; "
            "make it a plain function, or an async method of an actor"
        )
    return RemoteFunction(target, options)


class RemoteFunction:
    """A function made remote: ``f.remote(...)`` returns an ObjectRef (a ``plait.Future``)."""

    def __init__(self, function: Any, options: dict[str, Any], task: TaskFunction | None = None) -> None:
        self._function = function
        self._options = options
        name = getattr(function, "__qualname__", "task")
        if task is None:
            task = TaskFunction(function, task_options(name, **_plait_options(name, options, _TASK_OPTIONS)))
            self._call: Any = task
        else:
            self._call = task.options(**_plait_options(name, options, _TASK_OPTIONS))
        self._task = task
        self.__name__ = getattr(function, "__name__", name)
        self.__qualname__ = name
        self.__doc__ = getattr(function, "__doc__", None)
        self.__module__ = getattr(function, "__module__", __name__)

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = ray_arguments(args, kwargs)
        return self._call(*args, **kwargs)

    def options(self, **options: Any) -> RemoteFunction:
        return RemoteFunction(self._function, options, self._task)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            "Remote functions cannot be called directly. Instead of running "
            f"'{self.__module__}.{self.__name__}()', try '{self.__module__}.{self.__name__}.remote()'."
        )

    def __repr__(self) -> str:
        return f"<plait.compat.ray remote function {self.__qualname__}>"


class ActorClass:
    """A class made remote: ``Cls.remote(...)`` starts an actor and returns its handle."""

    def __init__(self, cls: type, options: dict[str, Any], actor: plait_actor.ActorClass | None = None) -> None:
        self._cls = cls
        self._options = options
        name = cls.__qualname__
        plait_options = _plait_options(name, options, _ACTOR_OPTIONS)
        if actor is None:
            actor = plait_actor.ActorClass(cls, actor_options(name, **plait_options))
            self._make: Any = actor
        else:
            self._make = actor.options(**plait_options)
        self._actor = actor
        self.__name__ = cls.__name__
        self.__qualname__ = name
        self.__doc__ = cls.__doc__
        self.__module__ = cls.__module__

    def remote(self, *args: Any, **kwargs: Any) -> ActorHandle:
        args, kwargs = ray_arguments(args, kwargs)
        return ActorHandle.of(self._make(*args, **kwargs))

    def options(self, **options: Any) -> ActorClass:
        return ActorClass(self._cls, {**self._options, **options}, self._actor)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"Actors cannot be instantiated directly. Instead of '{self.__name__}()', use '{self.__name__}.remote()'."
        )

    def __repr__(self) -> str:
        return f"<plait.compat.ray actor class {self.__qualname__}>"


class ActorHandle(plait_actor.ActorHandle):
    """A plait actor handle whose methods are called Ray's way: ``h.method.remote(...)``."""

    __slots__ = ()

    @classmethod
    def of(cls, handle: plait_actor.ActorHandle) -> ActorHandle:
        if type(handle) is cls:
            return handle
        return cls(handle._actor_id, handle._name, handle._methods, handle._payload, handle._owner)

    def __getattr__(self, item: str) -> ActorMethod:
        if item in self._methods:
            return ActorMethod(self, item)
        raise AttributeError(f"'ActorHandle' object for actor {self._name!r} has no attribute {item!r}")

    def __reduce__(self) -> Any:
        return (ActorHandle, (self._actor_id, self._name, self._methods, self._payload, self._owner))

    def __repr__(self) -> str:
        return f"Actor({self._name}, {self._actor_id:x})"


class ActorMethod:
    __slots__ = ("_handle", "_method")

    def __init__(self, handle: ActorHandle, method: str) -> None:
        self._handle = handle
        self._method = method

    def remote(self, *args: Any, **kwargs: Any) -> Future:
        args, kwargs = ray_arguments(args, kwargs)
        return plait_actor.ActorMethod(self._handle, self._method)(*args, **kwargs)

    def options(self, **options: Any) -> ActorMethod:
        for key, value in options.items():
            if key == "num_returns" and value == 1 or key == "name":
                continue
            raise NotSupported(
                f"actor method {self._method!r}: .options({key}={value!r}) is not supported; an actor call "
                "gives one ref (return a tuple and unpack it after ray.get)"
            )
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"Actor methods cannot be called directly. Instead of running 'object.{self._method}()', "
            f"try 'object.{self._method}.remote()'."
        )


def method(*args: Any, **options: Any) -> Any:
    """``@ray.method(...)`` on an actor method: only what changes nothing is accepted."""
    for key, value in options.items():
        if not (key == "num_returns" and value == 1):
            raise NotSupported(
                f"@ray.method({key}={value!r}) is not supported: an actor call gives one ref "
                "(return a tuple and unpack it after ray.get)"
            )
    if len(args) == 1 and callable(args[0]):
        return args[0]
    return lambda fn: fn


