"""From a function's source to statements the dataflow issuer can run.

The function is parsed once. Each simple statement becomes a small compiled
function ``__stmt(__c)``; each compound statement keeps its structure, with
its header expressions compiled the same way. Inside them every operation
that may meet a future goes through the statement context ``__c``:

    x = a + f(b)     ->   __c.store('x', __c.binop('+', __c.load('a'), __c.call(f, (__c.load('b'),), {})))

Local variables live in versioned slots managed by the runtime, so loads and
stores of locals become ``__c.load``/``__c.store``; globals and builtins stay
ordinary names. Line numbers are kept, so tracebacks point at the user's code.

The analysis also computes, per statement, the locals it reads and writes,
whether it may jump out (break/continue/return), and whether it touches
objects on the heap (attribute and subscript access, calls of ordinary
functions): the runtime uses these to decide what may run ahead of what.
What cannot be made safe is refused here, naming the line.
"""

from __future__ import annotations

import ast
import builtins
import copy
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from plait.errors import PlaitError
from plait.parallel import native


class ParallelSyntaxError(PlaitError, SyntaxError):
    """A construct ``@plait.parallel`` cannot run with its sequential meaning kept."""

    def __init__(self, message: str, filename: str = "", lineno: int = 0) -> None:
        where = f"{filename}:{lineno}: " if filename else ""
        PlaitError.__init__(self, f"{where}{message}")
        self.msg = message
        self.filename = filename
        self.lineno = lineno

    def __str__(self) -> str:
        return self.args[0]


# builtins that never look at values (they arrange them), so futures pass through
STRUCTURAL = {len, list, tuple, enumerate, zip, reversed, iter, range}
# builtins that compute from values, without side effects: lifted over futures
PURE = {
    abs, all, any, bool, bytes, chr, complex, dict, divmod, float, format, frozenset, hash, int,
    max, min, ord, pow, repr, round, set, sorted, str, sum, isinstance, issubclass, type, callable,
}  # fmt: skip
MUTATORS = {"append", "extend", "insert", "add", "update", "setdefault", "appendleft", "extendleft"}
FUTURE_API = frozenset({"result", "done", "exception", "cancel", "cancelled", "add_done_callback"})
_FRAME_INSPECTORS = {"locals", "vars", "globals", "eval", "exec", "super", "dir"}


@dataclass
class Stmt:
    """One statement as the issuer sees it."""

    node: ast.stmt
    kind: str  # simple, if, for, while, try, with, return, break, continue
    line: int
    reads: frozenset[str]
    writes: frozenset[str]
    jumps: bool  # may break/continue/return out of this statement
    heap_read: bool
    heap_write: bool
    effects: bool
    run: Callable | None = None  # simple statements, and try/with units
    test: Callable | None = None  # if/while test, for iterable, return value
    body: list[Stmt] = field(default_factory=list)
    orelse: list[Stmt] = field(default_factory=list)
    target: Callable | None = None  # for: stores the loop variable(s)
    blocks: list[list[Stmt]] = field(default_factory=list)  # try/with sub-blocks
    mutates_iterable: bool = False
    header_writes: frozenset[str] = frozenset()  # names a walrus in the header binds
    target_writes: frozenset[str] = frozenset()  # for: the loop variable(s)
    target_name: str | None = None  # for: the loop variable, when it is one plain name
    # for: the task calls of the body that depend only on the loop variable and on
    # variables the body never assigns; ``speculate(item, *invariants)`` gives them
    # for one item, so they may start before the iterations that make them
    speculate: Callable | None = None
    invariants: tuple[str, ...] = ()
    native: Any = None  # for: the loop as plain Python, run when its tasks are tiny (native.py)
    # locals whose objects it may change in place (``xs[k] = v``, ``xs.append(v)``, ``h(xs)``):
    # a later statement reading one while this one is detached reads the driver's object after it
    mutates: frozenset[str] = frozenset()


@dataclass
class CompiledFunction:
    name: str
    filename: str
    body: list[Stmt]
    locals: frozenset[str]
    freevars: tuple[str, ...]
    signature: inspect.Signature
    # what a call of it may do, for the statements that call it (helpers)
    heap_read: bool = True
    heap_write: bool = True
    effects: bool = True
    # it looks at task results as futures (.result(), .done(), plait.Future): task calls
    # in it must return futures, never values computed in place
    uses_futures: bool = True
    waits: bool = False  # learned at run time: a call of it had to wait inside
    native: Any = None  # the whole function as plain Python, run when its tasks are tiny (native.py)

    def __post_init__(self) -> None:
        params = self.signature.parameters.values()
        plain = all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
        self._positional = tuple(p.name for p in params) if plain else None

    def bind(self, args: tuple, kwargs: dict) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults applied."""
        names = self._positional
        if not kwargs and names is not None and len(args) == len(names):
            return dict(zip(names, args, strict=True))
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)


def compile_function(fn: Callable) -> CompiledFunction:
    try:
        lines, first = inspect.getsourcelines(fn)
        filename = inspect.getsourcefile(fn) or inspect.getfile(fn)
    except (OSError, TypeError) as exc:
        raise ParallelSyntaxError(
            f"cannot read the source of {fn.__qualname__!r} ({exc}); @plait.parallel needs the "
            "function's source: define it in a file or a notebook cell, not in an interactive prompt"
        ) from None
    source = textwrap.dedent("".join(lines))
    tree = ast.parse(source)
    ast.increment_lineno(tree, first - 1)
    func = tree.body[0]
    if isinstance(func, ast.AsyncFunctionDef):
        raise ParallelSyntaxError(
            "async functions cannot be @plait.parallel; write a plain def (tasks already run concurrently)",
            filename,
            func.lineno,
        )
    if not isinstance(func, ast.FunctionDef):
        raise ParallelSyntaxError(f"@plait.parallel applies to functions, got {type(func).__name__}", filename)
    compiler = _Compiler(fn, func, filename)
    return compiler.build()


class _Compiler:
    def __init__(self, fn: Callable, func: ast.FunctionDef, filename: str) -> None:
        self.fn = fn
        self.func = func
        self.filename = filename
        self.globals = fn.__globals__
        self.freevars = fn.__code__.co_freevars
        args = func.args
        params = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
        if args.vararg:
            params.append(args.vararg.arg)
        if args.kwarg:
            params.append(args.kwarg.arg)
        self.locals = set(params)
        self.params = frozenset(params)
        self.params_in_order = tuple(params)
        self._check_and_collect(func)
        self.locals = frozenset(self.locals)
        self.assign_counts: dict[str, int] = {}
        for node in ast.walk(func):
            if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                self.assign_counts[node.id] = self.assign_counts.get(node.id, 0) + 1

    # ----------------------------------------------------------- refusals
    def refuse(self, node: ast.AST, message: str) -> None:
        raise ParallelSyntaxError(message, self.filename, getattr(node, "lineno", 0))

    def _check_and_collect(self, func: ast.FunctionDef) -> None:
        for node in _walk_own_scope(func):
            if isinstance(node, (ast.Yield, ast.YieldFrom)):
                self.refuse(node, "generators cannot be @plait.parallel: `yield` has no parallel meaning; return a list")
            elif isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
                self.refuse(node, "`await`/`async` cannot be used in @plait.parallel; call tasks directly")
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                kind = "global" if isinstance(node, ast.Global) else "nonlocal"
                self.refuse(
                    node,
                    f"`{kind}` cannot be used in @plait.parallel: writes to shared variables would race; "
                    "return the value instead",
                )
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node is not func:
                self.refuse(node, f"define {node.name!r} at module level: nested functions and classes are not supported in @plait.parallel")
            elif isinstance(node, ast.Match):
                self.refuse(node, "`match` is not supported in @plait.parallel yet; use if/elif")
            elif isinstance(node, ast.TryStar):
                self.refuse(node, "`except*` is not supported in @plait.parallel")
            elif isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
                self.refuse(node, "`from ... import *` is not allowed in a function")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FRAME_INSPECTORS:
                if node.func.id not in self.locals and self.globals.get(node.func.id, getattr(builtins, node.func.id, None)) is getattr(builtins, node.func.id, None):
                    self.refuse(node, f"{node.func.id}() inspects the frame, which @plait.parallel rewrites; pass values explicitly")
            if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                self.locals.add(node.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    self.locals.add((alias.asname or alias.name).split(".")[0])
            elif isinstance(node, ast.ExceptHandler) and node.name:
                self.locals.add(node.name)

    # ------------------------------------------------------------ building
    def build(self) -> CompiledFunction:
        pristine = copy.deepcopy(self.func)  # building rewrites expressions in place
        body = self.block(self.func.body, in_loop=False)
        flags = [False, False, False]
        for stmt in _all_statements(body):
            for i, flag in enumerate((stmt.heap_read, stmt.heap_write, stmt.effects)):
                flags[i] = flags[i] or flag
        uses_futures = any(
            (isinstance(n, ast.Attribute) and n.attr in FUTURE_API) or (isinstance(n, ast.Name) and n.id == "Future")
            for n in ast.walk(self.func)
        )
        return CompiledFunction(
            self.func.name,
            self.filename,
            body,
            self.locals,
            self.freevars,
            inspect.signature(self.fn),
            *flags,
            uses_futures,
            native=None if uses_futures else native.function_twin(self, pristine, body),
        )

    def block(self, stmts: list[ast.stmt], in_loop: bool) -> list[Stmt]:
        return [self.stmt(s, in_loop) for s in stmts]

    def stmt(self, node: ast.stmt, in_loop: bool) -> Stmt:
        reads, writes = _names(node, self.locals)
        heap_read, heap_write, effects = self._heap(node)
        common = dict(
            node=node,
            line=node.lineno,
            reads=frozenset(reads),
            writes=frozenset(writes),
            jumps=_jumps_out(node),
            heap_read=heap_read,
            heap_write=heap_write,
            effects=effects,
            mutates=frozenset(self._mutated(node)),
        )
        header = getattr(node, "test", None) or getattr(node, "iter", None)
        if header is not None and isinstance(node, (ast.If, ast.While, ast.For)):
            common["header_writes"] = frozenset(
                n.target.id for n in ast.walk(header) if isinstance(n, ast.NamedExpr)
            )
        if isinstance(node, ast.If):
            return Stmt(
                kind="if",
                test=self.expression(node.test),
                body=self.block(node.body, in_loop),
                orelse=self.block(node.orelse, in_loop),
                **common,
            )
        if isinstance(node, ast.While):
            return Stmt(
                kind="while",
                test=self.expression(node.test),
                body=self.block(node.body, True),
                orelse=self.block(node.orelse, in_loop),
                **common,
            )
        if isinstance(node, ast.For):
            mutated = _mutation_receivers(node.body)
            iter_name = node.iter.id if isinstance(node.iter, ast.Name) else None
            speculate, invariants = self.speculator(node)
            twin = native.twin(self, node, reads | writes)
            if twin is not None:
                names = frozenset(twin.names)
                twin.stmt = Stmt(node, "native", node.lineno, names, names, False, True, True, False)
            return Stmt(
                native=twin,
                kind="for",
                speculate=speculate,
                invariants=invariants,
                test=self.expression(node.iter),
                target=self.assigner(node.target),
                body=self.block(node.body, True),
                orelse=self.block(node.orelse, in_loop),
                mutates_iterable=iter_name is not None and iter_name in mutated,
                target_writes=frozenset(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)),
                target_name=node.target.id if isinstance(node.target, ast.Name) else None,
                **common,
            )
        if isinstance(node, ast.Return):
            return Stmt(kind="return", test=self.expression(node.value or ast.Constant(None), node), **common)
        if isinstance(node, ast.Break):
            return Stmt(kind="break", **common)
        if isinstance(node, ast.Continue):
            return Stmt(kind="continue", **common)
        if isinstance(node, ast.Try):
            return self.try_unit(node, in_loop, common)
        if isinstance(node, ast.With):
            return self.with_unit(node, in_loop, common)
        return Stmt(kind="simple", run=self.simple(node), **common)

    def external(self, expr: ast.expr) -> ast.Constant:
        """Does a write through ``expr`` reach an object from outside the function (a global,
        a parameter, a closure variable)? Such writes are undone if the call fails before them."""
        while isinstance(expr, (ast.Attribute, ast.Subscript, ast.Call)):
            expr = expr.func if isinstance(expr, ast.Call) else expr.value
        outside = isinstance(expr, ast.Name) and (
            expr.id not in self.locals or expr.id in self.params or expr.id in self.freevars
        )
        return ast.Constant(outside)

    def speculator(self, loop: ast.For) -> tuple[Callable | None, tuple[str, ...]]:
        """The loop's task calls that later iterations will make, computable from the item alone."""
        from plait.runtime.task import TaskFunction

        targets = {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}
        if not all(isinstance(n, (ast.Name, ast.Tuple, ast.List, ast.Store)) for n in ast.walk(loop.target)):
            return None, ()
        written = set(targets)
        for stmt in loop.body:
            written |= _names(stmt, self.locals)[1]
        calls: list[ast.Call] = []
        invariants: list[str] = []
        seen: set[str] = set()
        for sub in _walk_own_scope(loop):  # type: ignore[arg-type]
            if not isinstance(sub, ast.Call) or not isinstance(sub.func, ast.Name):
                continue
            target = self.globals.get(sub.func.id) if sub.func.id not in self.locals else None
            if type(target) is not TaskFunction or sub.func.id in self.freevars:
                continue
            reads: list[str] = []
            ok = True
            for part in ast.walk(ast.Tuple([*sub.args, *(k.value for k in sub.keywords)], ast.Load())):
                if isinstance(part, ast.Call):
                    fn = part.func
                    pure = isinstance(fn, ast.Name) and fn.id not in self.locals and (
                        self.globals.get(fn.id, getattr(builtins, fn.id, None)) in PURE
                    )
                    ok = ok and pure
                elif isinstance(part, ast.Name):
                    if part.id in self.freevars or (part.id in written and part.id not in targets):
                        ok = False
                    elif part.id in self.locals and part.id not in targets and part.id not in reads:
                        reads.append(part.id)
                elif not isinstance(part, _NATIVE_NODES) or isinstance(part, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                    ok = False
            if any(k.arg is None for k in sub.keywords) or any(isinstance(a, ast.Starred) for a in sub.args):
                ok = False
            key = ast.dump(sub)
            if ok and key not in seen:
                seen.add(key)
                calls.append(sub)
                invariants.extend(r for r in reads if r not in invariants)
        if not calls:
            return None, ()
        item = "__item"
        body: list[ast.stmt] = [ast.Assign([copy.deepcopy(loop.target)], ast.Name(item, ast.Load()))]
        made = [
            ast.Tuple(
                [
                    copy.deepcopy(c.func),
                    ast.Tuple([copy.deepcopy(a) for a in c.args], ast.Load()),
                    ast.Dict([ast.Constant(k.arg) for k in c.keywords], [copy.deepcopy(k.value) for k in c.keywords]),
                ],
                ast.Load(),
            )
            for c in calls
        ]
        body.append(ast.Return(ast.List(made, ast.Load())))
        return self._function(body, loop.lineno, "__speculate", (item, *invariants)), tuple(invariants)

    # statement functions ----------------------------------------------------
    def _function(self, body: list[ast.stmt], lineno: int, name: str = "__stmt", params: tuple[str, ...] = ("__c",)) -> Callable:
        fdef = ast.FunctionDef(
            name=name,
            args=ast.arguments(
                posonlyargs=[], args=[ast.arg(p) for p in params], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]
            ),
            body=body or [ast.Pass()],
            decorator_list=[],
            returns=None,
            type_params=[],
        )
        module = ast.Module(body=[fdef], type_ignores=[])
        for node in ast.walk(fdef):
            if not hasattr(node, "lineno"):
                node.lineno = lineno
                node.col_offset = 0
                node.end_lineno = lineno
                node.end_col_offset = 0
        ast.fix_missing_locations(module)
        namespace: dict[str, Any] = {}
        exec(compile(module, self.filename, "exec"), self.globals, namespace)  # noqa: S102
        return namespace[name]

    def expression(self, expr: ast.expr, where: ast.AST | None = None) -> Callable:
        rewritten = _Rewriter(self).visit(expr)
        lineno = getattr(where or expr, "lineno", self.func.lineno)
        ret = ast.Return(value=rewritten, lineno=lineno, col_offset=0)
        return self._function([ret], lineno, "__expr")

    def assigner(self, target: ast.expr) -> Callable:
        """A function ``(__c, value)`` that assigns ``value`` to ``target``."""
        value = ast.Name("__v", ast.Load())
        body = self.assign(target, value)
        return self._function(body, target.lineno, "__assign", ("__c", "__v"))

    def assign(self, target: ast.expr, value: ast.expr) -> list[ast.stmt]:
        """Statements storing ``value`` (an expression evaluated once) into ``target``."""
        rw = _Rewriter(self)
        if isinstance(target, ast.Name):
            return [_expr_stmt(_c_call("store", ast.Constant(target.id), value))]
        if isinstance(target, (ast.Tuple, ast.List)):
            starred = [i for i, e in enumerate(target.elts) if isinstance(e, ast.Starred)]
            items = _c_call(
                "unpack", value, ast.Constant(len(target.elts)), ast.Constant(starred[0] if starred else -1)
            )
            tmp = _fresh("__u")
            out: list[ast.stmt] = [ast.Assign(targets=[ast.Name(tmp, ast.Store())], value=items)]
            for i, elt in enumerate(target.elts):
                if isinstance(elt, ast.Starred):
                    elt = elt.value
                item = ast.Subscript(ast.Name(tmp, ast.Load()), ast.Constant(i), ast.Load())
                out.extend(self.assign(elt, item))
            return out
        if isinstance(target, ast.Attribute):
            return [_expr_stmt(_c_call("setattr", rw.visit(target.value), ast.Constant(target.attr), value, self.external(target.value)))]
        if isinstance(target, ast.Subscript):
            return [_expr_stmt(_c_call("setitem", rw.visit(target.value), rw.visit(target.slice), value, self.external(target.value)))]
        if isinstance(target, ast.Starred):
            return self.assign(target.value, value)
        self.refuse(target, f"cannot assign to {type(target).__name__} in @plait.parallel")
        return []

    def simple(self, node: ast.stmt) -> Callable:
        rw = _Rewriter(self)
        body: list[ast.stmt]
        if isinstance(node, ast.Assign):
            tmp = _fresh("__a")
            body = [ast.Assign(targets=[ast.Name(tmp, ast.Store())], value=rw.visit(node.value))]
            for target in node.targets:
                body.extend(self.assign(target, ast.Name(tmp, ast.Load())))
        elif isinstance(node, ast.AnnAssign):
            body = self.assign(node.target, rw.visit(node.value)) if node.value is not None else [ast.Pass()]
        elif isinstance(node, ast.AugAssign):
            op = _OPS[type(node.op)]
            target = node.target
            if isinstance(target, ast.Name):
                current = _c_call("load_target", ast.Constant(target.id))
                new = _c_call("binop", ast.Constant(op + "="), current, rw.visit(node.value))
                body = self.assign(target, new)
            else:
                obj, key = _fresh("__o"), _fresh("__k")
                body = [ast.Assign([ast.Name(obj, ast.Store())], rw.visit(target.value))]
                if isinstance(target, ast.Subscript):
                    body.append(ast.Assign([ast.Name(key, ast.Store())], rw.visit(target.slice)))
                    current = _c_call("getitem", ast.Name(obj, ast.Load()), ast.Name(key, ast.Load()))
                    new = _c_call("binop", ast.Constant(op + "="), current, rw.visit(node.value))
                    outside = self.external(target.value)
                    body.append(_expr_stmt(_c_call("setitem", ast.Name(obj, ast.Load()), ast.Name(key, ast.Load()), new, outside)))
                else:
                    current = _c_call("getattr", ast.Name(obj, ast.Load()), ast.Constant(target.attr))
                    new = _c_call("binop", ast.Constant(op + "="), current, rw.visit(node.value))
                    outside = self.external(target.value)
                    body.append(_expr_stmt(_c_call("setattr", ast.Name(obj, ast.Load()), ast.Constant(target.attr), new, outside)))
        elif isinstance(node, ast.Expr):
            body = [_expr_stmt(_c_call("discard", rw.visit(node.value)))]
        elif isinstance(node, ast.Pass):
            body = [ast.Pass()]
        elif isinstance(node, ast.Assert):
            msg = rw.visit(node.msg) if node.msg is not None else ast.Constant(None)
            body = [_expr_stmt(_c_call("assert_", rw.visit(node.test), _lambda(msg)))]
        elif isinstance(node, ast.Delete):
            body = []
            for target in node.targets:
                if isinstance(target, ast.Name):
                    body.append(_expr_stmt(_c_call("delete", ast.Constant(target.id))))
                elif isinstance(target, ast.Subscript):
                    body.append(_expr_stmt(_c_call("delitem", rw.visit(target.value), rw.visit(target.slice), self.external(target.value))))
                elif isinstance(target, ast.Attribute):
                    body.append(_expr_stmt(_c_call("delattr", rw.visit(target.value), ast.Constant(target.attr), self.external(target.value))))
                else:
                    self.refuse(target, "cannot delete this target in @plait.parallel")
        elif isinstance(node, ast.Raise):
            exc = _c_call("resolve", rw.visit(node.exc)) if node.exc is not None else None
            cause = _c_call("resolve", rw.visit(node.cause)) if node.cause is not None else None
            body = [_expr_stmt(_c_call("effect_barrier")), ast.Raise(exc=exc, cause=cause)]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            body = [_expr_stmt(_c_call("effect_barrier")), node]
            for alias in node.names:
                bound = (alias.asname or alias.name).split(".")[0]
                body.append(_expr_stmt(_c_call("store", ast.Constant(bound), ast.Name(bound, ast.Load()))))
        else:
            self.refuse(node, f"{type(node).__name__} statements are not supported in @plait.parallel")
            body = []
        return self._function(body, node.lineno)

    def try_unit(self, node: ast.Try, in_loop: bool, common: dict) -> Stmt:
        """A try statement runs natively; its blocks run through the issuer, sequentially."""
        blocks = [self.block(node.body, in_loop)]
        rw = _Rewriter(self)

        def run_block(i: int) -> ast.stmt:
            return _expr_stmt(_c_call("run_block", ast.Constant(i)))

        handlers = []
        for h in node.handlers:
            blocks.append(self.block(h.body, in_loop))
            hbody: list[ast.stmt] = []
            name = h.name
            exc_var = _fresh("__e")
            if name:
                hbody.append(_expr_stmt(_c_call("store", ast.Constant(name), ast.Name(exc_var, ast.Load()))))
            hbody.append(run_block(len(blocks) - 1))
            if name:
                hbody = [ast.Try(body=hbody, handlers=[], orelse=[], finalbody=[_expr_stmt(_c_call("unbind", ast.Constant(name)))])]
            handlers.append(
                ast.ExceptHandler(type=rw.visit(h.type) if h.type is not None else None, name=exc_var, body=hbody)
            )
        orelse: list[ast.stmt] = []
        if node.orelse:
            blocks.append(self.block(node.orelse, in_loop))
            orelse = [run_block(len(blocks) - 1)]
        final: list[ast.stmt] = []
        if node.finalbody:
            blocks.append(self.block(node.finalbody, in_loop))
            final = [_expr_stmt(_c_call("run_final", ast.Constant(len(blocks) - 1)))]
        if handlers:
            # the runtime's own signals pass through untouched, even `except:`: a jump
            # (break, continue, return), and a failure of a call made before this try
            # statement or an abandoned statement (sequentially the statement never began:
            # run_final skips the finally block for those too)
            internal = ast.Attribute(ast.Name("__c", ast.Load()), "INTERNAL", ast.Load())
            handlers.insert(0, ast.ExceptHandler(type=internal, name=None, body=[ast.Raise()]))
        mark = _fresh("__m")
        body: list[ast.stmt] = [
            ast.Assign([ast.Name(mark, ast.Store())], _c_call("mark")),
            ast.Try(
                body=[_expr_stmt(_c_call("guard", ast.Name(mark, ast.Load())))],
                handlers=handlers,
                orelse=orelse,
                finalbody=final,
            ),
        ]

        return Stmt(kind="try", run=self._function(body, node.lineno), blocks=blocks, **common)

    def with_unit(self, node: ast.With, in_loop: bool, common: dict) -> Stmt:
        rw = _Rewriter(self)
        items = []
        pre: list[ast.stmt] = [_expr_stmt(_c_call("effect_barrier"))]
        inner: list[ast.stmt] = []
        for item in node.items:
            var = _fresh("__w")
            items.append(ast.withitem(_c_call("resolve", rw.visit(item.context_expr)), ast.Name(var, ast.Store()) if item.optional_vars else None))
            if item.optional_vars is not None:
                inner.extend(self.assign(item.optional_vars, ast.Name(var, ast.Load())))
        inner.append(_expr_stmt(_c_call("run_block", ast.Constant(0))))
        body = pre + [ast.With(items=items, body=inner)]
        return Stmt(kind="with", run=self._function(body, node.lineno), blocks=[self.block(node.body, in_loop)], **common)

    # ----------------------------------------------------------- heap use
    def _mutated(self, node: ast.stmt) -> set[str]:
        """Locals whose objects ``node`` may change in place: roots of item and attribute
        stores, receivers of method calls, and arguments of calls that may write objects."""
        names: set[str] = set()

        def root(expr: ast.expr) -> None:
            while isinstance(expr, (ast.Attribute, ast.Subscript)):
                expr = expr.value
            if isinstance(expr, ast.Name) and expr.id in self.locals:
                names.add(expr.id)

        for sub in ast.walk(node):
            if isinstance(sub, (ast.Subscript, ast.Attribute)) and not isinstance(sub.ctx, ast.Load):
                root(sub.value)
            elif isinstance(sub, ast.Call):
                kind, target = self.callee(sub.func)
                if kind == "method" and isinstance(sub.func, ast.Attribute):
                    root(sub.func.value)
                if kind == "other" or kind == "method" or (kind == "helper" and target.heap_write):
                    for arg in [*sub.args, *(k.value for k in sub.keywords)]:
                        root(arg.value if isinstance(arg, ast.Starred) else arg)
        return names

    def _heap(self, node: ast.stmt) -> tuple[bool, bool, bool]:
        heap_read = heap_write = effects = False
        for sub in ast.walk(node):
            if isinstance(sub, (ast.Attribute, ast.Subscript)):
                if isinstance(sub.ctx, ast.Load):
                    heap_read = True
                else:
                    heap_write = True
            elif isinstance(sub, ast.Call):
                kind, target = self.callee(sub.func)
                if kind == "helper":
                    heap_read = heap_read or target.heap_read
                    heap_write = heap_write or target.heap_write
                    effects = effects or target.effects
                elif kind == "method":
                    heap_read = heap_write = True
                    if sub.func.attr not in MUTATORS:  # type: ignore[attr-defined]
                        effects = True
                elif kind == "other":
                    heap_read = heap_write = effects = True
                elif kind == "builtin":
                    heap_read = True
                elif kind == "task" and any(
                    not isinstance(arg, ast.Constant) for arg in [*sub.args, *(k.value for k in sub.keywords)]
                ):
                    # a task call pickles its arguments when it is made: it reads the objects
                    # among them, so a later write to one waits for it (it may be waiting)
                    heap_read = True
            elif isinstance(sub, (ast.Raise, ast.Import, ast.ImportFrom, ast.With, ast.Delete)):
                effects = heap_write = heap_read = True
            elif isinstance(sub, (ast.For, ast.comprehension)):
                heap_read = True
        return heap_read, heap_write, effects

    def callee_kind(self, func: ast.expr) -> str:
        return self.callee(func)[0]

    def callee(self, func: ast.expr) -> tuple[str, Any]:
        """What the called expression is, as far as decoration time can tell:
        ``task``, ``builtin`` (pure or structural), ``helper`` (with its compiled
        form), ``method``, or ``other`` (an effect). The runtime decides again
        for each call; this only tells what a statement may do while it waits."""
        if isinstance(func, ast.Attribute):
            if isinstance(func.value, ast.Name) and func.value.id not in self.locals:
                target = self.globals.get(func.value.id)
                if inspect.ismodule(target):
                    return self._kind_of(getattr(target, func.attr, None))
            if func.attr == "options":
                return "task", None
            return "method", None
        if isinstance(func, ast.Call) and isinstance(func.func, ast.Attribute) and func.func.attr == "options":
            return "task", None
        if isinstance(func, ast.Name) and func.id not in self.locals and func.id not in self.freevars:
            target = self.globals.get(func.id, getattr(builtins, func.id, None))
            if target in STRUCTURAL or target in PURE:
                return "builtin", None
            return self._kind_of(target)
        if isinstance(func, ast.Name) and func.id in self.freevars:
            cell = self.fn.__closure__[self.freevars.index(func.id)]  # type: ignore[index]
            try:
                target = cell.cell_contents
            except ValueError:
                return "other", None
            return self._kind_of(target)
        return "other", None

    @staticmethod
    def _kind_of(target: Any) -> tuple[str, Any]:
        from plait.parallel import callees
        from plait.parallel.function import ParallelFunction
        from plait.runtime.task import TaskCall, TaskFunction

        if isinstance(target, (TaskFunction, TaskCall, ParallelFunction)):
            return "task", None
        if callees.is_pure(target):
            return "builtin", None
        compiled = callees.helper(target)
        if compiled is not None:
            return "helper", compiled
        return "other", None


class _Rewriter(ast.NodeTransformer):
    """Rewrites an expression so every operation goes through ``__c``."""

    def __init__(self, compiler: _Compiler) -> None:
        self.compiler = compiler
        self.scopes: list[set[str]] = []  # names bound by enclosing comprehensions/lambdas

    def _shadowed(self, name: str) -> bool:
        return any(name in scope for scope in self.scopes)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and not self._shadowed(node.id):
            if node.id in self.compiler.locals:
                return ast.copy_location(_c_call("load", ast.Constant(node.id)), node)
            if node.id in self.compiler.freevars:
                return ast.copy_location(_c_call("free", ast.Constant(node.id)), node)
        return node

    def visit_NamedExpr(self, node: ast.NamedExpr) -> ast.AST:
        value = self.visit(node.value)
        return ast.copy_location(_c_call("store_value", ast.Constant(node.target.id), value), node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        for arg in node.args:
            if isinstance(arg, ast.GeneratorExp):
                arg.consumed = True  # type: ignore[attr-defined] # used up within this statement
        args = ast.Tuple([self.visit(a) for a in node.args], ast.Load())
        kwargs = ast.Dict(
            keys=[ast.Constant(k.arg) if k.arg is not None else None for k in node.keywords],
            values=[
                self.visit(k.value) if k.arg is not None else _c_call("resolve", self.visit(k.value))
                for k in node.keywords
            ],
        )
        if isinstance(node.func, ast.Attribute) and self.compiler.callee_kind(node.func) == "method":
            outside = self.compiler.external(node.func.value)
            call = _c_call("method", self.visit(node.func.value), ast.Constant(node.func.attr), args, kwargs, outside)
        else:
            call = _c_call("call", self.visit(node.func), args, kwargs)
        return ast.copy_location(call, node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        call = _c_call("binop", ast.Constant(_OPS[type(node.op)]), self.visit(node.left), self.visit(node.right))
        return ast.copy_location(call, node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        name = {ast.Not: "not", ast.USub: "neg", ast.UAdd: "pos", ast.Invert: "invert"}[type(node.op)]
        return ast.copy_location(_c_call("unary", ast.Constant(name), self.visit(node.operand)), node)

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        rest = [
            ast.Tuple([ast.Constant(_CMP[type(op)]), _lambda(self.visit(comp))], ast.Load())
            for op, comp in zip(node.ops, node.comparators, strict=True)
        ]
        return ast.copy_location(_c_call("compare", self.visit(node.left), *rest), node)

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        name = "and_" if isinstance(node.op, ast.And) else "or_"
        first, *rest = node.values
        return ast.copy_location(_c_call(name, self.visit(first), *[_lambda(self.visit(v)) for v in rest]), node)

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:
        call = _c_call("ifexp", self.visit(node.test), _lambda(self.visit(node.body)), _lambda(self.visit(node.orelse)))
        return ast.copy_location(call, node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if isinstance(node.ctx, ast.Load):
            return ast.copy_location(_c_call("getattr", self.visit(node.value), ast.Constant(node.attr)), node)
        return self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        if isinstance(node.ctx, ast.Load):
            return ast.copy_location(_c_call("getitem", self.visit(node.value), self.visit(node.slice)), node)
        return self.generic_visit(node)

    def visit_Slice(self, node: ast.Slice) -> ast.AST:
        parts = [self.visit(p) if p is not None else ast.Constant(None) for p in (node.lower, node.upper, node.step)]
        return ast.copy_location(ast.Call(ast.Name("slice", ast.Load()), parts, []), node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                spec = self.visit(value.format_spec) if value.format_spec is not None else ast.Constant("")
                parts.append(_c_call("format", self.visit(value.value), ast.Constant(value.conversion), spec))
            else:
                parts.append(value)
        return ast.copy_location(_c_call("join", *parts), node)

    def _comprehension(self, node: Any, elements: list[str]) -> ast.AST:
        bound: set[str] = set()
        generators = []
        for gen in node.generators:
            iter_ = self.visit(gen.iter)
            self.scopes.append(bound)
            for name in ast.walk(gen.target):
                if isinstance(name, ast.Name):
                    bound.add(name.id)
            ifs = [_c_call("truth", self.visit(cond)) for cond in gen.ifs]
            self.scopes.pop()
            generators.append(ast.comprehension(gen.target, _c_call("iterate", iter_), ifs, gen.is_async))
        self.scopes.append(bound)
        for attr in elements:
            setattr(node, attr, self.visit(getattr(node, attr)))
        self.scopes.pop()
        node.generators = generators
        return node

    def _with_native(self, node: Any, hooked: Callable[[Any], ast.AST]) -> ast.AST:
        """A comprehension that only computes (no calls but pure builtins) gets a native
        twin: when the locals it reads hold no futures, it runs as plain Python."""
        names = self._native_reads(node) if not self.scopes else None
        if names is None:
            return hooked(node)
        native = copy.deepcopy(node)
        fast = ast.Lambda(_arguments([ast.arg(n) for n in names]), native)
        slow = _lambda(hooked(node))
        call = _c_call("native", fast, slow, ast.Tuple([ast.Constant(n) for n in names], ast.Load()))
        return ast.copy_location(call, node)

    def _native_reads(self, node: ast.AST) -> list[str] | None:
        """The locals a comprehension reads, or None if it must run through the hooks."""
        bound = {n.id for gen in node.generators for n in ast.walk(gen.target) if isinstance(n, ast.Name)}  # type: ignore[attr-defined]
        names: list[str] = []
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                func = sub.func
                if not (isinstance(func, ast.Name) and func.id not in self.compiler.locals and func.id not in self.compiler.freevars):
                    return None
                target = self.compiler.globals.get(func.id, getattr(builtins, func.id, None))
                if not (target in PURE or target in STRUCTURAL):
                    return None
            elif not isinstance(sub, _NATIVE_NODES):
                return None
            elif isinstance(sub, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                bound.update(n.id for gen in sub.generators for n in ast.walk(gen.target) if isinstance(n, ast.Name))
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                if sub.id in self.compiler.freevars and sub.id not in bound:
                    return None
                if sub.id in self.compiler.locals and sub.id not in bound and sub.id not in names:
                    names.append(sub.id)
        return names

    def visit_ListComp(self, node: ast.ListComp) -> ast.AST:
        return self._with_native(node, lambda n: self._comprehension(n, ["elt"]))

    def visit_SetComp(self, node: ast.SetComp) -> ast.AST:
        def hooked(node: ast.SetComp) -> ast.AST:
            new = self._comprehension(node, ["elt"])
            elements = ast.Tuple([ast.ListComp(new.elt, new.generators)], ast.Load())
            return ast.copy_location(_c_call("call", ast.Name("set", ast.Load()), elements, ast.Dict([], [])), node)

        return self._with_native(node, hooked)

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> ast.AST:
        if not getattr(node, "consumed", False):
            bound = {n.id for sub in ast.walk(node) if isinstance(sub, ast.comprehension) for n in ast.walk(sub.target) if isinstance(n, ast.Name)}
            self._refuse_late_binding(node, bound, "generator expression", "pass it straight to the call that uses it")
        speculable = self._speculable(node)

        def hooked(node: ast.GeneratorExp) -> ast.AST:
            new = self._comprehension(node, ["elt"])
            lazy = _lambda(ast.GeneratorExp(new.elt, new.generators))
            return ast.copy_location(_c_call("genexp", lazy, ast.Constant(speculable)), node)

        return self._with_native(node, hooked)

    def _speculable(self, node: ast.AST) -> bool:
        """Only task calls, pure functions and operators: its elements may be computed
        before they are asked for, and dropped unseen if they never are."""
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                kind, _ = self.compiler.callee(sub.func)
                if kind not in ("task", "builtin") or self._calls_parallel(sub.func):
                    return False
            elif not isinstance(sub, (*_NATIVE_NODES, ast.Attribute)):
                return False
        return True

    def _calls_parallel(self, func: ast.expr) -> bool:
        from plait.parallel.function import ParallelFunction

        target = self.compiler.globals.get(func.id) if isinstance(func, ast.Name) else None
        return isinstance(target, ParallelFunction)  # a @parallel function may have effects

    def _refuse_late_binding(self, node: ast.AST, params: set[str], what: str, fix: str) -> list[str]:
        """The locals ``node`` reads when it runs later; refused if one is assigned more than once."""
        captured: list[str] = []
        for sub in ast.walk(node):
            if (
                isinstance(sub, ast.Name)
                and isinstance(sub.ctx, ast.Load)
                and sub.id in self.compiler.locals
                and sub.id not in params
                and not self._shadowed(sub.id)
                and sub.id not in captured
            ):
                if self.compiler.assign_counts.get(sub.id, 0) > 1:
                    self.compiler.refuse(
                        node,
                        f"this {what} reads {sub.id!r}, which is assigned more than once: under "
                        f"@plait.parallel it would see the value at its definition; {fix}",
                    )
                captured.append(sub.id)
        return captured

    def visit_DictComp(self, node: ast.DictComp) -> ast.AST:
        return self._with_native(node, lambda n: self._comprehension(n, ["key", "value"]))

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        params = {a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs}
        if node.args.vararg:
            params.add(node.args.vararg.arg)
        if node.args.kwarg:
            params.add(node.args.kwarg.arg)
        captured = self._refuse_late_binding(
            node.body, params, "lambda", "pass it as a default argument (lambda ..., name=name: ...)"
        )
        if not captured:
            return node  # a plain lambda: it only ever sees the values it is called with
        # bind the locals it reads now, as the cells of a plain closure (so it pickles)
        outer = ast.Lambda(
            ast.arguments(
                posonlyargs=[],
                args=[ast.arg(name) for name in captured],
                vararg=None,
                kwonlyargs=[],
                kw_defaults=[],
                kwarg=None,
                defaults=[],
            ),
            node,
        )
        loads = [_c_call("load", ast.Constant(name)) for name in captured]
        return ast.copy_location(ast.Call(outer, loads, []), node)

    def visit_Starred(self, node: ast.Starred) -> ast.AST:
        """``*x`` in a display or a call unpacks the value: a pending result is waited for."""
        return ast.copy_location(ast.Starred(_c_call("spread", self.visit(node.value)), node.ctx), node)

    def visit_Dict(self, node: ast.Dict) -> ast.AST:
        # ``**x`` unpacks the value: a pending result is waited for
        values = [
            self.visit(v) if k is not None else _c_call("resolve", self.visit(v))
            for k, v in zip(node.keys, node.values, strict=True)
        ]
        if all(k is None or isinstance(k, ast.Constant) for k in node.keys):
            return ast.copy_location(ast.Dict(list(node.keys), values), node)
        keys = ast.List([self.visit(k) if k is not None else ast.Constant(None) for k in node.keys], ast.Load())
        return ast.copy_location(_c_call("dict_display", keys, ast.List(values, ast.Load())), node)

    def visit_Set(self, node: ast.Set) -> ast.AST:
        elts = ast.List([self.visit(e) for e in node.elts], ast.Load())
        return ast.copy_location(_c_call("call", ast.Name("set", ast.Load()), ast.Tuple([elts], ast.Load()), ast.Dict([], [])), node)


# ------------------------------------------------------------------ helpers
_OPS = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
    ast.Pow: "**", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|", ast.BitXor: "^",
    ast.BitAnd: "&", ast.MatMult: "@",
}  # fmt: skip
_CMP = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
}  # fmt: skip
_counter = [0]


def _fresh(prefix: str) -> str:
    _counter[0] += 1
    return f"{prefix}{_counter[0]}"


def _c_call(method: str, *args: ast.expr) -> ast.Call:
    return ast.Call(ast.Attribute(ast.Name("__c", ast.Load()), method, ast.Load()), list(args), [])


def _expr_stmt(value: ast.expr) -> ast.Expr:
    return ast.Expr(value)


def _arguments(args: list[ast.arg]) -> ast.arguments:
    return ast.arguments(posonlyargs=[], args=args, vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])


def _lambda(body: ast.expr) -> ast.Lambda:
    return ast.Lambda(_arguments([]), body)


# what a comprehension may contain and still run natively on concrete values
_NATIVE_NODES = (
    ast.Name, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.IfExp, ast.Subscript,
    ast.Slice, ast.Tuple, ast.List, ast.Dict, ast.Set, ast.ListComp, ast.SetComp, ast.DictComp,
    ast.GeneratorExp, ast.comprehension, ast.Starred, ast.JoinedStr, ast.FormattedValue, ast.keyword,
    ast.operator, ast.unaryop, ast.cmpop, ast.boolop, ast.expr_context,
)  # fmt: skip


def _all_statements(block: list[Stmt]):
    for stmt in block:
        yield stmt
        for inner in (stmt.body, stmt.orelse, *stmt.blocks):
            yield from _all_statements(inner)


def _walk_own_scope(func: ast.FunctionDef):
    """Nodes of the function body, not descending into nested functions or classes."""
    stack: list[ast.AST] = list(func.body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        stack.extend(ast.iter_child_nodes(node))


def _names(node: ast.AST, local_names: frozenset[str] | set[str]) -> tuple[set[str], set[str]]:
    """Locals a statement reads and writes (comprehension and lambda variables excluded)."""
    reads: set[str] = set()
    writes: set[str] = set()
    bound: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.comprehension):
            for n in ast.walk(sub.target):
                if isinstance(n, ast.Name):
                    bound.add(n.id)
        elif isinstance(sub, ast.Lambda):
            for a in sub.args.args + sub.args.kwonlyargs + sub.args.posonlyargs:
                bound.add(a.arg)
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id in local_names:
            if isinstance(sub.ctx, ast.Load):
                reads.add(sub.id)
            else:
                writes.add(sub.id)
        elif isinstance(sub, ast.AugAssign) and isinstance(sub.target, ast.Name):
            reads.add(sub.target.id)
        elif isinstance(sub, ast.NamedExpr):
            writes.add(sub.target.id)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            for alias in sub.names:
                writes.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(sub, ast.ExceptHandler) and sub.name:
            writes.add(sub.name)
    writes -= bound - local_names
    reads -= bound - local_names
    # a compound statement may leave a variable unassigned: readers then see the old version
    return reads | writes, writes


def _jumps_out(node: ast.stmt) -> bool:
    """Does a break/continue/return inside leave this statement?"""

    def visit(n: ast.AST, loop_depth: int) -> bool:
        if isinstance(n, ast.Return):
            return True
        if isinstance(n, (ast.Break, ast.Continue)):
            return loop_depth == 0
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            return False
        inner = loop_depth + 1 if isinstance(n, (ast.For, ast.While)) and n is not node else loop_depth
        if isinstance(n, (ast.For, ast.While)) and n is node:
            # the statement's own break/continue stay inside; its else: clause does not
            return any(visit(c, 1) for c in n.body) or any(visit(c, 0) for c in n.orelse)
        return any(visit(c, inner) for c in ast.iter_child_nodes(n))

    return visit(node, 0)


def _mutation_receivers(body: list[ast.stmt]) -> set[str]:
    names = set()
    for stmt in body:
        for sub in ast.walk(stmt):
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and isinstance(sub.func.value, ast.Name):
                names.add(sub.func.value.id)
            elif isinstance(sub, (ast.Subscript, ast.Attribute)) and not isinstance(sub.ctx, ast.Load):
                if isinstance(sub.value, ast.Name):
                    names.add(sub.value.id)
    return names
