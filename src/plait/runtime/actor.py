"""``@plait.actor``: a class whose instances live in a worker process of their own.

Creating an instance starts the actor and returns an ``ActorHandle`` at once.
Each method call returns a future; calls from one caller run in call order,
one at a time, unless the actor allows several at once: ``max_concurrency=n``
runs up to n calls side by side in threads (Ray's threaded actor), and a class
with ``async def`` methods runs its calls as coroutines on one event loop (Ray's
async actor, up to 1,000 at once by default). Such calls keep no order, as on
Ray. Handles can be passed to tasks and to other actors.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import replace
from typing import Any

from plait.errors import PlaitError
from plait.runtime.context import current_engine
from plait.runtime.options import ActorOptions, actor_options


class ActorClass:
    def __init__(self, cls: type, options: ActorOptions) -> None:
        if not isinstance(cls, type):
            raise TypeError(f"@plait.actor needs a class, got {cls!r}")
        self.cls = cls
        self.actor_options = options
        self.name = options.name or cls.__qualname__
        self.methods = tuple(
            sorted(
                name
                for name in dir(cls)
                if not name.startswith("_") and callable(getattr(cls, name, None))
            )
        )
        # Ray's async actor: its calls are coroutines sharing one event loop, run side by side
        self.is_async = any(inspect.iscoroutinefunction(getattr(cls, m)) for m in self.methods)
        self.blob: bytes | None = None
        self.__doc__ = cls.__doc__
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__
        self.__module__ = cls.__module__

    def __call__(self, *args: Any, **kwargs: Any) -> ActorHandle:
        return current_engine().create_actor(self, args, kwargs, self.actor_options)

    def options(self, **overrides: Any) -> ActorFactory:
        """Per-instance options. ``name=`` makes a *named* actor: one per name in the
        engine, found from anywhere with ``plait.get_actor(name)`` (``get_if_exists=True``
        gives the existing one instead of an error)."""
        options = actor_options(self.name, self.actor_options, **overrides)
        if overrides.get("name") is not None:
            options = replace(options, named=True)
        elif overrides.get("get_if_exists"):
            raise TypeError(f"actor {self.name!r}: get_if_exists=True needs name= (a named actor)")
        return ActorFactory(self, options)

    def __repr__(self) -> str:
        return f"<plait.actor {self.name}>"

    def __reduce__(self) -> Any:
        module = sys.modules.get(self.cls.__module__)
        if module is not None and module.__name__ != "__main__":
            if getattr(module, self.cls.__qualname__.split(".")[0], None) is self:
                from plait.runtime.task import _import_task

                return (_import_task, (module.__name__, self.cls.__qualname__))
        return (ActorClass, (self.cls, self.actor_options))


class ActorFactory:
    def __init__(self, actor_class: ActorClass, options: ActorOptions) -> None:
        self.actor_class = actor_class
        self.actor_options = options

    def __call__(self, *args: Any, **kwargs: Any) -> ActorHandle:
        return current_engine().create_actor(self.actor_class, args, kwargs, self.actor_options)


class ActorHandle:
    """A reference to a running actor; attribute access gives callable methods.

    ``_payload`` is the engine's own reference to the actor (Ray's actor handle, the
    address of the Dask worker holding it), travelling with the handle so that a
    process it reaches needs no lookup; None where the engine keeps none.
    ``_owner`` is the ``session`` of the engine that made it: actor ids restart with
    every engine, so a handle is good only with its own (``check_handle``)."""

    __slots__ = ("_actor_id", "_name", "_methods", "_payload", "_owner")

    def __init__(
        self, actor_id: int, name: str, methods: tuple[str, ...], payload: Any = None, owner: str = ""
    ) -> None:
        self._actor_id = actor_id
        self._name = name
        self._methods = methods
        self._payload = payload
        self._owner = owner

    def __getattr__(self, item: str) -> ActorMethod:
        if item in self._methods:
            return ActorMethod(self, item)
        raise AttributeError(
            f"actor {self._name!r} has no method {item!r}; its methods are {', '.join(self._methods)}"
        )

    def __reduce__(self) -> Any:
        return (ActorHandle, (self._actor_id, self._name, self._methods, self._payload, self._owner))

    def __repr__(self) -> str:
        return f"<plait.ActorHandle {self._name}#{self._actor_id:x}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorHandle) and other._actor_id == self._actor_id

    def __hash__(self) -> int:
        return hash(self._actor_id)


def check_handle(handle: ActorHandle, engine: Any) -> None:
    """``handle`` was made by ``engine`` (or by its driver, for a worker's engine): one of
    another engine's would reach whichever of this engine's actors has the same id."""
    if handle._owner != engine.session:
        raise PlaitError(
            f"{handle!r} belongs to another engine than the {engine.name} engine this call goes to "
            "(one shut down since, say): an actor handle is good only with the engine that "
            "created the actor. Create the actor again on this engine"
        )


class ActorMethod:
    __slots__ = ("_handle", "_method")

    def __init__(self, handle: ActorHandle, method: str) -> None:
        self._handle = handle
        self._method = method

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return current_engine().call_actor(self._handle, self._method, args, kwargs)

    def __repr__(self) -> str:
        return f"<plait.ActorMethod {self._handle._name}.{self._method}>"


def actor(cls: type | None = None, **options: Any) -> Any:
    """Make a class an actor: ``@plait.actor`` or ``@plait.actor(num_gpus=1, max_restarts=2)``."""
    if cls is None:
        return lambda c: ActorClass(c, actor_options(getattr(c, "__qualname__", "actor"), **options))
    return ActorClass(cls, actor_options(getattr(cls, "__qualname__", "actor")))


def name_taken(name: str) -> ValueError:
    return ValueError(
        f"an actor named {name!r} exists already in this engine; plait.get_actor({name!r}) gives it, "
        "or create with .options(name=..., get_if_exists=True)"
    )


def no_such_actor(name: str, engine: str) -> ValueError:
    return ValueError(
        f"no actor named {name!r} on the {engine} engine (never created with "
        f".options(name={name!r}), or killed, or dead)"
    )
