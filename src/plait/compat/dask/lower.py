"""Delayed objects lowered to one graph of plait's IR, and run on an engine.

Each key becomes one node: a ``task`` node for a call (its function made a plait task
once), a ``const`` node for a value given as is (a persisted one is a future). Delayed
objects inside lists, tuples and dicts become nodes in place (the interpreter hands
their futures to the call, resolved in the worker, as Dask resolves them); a set that
holds one is made by a small task. The walk is iterative: a chain of thousands of calls
does not reach Python's recursion limit.
"""

from __future__ import annotations

from typing import Any

import plait
from plait.compat.dask.delayed import Delayed, _apply, _holds_delayed, _name_of
from plait.errors import NotSupported
from plait.graph import Graph
from plait.graph.interpreter import Interpreter
from plait.graph.passes import fuse_chains
from plait.runtime import context

_tasks: dict[int, tuple[Any, Any]] = {}  # id(fn) -> (fn, its plait task): made once per function

_SYNC = ("sync", "synchronous", "single-threaded")
_POOLS = ("threads", "threading", "processes", "multiprocessing")
_IGNORED = ("num_workers", "pool", "optimize_graph")  # change how many run at once, not what is computed


def _task_of(fn: Any) -> Any:
    made = _tasks.get(id(fn))
    if made is None or made[0] is not fn:
        made = _tasks[id(fn)] = (fn, plait.task(name=_name_of(fn))(fn))
    return made[1]


def _as_set(items: list, kind: type) -> Any:
    return kind(items)


def _dependencies(value: Any) -> list[Delayed]:
    """The Delayed objects directly inside ``value`` (walking containers, not Delayed)."""
    found: list[Delayed] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, Delayed):
            found.append(v)
        elif type(v) in (list, tuple, set, frozenset):
            stack.extend(v)
        elif type(v) is dict:
            stack.extend(v.values())
    return found


def _parts(d: Delayed) -> list[Delayed]:
    how = d._how
    if how[0] == "value":
        return []
    _, fn, args, kwargs = how
    return _dependencies((fn, args, kwargs))


class _Lowering:
    def __init__(self) -> None:
        self.graph = Graph(name="dask")
        self.nodes: dict[str, Any] = {}

    def add(self, roots: list[Delayed]) -> None:
        """Nodes for ``roots`` and everything they need, dependencies first."""
        stack: list[tuple[Delayed, bool]] = [(r, False) for r in reversed(roots)]
        while stack:
            d, ready = stack.pop()
            if d._key in self.nodes:
                continue
            if not ready:
                stack.append((d, True))
                stack.extend((p, False) for p in reversed(_parts(d)) if p._key not in self.nodes)
                continue
            how = d._how
            name = d._key.split("-")[0] or "value"
            if how[0] == "value":
                self.nodes[d._key] = self.graph.add_const(how[1])
                continue
            _, fn, args, kwargs = how
            if isinstance(fn, Delayed):  # a computed function: called in the task
                fn, args, kwargs = _apply, (fn, args, kwargs), {}
            node = self.graph.add_task(_task_of(fn), self.lowered(args), self.lowered(kwargs), name=_node_name(name))
            self.nodes[d._key] = node

    def lowered(self, value: Any) -> Any:
        """``value`` with each Delayed inside replaced by its node."""
        if isinstance(value, Delayed):
            return self.nodes[value._key]
        t = type(value)
        if t in (list, tuple):
            return t(self.lowered(v) for v in value)
        if t is dict:
            return {k: self.lowered(v) for k, v in value.items()}
        if t in (set, frozenset) and _holds_delayed(value):
            return self.graph.add_task(_task_of(_as_set), ([self.lowered(v) for v in value], t), name="set")
        return value


def _node_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"v_{cleaned}"


def graph_of(args: tuple, traverse: bool = True) -> Graph:
    lowering = _Lowering()
    roots = _dependencies(args) if traverse else [a for a in args if isinstance(a, Delayed)]
    lowering.add(roots)
    outputs = tuple(lowering.lowered(a) if traverse or isinstance(a, Delayed) else a for a in args)
    lowering.graph.set_output(outputs)
    return lowering.graph


def plan(args: tuple, *, traverse: bool, options: dict) -> Graph:
    """The graph ``compute`` runs: the lowered Delayed objects, their linear chains fused as
    Dask fuses them (equal pure calls share a key already) unless ``optimize_graph=False``."""
    unknown = sorted(set(options) - set(_IGNORED))
    if unknown:
        raise NotSupported(f"dask.compute({', '.join(f'{k}=' for k in unknown)}): not an option plait takes")
    graph = graph_of(args, traverse)
    if options.get("optimize_graph", True):
        fuse_chains(graph)
    return graph


def run(args: tuple, *, traverse: bool, scheduler: Any, resolve: bool, options: dict) -> Any:
    graph = plan(args, traverse=traverse, options=options)
    return Interpreter(graph, engine=_engine_for(scheduler), resolve=resolve).run()


def _engine_for(scheduler: Any) -> Any:
    """The engine a ``scheduler=`` names: the current one (plait's local engine started on
    first use, kept until exit, as Dask's default pool is), or, single-threaded, inline."""
    from plait.compat.dask.distributed import Client

    if isinstance(scheduler, Client):
        return scheduler.engine
    if scheduler in _SYNC:
        return "inline"
    if scheduler is not None and scheduler not in _POOLS:
        raise NotSupported(
            f"dask.compute(scheduler={scheduler!r}): plait runs on its current engine; pass "
            "'threads'/'processes' (both: plait's workers), 'sync', or a Client"
        )
    if not plait.is_initialized():
        plait.init()
    return context.current_engine()
