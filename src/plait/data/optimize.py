"""The optimizer: small passes, each a rewrite of the logical plan that keeps its answer.

``optimize`` runs them in order; ``explain()`` shows the plan before and after. A pass
is a function from a plan to a plan, applied bottom-up by ``rewrite``.
"""

from __future__ import annotations

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


PASSES: tuple[Callable[[Op], Op], ...] = (fuse_narrow, combine_before_shuffle)


def optimize(op: Op) -> Op:
    for rule in PASSES:
        op = rewrite(op, rule)
    return op
