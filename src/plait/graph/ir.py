"""The graph IR: ``Graph`` and ``Node``.

A ``Graph`` is a list of ``Node`` objects in topological (program) order. A
node's ``args``/``kwargs`` hold literals and references to earlier nodes of the
same graph, nested in lists, tuples (namedtuples too), dicts (as values) and
slices. Subgraphs (the branches of ``if``, the condition and body of
``while``) are graphs of their own: they see outer values only through their
explicit inputs, so every graph can be read, checked and run on its own.

The module docstring of ``plait.graph`` lists the opcodes; ``docs/graph.md``
describes the IR, its JSON format and the passes.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from plait.errors import PlaitError
from plait.runtime.options import TaskOptions, task_options
from plait.runtime.task import TaskCall, TaskFunction

INPUT = "input"
CONST = "const"
TASK = "task"
OP = "op"
CALL = "call"
IF = "if"
WHILE = "while"
OUTPUT = "output"
OPCODES = (INPUT, CONST, TASK, OP, CALL, IF, WHILE, OUTPUT)

# the subgraph slots each compound opcode holds, in order
SUBGRAPH_SLOTS = {IF: ("then", "orelse"), WHILE: ("cond", "body")}

NO_DEFAULT: Any = type("NoDefault", (), {"__repr__": lambda self: "<no default>"})()


class GraphError(PlaitError, ValueError):
    """A graph is malformed, or a graph operation was misused."""


# --------------------------------------------------------------------------- argument structures


def map_arg(value: Any, fn: Callable[[Node], Any]) -> Any:
    """Rebuild ``value`` with every ``Node`` inside replaced by ``fn(node)``.

    Lists, tuples (namedtuples keep their type), dicts (values only) and slices
    are walked; anything else is a literal and returned as is. A container is
    returned unchanged (the same object) when nothing inside it changed.
    """
    t = type(value)
    if t is Node:
        return fn(value)
    if t is list:
        items = [map_arg(v, fn) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if t is tuple:
        items = [map_arg(v, fn) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else tuple(items)
    if t is dict:
        new = {k: map_arg(v, fn) for k, v in value.items()}
        return value if all(new[k] is v for k, v in value.items()) else new
    if t is slice:
        parts = (map_arg(value.start, fn), map_arg(value.stop, fn), map_arg(value.step, fn))
        if parts[0] is value.start and parts[1] is value.stop and parts[2] is value.step:
            return value
        return slice(*parts)
    if isinstance(value, tuple) and hasattr(t, "_fields"):  # a namedtuple
        items = [map_arg(v, fn) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else t(*items)
    return value


def iter_nodes(value: Any) -> Iterator[Node]:
    """Every ``Node`` referenced inside ``value``, in order, with repeats."""
    t = type(value)
    if t is Node:
        yield value
    elif t is list or t is tuple or (isinstance(value, tuple) and hasattr(t, "_fields")):
        for v in value:
            yield from iter_nodes(v)
    elif t is dict:
        for v in value.values():
            yield from iter_nodes(v)
    elif t is slice:
        yield from iter_nodes(value.start)
        yield from iter_nodes(value.stop)
        yield from iter_nodes(value.step)


def iter_literals(value: Any) -> Iterator[Any]:
    """Every non-``Node`` leaf inside ``value`` (the literals an argument holds)."""
    t = type(value)
    if t is Node:
        return
    if t is list or t is tuple or (isinstance(value, tuple) and hasattr(t, "_fields")):
        for v in value:
            yield from iter_literals(v)
    elif t is dict:
        for v in value.values():
            yield from iter_literals(v)
    elif t is slice:
        for v in (value.start, value.stop, value.step):
            yield from iter_literals(v)
    else:
        yield value


# --------------------------------------------------------------------------- names of things


def target_name(target: Any) -> str:
    """A short readable name for a node's target (a task, a function, an operator)."""
    if isinstance(target, TaskFunction):
        return target.name.replace("<locals>.", "")
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    if not isinstance(name, str):
        return type(target).__name__
    return name.replace("<locals>.", "")


def _name_hint(text: str) -> str:
    text = text.replace("<locals>.", "").rsplit(".", 1)[-1]
    text = re.sub(r"\W+", "_", text).strip("_") or "node"
    if text[0].isdigit():
        text = "_" + text
    if keyword.iskeyword(text):
        text += "_"
    return text


def _short(value: Any, limit: int = 48) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not break printing
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_arg(value: Any) -> str:
    """An argument as code: node references print as ``%name``."""
    t = type(value)
    if t is Node:
        return f"%{value.name}"
    if t is list:
        return "[" + ", ".join(format_arg(v) for v in value) + "]"
    if t is tuple:
        inner = ", ".join(format_arg(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if t is dict:
        return "{" + ", ".join(f"{_short(k)}: {format_arg(v)}" for k, v in value.items()) + "}"
    if t is slice:
        parts = [format_arg(p) if p is not None else "" for p in (value.start, value.stop, value.step)]
        return ":".join(parts if parts[2] else parts[:2])
    if isinstance(value, tuple) and hasattr(t, "_fields"):
        return f"{t.__name__}(" + ", ".join(format_arg(v) for v in value) + ")"
    return _short(value)


def _format_call(args: tuple, kwargs: dict) -> str:
    parts = [format_arg(a) for a in args] + [f"{k}={format_arg(v)}" for k, v in kwargs.items()]
    return "(" + ", ".join(parts) + ")"


_DEFAULT_OPTIONS = TaskOptions()


def options_delta(options: TaskOptions | None) -> dict[str, Any]:
    """The task options that differ from plait's defaults (``name`` left out)."""
    if options is None:
        return {}
    out = {}
    for field in TaskOptions.__slots__:
        if field == "name":
            continue
        value = getattr(options, field)
        if value != getattr(_DEFAULT_OPTIONS, field):
            out[field] = value
    return out


# --------------------------------------------------------------------------- nodes


class Node:
    """One operation of a graph.

    ``name`` is unique within its graph; ``op`` is one of ``OPCODES``;
    ``target`` is what the opcode applies (the input's name, the constant's
    value, the task or function); ``args``/``kwargs`` may reference earlier
    nodes; ``meta`` carries non-semantic facts (``line``, ``file``, ``var``,
    ``source``...). ``options`` (``task`` nodes), ``effectful`` (``task`` and
    ``call`` nodes), ``default`` (``input`` nodes) and ``subgraphs`` (``if``,
    ``while``) complete the picture.
    """

    __slots__ = (
        "graph",
        "name",
        "op",
        "target",
        "_args",
        "_kwargs",
        "_inputs",
        "_users",
        "meta",
        "options",
        "effectful",
        "default",
        "subgraphs",
    )

    def __init__(
        self,
        graph: Graph,
        name: str,
        op: str,
        target: Any,
        args: tuple = (),
        kwargs: dict | None = None,
        *,
        meta: dict | None = None,
        options: TaskOptions | None = None,
        effectful: bool = False,
        default: Any = NO_DEFAULT,
        subgraphs: dict[str, Graph] | None = None,
    ) -> None:
        if op not in OPCODES:
            raise GraphError(f"unknown opcode {op!r}; the opcodes are {', '.join(OPCODES)}")
        self.graph = graph
        self.name = name
        self.op = op
        self.target = target
        self.meta: dict[str, Any] = dict(meta or {})
        self.options = options
        self.effectful = effectful
        self.default = default
        self.subgraphs: dict[str, Graph] = dict(subgraphs or {})
        self._users: dict[Node, None] = {}
        self._inputs: dict[Node, None] = {}
        self._args: tuple = ()
        self._kwargs: dict = {}
        self._set_uses(tuple(args), dict(kwargs or {}))

    # -- arguments and the use lists they imply
    @property
    def args(self) -> tuple:
        return self._args

    @args.setter
    def args(self, value: Iterable) -> None:
        self._set_uses(tuple(value), self._kwargs)

    @property
    def kwargs(self) -> dict:
        return self._kwargs

    @kwargs.setter
    def kwargs(self, value: dict) -> None:
        self._set_uses(self._args, dict(value))

    def _set_uses(self, args: tuple, kwargs: dict) -> None:
        for old in self._inputs:
            old._users.pop(self, None)
        self._args, self._kwargs = args, kwargs
        self._inputs = {}
        for n in iter_nodes((args, kwargs)):
            self._inputs[n] = None
        for n in self._inputs:
            n._users[self] = None

    @property
    def inputs(self) -> list[Node]:
        """The distinct nodes this node reads, in order of first appearance."""
        return list(self._inputs)

    @property
    def users(self) -> list[Node]:
        """The nodes of the same graph that read this node's value."""
        return list(self._users)

    def replace_all_uses_with(self, other: Node) -> list[Node]:
        """Make every user of this node read ``other`` instead; returns those users."""
        if other.graph is not self.graph:
            raise GraphError(f"%{other.name} belongs to another graph than %{self.name}")
        users = self.users
        for user in users:
            user.replace_input_with(self, other)
        return users

    def replace_input_with(self, old: Node, new: Node) -> None:
        """Read ``new`` wherever this node read ``old``."""

        def swap(n: Node) -> Node:
            return new if n is old else n

        self._set_uses(map_arg(self._args, swap), map_arg(self._kwargs, swap))

    @property
    def is_effectful(self) -> bool:
        """True if the node, or any node of its subgraphs, is marked effectful."""
        if self.effectful:
            return True
        return any(n.is_effectful for g in self.subgraphs.values() for n in g._nodes)

    # -- printing
    def format(self) -> str:
        """This node as one line of code (subgraphs are printed by ``Graph``)."""
        op = self.op
        if op == INPUT:
            text = f"%{self.name} = input {self.target}"
            if self.default is not NO_DEFAULT:
                text += f" = {_short(self.default)}"
        elif op == CONST:
            text = f"%{self.name} = const {_short(self.target)}"
        elif op in (TASK, OP, CALL):
            text = f"%{self.name} = {op} {target_name(self.target)}{_format_call(self._args, self._kwargs)}"
            flags = []
            delta = options_delta(self.options)
            if delta:
                flags.append(", ".join(f"{k}={_short(v)}" for k, v in delta.items()))
            if op == TASK and self.effectful:
                flags.append("effectful")
            if op == CALL and not self.effectful:
                flags.append("pure")
            if flags:
                text += " [" + "; ".join(flags) + "]"
        elif op == IF:
            inputs = ", ".join(format_arg(a) for a in self._args[1:])
            text = f"%{self.name} = if {format_arg(self._args[0])} with ({inputs})"
        elif op == WHILE:
            text = f"%{self.name} = while with ({', '.join(format_arg(a) for a in self._args)})"
        else:
            text = f"output {format_arg(self._args[0]) if self._args else 'None'}"
        line = self.meta.get("line")
        if line is not None:
            text += f"  # line {line}"
        return text

    def __repr__(self) -> str:
        return f"%{self.name}"

    def __reduce__(self) -> Any:
        raise TypeError(
            f"graph node %{self.name} cannot be pickled: a node reference must sit directly in a node's "
            "arguments, or in lists, tuples, dicts (as values) or slices there; build other containers "
            "with an op, e.g. add_op(set, [a, b])"
        )


# --------------------------------------------------------------------------- graphs


class Graph:
    """A dataflow graph: ``Node`` objects in topological order, and one output.

    Build one with the ``add_*`` methods, each of which returns the new node;
    pass nodes (also inside lists, tuples and dicts) as arguments of later
    nodes::

        g = Graph(name="pipeline")
        path = g.add_input("path")
        data = g.add_task(load, (path,), meta={"var": "data", "line": 3})
        size = g.add_op(len, data)
        g.set_output((data, size))

    ``Graph(inputs=["a", "b"])`` creates the inputs at once, which is handy for
    the subgraphs of ``add_if`` and ``add_while``.
    """

    def __init__(self, inputs: Iterable[str] = (), *, name: str = "graph", meta: dict | None = None) -> None:
        self.name = name
        self.meta: dict[str, Any] = dict(meta or {})
        self._nodes: list[Node] = []
        self._members: set[Node] = set()
        self._names: set[str] = set()
        self._counters: dict[str, int] = {}
        self._cursor: tuple[str, Node] | None = None
        self._meta_defaults: dict[str, Any] = {}
        for input_name in inputs:
            self.add_input(input_name)

    # ------------------------------------------------------------------ reading
    @property
    def nodes(self) -> list[Node]:
        """All nodes, in topological (program) order; the output node is last."""
        return list(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self._nodes))

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def inputs(self) -> list[Node]:
        """The ``input`` nodes: the graph's parameters, in order."""
        return [n for n in self._nodes if n.op == INPUT]

    @property
    def output(self) -> Node | None:
        """The ``output`` node (``None`` until ``set_output``)."""
        if self._nodes and self._nodes[-1].op == OUTPUT:
            return self._nodes[-1]
        return None

    @property
    def output_value(self) -> Any:
        """What the graph returns: a node, a structure of nodes and literals, or None."""
        out = self.output
        return out.args[0] if out is not None and out.args else None

    def node(self, name: str) -> Node:
        """The node called ``name`` (``KeyError`` if there is none)."""
        for n in self._nodes:
            if n.name == name:
                return n
        raise KeyError(f"graph {self.name!r} has no node %{name}")

    def find(self, op: str | None = None, target: Any = None) -> list[Node]:
        """Nodes with this opcode and/or this target (compared by identity or ==)."""
        out = []
        for n in self._nodes:
            if op is not None and n.op != op:
                continue
            if target is not None and not (n.target is target or _safe_eq(n.target, target)):
                continue
            out.append(n)
        return out

    def walk(self) -> Iterator[tuple[Node, str]]:
        """Every node of this graph and of its subgraphs, with a readable path."""
        yield from _walk(self, "")

    # ------------------------------------------------------------------ building
    def add_input(self, name: str, default: Any = NO_DEFAULT, *, meta: dict | None = None) -> Node:
        """A graph parameter called ``name`` (bound by position or keyword when run)."""
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise GraphError(f"input name {name!r} must be a Python identifier")
        if any(n.target == name for n in self._nodes if n.op == INPUT):
            raise GraphError(f"graph {self.name!r} already has an input called {name!r}")
        if name in self._names:  # another node took the name: give it up to the input
            self.rename(self.node(name), self._unique_name(name))
        node = Node(self, name, INPUT, name, meta=self._meta(meta), default=default)
        self._names.add(name)
        self._members.add(node)
        # inputs stay together at the front, in the order they were added
        position = 0
        for i, n in enumerate(self._nodes):
            if n.op == INPUT:
                position = i + 1
        self._nodes.insert(position, node)
        return node

    def add_const(self, value: Any, *, name: str | None = None, meta: dict | None = None) -> Node:
        """A constant: any picklable value (the node's ``target`` is the value)."""
        return self._add(CONST, value, (), {}, name, "const", meta)

    def add_task(
        self,
        fn: TaskFunction | TaskCall,
        args: Iterable = (),
        kwargs: dict | None = None,
        options: TaskOptions | dict | None = None,
        *,
        effectful: bool = False,
        name: str | None = None,
        meta: dict | None = None,
    ) -> Node:
        """A call of a ``@plait.task`` function, run by the engine.

        ``fn`` may be ``f.options(...)`` (its options are taken); ``options``
        is a ``TaskOptions`` or a dict of overrides such as ``{"num_cpus": 2}``.
        Task calls are taken to be pure (merged by CSE, removed when unused)
        unless ``effectful=True``.
        """
        base: TaskOptions | None = None
        if isinstance(fn, TaskCall):
            fn, base = fn.task, fn.task_options
        if not isinstance(fn, TaskFunction):
            raise TypeError(
                f"add_task needs a @plait.task function, got {fn!r}; use add_call for a plain function"
            )
        if options is None:
            opts = base or fn.task_options
        elif isinstance(options, TaskOptions):
            opts = options
        elif isinstance(options, dict):
            opts = task_options(fn.name, base or fn.task_options, **options)
        else:
            raise TypeError(f"options= takes TaskOptions or a dict of option overrides, got {options!r}")
        return self._add(
            TASK, fn, tuple(args), kwargs, name, target_name(fn), meta, options=opts, effectful=effectful
        )

    def add_op(
        self,
        fn: Callable,
        *args: Any,
        kwargs: dict | None = None,
        name: str | None = None,
        meta: dict | None = None,
    ) -> Node:
        """A pure, cheap operation evaluated in the driver: ``add_op(operator.add, a, b)``.

        Build containers with the type as ``fn``: ``add_op(tuple, [a, b])``,
        ``add_op(dict, {"k": a})``, ``add_op(set, [a, b])``.
        """
        if not callable(fn):
            raise TypeError(f"add_op needs a callable, got {fn!r}")
        return self._add(OP, fn, args, kwargs, name, target_name(fn), meta)

    def add_call(
        self,
        fn: Callable,
        args: Iterable = (),
        kwargs: dict | None = None,
        effectful: bool = True,
        *,
        name: str | None = None,
        meta: dict | None = None,
    ) -> Node:
        """A call of a plain (non-task) function on resolved values, in the driver.

        Effectful calls (the default) are never removed or merged and run in
        program order with each other; ``effectful=False`` declares the call pure.
        """
        if isinstance(fn, (TaskFunction, TaskCall)):
            raise TypeError(f"{fn!r} is a task: use add_task")
        if not callable(fn):
            raise TypeError(f"add_call needs a callable, got {fn!r}")
        return self._add(CALL, fn, tuple(args), kwargs, name, target_name(fn), meta, effectful=effectful)

    def add_if(
        self,
        cond: Any,
        then_graph: Graph,
        else_graph: Graph,
        inputs: Iterable = (),
        *,
        name: str | None = None,
        meta: dict | None = None,
    ) -> Node:
        """Structured ``if``: run ``then_graph`` or ``else_graph`` on ``inputs``.

        Both subgraphs take ``len(inputs)`` inputs (by position) and see nothing
        else of this graph. The node's value is the output of the branch taken;
        return several values as a tuple and take them apart with ``unpack``.
        """
        inputs = tuple(inputs)
        for slot, sub in (("then", then_graph), ("orelse", else_graph)):
            self._check_subgraph(sub, slot, len(inputs))
        return self._add(
            IF, None, (cond, *inputs), {}, name, "ifelse", meta,
            subgraphs={"then": then_graph, "orelse": else_graph},
        )  # fmt: skip

    def add_while(
        self,
        cond_graph: Graph,
        body_graph: Graph,
        carried: Iterable,
        *,
        name: str | None = None,
        meta: dict | None = None,
    ) -> Node:
        """Structured ``while``: loop-carried values ``carried`` (n of them).

        ``cond_graph`` takes the n values and outputs the condition; ``body_graph``
        takes the n values and outputs the next n as a list or tuple. The node's
        value is the tuple of the final values (``unpack(node, n)``).
        """
        carried = tuple(carried)
        self._check_subgraph(cond_graph, "cond", len(carried))
        self._check_subgraph(body_graph, "body", len(carried))
        out = body_graph.output_value
        if type(out) not in (list, tuple) or len(out) != len(carried):
            raise GraphError(
                f"the body of a while loop must output a list or tuple of {len(carried)} "
                f"loop-carried values, got {format_arg(out)}"
            )
        return self._add(
            WHILE, None, carried, {}, name, "loop", meta, subgraphs={"cond": cond_graph, "body": body_graph}
        )

    def set_output(self, value: Any, *, meta: dict | None = None) -> Node:
        """The graph's result: a node, or a structure of nodes and literals."""
        old = self.output
        if old is not None:
            self.erase_node(old)
        node = Node(self, self._unique_name("output"), OUTPUT, None, (value,), meta=self._meta(meta))
        self._check_args(node)
        self._names.add(node.name)
        self._members.add(node)
        self._nodes.append(node)
        return node

    def unpack(self, node: Node, n: int) -> list[Node]:
        """``n`` ``getitem`` ops taking ``node``'s value apart (a tuple of ``n``)."""
        import operator

        return [self.add_op(operator.getitem, node, i, name=f"{node.name}_{i}") for i in range(n)]

    # ------------------------------------------------------------------ editing
    @contextmanager
    def inserting_before(self, node: Node) -> Iterator[None]:
        """New nodes go just before ``node`` while the block runs."""
        saved, self._cursor = self._cursor, ("before", node)
        try:
            yield
        finally:
            self._cursor = saved

    @contextmanager
    def inserting_after(self, node: Node) -> Iterator[None]:
        """New nodes go just after ``node`` (each after the previous) while the block runs."""
        saved, self._cursor = self._cursor, ("after", node)
        try:
            yield
        finally:
            self._cursor = saved

    @contextmanager
    def default_meta(self, **meta: Any) -> Iterator[None]:
        """Nodes created in this block get these ``meta`` entries (e.g. ``line=12``)."""
        saved = self._meta_defaults
        self._meta_defaults = {**saved, **meta}
        try:
            yield
        finally:
            self._meta_defaults = saved

    def erase_node(self, node: Node) -> None:
        """Remove a node that nothing reads any more."""
        self.erase_nodes([node])

    def erase_nodes(self, nodes: Iterable[Node]) -> None:
        """Remove several nodes at once; nothing outside them may read them."""
        doomed = dict.fromkeys(nodes)
        for node in doomed:
            if node.graph is not self or node not in self._members:
                raise GraphError(f"%{node.name} is not a node of graph {self.name!r}")
            readers = [u for u in node._users if u not in doomed]
            if readers:
                users = ", ".join(f"%{u.name}" for u in readers)
                raise GraphError(f"cannot erase %{node.name}: {users} still read it")
        for node in doomed:
            node._set_uses((), {})
            self._members.discard(node)
            self._names.discard(node.name)
        if len(doomed) == 1:
            self._nodes.remove(next(iter(doomed)))
        else:
            self._nodes = [n for n in self._nodes if n not in doomed]

    def rename(self, node: Node, name: str) -> None:
        """Give ``node`` a new name (unique in the graph)."""
        if node.graph is not self:
            raise GraphError(f"%{node.name} is not a node of graph {self.name!r}")
        if name == node.name:
            return
        if name in self._names:
            raise GraphError(f"graph {self.name!r} already has a node %{name}")
        if node.op == INPUT:
            raise GraphError("an input's name is its parameter name and cannot change")
        self._names.discard(node.name)
        node.name = name
        self._names.add(name)

    def copy(self) -> Graph:
        """A structural copy: new nodes (same names), shared targets and constants."""
        new = Graph(name=self.name, meta=dict(self.meta))
        env: dict[Node, Node] = {}
        for n in self._nodes:
            clone = Node(
                new,
                n.name,
                n.op,
                n.target,
                map_arg(n.args, env.__getitem__),
                map_arg(n.kwargs, env.__getitem__),
                meta=dict(n.meta),
                options=n.options,
                effectful=n.effectful,
                default=n.default,
                subgraphs={k: g.copy() for k, g in n.subgraphs.items()},
            )
            new._nodes.append(clone)
            new._members.add(clone)
            new._names.add(clone.name)
            env[n] = clone
        new._counters = dict(self._counters)
        return new

    def lint(self) -> None:
        """Check the invariants; raise ``GraphError`` naming the first broken one."""
        _lint(self, "")

    # ------------------------------------------------------------------ comparing
    def equivalent(self, other: Graph, *, names: bool = False, meta: bool = False) -> bool:
        """Structural equality: same opcodes, targets, arguments, options, subgraphs."""
        return self.difference(other, names=names, meta=meta) is None

    def difference(self, other: Graph, *, names: bool = False, meta: bool = False) -> str | None:
        """``None`` if the graphs are equivalent, else where they first differ."""
        from plait.graph.compare import graph_difference

        return graph_difference(self, other, names=names, meta=meta)

    # ------------------------------------------------------------------ saving, running, drawing
    def to_json(self, *, indent: int | None = 1) -> str:
        """The graph in the versioned ``plait.graph`` JSON format (see ``docs/graph.md``)."""
        from plait.graph.serialize import to_json

        return to_json(self, indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes | dict, *, trusted: bool = False) -> Graph:
        """The graph a ``to_json`` text (or its parsed dict) describes."""
        from plait.graph.serialize import from_json

        return from_json(text, trusted=trusted)

    def save(self, path: Any) -> None:
        """Write ``to_json()`` to ``path``."""
        from plait.graph.serialize import save

        save(self, path)

    def run(self, *args: Any, engine: Any = None, **kwargs: Any) -> Any:
        """Run the graph on ``args``/``kwargs``: ``plait.graph.run(self, ...)``."""
        from plait.graph.interpreter import run

        return run(self, *args, engine=engine, **kwargs)

    def to_dot(self) -> str:
        """Graphviz DOT text; subgraphs are drawn as clusters."""
        from plait.graph.draw import to_dot

        return to_dot(self)

    def to_svg(self) -> str:
        """SVG made by Graphviz's ``dot`` (which must be installed; else see ``to_html``)."""
        from plait.graph.draw import to_svg

        return to_svg(self)

    def to_html(self) -> str:
        """A self-contained HTML page: a drawing of each (sub)graph, the code, a node table."""
        from plait.graph.draw import to_html

        return to_html(self)

    def _repr_svg_(self) -> str | None:
        import shutil

        return self.to_svg() if shutil.which("dot") else None

    def _repr_html_(self) -> str:
        from plait.graph.draw import to_html

        return to_html(self, standalone=False)

    def show(self) -> None:
        """Print the graph as code."""
        print(self)

    def __str__(self) -> str:
        return "\n".join(_format_graph(self, "", self.name))

    def __repr__(self) -> str:
        tasks = sum(1 for n in self._nodes if n.op == TASK)
        return f"<plait.graph.Graph {self.name!r}: {len(self._nodes)} nodes, {tasks} tasks>"

    # ------------------------------------------------------------------ internals
    def _meta(self, meta: dict | None) -> dict:
        if not self._meta_defaults:
            return dict(meta or {})
        return {**self._meta_defaults, **(meta or {})}

    def _unique_name(self, hint: str) -> str:
        base = _name_hint(hint)
        if base not in self._names:
            return base
        i = self._counters.get(base, 0)
        while True:
            i += 1
            candidate = f"{base}_{i}"
            if candidate not in self._names:
                self._counters[base] = i
                return candidate

    def _add(
        self,
        op: str,
        target: Any,
        args: tuple,
        kwargs: dict | None,
        name: str | None,
        hint: str,
        meta: dict | None,
        **extra: Any,
    ) -> Node:
        meta = self._meta(meta)
        var = meta.get("var")
        if name:
            hint = name
        elif isinstance(var, str) and var.isidentifier():
            hint = var  # a node is named after the variable it is assigned to
        node = Node(self, self._unique_name(hint), op, target, args, kwargs, meta=meta, **extra)
        try:
            self._check_args(node)
        except Exception:
            node._set_uses((), {})
            raise
        self._names.add(node.name)
        self._members.add(node)
        self._insert(node)
        return node

    def _insert(self, node: Node) -> None:
        cursor = self._cursor
        if cursor is not None:
            where, anchor = cursor
            index = self._nodes.index(anchor)
            if where == "before":
                self._nodes.insert(index, node)
            else:
                self._nodes.insert(index + 1, node)
                self._cursor = ("after", node)
            return
        if self._nodes and self._nodes[-1].op == OUTPUT:
            self._nodes.insert(len(self._nodes) - 1, node)
        else:
            self._nodes.append(node)

    def _check_args(self, node: Node) -> None:
        for n in node._inputs:
            if n.graph is not self:
                raise GraphError(
                    f"%{n.name} belongs to graph {n.graph.name!r}, not {self.name!r}: a subgraph sees "
                    "outer values only through its inputs (the inputs= of add_if, carried= of add_while)"
                )
            if n not in self._members:
                raise GraphError(f"%{n.name} was erased from graph {self.name!r}")
            if n.op == OUTPUT:
                raise GraphError("the output node cannot be an argument")

    def _check_subgraph(self, sub: Any, slot: str, n_inputs: int) -> None:
        if not isinstance(sub, Graph):
            raise TypeError(f"the {slot} subgraph must be a plait.graph.Graph, got {sub!r}")
        if sub is self:
            raise GraphError("a graph cannot be its own subgraph")
        if len(sub.inputs) != n_inputs:
            raise GraphError(
                f"the {slot} subgraph takes {len(sub.inputs)} inputs but {n_inputs} values are passed to it"
            )
        if sub.output is None:
            raise GraphError(f"the {slot} subgraph has no output: call set_output on it first")


def _safe_eq(a: Any, b: Any) -> bool:
    try:
        result = a == b
    except Exception:  # noqa: BLE001
        return False
    return result if isinstance(result, bool) else False


def _walk(graph: Graph, prefix: str) -> Iterator[tuple[Node, str]]:
    for n in graph._nodes:
        yield n, f"{prefix}%{n.name}"
        for slot, sub in n.subgraphs.items():
            yield from _walk(sub, f"{prefix}%{n.name}.{slot}/")


def _format_graph(graph: Graph, indent: str, title: str) -> list[str]:
    params = []
    for n in graph.inputs:
        params.append(n.target if n.default is NO_DEFAULT else f"{n.target}={_short(n.default)}")
    lines = [f"{indent}{title}({', '.join(params)}):"]
    for n in graph._nodes:
        if n.op == INPUT:
            continue
        lines.append(f"{indent}    {n.format()}")
        for slot, sub in n.subgraphs.items():
            lines.extend(_format_graph(sub, indent + "        ", slot))
    return lines


def _lint(graph: Graph, where: str) -> None:
    seen: set[Node] = set()
    names: set[str] = set()
    inputs_done = False
    for i, n in enumerate(graph._nodes):
        label = f"{where}%{n.name}"
        if n.graph is not graph:
            raise GraphError(f"{label} does not belong to the graph that lists it")
        if n.name in names:
            raise GraphError(f"{where}two nodes are called %{n.name}")
        names.add(n.name)
        if n.op not in OPCODES:
            raise GraphError(f"{label} has unknown opcode {n.op!r}")
        if n.op == INPUT:
            if inputs_done:
                raise GraphError(f"{label}: inputs must come before every other node")
        else:
            inputs_done = True
        for inp in n._inputs:
            if inp not in seen:
                raise GraphError(f"{label} reads %{inp.name}, which is not an earlier node of its graph")
            if n not in inp._users:
                raise GraphError(f"{label} reads %{inp.name} but is missing from its users")
        for user in n._users:
            if n not in user._inputs:
                raise GraphError(f"{label} lists %{user.name} as a user, which does not read it")
        if n.op == OUTPUT and i != len(graph._nodes) - 1:
            raise GraphError(f"{where}the output node must be the last node")
        if n.op == TASK:
            if not isinstance(n.target, TaskFunction):
                raise GraphError(f"{label}: a task node's target must be a @plait.task function")
            if not isinstance(n.options, TaskOptions):
                raise GraphError(f"{label}: a task node needs TaskOptions")
        if n.op in (OP, CALL) and not callable(n.target):
            raise GraphError(f"{label}: the target {n.target!r} is not callable")
        slots = SUBGRAPH_SLOTS.get(n.op, ())
        if tuple(n.subgraphs) != slots:
            raise GraphError(f"{label}: an {n.op!r} node needs subgraphs {slots}, has {tuple(n.subgraphs)}")
        if n.op == IF and not n.args:
            raise GraphError(f"{label}: an if node needs a condition")
        arity = len(n.args) - 1 if n.op == IF else len(n.args)
        for slot, sub in n.subgraphs.items():
            if len(sub.inputs) != arity:
                raise GraphError(f"{label}: subgraph {slot!r} takes {len(sub.inputs)} inputs, not {arity}")
            if sub.output is None:
                raise GraphError(f"{label}: subgraph {slot!r} has no output")
            _lint(sub, f"{label}.{slot}/")
        if n.op == WHILE:
            out = n.subgraphs["body"].output_value
            if type(out) not in (list, tuple) or len(out) != len(n.args):
                raise GraphError(f"{label}: the body must output {len(n.args)} loop-carried values")
        seen.add(n)
