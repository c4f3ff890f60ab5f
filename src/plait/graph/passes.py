"""Graph passes, and the ``PassManager`` that runs them in order.

A pass is a function ``pass_(graph)`` that either edits the graph in place and
returns a ``PassReport`` (all the passes here do), or returns a new ``Graph``.
Every pass walks subgraphs too.

- ``cse``: common subexpression elimination of identical pure nodes;
- ``dce``: dead-node elimination;
- ``fuse_chains``: fusion of chains of task calls into one task;
- ``check_serializable``: every function and constant can be pickled (raises
  ``plait.SerializationError`` naming the node, its variable and line).

Passes with settings go into a ``PassManager`` through ``functools.partial``:
``PassManager([cse, dce, partial(fuse_chains, max_length=4)])``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from plait.errors import SerializationError
from plait.graph.ir import (
    CALL,
    CONST,
    INPUT,
    NO_DEFAULT,
    OP,
    OUTPUT,
    TASK,
    Graph,
    Node,
    iter_literals,
    map_arg,
    target_name,
)
from plait.runtime.options import TaskOptions
from plait.runtime.task import TaskFunction

__all__ = [
    "FusedTask",
    "PassManager",
    "PassReport",
    "check_serializable",
    "cse",
    "dce",
    "fuse_chains",
]


@dataclass
class PassReport:
    """What a pass did: its name and one line per change."""

    name: str
    changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def __str__(self) -> str:
        if not self.changes:
            return f"{self.name}: no change"
        return f"{self.name}: " + "; ".join(self.changes)


class PassManager:
    """Runs passes in order: ``PassManager([cse, dce]).run(graph)``.

    Each pass edits the graph in place (returning a ``PassReport``) or returns
    a new graph, which the next pass receives. ``run`` returns the final graph;
    ``reports`` holds one ``PassReport`` per pass of the last run. With
    ``lint=True`` (the default) the graph's invariants are checked after each
    pass, so a faulty pass is caught where it went wrong.
    """

    def __init__(self, passes: Iterable[Callable[[Graph], Any]], *, lint: bool = True) -> None:
        self.passes = list(passes)
        self.lint = lint
        self.reports: list[PassReport] = []

    def run(self, graph: Graph) -> Graph:
        self.reports = []
        for pass_ in self.passes:
            result = pass_(graph)
            name = _pass_name(pass_)
            if isinstance(result, Graph):
                graph = result
                report = PassReport(name, ["returned a new graph"])
            elif isinstance(result, PassReport):
                report = result
            else:
                report = PassReport(name)
            if self.lint:
                graph.lint()
            self.reports.append(report)
        return graph

    __call__ = run

    def __repr__(self) -> str:
        return f"PassManager([{', '.join(_pass_name(p) for p in self.passes)}])"


def _pass_name(pass_: Any) -> str:
    if isinstance(pass_, functools.partial):
        return _pass_name(pass_.func)
    return getattr(pass_, "__name__", type(pass_).__name__)


def _graphs(graph: Graph) -> list[Graph]:
    """``graph`` and all its subgraphs, innermost first."""
    out: list[Graph] = []
    for node in graph._nodes:
        for sub in node.subgraphs.values():
            out.extend(_graphs(sub))
    out.append(graph)
    return out


# ----------------------------------------------------------------------------- CSE


class _Unhashable(Exception):
    pass


def _key(value: Any) -> Any:
    """A hashable key equal for equal arguments (nodes by identity)."""
    t = type(value)
    if t is Node:
        return ("n", id(value))
    if t is list or t is tuple:
        return (t.__name__, tuple(_key(v) for v in value))
    if isinstance(value, tuple) and hasattr(t, "_fields"):
        return ("nt", id(t), tuple(_key(v) for v in value))
    if t is dict:
        return ("d", tuple((_key(k), _key(v)) for k, v in value.items()))
    if t is slice:
        return ("s", _key(value.start), _key(value.stop), _key(value.step))
    if t is float:
        return ("f", value.hex())  # keeps 0.0 and -0.0 apart
    if t is complex:
        return ("c", value.real.hex(), value.imag.hex())
    try:
        hash(value)
    except TypeError:
        raise _Unhashable from None
    return ("v", t, value)


def _cse_key(node: Node) -> Any:
    op = node.op
    if op == CONST:
        return ("const", _key(node.target))
    if op == TASK and not node.effectful:
        return ("task", id(node.target), node.options, _key(node.args), _key(node.kwargs))
    if op == OP or (op == CALL and not node.effectful):
        return (op, id(node.target), _key(node.args), _key(node.kwargs))
    return None


def _feeds_effect(node: Node) -> bool:
    """True if the driver-side value of ``node`` may reach an effectful call.

    Such values might be mutated in place, so two equal ones must stay two
    objects. Values reach a call directly or through ``op`` nodes.
    """
    if node.op == TASK:
        return False  # task results are copies wherever they are read
    stack, seen = [node], set()
    while stack:
        n = stack.pop()
        for user in n._users:
            if user.op == CALL and user.effectful:
                return True
            if user.op in (OP, CALL) and user not in seen:
                seen.add(user)
                stack.append(user)
    return False


def _surviving(merged: dict[Node, Node], node: Node) -> Node:
    return merged.get(node, node)


def cse(graph: Graph) -> PassReport:
    """Merge identical pure nodes: equal constants, task calls and ops.

    Two ``task`` nodes merge when they call the same task function with the
    same options on the same argument nodes and equal literals; ``op`` nodes
    and ``call`` nodes declared pure (``effectful=False``) merge likewise, and
    ``const`` nodes with equal hashable values. Effectful nodes never merge;
    neither do driver-side values (constants, ops, calls) that flow into an
    effectful call, which could mutate them. Arguments that cannot be hashed
    (a numpy array literal, say) keep their node unmerged.
    """
    report = PassReport("cse")
    for g in _graphs(graph):
        seen: dict[Any, Node] = {}
        merged: dict[Node, Node] = {}
        for node in g.nodes:
            if merged and any(n in merged for n in node._inputs):
                # read the surviving copies (one rewrite per node, however many inputs merged)
                swap = functools.partial(_surviving, merged)
                node._set_uses(map_arg(node.args, swap), map_arg(node.kwargs, swap))
            try:
                key = _cse_key(node)
            except _Unhashable:
                continue
            if key is None:
                continue
            first = seen.get(key)
            if first is None:
                seen[key] = node
                continue
            if node.op != TASK and (_feeds_effect(node) or _feeds_effect(first)):
                continue
            merged[node] = first
            report.changes.append(f"%{node.name} merged into %{first.name}")
        g.erase_nodes(merged)
    return report


# ----------------------------------------------------------------------------- DCE


def dce(graph: Graph) -> PassReport:
    """Remove nodes whose value nothing reads, unless they are effectful.

    Inputs and the output always stay (inputs are the graph's signature);
    effectful ``call`` and ``task`` nodes stay, and so do ``if``/``while``
    nodes whose subgraphs hold one. Subgraphs are cleaned first.
    """
    report = PassReport("dce")
    for g in _graphs(graph):
        where = "" if g is graph else f" (in {g.name!r})"
        dead: dict[Node, None] = {}
        for node in reversed(g._nodes):
            if node.op in (INPUT, OUTPUT) or node.is_effectful:
                continue
            if all(u in dead for u in node._users):
                dead[node] = None
        g.erase_nodes(dead)
        report.changes.extend(f"removed %{n.name}{where}" for n in reversed(dead))
    return report


# ----------------------------------------------------------------------------- fusion


@dataclass(frozen=True)
class _Arg:
    """Placeholder in a fused stage's arguments: the fused call's argument ``index``."""

    index: int


@dataclass(frozen=True)
class _Stage:
    """Placeholder in a fused stage's arguments: the result of stage ``index``."""

    index: int


def _fill(value: Any, inputs: tuple, results: list) -> Any:
    t = type(value)
    if t is _Arg:
        return inputs[value.index]
    if t is _Stage:
        return results[value.index]
    if t is list:
        return [_fill(v, inputs, results) for v in value]
    if t is tuple:
        return tuple(_fill(v, inputs, results) for v in value)
    if t is dict:
        return {k: _fill(v, inputs, results) for k, v in value.items()}
    if t is slice:
        return slice(*(_fill(v, inputs, results) for v in (value.start, value.stop, value.step)))
    if isinstance(value, tuple) and hasattr(t, "_fields"):
        return t(*(_fill(v, inputs, results) for v in value))
    return value


class FusedTask:
    """The function of a fused task: calls each stage's function in turn, in one worker.

    ``stages`` is a list of ``(task, args, kwargs)`` whose arguments hold
    ``_Arg(i)`` (the fused call's ``i``-th argument) and ``_Stage(j)`` (the
    result of stage ``j``) placeholders. The stages' plain functions are
    called directly, so no stage is a task of its own. Picklable.
    """

    def __init__(self, stages: list[tuple[TaskFunction, tuple, dict]]) -> None:
        self._stages = list(stages)
        name = "+".join(target_name(fn) for fn, _, _ in stages)
        self.__name__ = name
        self.__qualname__ = name
        self.__doc__ = f"Fused task: {' then '.join(target_name(fn) for fn, _, _ in stages)}."

    @property
    def stages(self) -> list[tuple[TaskFunction, tuple, dict]]:
        return list(self._stages)

    def __call__(self, *inputs: Any) -> Any:
        results: list[Any] = []
        for fn, args, kwargs in self._stages:
            results.append(fn.fn(*_fill(args, inputs, results), **_fill(kwargs, inputs, results)))
        return results[-1]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FusedTask):
            return NotImplemented
        from plait.graph.compare import same_value

        return len(self._stages) == len(other._stages) and all(
            same_value(a[0], b[0]) and same_value(a[1], b[1]) and same_value(a[2], b[2])
            for a, b in zip(self._stages, other._stages, strict=True)
        )

    def __hash__(self) -> int:
        return hash(self.__qualname__)

    def __repr__(self) -> str:
        return f"<fused task {self.__qualname__}>"

    def __reduce__(self) -> Any:
        return (FusedTask, (self._stages,))


def default_compatible(a: TaskOptions, b: TaskOptions) -> bool:
    """Two task calls may share one worker call when their options match (names aside)."""
    return replace(a, name=None) == replace(b, name=None)


def fuse_chains(
    graph: Graph,
    max_length: int | None = None,
    predicate: Callable[[Node], bool] | None = None,
    compatible: Callable[[TaskOptions, TaskOptions], bool] = default_compatible,
) -> PassReport:
    """Fuse chains of task calls ``a -> b -> c`` into one task call.

    A task node joins the chain of the task node it feeds when (1) that node
    is its only user, (2) ``compatible(options, options)`` holds (by default:
    equal options, names aside), (3) ``predicate(node)`` holds for both (by
    default every task, except nodes with ``meta["fuse"] = False``), and
    (4) the next node's other inputs are constants or already inputs of the
    chain, so fusing never makes a call wait for something it did not wait for
    before. At most ``max_length`` calls go into one fused task (None: no
    limit). The fused node takes the last node's name and place; its target is
    a task wrapping a ``FusedTask``; ``meta["fused"]`` lists the names of the
    nodes it replaced. A stage's timeout adds up in the fused task.
    """
    if max_length is not None and max_length < 2:
        raise ValueError(f"max_length={max_length} must be at least 2 (or None)")
    eligible = predicate or (lambda n: n.meta.get("fuse", True) is not False)
    report = PassReport("fuse_chains")
    for g in _graphs(graph):
        for chain in _chains(g, max_length, eligible, compatible):
            fused = _fuse(g, chain)
            report.changes.append(
                f"fused {', '.join('%' + n for n in fused.meta['fused'])} into %{fused.name}"
            )
    return report


def _chains(
    g: Graph,
    max_length: int | None,
    eligible: Callable[[Node], bool],
    compatible: Callable[[TaskOptions, TaskOptions], bool],
) -> list[list[Node]]:
    taken: set[Node] = set()
    chains = []
    for head in g._nodes:
        if head.op != TASK or head in taken or not eligible(head):
            continue
        chain = [head]
        external = set(head._inputs)
        cur = head
        while max_length is None or len(chain) < max_length:
            users = cur.users
            if len(users) != 1:
                break
            nxt = users[0]
            if nxt.op != TASK or nxt in taken or not eligible(nxt):
                break
            if not compatible(cur.options, nxt.options) or not compatible(head.options, nxt.options):
                break
            side = [n for n in nxt._inputs if n is not cur]
            if any(n not in external and n.op != CONST for n in side):
                break
            external.update(side)
            chain.append(nxt)
            cur = nxt
        if len(chain) > 1:
            taken.update(chain)
            chains.append(chain)
    return chains


def _fuse(g: Graph, chain: list[Node]) -> Node:
    externals: list[Node] = []
    index: dict[Node, int] = {}
    stages = []
    for i, node in enumerate(chain):
        prev = chain[i - 1] if i else None

        def place(n: Node, prev: Node | None = prev, i: int = i) -> Any:
            if n is prev:
                return _Stage(i - 1)
            if n not in index:
                index[n] = len(externals)
                externals.append(n)
            return _Arg(index[n])

        stages.append((node.target, map_arg(node.args, place), map_arg(node.kwargs, place)))
    last = chain[-1]
    timeouts = [n.options.timeout for n in chain]
    options = replace(last.options, name=None)
    if all(t is not None for t in timeouts):
        options = replace(options, timeout=sum(timeouts))
    fn = TaskFunction(FusedTask(stages), options)
    meta = {**last.meta, "fused": [n.name for n in chain]}
    with g.inserting_before(last):
        fused = g.add_task(
            fn,
            tuple(externals),
            {},
            options,
            effectful=any(n.effectful for n in chain),
            name=last.name + "_fused",
            meta=meta,
        )
    last.replace_all_uses_with(fused)
    for node in reversed(chain):
        g.erase_node(node)
    g.rename(fused, last.name)
    return fused


# ----------------------------------------------------------------------------- serializability


def _where(node: Node, path: str) -> str:
    parts = []
    var = node.meta.get("var")
    if var:
        parts.append(f"variable {var!r}")
    line = node.meta.get("line")
    if line is not None:
        file = node.meta.get("file")
        parts.append(f"line {line} of {file}" if file else f"line {line}")
    return f"graph node {path}" + (f" ({', '.join(parts)})" if parts else "")


def check_serializable(graph: Graph, *, remote_only: bool = False) -> PassReport:
    """Check that every function and constant of the graph can be pickled.

    Raises ``plait.SerializationError`` naming the node, its variable
    (``meta["var"]``) and source line (``meta["line"]``, ``meta["file"]``) at
    the first value that cannot. ``remote_only=True`` checks only what goes to
    workers when the graph runs: task functions, the literals in task
    arguments and the constants that tasks read (``run`` does this before
    submitting anything); the default checks everything, as saving needs.
    """
    from plait.runtime.serialization import describe_type, dumps, is_atomic

    report = PassReport("check_serializable")
    checked: set[int] = set()

    def check(value: Any, what: str, node: Node, path: str, function: bool = False) -> None:
        if is_atomic(value) or id(value) in checked:
            return
        try:
            dumps(value)
        except Exception as exc:  # noqa: BLE001
            if function:
                detail = (
                    "a function must not capture unpicklable objects (locks, open files, sockets, "
                    "clients) in its closure or globals: create them inside the function"
                )
            else:
                what += f" (a value of type {describe_type(value)})"
                detail = (
                    "pass something picklable (a path, plain data), or create the object where it is used"
                )
            raise SerializationError(
                f"{_where(node, path)}: {what} cannot be pickled ({type(exc).__name__}: {exc}); {detail}"
            ) from exc
        checked.add(id(value))

    for node, path in graph.walk():
        op = node.op
        remote = op == TASK
        if op == TASK:
            check(node.target, f"the task function {target_name(node.target)!r}", node, path, True)
        elif op in (OP, CALL) and not remote_only:
            check(node.target, f"the function {target_name(node.target)!r}", node, path, True)
        elif op == CONST and (not remote_only or any(u.op == TASK for u in node._users)):
            check(node.target, "the constant", node, path)
        elif op == INPUT and not remote_only and node.default is not NO_DEFAULT:
            check(node.default, f"the default of input {node.target!r}", node, path)
        if remote or not remote_only:
            for i, arg in enumerate(node.args):
                for lit in iter_literals(arg):
                    check(lit, f"argument {i}", node, path)
            for key, arg in node.kwargs.items():
                for lit in iter_literals(arg):
                    check(lit, f"argument {key!r}", node, path)
    return report
