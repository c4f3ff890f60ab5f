"""A graph of task calls submitted at once: the unit of ``Engine.submit_graph``.

A front end that knows many calls ahead (a graph's task nodes, a dataset's
stage) hands them to the engine together, as a list of ``Call``s in an order
where each call's arguments may hold ``Earlier(i)``: the result of call ``i`` of
the same list, ``i`` before it. The engine sees the whole graph in one exchange
(one lock and one scheduling pass on the local engine, one graph update on
Dask) and gives back one future per call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from plait.runtime.future import Future
    from plait.runtime.options import TaskOptions
    from plait.runtime.task import TaskFunction


class Call(NamedTuple):
    fn: TaskFunction
    args: tuple
    kwargs: dict
    options: TaskOptions


class Earlier:
    """Stands, in a call's arguments, for the future of call ``index`` of the same graph."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"Earlier({self.index})"

    def __reduce__(self) -> Any:
        raise TypeError(
            f"{self!r} stands for a call of a graph being submitted and cannot be pickled: "
            "give it to Engine.submit_graph in the arguments of a later call of the same graph"
        )


def check_graph(calls: list[Call]) -> None:
    """Every call is one a graph can hold; every ``Earlier`` names a call before its own."""
    for position, call in enumerate(calls):
        if call.options.num_returns != 1:
            raise ValueError(
                f"call {position} of the graph ({call.fn.name!r}) has num_returns={call.options.num_returns}: "
                "a graph's calls have one result each; submit that call on its own"
            )
        for earlier in earlier_in((call.args, call.kwargs)):
            if not 0 <= earlier.index < position:
                raise ValueError(
                    f"call {position} of the graph ({call.fn.name!r}) reads {earlier!r}: "
                    f"a call may read only the calls before it (0 to {position - 1})"
                )


def earlier_in(value: Any) -> list[Earlier]:
    """The ``Earlier`` markers inside ``value`` (tuples, lists, dicts, sets)."""
    found: list[Earlier] = []
    collect(value, Earlier, found)
    return found


def collect(value: Any, kind: type, found: list) -> None:
    """Append to ``found`` every object of type ``kind`` inside ``value`` (tuples, named
    tuples, lists, sets, dict values), in order."""
    t = type(value)
    if t is kind:
        found.append(value)
    elif t in _ATOMIC:
        return
    elif t is tuple or t is list or t is set or t is frozenset or isinstance(value, tuple):
        for item in value:
            collect(item, kind, found)
    elif t is dict:
        for item in value.values():
            collect(item, kind, found)


def with_results(value: Any, results: list[Any]) -> Any:
    """``value`` with each ``Earlier(i)`` replaced by ``results[i]``."""
    return substitute(value, Earlier, lambda earlier: results[earlier.index])


_ATOMIC = (int, float, str, bytes, bool, type(None))


def substitute(value: Any, kind: type, replace: Callable[[Any], Any]) -> Any:
    """``value`` with every object of type ``kind`` inside it (tuples, named tuples, lists,
    sets, dicts) replaced by ``replace(obj)``; a container holding none is returned as it
    is (the same object), so values a program changes in place stay shared."""
    t = type(value)
    if t is kind:
        return replace(value)
    if t in _ATOMIC:
        return value
    if t is tuple or t is list or t is set or t is frozenset:
        items = [substitute(item, kind, replace) for item in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return t(items)
    if isinstance(value, tuple) and hasattr(t, "_fields"):  # a named tuple
        items = [substitute(item, kind, replace) for item in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return t(*items)
    if t is dict:
        new = {k: substitute(v, kind, replace) for k, v in value.items()}
        return value if all(new[k] is v for k, v in value.items()) else new
    return value


def submit_one_by_one(engine: Any, calls: list[Call]) -> list[Future]:
    """The default ``submit_graph``: each call submitted in order, its ``Earlier`` markers
    replaced by the futures already made."""
    futures: list[Future] = []
    for fn, args, kwargs, options in calls:
        args, kwargs = with_results((args, kwargs), futures)
        futures.append(engine.submit(fn, args, kwargs, options))
    return futures
