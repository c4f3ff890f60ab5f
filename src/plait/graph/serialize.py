"""The ``plait.graph`` JSON format, version 1.

A document is ``{"format": "plait.graph", "version": 1, "plait": ..., "python":
..., "graph": GRAPH}``; a GRAPH is ``{"name", "meta", "nodes": [NODE, ...]}``;
a NODE is ``{"name", "op", ...}`` with, where they apply, ``target``, ``args``
(a list of VALUEs), ``kwargs`` (an object of VALUEs), ``options`` (the task
options that differ from plait's defaults), ``effectful``, ``default`` and
``subgraphs`` (an object of GRAPHs), and ``meta``.

A VALUE is JSON itself when it is ``null``, a bool, an int, a finite float, a
string or a list of VALUEs; anything else is an object with one tag:

===========================  ===============================================
``{"node": "x"}``            the value of node ``%x`` of the same graph
``{"tuple": [...]}``         a tuple
``{"dict": [[k, v], ...]}``  a dict (keys and values are VALUEs)
``{"slice": [a, b, c]}``     a slice
``{"float": "nan"}``         ``nan``, ``inf`` or ``-inf``
``{"namedtuple": REF, "items": [...]}``  a namedtuple of that type
``{"ref": "mod:qualname"}``  an object imported by reference (functions,
                             classes, tasks that ``mod.qualname`` names)
``{"pickle": "base64"}``     any other object: cloudpickle bytes, base64
===========================  ===============================================

Targets of ``task``, ``op`` and ``call`` nodes are ``{"ref": ...}`` when
importing ``module:qualname`` gives back the very same object, else
``{"pickle": ...}`` (closures, lambdas, functions of ``__main__``).

What a file can do when loaded (``load``, ``from_json``): by default, nothing
but name things. Loading calls no function (a ``namedtuple`` tag builds its
tuple only once the named type is checked to be a named tuple class), refuses
every ``pickle`` (unpickling runs code) and resolves a ``ref`` only to a plait
task, a function of ``plait.graph.ops``, a pure builtin (``len``, ``sorted``,
``getattr``, ...), a function of ``math``, ``cmath`` or ``operator`` (not
``attrgetter``, ``methodcaller`` or ``call``), ``print``, or a named tuple
class; ``getattr`` and ``call_method`` nodes must name their attribute with
a constant that does not start with ``_``. Resolving a ``ref`` imports its
module, as ``import module`` would. So running the graph calls only tasks
(code installed where it runs) and those functions. ``trusted=True`` lifts
all of this, for files you made yourself: pickled closures and lambdas load
then, and any importable object may be named.
"""

from __future__ import annotations

import base64
import importlib
import json
import math
import os
import sys
from typing import Any

from plait.errors import PlaitError
from plait.graph.ir import CALL, CONST, INPUT, NO_DEFAULT, OP, TASK, Graph, GraphError, Node
from plait.runtime.options import TaskOptions, task_options

FORMAT = "plait.graph"
VERSION = 1


class GraphFormatError(PlaitError, ValueError):
    """A document is not a ``plait.graph`` JSON document this plait can read or write."""


# ----------------------------------------------------------------------------- writing


def to_dict(graph: Graph) -> dict[str, Any]:
    """The JSON-ready document for ``graph``."""
    from plait import __version__

    return {
        "format": FORMAT,
        "version": VERSION,
        "plait": __version__,
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "graph": _encode_graph(graph, ""),
    }


def to_json(graph: Graph, *, indent: int | None = 1) -> str:
    return json.dumps(to_dict(graph), indent=indent, allow_nan=False)


def save(graph: Graph, path: Any) -> None:
    text = to_json(graph)
    with open(os.fspath(path), "w", encoding="utf-8") as f:
        f.write(text)
        f.write("\n")


def import_path(obj: Any) -> str | None:
    """``"module:qualname"`` if importing it gives back ``obj`` itself, else None."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    if module == "__main__" or "<" in qualname:
        return None
    mod = sys.modules.get(module)
    if mod is None:
        return None
    target: Any = mod
    for part in qualname.split("."):
        target = getattr(target, part, None)
        if target is None:
            return None
    return f"{module}:{qualname}" if target is obj else None


def _pickle(value: Any, label: str) -> dict[str, str]:
    import cloudpickle

    from plait.runtime.future import Future

    if isinstance(value, Future):
        raise GraphFormatError(f"{label} holds a live plait.Future, which cannot be saved")
    try:
        data = cloudpickle.dumps(value, protocol=5)
    except Exception as exc:  # noqa: BLE001
        from plait.errors import SerializationError
        from plait.runtime.serialization import describe_type

        raise SerializationError(
            f"{label}: a value of type {describe_type(value)} cannot be pickled "
            f"({type(exc).__name__}: {exc}), so the graph cannot be saved"
        ) from exc
    return {"pickle": base64.b64encode(data).decode("ascii")}


def encode_object(obj: Any, label: str) -> dict[str, str]:
    """A function, class or other object: by reference when importable, else by value."""
    ref = import_path(obj)
    if ref is not None:
        return {"ref": ref}
    return _pickle(obj, label)


def encode_value(value: Any, label: str) -> Any:
    t = type(value)
    if value is None or t is bool or t is int or t is str:
        return value
    if t is float:
        if math.isfinite(value):
            return value
        return {"float": "nan" if value != value else ("inf" if value > 0 else "-inf")}
    if t is Node:
        return {"node": value.name}
    if t is list:
        return [encode_value(v, label) for v in value]
    if t is tuple:
        return {"tuple": [encode_value(v, label) for v in value]}
    if t is dict:
        return {"dict": [[encode_value(k, label), encode_value(v, label)] for k, v in value.items()]}
    if t is slice:
        return {"slice": [encode_value(v, label) for v in (value.start, value.stop, value.step)]}
    if isinstance(value, tuple) and hasattr(t, "_fields"):
        return {"namedtuple": encode_object(t, label), "items": [encode_value(v, label) for v in value]}
    if isinstance(value, type) or callable(value):
        return encode_object(value, label)
    return _pickle(value, label)


def _encode_meta(meta: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in meta.items():
        try:
            out[str(key)] = encode_value(value, f"meta {key!r}")
        except Exception:  # noqa: BLE001 - meta is descriptive: what cannot be saved is left out
            continue
    return out


def _encode_options(options: TaskOptions | None) -> dict[str, Any]:
    out = {}
    default = TaskOptions()
    for field in TaskOptions.__slots__:
        value = getattr(options, field)
        if value != getattr(default, field):
            out[field] = encode_value(value, f"option {field}")
    return out


def _encode_graph(graph: Graph, where: str) -> dict[str, Any]:
    nodes = []
    for node in graph._nodes:
        label = f"{where}node %{node.name}"
        rec: dict[str, Any] = {"name": node.name, "op": node.op}
        if node.op == INPUT:
            rec["target"] = node.target
            if node.default is not NO_DEFAULT:
                rec["default"] = encode_value(node.default, f"the default of {label}")
        elif node.op == CONST:
            rec["target"] = encode_value(node.target, label)
        elif node.op in (TASK, OP, CALL):
            rec["target"] = encode_object(node.target, f"the function of {label}")
        if node.args:
            rec["args"] = [encode_value(a, label) for a in node.args]
        if node.kwargs:
            rec["kwargs"] = {str(k): encode_value(v, label) for k, v in node.kwargs.items()}
        if node.op == TASK:
            rec["options"] = _encode_options(node.options)
        if node.op in (TASK, CALL):
            rec["effectful"] = node.effectful
        if node.subgraphs:
            rec["subgraphs"] = {
                slot: _encode_graph(sub, f"{where}%{node.name}.{slot}/")
                for slot, sub in node.subgraphs.items()
            }
        if node.meta:
            rec["meta"] = _encode_meta(node.meta)
        nodes.append(rec)
    out: dict[str, Any] = {"name": graph.name}
    if graph.meta:
        out["meta"] = _encode_meta(graph.meta)
    out["nodes"] = nodes
    return out


# ----------------------------------------------------------------------------- reading


def load(path: Any, *, trusted: bool = False) -> Graph:
    """The graph saved at ``path`` (by ``Graph.save``); ``trusted``: see the module's notes."""
    with open(os.fspath(path), encoding="utf-8") as f:
        text = f.read()
    try:
        return from_json(text, trusted=trusted)
    except GraphFormatError as exc:
        raise GraphFormatError(f"{os.fspath(path)}: {exc}") from exc.__cause__


def from_json(text: str | bytes | dict, *, trusted: bool = False) -> Graph:
    if isinstance(text, dict):
        doc = text
    else:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise GraphFormatError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise GraphFormatError(f'not a plait graph: the document needs "format": "{FORMAT}"')
    version = doc.get("version")
    if version != VERSION:
        raise GraphFormatError(
            f"plait.graph format version {version!r} is not supported: this plait reads version {VERSION} "
            "(a newer plait wrote this file; upgrade plait to load it)"
        )
    reader = _Reader(doc.get("python"), trusted)
    return reader.graph(doc.get("graph"), "")


def _untrusted_functions() -> frozenset[Any]:
    """What a file not marked trusted may name besides plait tasks and named tuple types."""
    import builtins
    import cmath
    import operator

    from plait.graph import ops

    pure_builtins = (
        "abs all any ascii bin bool bytes callable chr complex dict divmod enumerate filter float "
        "format frozenset getattr hasattr hash hex int isinstance issubclass iter len list map max "
        "min next oct ord pow range repr reversed round set slice sorted str sum tuple zip"
    ).split()
    named = [getattr(builtins, name) for name in pure_builtins] + [print]
    gadgets = {operator.attrgetter, operator.methodcaller, getattr(operator, "call", None)}
    for module in (math, cmath, operator):
        named += [f for f in vars(module).values() if callable(f) and not isinstance(f, type) and f not in gadgets]
    named += [f for name, f in vars(ops).items() if callable(f) and getattr(f, "__module__", None) == ops.__name__]
    return frozenset(named)


_UNTRUSTED_FUNCTIONS: frozenset[Any] | None = None


def _may_name(target: Any) -> bool:
    global _UNTRUSTED_FUNCTIONS
    from plait.runtime.task import TaskFunction

    if isinstance(target, TaskFunction) or _is_namedtuple_class(target):
        return True
    if _UNTRUSTED_FUNCTIONS is None:
        _UNTRUSTED_FUNCTIONS = _untrusted_functions()
    try:
        return target in _UNTRUSTED_FUNCTIONS
    except TypeError:  # unhashable: no function
        return False


def _is_namedtuple_class(target: Any) -> bool:
    return isinstance(target, type) and issubclass(target, tuple) and isinstance(getattr(target, "_fields", None), tuple)


class _Reader:
    def __init__(self, python: Any, trusted: bool) -> None:
        self.python = python
        self.trusted = trusted

    def unpickle(self, data: str, label: str) -> Any:
        import pickle

        if not self.trusted:
            raise GraphFormatError(
                f"{label} is a pickled object, and unpickling runs code: load the file with "
                "trusted=True (plait.graph.load(path, trusted=True)) only if you trust who wrote it"
            )

        try:
            return pickle.loads(base64.b64decode(data))
        except Exception as exc:  # noqa: BLE001
            here = f"{sys.version_info[0]}.{sys.version_info[1]}"
            hint = (
                f" (it was written by Python {self.python}, this is Python {here}; functions saved by "
                "value need the same Python version)"
                if self.python and self.python != here
                else ""
            )
            raise GraphFormatError(f"{label}: cannot unpickle ({type(exc).__name__}: {exc}){hint}") from exc

    def imported(self, ref: str, label: str) -> Any:
        module, _, qualname = ref.partition(":")
        try:
            target: Any = importlib.import_module(module)
            for part in qualname.split("."):
                target = getattr(target, part)
        except Exception as exc:  # noqa: BLE001
            raise GraphFormatError(
                f"{label}: cannot import {ref!r} ({type(exc).__name__}: {exc}); the module must be "
                "importable where the graph is loaded"
            ) from exc
        if not self.trusted and not _may_name(target):
            raise GraphFormatError(
                f"{label} names {ref!r}, which a file may name only when loaded with trusted=True: "
                "without it a file may name plait tasks, named tuple types and the pure functions "
                "listed in plait.graph.serialize (len, operator.add, ...)"
            )
        return target

    def obj(self, rec: Any, label: str) -> Any:
        if isinstance(rec, dict) and "ref" in rec:
            return self.imported(rec["ref"], label)
        if isinstance(rec, dict) and "pickle" in rec:
            return self.unpickle(rec["pickle"], label)
        raise GraphFormatError(f"{label}: expected {{'ref': ...}} or {{'pickle': ...}}, got {rec!r}")

    def value(self, rec: Any, names: dict[str, Node], label: str) -> Any:
        if rec is None or isinstance(rec, (bool, int, float, str)):
            return rec
        if isinstance(rec, list):
            return [self.value(v, names, label) for v in rec]
        if not isinstance(rec, dict) or not rec:
            raise GraphFormatError(f"{label}: unreadable value {rec!r}")
        if "node" in rec:
            try:
                return names[rec["node"]]
            except KeyError:
                raise GraphFormatError(
                    f"{label} reads %{rec['node']}, which is not an earlier node"
                ) from None
        if "tuple" in rec:
            return tuple(self.value(v, names, label) for v in rec["tuple"])
        if "dict" in rec:
            return {self.value(k, names, label): self.value(v, names, label) for k, v in rec["dict"]}
        if "slice" in rec:
            return slice(*(self.value(v, names, label) for v in rec["slice"]))
        if "float" in rec:
            return float(rec["float"])
        if "namedtuple" in rec:
            cls = self.obj(rec["namedtuple"], label)
            if not _is_namedtuple_class(cls):  # building it calls it: only a named tuple type
                raise GraphFormatError(f"{label}: a namedtuple tag names {cls!r}, which is not a named tuple type")
            return cls(*(self.value(v, names, label) for v in rec["items"]))
        return self.obj(rec, label)

    def _check_attribute_name(self, target: Any, args: tuple, label: str) -> None:
        """``getattr``/``call_method`` reach only public attributes named by a constant: a
        dunder path (``__class__``, ``__globals__``) leads from any value to any function."""
        from plait.graph import ops

        if target is getattr or target is ops.call_method:
            name = args[1] if len(args) > 1 else None
            if not isinstance(name, str) or name.startswith("_"):
                raise GraphFormatError(
                    f"{label}: {target.__name__} must name a public attribute with a constant string "
                    f"in a file not loaded with trusted=True, got {name!r}"
                )

    def graph(self, rec: Any, where: str) -> Graph:
        if not isinstance(rec, dict) or not isinstance(rec.get("nodes"), list):
            raise GraphFormatError(f"{where or 'the document'}: a graph needs a list of nodes")
        graph = Graph(name=rec.get("name", "graph"))
        graph.meta = {k: self.value(v, {}, f"{where}graph meta") for k, v in rec.get("meta", {}).items()}
        names: dict[str, Node] = {}
        for nrec in rec["nodes"]:
            node = self.node(graph, nrec, names, where)
            names[node.name] = node
        try:
            graph.lint()
        except GraphError as exc:
            raise GraphFormatError(f"{where}the graph is malformed: {exc}") from exc
        if graph.output is None:  # saved graphs have one (set_output(None) for effects only)
            raise GraphFormatError(f"{where or 'the document'}: the graph has no output node")
        return graph

    def node(self, graph: Graph, rec: Any, names: dict[str, Node], where: str) -> Node:
        if not isinstance(rec, dict) or "name" not in rec or "op" not in rec:
            raise GraphFormatError(f"{where}a node needs a name and an op, got {rec!r}")
        name, op = rec["name"], rec["op"]
        label = f"{where}node %{name}"
        if name in names:
            raise GraphFormatError(f"{where}two nodes are called %{name}")
        raw_args, raw_kwargs = rec.get("args", []), rec.get("kwargs", {})
        if not isinstance(raw_args, list) or not isinstance(raw_kwargs, dict):
            raise GraphFormatError(
                f"{label}: args must be a list and kwargs an object, got {type(raw_args).__name__} "
                f"and {type(raw_kwargs).__name__}"
            )
        args = tuple(self.value(a, names, label) for a in raw_args)
        kwargs = {k: self.value(v, names, label) for k, v in raw_kwargs.items()}
        meta = {k: self.value(v, {}, f"{label} meta") for k, v in rec.get("meta", {}).items()}
        extra: dict[str, Any] = {}
        if op == INPUT:
            target = rec.get("target", name)
            if "default" in rec:
                extra["default"] = self.value(rec["default"], {}, label)
        elif op == CONST:
            target = self.value(rec.get("target"), {}, label)
        elif op in (TASK, OP, CALL):
            target = self.obj(rec.get("target"), f"the function of {label}")
        else:
            target = None
        if op in (OP, CALL) and not self.trusted:
            self._check_attribute_name(target, args, label)
        if op == TASK:
            from plait.runtime.task import TaskFunction

            if not isinstance(target, TaskFunction):
                raise GraphFormatError(f"{label}: the target of a task node must be a plait task, got {target!r}")
            opts = {k: self.value(v, {}, label) for k, v in rec.get("options", {}).items()}
            try:
                if isinstance(opts.get("resources"), (list, tuple)):  # saved as (name, amount) pairs
                    opts["resources"] = dict(opts["resources"])
                # checked as options given in code are: a file's NaN must not reach a scheduler
                extra["options"] = task_options(label, **opts)
            except (TypeError, ValueError) as exc:
                raise GraphFormatError(f"{label}: bad task options {opts!r}: {exc}") from exc
        if op in (TASK, CALL):
            extra["effectful"] = bool(rec.get("effectful", op == CALL))
        if "subgraphs" in rec:
            extra["subgraphs"] = {
                slot: self.graph(sub, f"{where}%{name}.{slot}/") for slot, sub in rec["subgraphs"].items()
            }
        try:
            node = Node(graph, name, op, target, args, kwargs, meta=meta, **extra)
        except GraphError as exc:
            raise GraphFormatError(f"{label}: {exc}") from exc
        graph._nodes.append(node)
        graph._members.add(node)
        graph._names.add(name)
        return node
