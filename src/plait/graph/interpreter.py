"""Running a graph: the ``Interpreter`` and ``run``.

The interpreter is a small dataflow scheduler in the calling thread. A node
runs as soon as the nodes it reads have values:

- ``task`` nodes are submitted to the engine at once, with futures among their
  arguments, so independent tasks run in parallel and a task is queued before
  its inputs are finished;
- ``op`` and ``call`` nodes wait (without blocking anything else) until the
  futures in their arguments are done, then run here on the values; effectful
  ``call`` nodes (and ``if``/``while`` nodes holding one) also wait for the
  effectful calls before them, so they run in program order;
- ``if`` waits for its condition, then runs the branch taken as a subgraph
  whose inputs may still be futures; ``while`` runs its condition subgraph,
  waits for the condition, runs the body, and so on;
- ``output``: ``run`` returns the output with every future replaced by its
  value, once every task it submitted has finished (``resolve=False`` on an
  ``Interpreter`` returns at once, futures kept).

The first failure ends the run at once: a failed task raises its own
exception, an ``op``/``call`` its error, each with a note naming the graph
node and its line. Tasks already submitted are left to finish.

Customize by subclassing ``Interpreter`` and overriding one of the methods
named after the opcodes (``input``, ``const``, ``task``, ``op``, ``call``),
``truth`` (how a condition is read) or ``run_node`` (every simple node).
"""

from __future__ import annotations

import operator
import os
import queue
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from plait.graph.ir import (
    CALL,
    CONST,
    IF,
    INPUT,
    NO_DEFAULT,
    OP,
    OUTPUT,
    TASK,
    WHILE,
    Graph,
    GraphError,
    Node,
    map_arg,
)
from plait.runtime import context
from plait.runtime.calls import Call, Earlier, collect, substitute, with_results
from plait.runtime.future import CANCELLED, FAILED, Future
from plait.runtime.invoke import running_task


def resolve(value: Any) -> Any:
    """``value`` with every future inside (lists, tuples, dicts, sets) replaced by its result.

    Containers with no future inside are returned as they are (same object),
    so values that the driver mutates stay shared as in plain Python.
    """
    return substitute(value, Future, Future.result)


class _Frame:
    """One running instance of a graph (the top graph, or a subgraph run)."""

    __slots__ = (
        "graph", "env", "pending", "remaining", "inputs", "output", "on_done", "effects", "order", "turn", "parked",
    )  # fmt: skip

    def __init__(self, graph: Graph, inputs: dict[Node, Any], on_done: Callable[[Any], None]) -> None:
        self.graph = graph
        self.env: dict[Node, Any] = {}
        self.pending: dict[Node, int] = {}
        self.remaining = len(graph._nodes)
        self.inputs = inputs
        self.output: Any = None
        self.on_done = on_done
        # nodes that must run in program order: effectful calls, and if/while holding one
        self.order = [n for n in graph._nodes if _ordered(n)]
        self.effects = {n: i for i, n in enumerate(self.order)}
        self.turn = 0
        self.parked: dict[Node, Callable[[], None]] = {}


def _ordered(node: Node) -> bool:
    if node.op == CALL:
        return node.effectful
    return any(_ordered(n) for g in node.subgraphs.values() for n in g._nodes)


class Interpreter:
    """Runs a graph on an engine; ``Interpreter(graph).run(*args, **kwargs)``.

    ``engine``: None (the current engine, or a temporary default one when plait
    is not initialized), an engine name such as ``"inline"`` or ``"local"``
    (the current engine if it is that one, else a temporary one started and
    stopped around the run, and current while it lasts), or an engine object.
    ``check`` runs ``check_serializable(graph, remote_only=True)`` before
    anything is submitted. ``resolve=False`` returns the output with futures
    in it instead of values.
    """

    def __init__(self, graph: Graph, *, engine: Any = None, check: bool = True, resolve: bool = True) -> None:
        self.graph = graph
        self.engine_spec = engine
        self.check = check
        self.resolve_output = resolve
        self.engine: Any = None

    # ------------------------------------------------------------ the methods to override
    def run_node(self, node: Node, args: tuple, kwargs: dict) -> Any:
        """Run one simple node (input, const, task, op, call): dispatch on the opcode."""
        return getattr(self, node.op)(node, args, kwargs)

    def input(self, node: Node, args: tuple, kwargs: dict) -> Any:
        """``args`` is ``(the value bound to the input,)``."""
        return args[0]

    def const(self, node: Node, args: tuple, kwargs: dict) -> Any:
        return node.target

    def task(self, node: Node, args: tuple, kwargs: dict) -> Any:
        """Submit the call; ``args``/``kwargs`` may hold futures (they become dependencies).
        A call with ``num_returns=k`` gives a tuple of ``k`` futures (None for 0)."""
        options = node.options or node.target.task_options
        if options.num_returns != 1:
            outputs = self.engine.submit_returning(node.target, args, kwargs, options)
            return None if outputs is None else tuple(outputs)
        return self.engine.submit(node.target, args, kwargs, options)

    def op(self, node: Node, args: tuple, kwargs: dict) -> Any:
        """Apply a pure operation to values (every future already resolved)."""
        return node.target(*args, **kwargs)

    def call(self, node: Node, args: tuple, kwargs: dict) -> Any:
        """Call a plain function on values (every future already resolved)."""
        return node.target(*args, **kwargs)

    def truth(self, node: Node, value: Any) -> bool:
        """Read the condition of an ``if`` or ``while`` node (a value, not a future)."""
        return bool(value)

    # ------------------------------------------------------------ running
    def run(self, *args: Any, **kwargs: Any) -> Any:
        if self.graph.output is None:
            raise GraphError(
                f"graph {self.graph.name!r} has no output node, so running it would give None "
                "whatever it computes: call set_output(...) (set_output(None) to run it for its effects)"
            )
        values = bind(self.graph, args, kwargs)
        if self.check:
            from plait.graph.passes import check_serializable

            check_serializable(self.graph, remote_only=True)
        with engine_scope(self.engine_spec) as engine:
            self.engine = engine
            try:
                return self._execute(values)
            finally:
                self.engine = None

    def _execute(self, inputs: dict[Node, Any]) -> Any:
        self._ready: deque[Callable[[], None]] = deque()
        cls = type(self)
        # task nodes go to the engine as graphs, unless a subclass runs them its own way
        self._batching = cls.task is Interpreter.task and cls.run_node is Interpreter.run_node
        self._batch: list[Call] = []
        self._batch_nodes: list[tuple[_Frame, Node]] = []
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._waits = 0
        self._tasks_left = 0
        # inside a task, waiting must go through the engine, which then runs the awaited
        # calls queued behind this one (or lends this worker): a bare wait would deadlock
        self._awaited: list[Future] | None = [] if running_task() is not None else None
        result: list[Any] = []

        def finish(value: Any) -> None:
            if self.resolve_output:
                self._when_ready(value, lambda: result.append(resolve(value)))
            else:
                result.append(value)

        self._start(self.graph, inputs, finish)
        while True:
            if self._ready:
                self._ready.popleft()()
                continue
            self._flush()
            if result and (self._tasks_left == 0 or not self.resolve_output):
                return result[0]
            if not self._waits and not self._tasks_left:
                raise GraphError(f"running graph {self.graph.name!r} stalled: nothing is ready or awaited")
            if self._awaited is not None and self._done.empty():
                self._awaited = [f for f in dict.fromkeys(self._awaited) if not f.done()]
                if self._awaited:
                    self.engine.wait_for(self._awaited, 1, None)
            item = self._done.get()
            if type(item) is tuple:  # a task finished: fail fast if it failed
                self._tasks_left -= 1
                future, node = item
                if future._state in (FAILED, CANCELLED):
                    try:
                        future.result()
                    except BaseException as exc:
                        _note(exc, node)
                        raise
                continue
            item[0] -= 1
            if item[0] == 0:
                self._waits -= 1
                self._ready.append(item[1])

    def _start(self, graph: Graph, inputs: dict[Node, Any], on_done: Callable[[Any], None]) -> None:
        frame = _Frame(graph, inputs, on_done)
        if not graph._nodes:
            self._ready.append(partial(on_done, None))
            return
        for node in graph._nodes:
            count = len(node._inputs)
            frame.pending[node] = count
            if count == 0:
                self._ready.append(partial(self._visit, frame, node))

    def _when_ready(self, value: Any, then: Callable[[], None]) -> None:
        """Run ``then`` (from the loop) once every future inside ``value`` is done."""
        futures: list[Future] = []
        collect(value, Future, futures)
        futures = [f for f in futures if not f.done()]
        if not futures:
            self._ready.append(then)
            return
        rec = [len(futures), then]
        self._waits += 1
        put = self._done.put
        if self._awaited is not None:
            self._awaited.extend(futures)
        for f in futures:
            f.add_done_callback(lambda _f, rec=rec: put(rec))

    def _set(self, frame: _Frame, node: Node, value: Any) -> None:
        frame.env[node] = value
        frame.remaining -= 1
        for user in node._users:
            left = frame.pending[user] - 1
            frame.pending[user] = left
            if left == 0:
                self._ready.append(partial(self._visit, frame, user))
        if node in frame.effects:
            frame.turn += 1
            if frame.turn < len(frame.order):
                parked = frame.parked.pop(frame.order[frame.turn], None)
                if parked is not None:
                    self._ready.append(parked)
        if frame.remaining == 0:
            frame.on_done(frame.output)

    def _visit(self, frame: _Frame, node: Node) -> None:
        position = frame.effects.get(node)
        if position is not None and position != frame.turn:
            frame.parked[node] = partial(self._visit, frame, node)
            return
        try:
            self._dispatch(frame, node)
        except Exception as exc:
            _note(exc, node)
            raise

    def _dispatch(self, frame: _Frame, node: Node) -> None:
        op = node.op
        env = frame.env.__getitem__
        if op == TASK:
            options = node.options or node.target.task_options
            if self._batching and options.num_returns == 1:
                # submitted with the other task nodes ready now (``_flush``), in one exchange
                marker = Earlier(len(self._batch))
                self._batch.append(Call(node.target, map_arg(node.args, env), map_arg(node.kwargs, env), options))
                self._batch_nodes.append((frame, node))
                self._set(frame, node, marker)
                return
            self._flush()
            value = self.run_node(node, map_arg(node.args, env), map_arg(node.kwargs, env))
            self._submitted(node, value)
            self._set(frame, node, value)
            return
        self._flush()  # every other node reads values: the markers become futures first
        if op in (OP, CALL):
            args, kwargs = map_arg(node.args, env), map_arg(node.kwargs, env)
            if node.target is operator.getitem and _one_output(args):
                self._set(frame, node, args[0][args[1]])  # an output of a call: its own future
                return
            self._when_ready((args, kwargs), partial(self._apply, frame, node, args, kwargs))
        elif op == INPUT:
            self._set(frame, node, self.run_node(node, (frame.inputs[node],), {}))
        elif op == CONST:
            self._set(frame, node, self.run_node(node, (), {}))
        elif op == IF:
            cond = map_arg(node.args[0], env)
            values = [map_arg(a, env) for a in node.args[1:]]
            self._when_ready(cond, partial(self._branch, frame, node, cond, values))
        elif op == WHILE:
            self._loop(frame, node, [map_arg(a, env) for a in node.args])
        elif op == OUTPUT:
            frame.output = map_arg(node.args[0], env) if node.args else None
            self._set(frame, node, frame.output)
        else:  # pragma: no cover - lint rejects unknown opcodes
            raise GraphError(f"unknown opcode {op!r}")

    def _submitted(self, node: Node, value: Any) -> None:
        put = self._done.put
        for future in value if type(value) is tuple else (value,):
            if type(future) is Future:
                self._tasks_left += 1
                if self._awaited is not None:
                    self._awaited.append(future)
                future.add_done_callback(lambda f, node=node: put((f, node)))

    def _flush(self) -> None:
        """Submit the task nodes gathered since the last flush as one graph, and put their
        futures where their ``Earlier`` markers were."""
        if not self._batch:
            return
        calls, nodes = self._batch, self._batch_nodes
        self._batch, self._batch_nodes = [], []
        try:
            futures = self.engine.submit_graph(calls)
        except Exception:
            self._name_the_refused_call(calls, nodes)
            raise
        for future, (frame, node) in zip(futures, nodes, strict=True):
            frame.env[node] = future
            self._submitted(node, future)

    def _name_the_refused_call(self, calls: list[Call], nodes: list[tuple[_Frame, Node]]) -> None:
        """The engine refused a graph: submit its calls one by one (those before the refused
        one run, as without the batch) to raise that call's error with its node named."""
        futures: list[Future] = []
        for (fn, args, kwargs, options), (_, node) in zip(calls, nodes, strict=True):
            args, kwargs = with_results((args, kwargs), futures)
            try:
                futures.append(self.engine.submit(fn, args, kwargs, options))
            except Exception as exc:
                _note(exc, node)
                raise
            self._submitted(node, futures[-1])

    def _apply(self, frame: _Frame, node: Node, args: tuple, kwargs: dict) -> None:
        try:
            value = self.run_node(node, resolve(args), resolve(kwargs))
        except Exception as exc:
            _note(exc, node)
            raise
        self._set(frame, node, value)

    def _branch(self, frame: _Frame, node: Node, cond: Any, values: list) -> None:
        try:
            taken = self.truth(node, resolve(cond))
        except Exception as exc:
            _note(exc, node)
            raise
        sub = node.subgraphs["then" if taken else "orelse"]
        self._start(sub, dict(zip(sub.inputs, values, strict=True)), partial(self._set, frame, node))

    def _loop(self, frame: _Frame, node: Node, carried: list) -> None:
        cond_graph, body = node.subgraphs["cond"], node.subgraphs["body"]

        def test(cond: Any) -> None:
            self._when_ready(cond, partial(decide, cond))

        def decide(cond: Any) -> None:
            try:
                go_on = self.truth(node, resolve(cond))
            except Exception as exc:
                _note(exc, node)
                raise
            if go_on:
                self._start(body, dict(zip(body.inputs, carried, strict=True)), again)
            else:
                self._set(frame, node, tuple(carried))

        def again(out: Any) -> None:
            if type(out) not in (list, tuple) or len(out) != len(carried):
                raise GraphError(f"the body of %{node.name} must output {len(carried)} values, got {out!r}")
            self._loop(frame, node, list(out))

        self._start(cond_graph, dict(zip(cond_graph.inputs, carried, strict=True)), test)


def _note(exc: BaseException, node: Node) -> None:
    where = f"while running graph node %{node.name}"
    line = node.meta.get("line")
    if line is not None:
        file = node.meta.get("file")
        where += f" (line {line} of {file})" if file else f" (line {line})"
    notes = getattr(exc, "__notes__", None) or []
    if not any(n.startswith("while running graph node") for n in notes):
        exc.add_note(where)


def bind(graph: Graph, args: tuple, kwargs: dict) -> dict[Node, Any]:
    """Bind call arguments to the graph's inputs, as Python binds a function's parameters."""
    inputs = graph.inputs
    if len(args) > len(inputs):
        raise TypeError(f"graph {graph.name!r} takes {len(inputs)} arguments but {len(args)} were given")
    values: dict[Node, Any] = dict(zip(inputs, args, strict=False))
    by_name = {n.target: n for n in inputs}
    for key, value in kwargs.items():
        node = by_name.get(key)
        if node is None:
            raise TypeError(f"graph {graph.name!r} got an unexpected keyword argument {key!r}")
        if node in values:
            raise TypeError(f"graph {graph.name!r} got multiple values for argument {key!r}")
        values[node] = value
    missing = []
    for node in inputs:
        if node not in values:
            if node.default is NO_DEFAULT:
                missing.append(node.target)
            else:
                values[node] = node.default
    if missing:
        raise TypeError(f"graph {graph.name!r} is missing argument(s): {', '.join(missing)}")
    return values


@contextmanager
def engine_scope(spec: Any) -> Iterator[Any]:
    """The engine to run on: the current one, or a temporary one (see ``Interpreter``)."""
    from plait.runtime import api

    current = context.engine_or_none()
    if spec is None:
        if current is not None:
            yield current
            return
        name = os.environ.get("PLAIT_ENGINE") or None
    elif isinstance(spec, str):
        if current is not None and getattr(current, "name", None) == spec:
            yield current
            return
        name = spec
    else:
        yield getattr(spec, "engine", spec)  # an engine, or the Session plait.init returned
        return
    if current is None:
        session = api.init(engine=name)
        try:
            yield session.engine
        finally:
            if context.engine_or_none() is session.engine:
                api.shutdown()
        return
    # another engine is current: run on a temporary one, current while the run lasts
    context.set_engine(None)
    try:
        session = api.init(engine=name)
    except BaseException:
        context.set_engine(current)
        raise
    try:
        yield session.engine
    finally:
        try:
            if context.engine_or_none() is session.engine:
                api.shutdown()
        finally:
            context.set_engine(current)


def run(graph: Graph, *args: Any, engine: Any = None, **kwargs: Any) -> Any:
    """Run ``graph`` on ``args``/``kwargs`` and return its output, futures resolved.

    ``engine``: None (the current engine; a temporary default one when plait
    is not initialized), an engine name (``"inline"``, ``"local"``...: a
    temporary engine when it is not the current one), or an engine object.
    The graph's functions and constants bound for workers are checked for
    picklability before anything is submitted.
    """
    return Interpreter(graph, engine=engine).run(*args, **kwargs)


def _one_output(args: tuple) -> bool:
    """``getitem(outputs, i)`` where ``outputs`` are the futures of a call with several."""
    return (
        len(args) == 2
        and type(args[0]) is tuple
        and type(args[1]) is int
        and -len(args[0]) <= args[1] < len(args[0])
        and all(type(f) is Future for f in args[0])
    )
