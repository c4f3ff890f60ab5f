"""``dask.delayed`` on plait: Delayed objects record calls, ``compute`` lowers them to one
graph of plait's IR and runs it on the current engine.

A Delayed is a key and how to make its value: a call (a function, its arguments, which
may hold other Delayed objects inside lists, tuples, dicts and sets, and whether the
call is pure) or a value given as is. Keys name values: two Delayed objects with one
key are computed once. A pure call's key is a hash of the function and its arguments,
so equal pure calls share a key, as in Dask; an impure one (the default) gets a key
of its own. Attribute and item access, calls and operators on a Delayed record more
calls.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from plait.errors import NotSupported

_NO_OBJECT = object()


class Delayed:
    """A value not computed yet (``dask.delayed.Delayed``)."""

    __slots__ = ("_key", "_how", "_length", "__weakref__")

    def __init__(self, key: str, how: tuple, length: int | None = None) -> None:
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_how", how)  # ("call", fn, args, kwargs) or ("value", obj)
        object.__setattr__(self, "_length", length)

    @property
    def key(self) -> str:
        return self._key

    def compute(self, **kwargs: Any) -> Any:
        return compute(self, **kwargs)[0]

    def persist(self, **kwargs: Any) -> Delayed:
        return persist(self, **kwargs)[0]

    def visualize(self, filename: str = "mydask.html", **kwargs: Any) -> str:
        return visualize(self, filename=filename, **kwargs)

    def dask_keys(self) -> list[str]:
        return [self._key]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(f"Attribute {name} not found")
        return _DelayedAttribute(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("Delayed objects are immutable")

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TypeError("Delayed objects are immutable")

    def __getitem__(self, index: Any) -> Delayed:
        return _call(operator.getitem, (self, index), {}, pure=True, name="getitem")

    def __call__(self, *args: Any, **kwargs: Any) -> Delayed:
        _refuse_key_name(kwargs)
        return _call(_apply, (self, args, kwargs), {}, pure=False, name=_name_of(self))

    def __iter__(self) -> Iterator[Delayed]:
        if self._length is None:
            raise TypeError("Delayed objects of unspecified length are not iterable")
        for i in range(self._length):
            yield self[i]

    def __len__(self) -> int:
        if self._length is None:
            raise TypeError("Delayed objects of unspecified length have no len()")
        return self._length

    def __bool__(self) -> bool:
        raise TypeError("Truth of Delayed objects is not supported")

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"Delayed({self._key!r})"

    def __reduce__(self) -> Any:
        raise TypeError(
            "a Delayed object cannot be sent to a task: pass it to the delayed call itself "
            "(delayed(f)(x) computes x first), or compute it"
        )


class _DelayedAttribute(Delayed):
    """``d.attr``: a Delayed of the attribute; called, a call of the method."""

    __slots__ = ("_of", "_attr")

    def __init__(self, of: Delayed, attr: str) -> None:
        token = _token(of._key, attr)
        super().__init__(f"getattr-{token}", ("call", getattr, (of, attr), {}))
        object.__setattr__(self, "_of", of)
        object.__setattr__(self, "_attr", attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Delayed:
        return _call(_method, (self._of, self._attr, args, kwargs), {}, pure=False, name=self._attr)


def _refuse_key_name(kwargs: dict) -> None:
    if kwargs.pop("dask_key_name", None) is not None:
        raise NotSupported("dask_key_name=: plait makes a call's key itself; leave it out")


def _apply(fn: Any, args: tuple, kwargs: dict) -> Any:
    return fn(*args, **kwargs)


def _method(obj: Any, name: str, args: tuple, kwargs: dict) -> Any:
    return getattr(obj, name)(*args, **kwargs)


def _name_of(fn: Any) -> str:
    if isinstance(fn, Delayed):
        return fn._key.split("-")[0]
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return name if name != "<lambda>" else "lambda"


def _token(*parts: Any) -> str:
    """A deterministic token of what a pure call is made of (a random one where that
    cannot be pickled: then equal calls are not known to be equal)."""
    import cloudpickle

    try:
        blob = cloudpickle.dumps(parts, protocol=5)
    except Exception:  # noqa: BLE001 - unpicklable: a key of its own
        return uuid.uuid4().hex
    return hashlib.sha1(blob, usedforsecurity=False).hexdigest()


def _tokenized(value: Any) -> Any:
    """What a pure call's token is made of: Delayed objects by their keys."""
    if isinstance(value, Delayed):
        return ("delayed", value._key)
    t = type(value)
    if t in (list, tuple, set, frozenset):
        items = [_tokenized(v) for v in value]
        return (t.__name__, sorted(map(repr, items)) if t in (set, frozenset) else items)
    if t is dict:
        return ("dict", [(k, _tokenized(v)) for k, v in value.items()])
    return value


def _call(fn: Any, args: tuple, kwargs: dict, *, pure: bool, name: str, nout: int | None = None) -> Delayed:
    token = _token(_tokenized(fn), _tokenized(args), _tokenized(kwargs)) if pure else uuid.uuid4().hex
    return Delayed(f"{name}-{token}", ("call", fn, args, kwargs), nout)


def delayed(
    obj: Any = _NO_OBJECT,
    name: str | None = None,
    pure: bool | None = None,
    nout: int | None = None,
    traverse: bool = True,
) -> Any:
    """``dask.delayed``: wrap a function (calling it records a call) or a value; with no
    object, a decorator taking these options (``@delayed(pure=True)``)."""
    if obj is _NO_OBJECT:
        return functools.partial(delayed, name=name, pure=pure, nout=nout, traverse=traverse)
    if isinstance(obj, Delayed):
        return obj
    if nout is not None and (not isinstance(nout, int) or isinstance(nout, bool) or nout < 0):
        raise TypeError(f"nout must be None or a non-negative integer, got {nout!r}")
    if callable(obj):
        return DelayedFunction(obj, name=name, pure=bool(pure), nout=nout)
    if traverse and _holds_delayed(obj):
        return _call(_identity, (obj,), {}, pure=True, name=name or type(obj).__name__)
    key = name or f"{type(obj).__name__}-{_token(_tokenized(obj)) if pure else uuid.uuid4().hex}"
    return Delayed(key, ("value", obj))


def _identity(value: Any) -> Any:
    return value


class DelayedFunction(Delayed):
    """``delayed(f)``: calling it records a call of ``f``."""

    __slots__ = ("_fn", "_name", "_pure", "_nout")

    def __init__(self, fn: Callable, *, name: str | None, pure: bool, nout: int | None) -> None:
        super().__init__(f"{_name_of(fn)}-{uuid.uuid4().hex}", ("value", fn))
        for slot, value in (("_fn", fn), ("_name", name), ("_pure", pure), ("_nout", nout)):
            object.__setattr__(self, slot, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Delayed:
        _refuse_key_name(kwargs)
        pure = kwargs.pop("pure", self._pure)
        name = self._name or _name_of(self._fn)
        return _call(self._fn, args, kwargs, pure=bool(pure), name=name, nout=self._nout)

    def __repr__(self) -> str:
        return f"Delayed({self._name or _name_of(self._fn)!r})"

    def __reduce__(self) -> Any:
        # a delayed function travels (a task calling it records calls in the worker, as in
        # Dask's recursive examples); other Delayed objects do not
        return (_delayed_function, (self._fn, self._name, self._pure, self._nout))


def _delayed_function(fn: Callable, name: str | None, pure: bool, nout: int | None) -> DelayedFunction:
    return DelayedFunction(fn, name=name, pure=pure, nout=nout)


def _holds_delayed(value: Any) -> bool:
    if isinstance(value, Delayed):
        return True
    t = type(value)
    if t in (list, tuple, set, frozenset):
        return any(_holds_delayed(v) for v in value)
    if t is dict:
        return any(_holds_delayed(v) for v in value.values())
    return False


# ------------------------------------------------------------------ operators
def _operator(op: Callable, reflected: bool = False) -> Callable:
    def method(self: Delayed, *other: Any) -> Delayed:
        args = (other[0], self) if reflected else (self, *other)
        return _call(op, args, {}, pure=True, name=op.__name__.strip("_"))

    return method


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and_", "or_", "xor",
              "lshift", "rshift", "lt", "le", "eq", "ne", "gt", "ge"):  # fmt: skip
    _dunder = f"__{_name.rstrip('_')}__"
    setattr(Delayed, _dunder, _operator(getattr(operator, _name)))
    if _name not in ("lt", "le", "eq", "ne", "gt", "ge"):
        setattr(Delayed, f"__r{_name.rstrip('_')}__", _operator(getattr(operator, _name), reflected=True))
for _name in ("neg", "pos", "abs", "invert"):
    setattr(Delayed, f"__{_name}__", _operator(getattr(operator, _name)))


# ------------------------------------------------------------------ compute, persist, visualize
def compute(*args: Any, traverse: bool = True, optimize_graph: bool = True, scheduler: Any = None, **kwargs: Any) -> tuple:
    """``dask.compute``: the values of the Delayed objects in ``args`` (inside lists,
    tuples, dicts and sets too, with ``traverse``), computed in one graph; anything else
    is returned as it is."""
    from plait.compat.dask.lower import run

    return tuple(run(args, traverse=traverse, scheduler=scheduler, resolve=True, options=kwargs))


def persist(*args: Any, traverse: bool = True, optimize_graph: bool = True, scheduler: Any = None, **kwargs: Any) -> tuple:
    """``dask.persist``: each Delayed started, and returned as a Delayed of its running
    result (later graphs that use it wait for it rather than compute it again)."""
    from plait.compat.dask.lower import run

    started = run(args, traverse=traverse, scheduler=scheduler, resolve=False, options=kwargs)
    return tuple(_persisted(a, s) for a, s in zip(args, started, strict=True))


def _persisted(given: Any, started: Any) -> Any:
    if isinstance(given, Delayed):
        return Delayed(given._key, ("value", started), given._length)
    return started


def visualize(*args: Any, filename: str = "mydask.html", **kwargs: Any) -> str:
    """The graph of ``args`` as plait draws it, written to ``filename`` (``.html``,
    ``.svg`` or ``.dot``); the path written."""
    from plait.compat.dask.lower import graph_of
    from plait.graph import draw

    graph = graph_of(args)
    writers = {".html": draw.to_html, ".svg": draw.to_svg, ".dot": draw.to_dot}
    suffix = "." + filename.rsplit(".", 1)[-1] if "." in filename else ""
    if suffix not in writers:
        raise NotSupported(
            f"visualize(filename={filename!r}): plait draws graphs as .html, .svg (Graphviz's dot) or .dot"
        )
    with open(filename, "w", encoding="utf-8") as f:
        f.write(writers[suffix](graph))
    return filename


def is_dask_collection(value: Any) -> bool:
    return isinstance(value, Delayed)
