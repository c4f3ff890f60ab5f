"""``plait.trace(fn)(*args)``: the graph of a ``@parallel`` function, without running a task.

The function runs once, sequentially, against a *tracing engine*: each task
call becomes a ``task`` node and returns a symbolic future, each operation
lifted over futures becomes an ``op`` node, and the parameters become
``input`` nodes. Ordinary code between task calls runs as usual, on concrete
values (loops over concrete values are unrolled). The graph is specialised to
the arguments given: an input whose value the program inspected (a loop over
it, a branch on it) is marked ``meta["specialized"]``.

Control flow that depends on a task's *result* (an ``if`` on it, a loop
over it, an ordinary function called with it) is refused with an error that
names the line: run such a function with ``@plait.parallel`` instead, which
handles it at run time.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from plait.errors import NotSupported, PlaitError
from plait.runtime.engine import Engine
from plait.runtime.future import FINISHED, Future
from plait.runtime.future import complete as _complete

_PLAIT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class TraceError(PlaitError):
    """The function cannot be captured as a graph; the message names the line."""


class _NeedsValue(Exception):
    pass


class TracingEngine(Engine):
    name = "trace"
    concurrent_clients = False
    tracing = True

    def __init__(self, graph: Any, filename: str | None) -> None:
        self.graph = graph
        self.filename = filename
        self.nodes: dict[int, Any] = {}
        self.inputs: dict[int, Any] = {}
        self._ids = itertools.count(1)

    def _future(self, node: Any, name: str) -> Future:
        future = Future(self, next(self._ids), name)
        self.nodes[future._id] = node
        return future

    def input_future(self, node: Any, value: Any) -> Future:
        future = self._future(node, node.target)
        self.inputs[future._id] = value
        _complete([(future, FINISHED, value)])
        return future

    def _meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        frame = sys._getframe(1)
        if self.filename is None:  # capture(): the first frame outside plait is the caller
            while frame is not None and frame.f_code.co_filename.startswith(_PLAIT_DIR):
                frame = frame.f_back
            if frame is not None:
                meta = {"line": frame.f_lineno, "file": frame.f_code.co_filename}
            return meta
        while frame is not None:
            if frame.f_code.co_filename == self.filename:
                meta.setdefault("line", frame.f_lineno)
                ctx = frame.f_locals.get("__c")
                if ctx is not None and len(ctx.stmt.writes) == 1:
                    meta["var"] = next(iter(ctx.stmt.writes))
                if "line" in meta:
                    break
            frame = frame.f_back
        meta["file"] = self.filename
        return meta

    def _map(self, value: Any) -> Any:
        t = type(value)
        if t is Future:
            if value._engine is not self:
                raise TraceError("a future from a running engine was passed into a traced function")
            return self.nodes[value._id]
        if t in (list, tuple):
            return t(self._map(v) for v in value)
        if t is dict:
            return {k: self._map(v) for k, v in value.items()}
        if t in (set, frozenset):
            return t(self._map(v) for v in value)
        return value

    def submit(self, fn: Any, args: tuple, kwargs: dict, options: Any) -> Future:
        from plait.parallel.runtime import apply_task

        if fn is apply_task:
            op, op_args, op_kwargs = args
            node = self.graph.add_op(
                op, *self._map(tuple(op_args)), kwargs=self._map(op_kwargs) or None, meta=self._meta()
            )
            return self._future(node, node.name)
        node = self.graph.add_task(fn, self._map(args), self._map(kwargs), options, meta=self._meta())
        return self._future(node, node.name)

    def put(self, value: Any) -> Future:
        return self._future(self.graph.add_const(value, meta=self._meta()), "const")

    def wait_for(self, futures: list[Future], num_returns: int, timeout: float | None) -> None:
        if all(f._id in self.inputs for f in futures):
            return
        raise _NeedsValue()

    def value_of(self, future: Future) -> Any:
        if future._id in self.inputs:
            self.nodes[future._id].meta["specialized"] = True
            return self.inputs[future._id]
        raise _NeedsValue()

    def refresh(self, future: Future) -> None:
        return None

    def cancel(self, future: Future, force: bool = False) -> bool:
        return False

    def release(self, object_id: int) -> None:
        return None

    def adopt(self, object_id: int, name: str) -> Future:
        raise TraceError("futures inside values cannot be traced")

    def create_actor(self, *args: Any) -> Any:
        raise NotSupported("engine 'trace': actors cannot be captured in a graph; trace the functions around them")

    call_actor = kill_actor = create_actor

    def status(self) -> list:
        return []

    def timeline_events(self) -> list:
        return []

    def shutdown(self) -> None:
        return None


class Capture:
    """What ``with plait.capture() as cap:`` gives: task calls so far, as a graph."""

    def __init__(self, engine: TracingEngine) -> None:
        self.engine = engine

    def graph(self, output: Any) -> Any:
        """The captured graph with ``output`` (futures from the block, in any structure) as its result."""
        graph = self.engine.graph
        graph.set_output(self.engine._map(output))
        return graph


@contextlib.contextmanager
def capture(name: str = "captured") -> Iterator[Capture]:
    """Record the task-API calls made in a block as a graph, without running them.

    Inside the block task calls (and ``plait.put``) return symbolic futures;
    pass them to other task calls as usual. ``cap.graph(output)`` is the
    ``plait.Graph`` of those calls: the dynamic task API, in the shared IR.
    Needing a value inside the block (``result()``, ``get``) is an error.
    """
    from plait.graph import Graph
    from plait.runtime import context

    engine = TracingEngine(Graph(name=name), None)
    previous = context.override.engine
    context.override.engine = engine
    try:
        yield Capture(engine)
    except _NeedsValue:
        raise TraceError(
            "a value was needed inside plait.capture(): the calls are only recorded there; "
            "run the graph (plait.run) to get values"
        ) from None
    finally:
        context.override.engine = previous


def trace(fn: Callable) -> Callable[..., Any]:
    """``plait.trace(fn)(*args)``: the ``plait.Graph`` of ``fn`` for these arguments."""
    from plait.parallel.function import ParallelFunction

    pf = fn if isinstance(fn, ParallelFunction) else ParallelFunction(fn)

    def tracer(*args: Any, **kwargs: Any) -> Any:
        from plait.graph import Graph
        from plait.parallel.runtime import Invocation
        from plait.runtime import context

        compiled = pf.compiled
        engine = TracingEngine(Graph(name=compiled.name), compiled.filename)
        bound = compiled.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        traced = {}
        for name, value in bound.arguments.items():
            node = engine.graph.add_input(name, default=value, meta={"file": compiled.filename})
            traced[name] = engine.input_future(node, value)
        previous = context.override.engine
        context.override.engine = engine
        try:
            invocation = Invocation(compiled, pf.fn, traced, False, None)
            invocation.run()
            invocation.done.wait()
        finally:
            context.override.engine = previous
        ok, value = invocation.outcome  # type: ignore[misc]
        if not ok:
            if isinstance(value, _NeedsValue):
                line = _user_line(value, compiled.filename)
                raise TraceError(
                    f"{compiled.filename}:{line}: this line needs the value of a task result "
                    "(a branch, a loop or an ordinary call on it), which a graph cannot capture yet; "
                    "run the function with @plait.parallel, which waits for it at run time"
                ) from None
            raise value
        engine.graph.set_output(engine._map(value))
        return engine.graph

    return tracer


def _user_line(exc: BaseException, filename: str) -> int:
    """The line of the user's code that needed the value: its own frame, or its statement's."""
    from plait.parallel.runtime import Ctx

    line = 0
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        else:
            ctx = frame.f_locals.get("self")
            if isinstance(ctx, Ctx):
                line = ctx.stmt.line
        tb = tb.tb_next
    return line
