"""The grammar of the random programs of test_parallel_property.py.

A generated module holds a module-level dict ``LOG``, a few plain helper
functions (not decorated) and ``program(a, b, c)``, which the test runs
sequentially and under ``@plait.parallel`` and compares. Everything is
deterministic and terminates quickly: loops are bounded by small ranges or
counters, a ``for`` over a list never lets its body grow that list, and a
list is never bound to another name (so no alias can grow it either).

Names and their types: ``a``, ``b``, ``c`` and loop variables hold ints;
``xs`` and ``ys`` hold lists of ints (futures under @parallel); ``acc``
collects ints and exception messages; ``d`` is a local dict. Helpers take
``x`` (and ``y``), or a list ``lst`` and ``x``; they have a local int ``t``
and a local list ``r``; they write into ``LOG`` instead of ``d``.

Features can be switched off (to hunt past a known bug) with the env var
``PLAIT_HYPOTHESIS_WITHOUT``, a comma-separated list of names from
``FEATURES``, for example ``PLAIT_HYPOTHESIS_WITHOUT=helper_tasks,genexp``.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field, replace

from hypothesis import strategies as st

FEATURES = {
    "helpers",  # module-level helper functions called from program
    "helper_tasks",  # task calls inside helpers
    "helper_effects",  # print / LOG writes / appends to a list argument inside helpers
    "builtins",  # sum/max/min/sorted/len/any/all/map/zip/list/tuple/enumerate over lists
    "genexp",  # generator expressions (any(... for ...), sum(... for ...))
    "comprehensions",  # list comprehensions, conditional ones included
    "lists",  # xs/ys statements: append, extend, setitem, rebinding, printing a list
    "for_list",  # for loops over lists (plain, enumerate, zip)
    "tree",  # while loops that swap lists (tree summation)
    "return",  # return inside loops and ifs
    "log",  # program writes into the module-level dict LOG
    "try_broad",  # except Exception (besides except ValueError)
    "membership",  # e in xs
    "map",  # map(work, xs), map(helper, xs)
    "helper_lists",  # helpers that append to a list argument
    "sorted",  # sorted(xs) (its result is a lifted future holding a list)
    "values",  # x if c else y, `or`/`and` as values, divmod and tuple unpacking, d.get, K
    "raise",  # raise ValueError(...) in programs and helpers, try/finally
    "index_loops",  # for k in range(len(xs)): xs[k] = ...; for/else; while True with break
    "recursion",  # bounded recursive helpers
    "task_containers",  # tasks taking a list (total(xs)) and returning a tuple (u, w = pair(e))
    "task_lists",  # task results that are lists (xs = rows(e)), changed in place, nested ones too
    "prints",  # print statements (without them, most programs have native twins: native.py)
    "division",  # // and % (ZeroDivisionError raised inside chains of operations), //=
}
_without = {f.strip() for f in os.environ.get("PLAIT_HYPOTHESIS_WITHOUT", "").split(",") if f.strip()}
_unknown = _without - FEATURES
if _unknown:
    raise ValueError(
        f"PLAIT_HYPOTHESIS_WITHOUT: unknown features {sorted(_unknown)}; known: {sorted(FEATURES)}"
    )
ON = FEATURES - _without

_counter = itertools.count()
RETURN = "return a, b, c, acc, d, xs, ys"


@dataclass(frozen=True)
class Helper:
    name: str
    kind: str  # int1 (x), int2 (x, y), pred (x) -> bool, list (lst, x) -> int, appends to lst
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ctx:
    ints: tuple[str, ...]  # int names that may be read
    assignable: tuple[str, ...]  # int names that statements assign
    lists: tuple[str, ...]  # list-of-int names
    # lists iterated by an enclosing for, or every list inside a comprehension: never grown
    frozen: frozenset[str] = frozenset()
    helpers: tuple[Helper, ...] = ()
    depth: int = 0
    max_depth: int = 2
    in_loop: bool = False
    ret: str | None = None  # program: the return statement; helpers: None (they draw `return <expr>`)
    in_helper: bool = False
    acc: str | None = "acc"
    dct: str = "d"
    label: str = "p"
    tasks: bool = True  # work/boom may be called here
    effects: bool = True  # print and dict writes may happen here
    comp_vars: tuple[str, ...] = field(default=("v", "w"))

    def deeper(self, **changes) -> Ctx:
        return replace(self, depth=self.depth + 1, **changes)

    def growable(self) -> list[str]:
        return [name for name in self.lists if name not in self.frozen]

    def helpers_of(self, *kinds: str) -> list[Helper]:
        return [h for h in self.helpers if h.kind in kinds]


# --- expressions --------------------------------------------------------------------------------


def _comp_var(ctx: Ctx) -> str:
    used = set(ctx.ints)
    for name in ctx.comp_vars + ("u", "z", "q"):
        if name not in used:
            return name
    return f"k{next(_counter)}"


@st.composite
def int_exprs(draw, ctx: Ctx, depth: int = 0) -> str:
    """An int-valued expression (a bool now and then: it is an int)."""
    names = ctx.ints + (("K",) if "values" in ON else ())
    leaf = st.one_of(st.integers(-3, 9).map(str), st.sampled_from(names))
    if depth >= 2:
        return draw(leaf)
    options = ["leaf", "leaf", "binop"]
    if "values" in ON:
        options += ["ifexp", "andor", "get"]
    if ctx.tasks:
        options += ["work", "boom"]
    if ctx.acc:
        options.append("len_acc")
    if "helpers" in ON and ctx.helpers:
        options += ["helper", "helper"]
    if "builtins" in ON or "genexp" in ON or "comprehensions" in ON:
        if depth <= 1:
            options += ["aggregate", "aggregate"]
    if "membership" in ON and depth <= 1:
        options.append("member")
    if "task_containers" in ON and ctx.tasks and depth <= 1:
        options += ["total", "pair_index"]
    kind = draw(st.sampled_from(options))
    sub = int_exprs(ctx, depth + 1)
    if kind == "leaf":
        return draw(leaf)
    if kind == "work":
        return f"work({draw(sub)})"
    if kind == "boom":
        return f"boom({draw(sub)})"
    if kind == "binop":
        ops = ["+", "-", "*", "//", "%"] if "division" in ON else ["+", "-", "*"]
        return f"({draw(sub)} {draw(st.sampled_from(ops))} {draw(sub)})"
    if kind == "len_acc":
        return f"len({ctx.acc}) + {draw(sub)}"
    if kind == "ifexp":
        return f"({draw(sub)} if {draw(conditions(ctx, 1))} else {draw(sub)})"
    if kind == "andor":
        return f"({draw(sub)} {draw(st.sampled_from(['or', 'and']))} {draw(sub)})"
    if kind == "total":
        return f"total({draw(list_reads(ctx, depth + 1))})"
    if kind == "pair_index":
        return f"pair({draw(sub)})[{draw(st.integers(0, 1))}]"
    if kind == "get":
        return f"{ctx.dct}.get({draw(st.integers(0, 2))}, {draw(sub)})"
    if kind == "helper":
        return draw(helper_calls(ctx, depth + 1))
    if kind == "member":
        return f"int({draw(sub)} in {draw(list_reads(ctx, depth + 1))})"
    return draw(aggregates(ctx, depth + 1))


@st.composite
def helper_calls(draw, ctx: Ctx, depth: int) -> str:
    h = draw(st.sampled_from(list(ctx.helpers)))
    sub = int_exprs(ctx, depth)
    if h.kind == "int1":
        return f"{h.name}({draw(sub)})"
    if h.kind == "int2":
        return f"{h.name}({draw(sub)}, {draw(sub)})"
    if h.kind == "pred":
        return f"int({h.name}({draw(sub)}))"
    grow = ctx.growable()
    if not grow:
        return f"{h.name}([], {draw(sub)})"
    return f"{h.name}({draw(st.sampled_from(grow))}, {draw(sub)})"


@st.composite
def list_reads(draw, ctx: Ctx, depth: int) -> str:
    """A list expression used where it is only read (a bare list name is fine)."""
    if depth >= 2 or draw(st.integers(0, 2)) > 0:
        return draw(st.sampled_from(ctx.lists))
    return draw(list_exprs(ctx, depth))


@st.composite
def list_exprs(draw, ctx: Ctx, depth: int = 0) -> str:
    """A fresh list of ints (never the same object as a list name)."""
    options = ["literal", "copy", "range"]
    if "comprehensions" in ON:
        options += ["comp", "comp_if", "comp_range", "comp_zip"]
    if "builtins" in ON:
        options += ["concat", "slice", "list_enum", "tuple_list"]
        options += [k for k in ("map", "sorted") if k in ON]
    if "task_lists" in ON and ctx.tasks:
        options += ["rows", "rows"]
    kind = draw(st.sampled_from(options))
    elem = int_exprs(ctx, max(depth, 1))
    if kind == "rows":
        return f"rows({draw(elem)})"
    if kind == "literal":
        return "[" + ", ".join(draw(st.lists(elem, max_size=3))) + "]"
    if kind == "range":
        return f"list(range({draw(st.integers(0, 4))}))"
    src = draw(st.sampled_from(ctx.lists))
    if kind == "copy":
        return draw(st.sampled_from([f"list({src})", f"{src}[:]"]))
    v = _comp_var(ctx)
    inner = replace(ctx, ints=ctx.ints + (v,), frozen=frozenset(ctx.lists))
    if kind == "comp":
        return f"[{draw(int_exprs(inner, 1))} for {v} in {src}]"
    if kind == "comp_if":
        return f"[{draw(int_exprs(inner, 1))} for {v} in {src} if {draw(conditions(inner, 1))}]"
    if kind == "comp_range":
        return f"[{draw(int_exprs(inner, 1))} for {v} in range({draw(st.integers(0, 4))})]"
    if kind == "comp_zip":
        other = draw(st.sampled_from(ctx.lists))
        w, inner2 = _second_var(inner)
        return f"[{draw(int_exprs(inner2, 1))} for {v}, {w} in zip({src}, {other})]"
    if kind == "map":
        fns = _mappable(ctx)
        if not fns:
            return f"list({src})"
        return f"list(map({draw(st.sampled_from(fns))}, {src}))"
    if kind == "sorted":
        return draw(st.sampled_from([f"sorted({src})", f"sorted({src}, reverse=True)"]))
    if kind == "concat":
        return f"{src} + [{draw(elem)}]"
    if kind == "slice":
        return draw(st.sampled_from([f"{src}[1:]", f"{src}[:2]", f"{src}[::-1]"]))
    if kind == "list_enum":
        return f"[{v} * {_comp_var(inner)} for {v}, {_comp_var(inner)} in enumerate({src})]"
    return f"list(tuple({src}))"


def _mappable(ctx: Ctx) -> list[str]:
    """What ``map(f, xs)`` may call: the tasks of one int, and the helpers of one int."""
    fns = ["work", "boom"] if ctx.tasks else []
    if "helpers" in ON:
        fns += [h.name for h in ctx.helpers_of("int1")]
    return fns


def _second_var(inner: Ctx) -> tuple[str, Ctx]:
    """A second comprehension variable (``for v, w in zip(...)``), an int inside."""
    w = _comp_var(inner)
    return w, replace(inner, ints=inner.ints + (w,))


@st.composite
def aggregates(draw, ctx: Ctx, depth: int) -> str:
    """Builtins over containers of futures, generator expressions."""
    options = []
    if "builtins" in ON:
        options += ["sum", "max", "min", "len", "zip_sum", "enum_sum", "tuple", "list"]
        options += [k for k, f in (("sorted_idx", "sorted"), ("map_sum", "map")) if f in ON]
    if "genexp" in ON:
        options += ["gen_sum", "gen_any", "gen_all", "gen_max"]
    if "comprehensions" in ON:
        options += ["comp_len", "comp_sum"]
    if not options:
        return draw(st.sampled_from(ctx.ints))
    kind = draw(st.sampled_from(options))
    src = draw(list_reads(ctx, depth))
    v = _comp_var(ctx)
    inner = replace(ctx, ints=ctx.ints + (v,), frozen=frozenset(ctx.lists))
    elem = int_exprs(inner, depth)
    k = draw(st.integers(-1, 6))
    if kind == "sum":
        return f"sum({src})"
    if kind == "max":
        return draw(st.sampled_from([f"max({src}, default={k})", f"max({src})", f"max({src} + [{k}])"]))
    if kind == "min":
        return draw(st.sampled_from([f"min({src}, default={k})", f"min([{k}] + {src})"]))
    if kind == "len":
        return f"len({src})"
    if kind == "sorted_idx":
        return f"(sorted({src})[{draw(st.sampled_from(['0', '-1']))}] if {src} else {k})"
    if kind == "map_sum":
        fns = _mappable(ctx)
        if not fns:
            return f"sum({src})"
        return f"sum(map({draw(st.sampled_from(fns))}, {src}))"
    if kind == "zip_sum":
        other = draw(st.sampled_from(ctx.lists))
        w, inner2 = _second_var(inner)
        return f"sum({draw(int_exprs(inner2, depth))} for {v}, {w} in zip({src}, {other}))"
    if kind == "enum_sum":
        w, inner2 = _second_var(inner)
        return f"sum({draw(int_exprs(inner2, depth))} for {w}, {v} in enumerate({src}))"
    if kind == "tuple":
        return f"sum(tuple({src}))"
    if kind == "list":
        return f"len(list({src}))"
    if kind == "gen_sum":
        return f"sum({draw(elem)} for {v} in {src})"
    if kind == "gen_any":
        return f"any({draw(elem)} > {k} for {v} in {src})"
    if kind == "gen_all":
        return f"all({draw(elem)} > {k} for {v} in {src})"
    if kind == "gen_max":
        return f"max(({draw(elem)} for {v} in {src}), default={k})"
    if kind == "comp_len":
        return f"len([{v} for {v} in {src} if {draw(conditions(inner, depth))}])"
    return f"sum([{draw(elem)} for {v} in {src} if {draw(conditions(inner, depth))}])"


@st.composite
def conditions(draw, ctx: Ctx, depth: int = 0) -> str:
    options = ["cmp", "cmp", "cmp"]
    if "helpers" in ON and ctx.helpers_of("pred"):
        options += ["pred", "pred"]
    if "builtins" in ON:
        options.append("len")
    if "genexp" in ON and depth <= 1:
        options.append("any")
    if "membership" in ON:
        options.append("member")
    if depth == 0:
        options.append("bool")
    kind = draw(st.sampled_from(options))
    expr = int_exprs(ctx, max(depth, 0))
    k = draw(st.integers(0, 6))
    if kind == "cmp":
        return f"{draw(expr)} {draw(st.sampled_from(['>', '>', '<', '==', '!=']))} {k}"
    if kind == "pred":
        h = draw(st.sampled_from(ctx.helpers_of("pred")))
        return f"{draw(st.sampled_from(['', 'not ']))}{h.name}({draw(expr)})"
    if kind == "len":
        return f"len({draw(list_reads(ctx, 1))}) > {k}"
    if kind == "any":
        v = _comp_var(ctx)
        inner = replace(ctx, ints=ctx.ints + (v,), frozen=frozenset(ctx.lists))
        fn = draw(st.sampled_from(["any", "all"]))
        return f"{fn}({draw(int_exprs(inner, 1))} > {k} for {v} in {draw(list_reads(ctx, 1))})"
    if kind == "member":
        return f"{draw(expr)} in {draw(list_reads(ctx, 1))}"
    return f"({draw(conditions(ctx, 1))}) {draw(st.sampled_from(['and', 'or']))} ({draw(conditions(ctx, 1))})"


# --- statements ---------------------------------------------------------------------------------


@st.composite
def blocks(draw, ctx: Ctx, max_size: int = 3) -> list[str]:
    n = draw(st.integers(1, max_size))
    lines: list[str] = []
    for _ in range(n):
        lines.extend(draw(statements(ctx)))
    return lines


def _indent(lines: list[str]) -> list[str]:
    return [f"    {line}" for line in lines]


@st.composite
def statements(draw, ctx: Ctx) -> list[str]:
    kinds = ["assign", "assign", "augassign"]
    if ctx.effects:
        kinds += ["dict", "print"] if "prints" in ON else ["dict"]
    if ctx.acc:
        kinds.append("append")
    if "lists" in ON:
        kinds += ["list_append", "list_assign", "list_setitem"]
        if ctx.effects and "prints" in ON:
            kinds.append("list_print")
        if ctx.growable():
            kinds.append("list_extend")
    if "helpers" in ON and ctx.helpers:
        kinds += ["helper_stmt", "helper_assign"]
    if "log" in ON and not ctx.in_helper:
        kinds.append("log")
    if ctx.depth < ctx.max_depth:
        kinds += ["if", "for", "while", "try"]
        if "for_list" in ON:
            kinds += ["for_list", "for_list"]
        if "tree" in ON and not ctx.in_helper:
            kinds.append("tree")
    if ctx.in_loop:
        kinds += ["break", "continue"]
    if "values" in ON:
        kinds += ["unpack"]
    if "raise" in ON:
        kinds += ["raise"]
        if ctx.depth < ctx.max_depth:
            kinds += ["finally"]
    if "index_loops" in ON and ctx.depth < ctx.max_depth:
        kinds += ["for_index", "for_else", "while_true"]
    if "return" in ON and (ctx.in_loop or ctx.depth > 0):
        kinds.append("return")
    if "task_lists" in ON and ctx.tasks and ctx.effects:
        kinds.append("nested_result")
    kind = draw(st.sampled_from(kinds))
    expr = int_exprs(ctx)
    cond = conditions(ctx)
    if kind == "assign":
        return [f"{draw(st.sampled_from(ctx.assignable))} = {draw(expr)}"]
    if kind == "nested_result":
        return draw(nested_results(ctx))
    if kind == "augassign":
        ops = ["+=", "-=", "//="] if "division" in ON else ["+=", "-="]
        return [f"{draw(st.sampled_from(ctx.assignable))} {draw(st.sampled_from(ops))} {draw(expr)}"]
    if kind == "append":
        return [f"{ctx.acc}.append({draw(expr)})"]
    if kind == "dict":
        return [f"{ctx.dct}[{draw(st.integers(0, 2))}] = {draw(expr)}"]
    if kind == "log":
        return [f"LOG[{draw(st.integers(0, 2))}] = {draw(expr)}"]
    if kind == "print":
        return [f"print({ctx.label!r}, {draw(expr)})"]
    if kind == "list_print":
        return [f"print({ctx.label!r}, {draw(list_reads(ctx, 1))})"]
    if kind == "list_append":
        grow = ctx.growable()
        if not grow and "prints" in ON:
            return [f"print({ctx.label!r}, {draw(expr)})"]
        if not grow:
            return [f"{draw(st.sampled_from(ctx.assignable))} = {draw(expr)}"]
        return [f"{draw(st.sampled_from(grow))}.append({draw(expr)})"]
    if kind == "list_extend":
        k = draw(st.integers(0, 3))
        source = draw(
            st.sampled_from(
                [f"list(range({k}))", f"[{draw(expr)}, {draw(expr)}]", f"[{draw(expr)} for v in range({k})]"]
            )
        )
        return [f"{draw(st.sampled_from(ctx.growable()))}.extend({source})"]
    if kind == "list_assign":
        return [f"{draw(st.sampled_from(ctx.lists))} = {draw(list_exprs(ctx))}"]
    if kind == "list_setitem":
        name = draw(st.sampled_from(ctx.lists))
        k = draw(st.integers(-1, 2))
        return [f"if len({name}) > {abs(k)}:", f"    {name}[{k}] = {draw(expr)}"]
    if kind == "helper_stmt":
        return [draw(helper_calls(ctx, 1))]
    if kind == "helper_assign":
        return [f"{draw(st.sampled_from(ctx.assignable))} = {draw(helper_calls(ctx, 1))}"]
    if kind in ("break", "continue"):
        return [f"if {draw(cond)}:", f"    {kind}"]
    if kind == "return":
        value = ctx.ret if ctx.ret else f"return {draw(expr)}"
        return [f"if {draw(cond)}:", f"    {value}"]
    if kind == "if":
        body = _indent(draw(blocks(ctx.deeper())))
        if draw(st.booleans()):
            return [f"if {draw(cond)}:", *body]
        orelse = _indent(draw(blocks(ctx.deeper())))
        if draw(st.booleans()):
            return [f"if {draw(cond)}:", *body, f"elif {draw(cond)}:", *orelse]
        return [f"if {draw(cond)}:", *body, "else:", *orelse]
    if kind == "for":
        var = f"i{ctx.depth}"
        inner = ctx.deeper(in_loop=True, ints=ctx.ints + (var,))
        body = _indent(draw(blocks(inner)))
        return [f"for {var} in range({draw(st.integers(0, 3))}):", *body]
    if kind == "for_list":
        return draw(for_lists(ctx))
    if kind == "while":
        counter = f"n{ctx.depth}_{next(_counter)}"
        body = _indent(draw(blocks(ctx.deeper(in_loop=True))))
        test = draw(st.sampled_from([f"{draw(expr)} > -100", f"({draw(cond)})"]))
        return [
            f"{counter} = 0",
            f"while {counter} < {draw(st.integers(0, 3))} and {test}:",
            f"    {counter} += 1",
            *body,
        ]
    if kind == "tree":
        return draw(trees(ctx))
    if kind == "unpack":
        u, w = (
            draw(st.lists(st.sampled_from(ctx.assignable), min_size=2, max_size=2, unique=True))
            if len(ctx.assignable) > 1
            else (ctx.assignable[0], ctx.assignable[0])
        )
        forms = ["swap", "pair", "divmod"]
        if "task_containers" in ON and ctx.tasks:
            forms.append("task_pair")
        form = draw(st.sampled_from(forms))
        if form == "task_pair":
            return [f"{u}, {w} = pair({draw(expr)})"]
        if form == "swap" and u != w:
            return [f"{u}, {w} = {w}, {u}"]
        if form == "divmod":
            return [f"{u}, {w} = divmod({draw(expr)}, {draw(st.integers(1, 4))})"]
        return [f"{u}, {w} = {draw(expr)}, {draw(expr)}"]
    if kind == "raise":
        return [f"if {draw(cond)}:", f"    raise ValueError(f'bad {{{draw(expr)}}}')"]
    if kind == "finally":
        body = _indent(draw(blocks(ctx.deeper())))
        final = _indent(draw(blocks(ctx.deeper(), max_size=2)))
        if draw(st.booleans()):
            record = f"{ctx.acc}.append(str(err))" if ctx.acc else f"{ctx.dct}['err'] = str(err)"
            return ["try:", *body, "except ValueError as err:", f"    {record}", "finally:", *final]
        return ["try:", *body, "finally:", *final]
    if kind == "for_index":
        name = draw(st.sampled_from(ctx.lists))
        var = f"k{ctx.depth}"
        inner = ctx.deeper(in_loop=True, ints=ctx.ints + (var,), frozen=ctx.frozen | {name})
        body = [f"{name}[{var}] = {draw(int_exprs(replace(inner, ints=inner.ints + (f'{name}[{var}]',))))}"]
        body += draw(blocks(inner, max_size=2))
        return [f"for {var} in range(len({name})):", *_indent(body)]
    if kind == "for_else":
        var = f"i{ctx.depth}"
        inner = ctx.deeper(in_loop=True, ints=ctx.ints + (var,))
        body = _indent(draw(blocks(inner)))
        orelse = _indent(draw(blocks(ctx.deeper(), max_size=2)))
        return [f"for {var} in range({draw(st.integers(0, 3))}):", *body, "else:", *orelse]
    if kind == "while_true":
        counter = f"n{ctx.depth}_{next(_counter)}"
        body = _indent(draw(blocks(ctx.deeper(in_loop=True))))
        return [
            f"{counter} = 0",
            "while True:",
            f"    {counter} += 1",
            f"    if {counter} > {draw(st.integers(0, 3))}:",
            "        break",
            *body,
        ]
    # try
    body = _indent(draw(blocks(ctx.deeper())))
    handler = _indent(draw(blocks(ctx.deeper())))
    exc = "ValueError"
    if "try_broad" in ON and draw(st.integers(0, 3)) == 0:
        exc = "Exception"
    record = f"{ctx.acc}.append(str(err))" if ctx.acc else f"{ctx.dct}['err'] = str(err)"
    lines = ["try:", *body, f"except {exc} as err:", f"    {record}", *handler]
    if draw(st.integers(0, 3)) == 0:
        lines += ["else:", *_indent(draw(blocks(ctx.deeper(), max_size=1)))]
    return lines


@st.composite
def nested_results(draw, ctx: Ctx) -> list[str]:
    """A task result holding lists, changed in place through its items or through values
    computed from it, then read back: plain Python has one object for all of these."""
    k = next(_counter)
    nn, row = f"n{k}", f"r{k}"
    expr = int_exprs(ctx, 1)
    i = draw(st.integers(0, 1))
    lines = [f"{nn} = nest({draw(expr)})"]
    before = draw(st.sampled_from(["", f"{row} = {nn}[{i}]", f"{row} = max({nn})", f"{row} = sorted({nn})[0]"]))
    if before:
        lines.append(before)
    change = [
        f"{nn}[{i}].append({draw(expr)})",
        f"{nn}[{i}] = [{draw(expr)}]",
        f"{nn}.append([{draw(expr)}])",
        f"for {row}x in {nn}:",
    ]
    if before:
        change += [f"{row}.append({draw(expr)})", f"{row}[0] = {draw(expr)}"]
    how = draw(st.sampled_from(change))
    lines.append(how)
    if how.startswith("for "):
        lines.append(f"    {row}x.append({draw(expr)})")
    reads = [f"{ctx.dct}[{i}] = len({nn}[{i}])", f"{ctx.dct}[{i}] = total({nn}[{i}])"]
    if before:
        reads.append(f"{ctx.dct}[{i}] = total({row})")
    if "prints" in ON:
        reads += [f"print({ctx.label!r}, {nn})", *([f"print({ctx.label!r}, {row})"] if before else [])]
    lines.extend(draw(st.lists(st.sampled_from(reads), min_size=1, max_size=2)))
    return lines


@st.composite
def for_lists(draw, ctx: Ctx) -> list[str]:
    """A for loop over a list built earlier (its body never grows that list)."""
    var = f"x{ctx.depth}"
    src = draw(st.sampled_from(ctx.lists))
    form = draw(st.sampled_from(["plain", "plain", "enumerate", "zip", "expr"]))
    frozen = ctx.frozen | {src}
    if form == "plain":
        header, new = f"for {var} in {src}:", (var,)
    elif form == "enumerate":
        header, new = f"for j{ctx.depth}, {var} in enumerate({src}):", (f"j{ctx.depth}", var)
    elif form == "zip":
        other = draw(st.sampled_from(ctx.lists))
        frozen |= {other}
        header, new = f"for {var}, y{ctx.depth} in zip({src}, {other}):", (var, f"y{ctx.depth}")
    else:
        header, new = f"for {var} in {draw(list_exprs(ctx, 1))}:", (var,)
        frozen = ctx.frozen
    inner = ctx.deeper(in_loop=True, ints=ctx.ints + new, frozen=frozen)
    return [header, *_indent(draw(blocks(inner)))]


@st.composite
def trees(draw, ctx: Ctx) -> list[str]:
    """Tree summation: a while loop that swaps a list for one half as long."""
    name = draw(st.sampled_from(ctx.lists))
    p, q = f"{name}[i]", f"{name}[i + 1]"
    combine = [f"work({p}) + {q}", f"{p} + boom({q})", f"{p} + {q}", f"max({p}, {q})", f"work({p} + {q})"]
    if "helpers" in ON:
        combine += [f"{h.name}({p}) + {q}" for h in ctx.helpers_of("int1")]
        combine += [f"{h.name}({p}, {q})" for h in ctx.helpers_of("int2")]
    op = draw(st.sampled_from(combine))
    lines = []
    if draw(st.booleans()):
        lines.append(f"{name} = {draw(list_exprs(ctx))}")
    tail = f"{name}[len({name}) - len({name}) % 2:]"
    if draw(st.booleans()):
        lines += [
            f"while len({name}) > 1:",
            f"    {name} = [{op} for i in range(0, len({name}) - 1, 2)] + {tail}",
        ]
    else:
        nxt = f"nxt{next(_counter)}"
        lines += [
            f"while len({name}) > 1:",
            f"    {nxt} = []",
            f"    for i in range(0, len({name}) - 1, 2):",
            f"        {nxt}.append({op})",
            f"    if len({name}) % 2:",
            f"        {nxt}.append({name}[-1])",
            f"    {name} = {nxt}",
        ]
    if draw(st.booleans()):
        lines.append(f"{draw(st.sampled_from(ctx.assignable))} = {name}[0] if {name} else 0")
    return lines


# --- helpers ------------------------------------------------------------------------------------


def _helper_ctx(kind: str, helpers: tuple[Helper, ...]) -> Ctx:
    params = {"int1": ("x",), "int2": ("x", "y"), "pred": ("x",), "list": ("x",)}[kind]
    lists = ("lst", "r") if kind == "list" else ("r",)
    return Ctx(
        ints=params + ("t",),
        assignable=("t",) + params,
        lists=lists,
        helpers=helpers,
        depth=1,
        max_depth=2,
        in_helper=True,
        acc=None,
        dct="LOG",
        label="h",
    )


@st.composite
def helper_defs(draw, name: str, kind: str, earlier: tuple[Helper, ...]) -> Helper:
    """A plain module-level function: a template (the idioms of real code) or a random body."""
    ctx = _helper_ctx(kind, earlier)
    if "helper_tasks" not in ON:
        ctx = replace(ctx, tasks=False)
    if "helper_effects" not in ON:
        ctx = replace(ctx, effects=False)
    templates = ["pure"]
    if "helper_tasks" in ON:
        templates += ["task_plus", "task_chain", "try", "loop_return"]
    if "helper_effects" in ON:
        templates += ["print", "log"]
        if kind == "list":
            templates.append("append")
    if earlier:
        templates.append("calls")
    if "recursion" in ON and kind in ("int1", "pred"):
        templates.append("recursive")
    if "raise" in ON:
        templates.append("raises")
    pick = draw(st.sampled_from(templates + ["random", "random"]))
    x = "x"
    y = "y" if kind == "int2" else "1"
    task = "work" if "helper_tasks" in ON else ""
    ret = {
        "pred": lambda e: f"return {e} > {draw(st.integers(0, 5))}",
    }.get(kind, lambda e: f"return {e}")
    body: list[str]
    if pick == "pure":
        body = [ret(f"{x} * 2 - {y}")]
    elif pick == "task_plus":
        body = [ret(f"{draw(st.sampled_from(['work', 'boom']))}({x}) + {y}")]
    elif pick == "task_chain":
        body = ["t = boom(x)", ret(f"t - work(t + {y})")]
    elif pick == "try":
        body = ["try:", f"    t = boom({x}) + 1", "except ValueError:", "    t = -1", ret("t")]
    elif pick == "loop_return":
        body = [
            "t = 0",
            f"for i in range({draw(st.integers(1, 4))}):",
            f"    t += {task}(i + {x})",
            f"    if t > {draw(st.integers(2, 12))}:",
            "        " + ret("t"),
            ret("-t"),
        ]
    elif pick == "recursive":
        step = f"{task}(x)" if task else "x * 2"
        body = ["if x <= 0:", "    " + ret("0"), ret(f"{step} + {name}(min(x, 4) - 1)")]
    elif pick == "raises":
        body = [
            f"if x % 4 == {draw(st.integers(0, 3))}:",
            "    raise ValueError(f'helper {x}')",
            ret(f"x - {y}"),
        ]
    elif pick == "print":
        body = [f"print('h', {x})", ret(f"{x} + 1")]
    elif pick == "log":
        body = [f"LOG[{x} % 3] = {task}({x})", ret(x)]
    elif pick == "append":
        body = [f"lst.append({task}({x}))", ret("len(lst)")]
    elif pick == "calls":
        calls = []
        for h in draw(st.lists(st.sampled_from(list(earlier)), min_size=1, max_size=2)):
            calls.append(
                {"int1": f"{h.name}({x})", "int2": f"{h.name}({x}, {y})", "pred": f"int({h.name}({x}))"}.get(
                    h.kind, f"{h.name}(r, {x})"
                )
            )
        body = ["r = []", ret(" + ".join(calls))]
    else:
        body = ["t = 0", "r = [x, t]", *draw(blocks(ctx, max_size=3))]
        body.append(
            f"return {draw(conditions(ctx, 1))}" if kind == "pred" else f"return {draw(int_exprs(ctx, 1))}"
        )
    if kind != "list" and any("lst" in line for line in body):
        body = ["lst = []", *body]
    args = {"int1": "x", "int2": "x, y", "pred": "x", "list": "lst, x"}[kind]
    return Helper(name, kind, (f"def {name}({args}):", *_indent(body)))


@st.composite
def helper_sets(draw) -> tuple[Helper, ...]:
    if "helpers" not in ON:
        return ()
    helpers: list[Helper] = []
    kinds = ["int1", "int1", "int2", "pred"] + (["list"] if "helper_lists" in ON else [])
    kinds = draw(st.lists(st.sampled_from(kinds), max_size=4))
    for i, kind in enumerate(kinds):
        helpers.append(draw(helper_defs(f"h{i}_{kind}", kind, tuple(helpers))))
    return tuple(helpers)


@st.composite
def programs(draw) -> str:
    helpers = draw(helper_sets())
    ctx = Ctx(
        ints=("a", "b", "c"),
        assignable=("a", "b", "c"),
        lists=("xs", "ys"),
        helpers=helpers,
        ret=RETURN if "return" in ON else None,
    )
    init_xs = draw(list_exprs(_no_lists(ctx)))
    body = draw(blocks(ctx, max_size=4))
    lines = ["from tests.hypo_tasks import boom, nest, pair, rows, total, work", "", "LOG = {}", "K = 3", ""]
    for h in helpers:
        lines += ["", *h.lines, ""]
    lines += [
        "",
        "def program(a, b, c):",
        "    acc = []",
        "    d = {}",
        f"    xs = {init_xs}",
        "    ys = []",
        *_indent(body),
        f"    {RETURN}",
    ]
    return "\n".join(lines) + "\n"


def _no_lists(ctx: Ctx) -> Ctx:
    """For xs's initial value: list expressions over a list literal only."""
    return replace(ctx, lists=("[a, b, c]", "[work(a), b]"))
