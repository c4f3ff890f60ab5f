"""The logical plan: what a query asks for, as a tree of operators, before any rewrite.

A ``Dataset`` holds one of these trees. Operators are immutable, so a query can be
reused and extended; the optimizer's passes (``optimize.py``) make new trees and the
physical planner (``physical.py``) turns one into stages of tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from plait.data.kernels import Step
from plait.runtime import context
from plait.runtime.resources import detect_cpus

# an exchange makes one bucket per (map task, output partition): by default it has at most
# this many output partitions per worker, so a wide input does not make n * n buckets
EXCHANGE_PARTITIONS_PER_WORKER = 4


def parallelism() -> int:
    """How many partitions fill the engine: its workers (without starting one)."""
    engine = context.engine_or_none()
    config = getattr(engine, "config", None)
    return (config.workers if config is not None and config.workers else None) or detect_cpus()


def exchange_partitions(given: int | None, inputs: int) -> int:
    """An exchange's output partitions: as asked, else the input's, at most 4 per worker."""
    return given or max(1, min(inputs, EXCHANGE_PARTITIONS_PER_WORKER * parallelism()))


@dataclass(frozen=True, eq=False)
class Op:
    label: str
    where: str

    @property
    def inputs(self) -> tuple[Op, ...]:
        return ()

    def with_inputs(self, inputs: tuple[Op, ...]) -> Op:
        return self

    @property
    def partitions(self) -> int:
        raise NotImplementedError

    def describe(self) -> str:
        return self.label


@dataclass(frozen=True, eq=False)
class Unary(Op):
    """An operator on one input."""

    input: Op = None  # type: ignore[assignment]

    @property
    def inputs(self) -> tuple[Op, ...]:
        return (self.input,)

    def with_inputs(self, inputs: tuple[Op, ...]) -> Op:
        return replace(self, input=inputs[0])


@dataclass(frozen=True, eq=False)
class Source(Op):
    """Rows read by tasks: one spec per partition (items, a range, a byte range of a file)."""

    specs: tuple = ()

    @property
    def partitions(self) -> int:
        return len(self.specs)

    def describe(self) -> str:
        return f"{self.label}: {self.partitions} partition(s)"


@dataclass(frozen=True, eq=False)
class Narrow(Unary):
    """Record operators that keep partitions apart (map, filter, ...): no data moves."""

    steps: tuple[Step, ...] = ()

    @property
    def partitions(self) -> int:
        return self.input.partitions

    def describe(self) -> str:
        return " -> ".join(f"{s.label} [{s.where}]" if s.where else s.label for s in self.steps)


@dataclass(frozen=True, eq=False)
class Shuffle(Unary):
    """Rows regrouped by key into ``count`` partitions, then ``reduce`` run on each.

    ``by`` is ``"hash"`` (pairs, by key), ``"hash_rows"`` (whole rows), ``"hash_columns"``
    (table rows, by the columns ``keys``) or ``"single"`` (all into one). ``map_side``
    holds what the optimizer runs before the exchange (a partial aggregation); it starts
    empty.
    """

    by: str = "hash"
    count: int | None = None
    reduce: tuple[Step, ...] = ()
    map_side: tuple[Step, ...] = ()
    keys: tuple[str, ...] = ()

    @property
    def split(self) -> tuple:
        return (self.by, self.partitions, self.keys) if self.by == "hash_columns" else (self.by, self.partitions)

    @property
    def partitions(self) -> int:
        return 1 if self.by == "single" else exchange_partitions(self.count, self.input.partitions)

    def describe(self) -> str:
        side = f" (map side: {' -> '.join(s.label for s in self.map_side)})" if self.map_side else ""
        by = f"hash of {', '.join(self.keys)}" if self.keys else self.by
        return f"{self.label}: {by} exchange into {self.partitions}{side}"


@dataclass(frozen=True, eq=False)
class Join(Op):
    left: Op = None  # type: ignore[assignment]
    right: Op = None  # type: ignore[assignment]
    how: str = "inner"
    count: int | None = None
    on: tuple | None = None  # tables: (left columns, right columns, suffix); pairs: None

    def split(self, side: int) -> tuple:
        if self.on is None:
            return ("hash", self.partitions)
        return ("hash_columns", self.partitions, self.on[side])

    @property
    def inputs(self) -> tuple[Op, ...]:
        return (self.left, self.right)

    def with_inputs(self, inputs: tuple[Op, ...]) -> Op:
        return replace(self, left=inputs[0], right=inputs[1])

    @property
    def partitions(self) -> int:
        return exchange_partitions(self.count, max(self.left.partitions, self.right.partitions))

    def describe(self) -> str:
        if self.how in ("inner", "left"):
            return f"{self.label}: a broadcast of a small right side, or a hash join into {self.partitions}"
        return f"{self.label}: hash join into {self.partitions}"


@dataclass(frozen=True, eq=False)
class Sort(Unary):
    """A total order: range partitions, boundaries chosen from a sample at run time."""

    key: Any = None
    reverse: bool = False

    @property
    def partitions(self) -> int:
        return exchange_partitions(None, self.input.partitions)


@dataclass(frozen=True, eq=False)
class Repartition(Unary):
    """``count`` partitions of about equal size, the rows' order kept."""

    count: int = 1

    @property
    def partitions(self) -> int:
        return self.count


@dataclass(frozen=True, eq=False)
class Union(Op):
    parts: tuple[Op, ...] = ()

    @property
    def inputs(self) -> tuple[Op, ...]:
        return self.parts

    def with_inputs(self, inputs: tuple[Op, ...]) -> Op:
        return replace(self, parts=inputs)

    @property
    def partitions(self) -> int:
        return sum(p.partitions for p in self.parts)


@dataclass(eq=False)
class CacheBox:
    """The computed partitions of a cached dataset, kept while its engine lives."""

    engine: Any = None
    futures: list | None = None


@dataclass(frozen=True, eq=False)
class Cache(Unary):
    """Its rewrites keep the same box, so they share what was computed."""

    box: CacheBox = field(default_factory=CacheBox)

    @property
    def partitions(self) -> int:
        return self.input.partitions


def render(op: Op) -> str:
    """The tree as indented text, leaves last, each operator with the user's line."""
    lines: list[str] = []

    def walk(node: Op, depth: int) -> None:
        where = f"  [{node.where}]" if node.where else ""
        lines.append(f"{'  ' * depth}{node.describe()}{where}")
        for child in node.inputs:
            walk(child, depth + 1)

    walk(op, 0)
    return "\n".join(lines)
