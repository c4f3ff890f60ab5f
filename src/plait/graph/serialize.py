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
``{"pickle": ...}`` (closures, lambdas, functions of ``__main__``). Loading
a document that holds pickles runs code: load only files you trust.
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


def load(path: Any) -> Graph:
    """The graph saved at ``path`` (by ``Graph.save``)."""
    with open(os.fspath(path), encoding="utf-8") as f:
        text = f.read()
    try:
        return from_json(text)
    except GraphFormatError as exc:
        raise GraphFormatError(f"{os.fspath(path)}: {exc}") from exc.__cause__


def from_json(text: str | bytes | dict) -> Graph:
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
    reader = _Reader(doc.get("python"))
    return reader.graph(doc.get("graph"), "")


class _Reader:
    def __init__(self, python: Any) -> None:
        self.python = python

    def unpickle(self, data: str, label: str) -> Any:
        import pickle

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
            return cls(*(self.value(v, names, label) for v in rec["items"]))
        return self.obj(rec, label)

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
        return graph

    def node(self, graph: Graph, rec: Any, names: dict[str, Node], where: str) -> Node:
        if not isinstance(rec, dict) or "name" not in rec or "op" not in rec:
            raise GraphFormatError(f"{where}a node needs a name and an op, got {rec!r}")
        name, op = rec["name"], rec["op"]
        label = f"{where}node %{name}"
        if name in names:
            raise GraphFormatError(f"{where}two nodes are called %{name}")
        args = tuple(self.value(a, names, label) for a in rec.get("args", []))
        kwargs = {k: self.value(v, names, label) for k, v in rec.get("kwargs", {}).items()}
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
        if op == TASK:
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
