"""Structural comparison of graphs, and of the values and functions they hold.

Two graphs are equivalent when their nodes match one to one, in order: same
opcode, same target, same arguments (node references matched by position),
same options and flags, equivalent subgraphs. Functions that travelled by
value (a JSON round trip unpickles a new function object) are compared by
what they are: qualified name, code, defaults and closure contents.
"""

from __future__ import annotations

import types
from typing import Any

from plait.graph.ir import INPUT, Graph, Node
from plait.runtime.task import TaskFunction


def same_value(a: Any, b: Any, _depth: int = 0) -> bool:
    """True if ``a`` and ``b`` are the same value, or the same function rebuilt."""
    if a is b:
        return True
    if _depth > 20:
        return False
    if type(a) is not type(b):
        return False
    d = _depth + 1
    if isinstance(a, TaskFunction):
        return a.task_options == b.task_options and same_value(a.fn, b.fn, d)
    if isinstance(a, types.FunctionType):
        return _same_function(a, b, d)
    if isinstance(a, types.MethodType):
        return same_value(a.__func__, b.__func__, d) and same_value(a.__self__, b.__self__, d)
    if type(a) in (list, tuple) or (isinstance(a, tuple) and hasattr(type(a), "_fields")):
        return len(a) == len(b) and all(same_value(x, y, d) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return list(a) == list(b) and all(same_value(a[k], b[k], d) for k in a)
    if type(a) is float:
        return a == b or (a != a and b != b)  # NaN equals NaN here
    try:
        result = a == b
    except Exception:  # noqa: BLE001
        result = None
    if isinstance(result, bool):
        if result or not _is_plain_object(a):
            return result
    return _same_pickle(a, b)


def _is_plain_object(value: Any) -> bool:
    # identity-compared objects: == says False for two equal copies
    return type(value).__eq__ is object.__eq__


def _same_function(a: types.FunctionType, b: types.FunctionType, depth: int) -> bool:
    if a.__qualname__ != b.__qualname__ or a.__module__ != b.__module__:
        return False
    if a.__code__ != b.__code__:
        return False
    if not same_value(a.__defaults__, b.__defaults__, depth) or not same_value(
        a.__kwdefaults__, b.__kwdefaults__, depth
    ):
        return False
    ca, cb = a.__closure__ or (), b.__closure__ or ()
    if len(ca) != len(cb):
        return False
    for x, y in zip(ca, cb, strict=True):
        try:
            vx, vy = x.cell_contents, y.cell_contents
        except ValueError:  # an empty cell
            continue
        if not same_value(vx, vy, depth):
            return False
    return True


def _same_pickle(a: Any, b: Any) -> bool:
    try:
        import cloudpickle

        return cloudpickle.dumps(a, protocol=5) == cloudpickle.dumps(b, protocol=5)
    except Exception:  # noqa: BLE001
        return False


def _same_arg(a: Any, b: Any, env: dict[Node, Node]) -> bool:
    if type(a) is Node or type(b) is Node:
        return type(a) is Node and type(b) is Node and env.get(a) is b
    if type(a) is not type(b):
        return False
    if type(a) in (list, tuple) or (isinstance(a, tuple) and hasattr(type(a), "_fields")):
        return len(a) == len(b) and all(_same_arg(x, y, env) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return list(a) == list(b) and all(_same_arg(a[k], b[k], env) for k in a)
    if type(a) is slice:
        return all(
            _same_arg(x, y, env)
            for x, y in zip((a.start, a.stop, a.step), (b.start, b.stop, b.step), strict=True)
        )
    return same_value(a, b)


def graph_difference(g: Graph, h: Graph, *, names: bool, meta: bool, where: str = "") -> str | None:
    if len(g._nodes) != len(h._nodes):
        return f"{where}{len(g._nodes)} nodes against {len(h._nodes)}"
    if meta and not same_value(g.meta, h.meta):
        return f"{where}graph meta {g.meta!r} != {h.meta!r}"
    env: dict[Node, Node] = {}
    for a, b in zip(g._nodes, h._nodes, strict=True):
        label = f"{where}%{a.name}"
        if a.op != b.op:
            return f"{label}: opcode {a.op!r} against {b.op!r} (%{b.name})"
        if names and a.name != b.name:
            return f"{label}: named %{b.name} in the other graph"
        if a.op == INPUT:
            if a.target != b.target:
                return f"{label}: input {a.target!r} against {b.target!r}"
        elif not same_value(a.target, b.target):
            return f"{label}: target {a.target!r} against {b.target!r}"
        if not _same_arg(a.args, b.args, env):
            return f"{label}: arguments differ"
        if not _same_arg(a.kwargs, b.kwargs, env):
            return f"{label}: keyword arguments differ"
        if a.options != b.options:
            return f"{label}: options {a.options} against {b.options}"
        if a.effectful != b.effectful:
            return f"{label}: effectful={a.effectful} against {b.effectful}"
        if not same_value(a.default, b.default):
            return f"{label}: default {a.default!r} against {b.default!r}"
        if meta and not same_value(a.meta, b.meta):
            return f"{label}: meta {a.meta!r} against {b.meta!r}"
        if list(a.subgraphs) != list(b.subgraphs):
            return f"{label}: subgraphs {list(a.subgraphs)} against {list(b.subgraphs)}"
        for slot in a.subgraphs:
            diff = graph_difference(
                a.subgraphs[slot], b.subgraphs[slot], names=names, meta=meta, where=f"{label}.{slot}/"
            )
            if diff is not None:
                return diff
        env[a] = b
    return None
