"""The optimizer: small passes, each a rewrite of the logical plan that keeps its answer.

``optimize`` runs them in order; ``explain()`` shows the plan before and after. A pass
is a function from a plan to a plan, applied bottom-up by ``rewrite``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import replace

from plait.data.kernels import COMBINABLE, Step
from plait.data.plan import Narrow, Op, Shuffle


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
    top) runs a copy on each partition before the exchange, so each key crosses once per
    partition instead of once per record."""
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


PASSES: tuple[Callable[[Op], Op], ...] = (fuse_narrow, combine_before_shuffle, pipeline_into_exchange, count_with_counter)


def optimize(op: Op) -> Op:
    for rule in PASSES:
        op = rewrite(op, rule)
    return op
