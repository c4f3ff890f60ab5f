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
"""

from __future__ import annotations

import ast
import builtins
import inspect
import time
from dataclasses import dataclass, field
from typing import Any

from plait.parallel import granularity
from plait.runtime.task import TaskFunction, call_by_value

_ATOMS = frozenset({int, float, complex, str, bytes, bool, type(None)})
_STATEMENTS = (ast.Assign, ast.AugAssign, ast.Expr, ast.If, ast.For, ast.While, ast.Break, ast.Continue, ast.Pass)


@dataclass
class NativeLoop:
    run: Any  # see start()
    names: tuple[str, ...]  # the locals it reads or writes, passed in and handed back
    tasks: tuple[TaskFunction, ...]
    bindings: tuple[tuple[str, TaskFunction], ...] = ()  # the global names it calls them by
    globals: dict = field(default_factory=dict)
    stmt: Any = None  # the statement the issuer runs it as (reads and writes every name)

    pauses: int = 0  # runs handed back after a slow stretch
    skip: int = 0  # looks at it still to decline after the last pause

    def paused(self) -> None:
        """A slow stretch (slow tasks, or a busy machine): issue the loop for a while,
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


LOOK_EVERY = 16  # iterations between looks at the clock (a look costs more than an iteration)
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
    bindings = {
        (sub.func.id, compiler.globals[sub.func.id])
        for stmt in [*loop.body, *loop.orelse]
        for sub in ast.walk(stmt)
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and type(compiler.globals.get(sub.func.id)) is TaskFunction
    }
    return NativeLoop(run, tuple(sorted(names)), unique, tuple(bindings), compiler.globals)


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

    def __init__(self, compiler: Any, tasks: tuple[TaskFunction, ...]) -> None:
        self.compiler = compiler
        self.tasks = tasks
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
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args) or not node.args:
            return ast.copy_location(ast.Call(ast.Name("__run", ast.Load()), [fn, *node.args], node.keywords), node)
        site = self.sites
        self.sites += 1
        names = [f"__a{site}_{k}" for k in range(len(node.args))]
        checks = [
            ast.Compare(
                ast.Call(ast.Name("type", ast.Load()), [ast.NamedExpr(ast.Name(n, ast.Store()), arg)], []),
                [ast.In()],
                [ast.Name("__atoms", ast.Load())],
            )
            for n, arg in zip(names, node.args, strict=True)
        ]
        # `&`, not `and`: every argument is evaluated, once, in order
        test = checks[0] if len(checks) == 1 else _and_all(checks)
        loads = [ast.Name(n, ast.Load()) for n in names]
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
        slow = ast.Call(ast.Name("__run", ast.Load()), [fn, *loads], [])
        return ast.copy_location(ast.IfExp(test, fast, slow), node)


def _and_all(checks: list[ast.expr]) -> ast.expr:
    expr = checks[0]
    for check in checks[1:]:
        expr = ast.BinOp(expr, ast.BitAnd(), check)
    return expr


def _build(compiler: Any, loop: ast.For, names: list[str], tasks: tuple[TaskFunction, ...]) -> Any:
    """def __loop(__it, __unbound, <tasks>, <names>): the loop, then how it ended and its locals.

    Two stretches in a row of LOOK_EVERY iterations that each took longer than
    ``__limit`` seconds hand the loop back (at the item after them)."""
    import copy

    loop = copy.deepcopy(loop)
    calls = _TaskCalls(compiler, tasks)
    loop.body = [calls.visit(s) for s in loop.body]  # not its iterable: the issuer evaluated that
    loop.orelse = [calls.visit(s) for s in loop.orelse]
    item = ast.Name("__item", ast.Load())

    def ended(how: int, what: ast.expr) -> ast.stmt:
        return ast.Return(
            ast.Tuple([ast.Constant(how), what, ast.Call(ast.Name("locals", ast.Load()), [], [])], ast.Load())
        )

    def now() -> ast.expr:
        return ast.Call(ast.Name("__perf", ast.Load()), [], [])

    slow = ast.Compare(
        ast.BinOp(ast.NamedExpr(ast.Name("__now", ast.Store()), now()), ast.Sub(), ast.Name("__last", ast.Load())),
        [ast.Gt()],
        [ast.Name("__limit", ast.Load())],
    )
    # every LOOK_EVERY iterations: did they take longer than the limit, twice in a row
    # (once may be the machine being busy)?
    slow_count = ast.Name("__slow", ast.Load())
    look = ast.If(
        ast.UnaryOp(ast.Not(), ast.Name("__k", ast.Load())),
        [
            ast.Assign([ast.Name("__k", ast.Store())], ast.Constant(LOOK_EVERY)),
            ast.If(
                slow,
                [
                    ast.AugAssign(ast.Name("__slow", ast.Store()), ast.Add(), ast.Constant(1)),
                    ast.If(ast.Compare(slow_count, [ast.GtE()], [ast.Constant(SLOW_STRETCHES)]), [ended(PAUSED, item)], []),
                ],
                [ast.Assign([ast.Name("__slow", ast.Store())], ast.Constant(0))],
            ),
            ast.Assign([ast.Name("__last", ast.Store())], ast.Name("__now", ast.Load())),
        ],
        [],
    )
    body = [
        ast.AugAssign(ast.Name("__k", ast.Store()), ast.Sub(), ast.Constant(1)),
        look,
        ast.Assign([loop.target], item),
        *loop.body,
    ]
    native_for = ast.For(
        ast.Name("__item", ast.Store()), ast.Name("__it", ast.Load()), body, [*loop.orelse, ended(DONE, ast.Constant(None))]
    )
    unbind = [
        ast.If(
            ast.Compare(ast.Name(n, ast.Load()), [ast.Is()], [ast.Name("__unbound", ast.Load())]),
            [ast.Delete([ast.Name(n, ast.Del())])],
            [],
        )
        for n in names
    ]
    start = [
        ast.Assign([ast.Name("__last", ast.Store())], now()),
        ast.Assign([ast.Name("__k", ast.Store())], ast.Constant(LOOK_EVERY + 1)),
        ast.Assign([ast.Name("__slow", ast.Store())], ast.Constant(0)),
    ]
    guarded = ast.Try(
        [*start, native_for, ended(BROKE, ast.Constant(None))],
        [ast.ExceptHandler(ast.Name("Exception", ast.Load()), "__exc", [ended(RAISED, ast.Name("__exc", ast.Load()))])],
        [],
        [],
    )
    params = ("__it", "__unbound", "__run", "__copy", "__atoms", "__perf", "__limit", *(f"__f{k}" for k in range(len(tasks))), *names)
    return compiler._function([*unbind, guarded], loop.lineno, "__loop", params)


def run_in_place(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return call_by_value(fn, args, kwargs)


def start(twin: NativeLoop, iterator: Any, unbound: Any, values: list) -> tuple[int, Any, dict]:
    """Run the twin from ``iterator``'s next item on."""
    functions = (fn.fn for fn in twin.tasks)
    limit = granularity.SLOW_FACTOR * granularity.INLINE_BELOW
    return twin.run(iterator, unbound, run_in_place, _copy, _ATOMS, time.perf_counter, limit, *functions, *values)


def _copy(value: Any) -> Any:
    from plait.runtime import serialization as ser

    data, buffers, _ = ser.dumps(value)
    return ser.loads(data, buffers)
