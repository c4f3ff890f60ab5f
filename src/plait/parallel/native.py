"""Loops of tiny tasks run as plain Python.

Issuing a statement costs the driver microseconds; a task the engine measured
to run in microseconds gains nothing from a worker (see ``granularity``). A
loop whose body only computes, calls such tasks and changes its own local
objects therefore gets a *native twin* at decoration: the same loop as plain
Python, its task calls running in place on copies of their arguments, as in a
worker. The issuer runs the twin instead of issuing the loop's iterations once
every task it calls is measured tiny and the variables it uses hold values;
the twin hands the loop back (to be issued from the next item on) as soon as
one of its calls turns out slow.

What the body may contain: assignments and augmented assignments to local
names, items and attributes of local objects; ``if``, nested ``for`` and
``while``, ``break``, ``continue``, ``pass``; expressions of operators,
comparisons, subscripts, attributes, comprehensions; calls of tasks, of pure
builtins and functions (``math``, ``@plait.pure``), and of ``append``-like
methods of local objects. Anything else (a print, a helper, a write to a
global or a parameter's object, ``return``, ``try``) keeps the loop issued.

A function made only of such loops and of statements that compute and call
tasks (``if`` and ``return`` too, no other loops, no task calls inside
comprehensions) has a native twin as a whole: a call whose tasks are all
tiny then runs as plain Python from its first line, without an issuer, so a
call costs microseconds. Its calls outside the loops are measured one by one
(``granularity.run_here``); a loop that turns slow hands the rest of the call
to the issuer, at the item it stopped at, with the variables as they are.
"""

from __future__ import annotations

import ast
import builtins
import copy
import functools
import inspect
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from plait.parallel import granularity
from plait.runtime.task import TaskFunction, call_by_value

_ATOMS = frozenset({int, float, complex, str, bytes, bool, type(None)})
_RANGE_ITERATOR = type(iter(range(0)))
_STATEMENTS = (ast.Assign, ast.AugAssign, ast.Expr, ast.If, ast.For, ast.While, ast.Break, ast.Continue, ast.Pass)


@dataclass
class _Twin:
    run: Any  # see start() and call()
    names: tuple[str, ...]  # the variables passed in (and, for a loop, handed back)
    tasks: tuple[TaskFunction, ...]
    bindings: tuple[tuple[str, TaskFunction], ...] = ()  # the global names it calls them by
    globals: dict = field(default_factory=dict)

    pauses: int = 0  # runs handed back after a slow stretch
    skip: int = 0  # looks at it still to decline after the last pause

    def paused(self) -> None:
        """A slow stretch (slow tasks, or a busy machine): issue the code for a while,
        twice as long after each pause."""
        self.pauses += 1
        self.skip = 2 ** min(self.pauses, 12)

    def ready(self) -> bool:
        """Every task it calls is measured tiny (and its name still means that task)."""
        if self.skip:
            self.skip -= 1
            return False
        if any(self.globals.get(name) is not fn for name, fn in self.bindings):
            return False
        return all(granularity.tiny_task(fn) for fn in self.tasks)


@dataclass
class NativeLoop(_Twin):
    stmt: Any = None  # the statement the issuer runs it as (reads and writes every name)


@dataclass
class NativeFunction(_Twin):
    """A whole function whose top-level loops have native twins and whose other
    statements only compute and call tasks: a call whose tasks are all tiny runs as
    plain Python from its first line, with no issuer at all. A top-level loop that
    turns slow hands the rest of the call to the issuer (``call``)."""

    line: int = 0


LOOK_EVERY = 16  # iterations between looks at the clock (a look costs more than an iteration)
_TICKS = (False,) * (LOOK_EVERY - 1) + (True,)
_ticks = functools.partial(itertools.cycle, _TICKS)  # every LOOK_EVERY-th item comes with a true tick
SLOW_STRETCHES = 2  # slow stretches in a row that hand the loop back

# how a run of the twin ended
DONE, PAUSED, BROKE, RAISED = 0, 1, 2, 3


def twin(compiler: Any, loop: ast.For, names: set[str]) -> NativeLoop | None:
    """The native twin of ``loop``, or None if its body does something that must be issued."""
    tasks: list[TaskFunction] = []
    if not all(_native_stmt(compiler, s, tasks) for s in [*loop.body, *loop.orelse]):
        return None
    if not _plain_target(loop.target) or not _native_expr(compiler, loop.target, tasks):
        return None
    if not tasks:
        return None  # nothing to gain: its iterations are cheap to issue and may run ahead
    unique = tuple(dict.fromkeys(tasks))
    try:
        run = _build(compiler, loop, sorted(names), unique)
    except SyntaxError:  # a call where an assignment expression may not be (a comprehension's iterable)
        return None
    return NativeLoop(
        run, tuple(sorted(names)), unique, _bindings(compiler, [*loop.body, *loop.orelse]), compiler.globals
    )


def _plain_target(target: ast.expr) -> bool:
    return all(isinstance(n, (ast.Name, ast.Tuple, ast.List, ast.Store)) for n in ast.walk(target))


def _local(compiler: Any, expr: ast.expr) -> bool:
    """An expression rooted in a local variable of the function's own (not a parameter's object)."""
    while isinstance(expr, (ast.Attribute, ast.Subscript)):
        expr = expr.value
    return isinstance(expr, ast.Name) and not compiler.external(expr).value


def _native_stmt(compiler: Any, node: ast.stmt, tasks: list) -> bool:
    if not isinstance(node, _STATEMENTS):
        return False
    if isinstance(node, ast.Expr) and not isinstance(node.value, ast.Call):
        return False
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, (ast.AugAssign, ast.For)) else []
    for target in targets:
        for part in ast.walk(target):
            if isinstance(part, (ast.Attribute, ast.Subscript)) and isinstance(part.ctx, ast.Store) and not _local(compiler, part):
                return False  # a write to an outside object: issued, so it can be undone
            if isinstance(part, ast.Starred):
                return False
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.stmt):
            if not _native_stmt(compiler, child, tasks):
                return False
        elif isinstance(child, ast.expr) and not _native_expr(compiler, child, tasks):
            return False
    return True


def _native_expr(compiler: Any, expr: ast.expr, tasks: list) -> bool:
    from plait.parallel import callees
    from plait.parallel.compiler import _NATIVE_NODES, MUTATORS, PURE, STRUCTURAL

    for sub in ast.walk(expr):
        if isinstance(sub, ast.Call):
            func = sub.func
            if isinstance(func, ast.Attribute):
                if func.attr in MUTATORS and _local(compiler, func.value):
                    continue
                kind, _ = compiler.callee(func)
                if kind == "builtin":
                    continue
                return False
            if not isinstance(func, ast.Name) or func.id in compiler.locals or func.id in compiler.freevars:
                return False
            target = compiler.globals.get(func.id, getattr(builtins, func.id, None))
            if type(target) is TaskFunction:
                tasks.append(target)
            elif not (target in PURE or target in STRUCTURAL or callees.is_pure(target)):
                return False
        elif isinstance(sub, ast.Name):
            if sub.id in compiler.freevars:
                return False
        elif isinstance(sub, (ast.Attribute, ast.Subscript)):
            # a local object, or a module's attribute: a global object may hold futures
            root = sub.value
            while isinstance(root, (ast.Attribute, ast.Subscript)):
                root = root.value
            if not isinstance(root, ast.Name):
                continue  # an item of a computed value, itself checked
            if root.id not in compiler.locals and not inspect.ismodule(compiler.globals.get(root.id)):
                return False
        elif not isinstance(sub, (*_NATIVE_NODES, ast.Attribute)):
            return False
    return True


class _TaskCalls(ast.NodeTransformer):
    """Task calls run in place, as in a worker: on copies of their arguments, giving a copy.

    Numbers and strings are their own copies, so a call whose arguments and result are
    such values is a plain call, checked inline (``__a0 := arg`` names each argument
    once); anything else goes through ``__run``."""

    def __init__(
        self, compiler: Any, tasks: tuple[TaskFunction, ...], ints: frozenset[str] = frozenset(), measured: bool = False
    ) -> None:
        self.compiler = compiler
        self.tasks = tasks
        self.ints = ints  # names known to hold ints (a range loop's target): passed unchecked
        self.measured = measured  # each call measured, as granularity.run_here does (no loop looks at the clock)
        self.sites = 0

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if not (isinstance(func, ast.Name) and func.id not in self.compiler.locals):
            return node
        target = self.compiler.globals.get(func.id)
        if type(target) is not TaskFunction:
            return node
        fn = ast.Name(f"__f{self.tasks.index(target)}", ast.Load())
        if self.measured:
            task = ast.Name(f"__t{self.tasks.index(target)}", ast.Load())
            return ast.copy_location(
                ast.Call(ast.Name("__here", ast.Load()), [task, *node.args], node.keywords), node
            )
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args) or not node.args:
            return ast.copy_location(ast.Call(ast.Name("__run", ast.Load()), [fn, *node.args], node.keywords), node)
        site = self.sites
        self.sites += 1
        checks: list[ast.expr] = []
        loads: list[ast.expr] = []
        for k, arg in enumerate(node.args):
            if (isinstance(arg, ast.Constant) and type(arg.value) in _ATOMS) or (
                isinstance(arg, ast.Name) and arg.id in self.ints
            ):
                loads.append(arg)  # its own copy: nothing to check
                continue
            if isinstance(arg, ast.Name):
                # a name reads the same twice: a twin's body assigns no names in expressions
                checked: ast.expr = arg
                loads.append(arg)
            else:
                name = f"__a{site}_{k}"
                checked = ast.NamedExpr(ast.Name(name, ast.Store()), arg)
                loads.append(ast.Name(name, ast.Load()))
            checks.append(
                ast.Compare(
                    ast.Call(ast.Name("type", ast.Load()), [checked], []),
                    [ast.In()],
                    [ast.Name("__atoms", ast.Load())],
                )
            )
        fast = ast.Call(fn, loads, [])
        result = f"__r{site}"
        fast = ast.IfExp(
            ast.Compare(
                ast.Call(ast.Name("type", ast.Load()), [ast.NamedExpr(ast.Name(result, ast.Store()), fast)], []),
                [ast.In()],
                [ast.Name("__atoms", ast.Load())],
            ),
            ast.Name(result, ast.Load()),
            ast.Call(ast.Name("__copy", ast.Load()), [ast.Name(result, ast.Load())], []),
        )
        if not checks:
            return ast.copy_location(fast, node)
        # `&`, not `and`: every argument is evaluated, once, in order
        test = checks[0] if len(checks) == 1 else _and_all(checks)
        slow = ast.Call(ast.Name("__run", ast.Load()), [fn, *loads], [])
        return ast.copy_location(ast.IfExp(test, fast, slow), node)


def _and_all(checks: list[ast.expr]) -> ast.expr:
    expr = checks[0]
    for check in checks[1:]:
        expr = ast.BinOp(expr, ast.BitAnd(), check)
    return expr


def _ended(*parts: ast.expr) -> ast.stmt:
    """return (<parts>, locals()): how the twin ended, and its variables."""
    return ast.Return(ast.Tuple([*parts, ast.Call(ast.Name("locals", ast.Load()), [], [])], ast.Load()))


def _now() -> ast.expr:
    return ast.Call(ast.Name("__perf", ast.Load()), [], [])


def _ticking(loop: ast.For, iterator: ast.expr, orelse: list[ast.stmt], hand_back: Any) -> list[ast.stmt]:
    """``loop`` over ``iterator``, looking at the clock every LOOK_EVERY items: two
    stretches in a row that each took longer than ``__limit`` seconds run
    ``hand_back(item)`` (the statement handing the loop back, at the item not yet run)."""
    # a plain name is assigned by the loop itself, and is the item handed back
    plain = isinstance(loop.target, ast.Name)
    item = ast.Name(loop.target.id if plain else "__item", ast.Load())
    slow = ast.Compare(
        ast.BinOp(
            ast.NamedExpr(ast.Name("__now", ast.Store()), _now()), ast.Sub(), ast.Name("__last", ast.Load())
        ),
        [ast.Gt()],
        [ast.Name("__limit", ast.Load())],
    )
    # twice in a row: once may be the machine being busy
    slow_count = ast.Name("__slow", ast.Load())
    look = ast.If(
        ast.Name("__tick", ast.Load()),
        [
            ast.If(
                slow,
                [
                    ast.AugAssign(ast.Name("__slow", ast.Store()), ast.Add(), ast.Constant(1)),
                    ast.If(
                        ast.Compare(slow_count, [ast.GtE()], [ast.Constant(SLOW_STRETCHES)]),
                        [hand_back(item)],
                        [],
                    ),
                ],
                [ast.Assign([ast.Name("__slow", ast.Store())], ast.Constant(0))],
            ),
            ast.Assign([ast.Name("__last", ast.Store())], ast.Name("__now", ast.Load())),
        ],
        [],
    )
    body = [look, *loop.body] if plain else [look, ast.Assign([loop.target], item), *loop.body]
    # a zip with a cycle of ticks: cheaper than counting
    target = ast.Tuple(
        [loop.target if plain else ast.Name("__item", ast.Store()), ast.Name("__tick", ast.Store())],
        ast.Store(),
    )
    ticks = ast.Call(ast.Name("__ticks", ast.Load()), [], [])
    ticking = ast.Call(ast.Name("zip", ast.Load()), [iterator, ticks], [])
    return [
        ast.Assign([ast.Name("__last", ast.Store())], _now()),
        ast.Assign([ast.Name("__slow", ast.Store())], ast.Constant(0)),
        ast.For(target, ticking, body, orelse),
    ]


# the helpers every twin gets, in this order (see _arguments)
_PARAMS = ("__ticks", "__run", "__copy", "__atoms", "__perf", "__limit", "__range", "__range_iterator")


def _build(compiler: Any, loop: ast.For, names: list[str], tasks: tuple[TaskFunction, ...]) -> Any:
    """def __loop(__it, __unbound, <_PARAMS>, <tasks>, <names>): the loop, then how it
    ended and its locals."""
    it = ast.Name("__it", ast.Load())

    def ticking(loop: ast.For) -> list[ast.stmt]:
        done = _ended(ast.Constant(DONE), ast.Constant(None))
        return _ticking(loop, it, [*loop.orelse, done], lambda item: _ended(ast.Constant(PAUSED), item))

    # not its iterable: the issuer evaluated that
    ticking = _variants(compiler, loop, tasks, _is(it, "__range_iterator"), ticking)
    unbind = [
        ast.If(
            ast.Compare(ast.Name(n, ast.Load()), [ast.Is()], [ast.Name("__unbound", ast.Load())]),
            [ast.Delete([ast.Name(n, ast.Del())])],
            [],
        )
        for n in names
    ]
    guarded = ast.Try(
        [*ticking, _ended(ast.Constant(BROKE), ast.Constant(None))],
        [
            ast.ExceptHandler(
                ast.Name("Exception", ast.Load()),
                "__exc",
                [_ended(ast.Constant(RAISED), ast.Name("__exc", ast.Load()))],
            )
        ],
        [],
        [],
    )
    params = ("__it", "__unbound", *_PARAMS, *(f"__f{k}" for k in range(len(tasks))), *names)
    return compiler._function([*unbind, guarded], loop.lineno, "__loop", params)


def _variants(compiler: Any, loop: ast.For, tasks: tuple, over_range: ast.expr, make: Any) -> list[ast.stmt]:
    """``make(loop)`` with the loop body's task calls run in place. A loop whose target is
    a name its body never assigns has a second version for a range's items, whose task
    calls pass that name unchecked (an int is its own copy)."""

    def rewritten(ints: frozenset[str]) -> ast.For:
        calls = _TaskCalls(compiler, tasks, ints)
        copied = copy.deepcopy(loop)
        copied.body = [calls.visit(s) for s in copied.body]
        copied.orelse = [calls.visit(s) for s in copied.orelse]
        return copied

    target = loop.target
    reassigned = isinstance(target, ast.Name) and any(
        isinstance(n, ast.Name) and n.id == target.id and not isinstance(n.ctx, ast.Load)
        for s in [*loop.body, *loop.orelse]
        for n in ast.walk(s)
    )
    if not isinstance(target, ast.Name) or reassigned:
        return make(rewritten(frozenset()))
    return [ast.If(over_range, make(rewritten(frozenset({target.id}))), make(rewritten(frozenset())))]


def _is(value: ast.expr, kind: str) -> ast.expr:
    """type(value) is <kind>"""
    return ast.Compare(
        ast.Call(ast.Name("type", ast.Load()), [value], []), [ast.Is()], [ast.Name(kind, ast.Load())]
    )


def function_twin(compiler: Any, func: ast.FunctionDef, body: list) -> NativeFunction | None:
    """The native twin of a whole function (``body``: its compiled statements), or None.

    Its top-level statements must be loops with twins of their own, or statements
    that only compute and call tasks (``if`` and ``return`` among them, no loops)."""
    if compiler.freevars:
        return None
    stmts = func.body[1:] if ast.get_docstring(func, clean=False) is not None else func.body
    stmts = copy.deepcopy(stmts)
    body = body[len(func.body) - len(stmts) :]
    tasks: list[TaskFunction] = []
    for node, stmt in zip(stmts, body, strict=True):
        if isinstance(node, ast.For):
            if (
                stmt.native is None
                or not _native_expr(compiler, node.iter, tasks)
                or _task_in_comprehension(compiler, node.iter)
            ):
                return None
            tasks.extend(stmt.native.tasks)
        elif not _straight(compiler, node, tasks):
            return None
    if not tasks:
        return None
    unique = tuple(dict.fromkeys(tasks))
    measured = _TaskCalls(compiler, unique, measured=True)  # calls outside the loops: each one measured
    code: list[ast.stmt] = []
    for k, node in enumerate(stmts):
        if not isinstance(node, ast.For):
            code.append(_Returns().visit(measured.visit(node)))
            continue
        index = ast.Constant(k + len(func.body) - len(stmts))
        value, it = ast.Name(f"__v{k}", ast.Load()), ast.Name(f"__it{k}", ast.Load())
        code.append(ast.Assign([ast.Name(f"__v{k}", ast.Store())], measured.visit(node.iter)))
        code.append(
            ast.Assign(
                [ast.Name(f"__it{k}", ast.Store())], ast.Call(ast.Name("iter", ast.Load()), [value], [])
            )
        )

        def ticking(
            loop: ast.For, index: ast.expr = index, value: ast.expr = value, it: ast.expr = it
        ) -> list[ast.stmt]:
            return _ticking(
                loop, it, loop.orelse, lambda item: _ended(ast.Constant(PAUSED), index, value, it, item)
            )

        code.extend(_variants(compiler, node, unique, _is(value, "__range"), ticking))
    code.append(ast.Return(ast.Tuple([ast.Constant(DONE), ast.Constant(None)], ast.Load())))
    names = tuple(compiler.params_in_order)
    tasks_by_name = (*(f"__f{k}" for k in range(len(unique))), *(f"__t{k}" for k in range(len(unique))))
    params = ("__here", *_PARAMS, *tasks_by_name, *names)
    try:
        run = compiler._function(code, func.lineno, "__function", params)
    except SyntaxError:  # a call where an assignment expression may not be (a comprehension's iterable)
        return None
    return NativeFunction(run, names, unique, _bindings(compiler, stmts), compiler.globals, line=func.lineno)


def _straight(compiler: Any, node: ast.stmt, tasks: list) -> bool:
    """A statement that only computes and calls tasks, with no loop in it (only a loop
    with a twin can hand a call back when it turns out slow)."""
    if any(isinstance(n, (ast.For, ast.While)) for n in ast.walk(node)) or _task_in_comprehension(compiler, node):
        return False
    if isinstance(node, ast.Return):
        return node.value is None or _native_expr(compiler, node.value, tasks)
    if isinstance(node, ast.If):
        branches = [*node.body, *node.orelse]
        return _native_expr(compiler, node.test, tasks) and all(_straight(compiler, s, tasks) for s in branches)
    return _native_stmt(compiler, node, tasks)


def _task_in_comprehension(compiler: Any, node: ast.AST) -> bool:
    """A comprehension calling a task makes as many calls as it has items, with no look at
    the clock between them: it is issued (and its calls measured one by one)."""
    return any(
        isinstance(sub, ast.Call)
        and isinstance(sub.func, ast.Name)
        and type(compiler.globals.get(sub.func.id)) is TaskFunction
        for comp in ast.walk(node)
        if isinstance(comp, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp))
        for sub in ast.walk(comp)
    )


class _Returns(ast.NodeTransformer):
    """``return x`` becomes ``return (DONE, x)``."""

    def visit_Return(self, node: ast.Return) -> ast.Return:
        value = node.value if node.value is not None else ast.Constant(None)
        return ast.copy_location(ast.Return(ast.Tuple([ast.Constant(DONE), value], ast.Load())), node)


def _bindings(compiler: Any, stmts: list[ast.stmt]) -> tuple[tuple[str, TaskFunction], ...]:
    """The global names its task calls go by (a call is native only while they mean those tasks)."""
    return tuple(
        {
            (sub.func.id, compiler.globals[sub.func.id])
            for stmt in stmts
            for sub in ast.walk(stmt)
            if isinstance(sub, ast.Call)
            and isinstance(sub.func, ast.Name)
            and type(compiler.globals.get(sub.func.id)) is TaskFunction
        }
    )


def run_in_place(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return call_by_value(fn, args, kwargs)


def _arguments(twin: _Twin) -> tuple:
    """The values of _PARAMS, then the tasks' functions."""
    limit = granularity.SLOW_FACTOR * granularity.INLINE_BELOW
    helpers = (_ticks, run_in_place, _copy, _ATOMS, time.perf_counter, limit, range, _RANGE_ITERATOR)
    return (*helpers, *(fn.fn for fn in twin.tasks))


def start(twin: NativeLoop, iterator: Any, unbound: Any, values: list) -> tuple[int, Any, dict]:
    """Run the twin from ``iterator``'s next item on."""
    return twin.run(iterator, unbound, *_arguments(twin), *values)


def call(twin: NativeFunction, values: list) -> tuple:
    """Run the function: ``(DONE, value)``, or ``(PAUSED, index, iterable, iterator, item,
    locals)``: the top-level loop at ``index`` of the body turned slow at ``item``."""
    return twin.run(_here, *_arguments(twin), *twin.tasks, *values)


def _here(task: TaskFunction, *args: Any, **kwargs: Any) -> Any:
    """A call outside the function's loops: measured, so one found slow goes to workers next time."""
    return granularity.run_here(task, args, kwargs)


def _copy(value: Any) -> Any:
    from plait.runtime import serialization as ser

    data, buffers, _ = ser.dumps(value)
    return ser.loads(data, buffers)
