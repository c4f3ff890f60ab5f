"""The optimizer: small passes, each a rewrite of the logical plan that keeps its answer.

``optimize`` runs them in order; ``explain()`` shows the plan before and after. A pass
is a function from a plan to a plan, applied bottom-up by ``rewrite``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import replace

from plait.data.expr import Expr
from plait.data.kernels import COMBINABLE, Step
from plait.data.plan import Narrow, Op, Shuffle, Source


def rewrite(op: Op, rule: Callable[[Op], Op], done: dict[int, Op] | None = None) -> Op:
    """``rule`` applied to every operator, inputs first (a shared input is rewritten once)."""
    done = {} if done is None else done
    key = id(op)
    if key not in done:
        inputs = tuple(rewrite(i, rule, done) for i in op.inputs)
        if any(a is not b for a, b in zip(inputs, op.inputs, strict=True)):
            op = op.with_inputs(inputs)
        done[key] = rule(op)
    return done[key]


def fuse_narrow(op: Op) -> Op:
    """Pipelining: consecutive record operators become one (one task per partition runs them all)."""
    if type(op) is Narrow and type(op.input) is Narrow:
        return replace(op, input=op.input.input, steps=op.input.steps + op.steps)
    return op


def combine_before_shuffle(op: Op) -> Op:
    """Partial aggregation: a reduce that can run on parts first (combine by key, distinct,
    top, limit) runs a copy on each partition before the exchange, so each key crosses once
    per partition instead of once per record; a ``group_by().agg`` is split into a partial
    aggregate per partition and a final one over the partials."""
    if type(op) is Shuffle and not op.map_side and op.reduce and op.reduce[0].kind == "agg":
        agg = op.reduce[0]
        partial = Step("partial_agg", None, agg.arg, f"{agg.label} (partial)", agg.where)
        final = Step("final_agg", None, agg.arg, f"{agg.label} (final)", agg.where)
        return replace(op, map_side=(partial,), reduce=(final, *op.reduce[1:]))
    if type(op) is Shuffle and not op.map_side and op.reduce and op.reduce[0].kind in COMBINABLE:
        first = op.reduce[0]
        copy = Step(first.kind, first.fn, first.arg, f"{first.label} (partial)", first.where)
        return replace(op, map_side=(copy,))
    return op


def pipeline_into_exchange(op: Op) -> Op:
    """The record operators before a shuffle run in its map-side tasks (as they would in
    the stage's tasks), where the next passes can rewrite them together."""
    if type(op) is Shuffle and type(op.input) is Narrow:
        return replace(op, input=op.input.input, map_side=op.input.steps + op.map_side)
    return op


def count_with_counter(op: Op) -> Op:
    """Counting (pairs with 1, then a partial sum by key) becomes one ``Counter`` per
    partition; after a ``flat_map`` it counts what the function gives, with no step per
    produced row."""
    if type(op) is not Shuffle:
        return op
    steps = list(op.map_side)
    for i in range(len(steps) - 1):
        ones, add = steps[i], steps[i + 1]
        if ones.kind == "ones" and add.kind == "combine" and add.fn is operator.add:
            steps[i : i + 2] = [Step("count_values", label="count with Counter", where=add.where)]
            if i and steps[i - 1].kind == "flat_map":
                before = steps[i - 1]
                steps[i - 1 : i + 1] = [Step("flat_map_count", before.fn, None, f"{before.label} counted", before.where)]
            return replace(op, map_side=tuple(steps))
    return op


def push_into_reader(op: Op) -> Op:
    """Predicate and projection pushdown: the ``where`` steps that come first after a
    Parquet or CSV reader go into it (Parquet skips the row groups whose statistics rule
    them out; both drop rows as each block is read), and when the steps after it name
    every column they use before a step that projects (``select``, an aggregate,
    ``count``), it reads those columns only."""
    if type(op) is Narrow:
        steps = op.steps
    elif type(op) is Shuffle:
        steps = op.map_side
    else:
        return op
    source = op.input
    if type(source) is not Source or not source.specs or source.specs[0][0] not in ("parquet", "csv"):
        return op
    parquet = source.specs[0][0] == "parquet"
    pushed = 0
    while pushed < len(steps) and steps[pushed].kind == "where":
        pushed += 1
    columns = _columns_needed(steps[pushed:])
    if pushed == 0 and columns is None:
        return op
    before = source.specs[0][3 if parquet else 6]
    if columns is not None and before is not None:
        columns = [c for c in before if c in columns]  # already narrowed: keep its order
    if columns is None:
        columns = before
    wheres = steps[:pushed]
    if parquet:
        condition = _conjunction(source.specs[0][4], wheres)
        specs = tuple((*spec[:3], _tuple(columns), condition) for spec in source.specs)
    else:  # the steps themselves: an error in one names its line, as it would unpushed
        wheres = source.specs[0][7] + wheres
        condition = _conjunction(None, wheres)
        specs = tuple((*spec[:6], _tuple(columns), wheres) for spec in source.specs)
    shown = [f"columns={list(columns)}"] if columns is not None else []
    shown += [f"filter={condition}"] if condition is not None else []
    # a reader can be pushed into twice (a where before a shuffle's map side): one note of it
    label = source.label.split(" [pushed")[0] + f" [pushed: {'; '.join(shown)}]"
    reader = replace(source, specs=specs, label=label)
    if type(op) is Narrow:
        return replace(op, input=reader, steps=steps[pushed:]) if steps[pushed:] else reader
    return replace(op, input=reader, map_side=steps[pushed:])


def _conjunction(condition: Expr | None, wheres: tuple) -> Expr | None:
    for step in wheres:
        condition = step.arg if condition is None else condition & step.arg
    return condition


def _tuple(columns: list[str] | tuple | None) -> tuple | None:
    return tuple(columns) if columns is not None else None


def _columns_needed(steps: tuple) -> list[str] | None:
    """The input columns ``steps`` read before one of them projects; None if it is not
    known (a Python function sees whole rows) or nothing projects."""
    needed: list[str] = []
    made: set[str] = set()

    def use(names: set[str]) -> None:
        needed.extend(sorted(n for n in names - made if n not in needed))

    for step in steps:
        kind, arg = step.kind, step.arg
        if kind == "where":
            use(arg.columns())
        elif kind == "with_column":
            use(arg[1].columns())
            made.add(arg[0])
        elif kind == "order":
            use(set(arg.names))
        elif kind == "select":
            use(set().union(*(e.columns() for e in arg)))
            return needed
        elif kind in ("partial_agg", "agg"):
            keys, aggs = arg
            use(set(keys).union(*(a.expr.columns() for _, a in aggs if a.expr is not None)))
            return needed
        elif kind == "count":
            return needed
        elif kind != "head":
            return None
    return None


PASSES: tuple[Callable[[Op], Op], ...] = (
    fuse_narrow,
    combine_before_shuffle,
    pipeline_into_exchange,
    count_with_counter,
    push_into_reader,
)


def optimize(op: Op) -> Op:
    for rule in PASSES:
        op = rewrite(op, rule)
    return op
