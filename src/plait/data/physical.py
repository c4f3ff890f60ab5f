"""The physical plan: stages of tasks, one task per partition, and running them.

A stage's tasks make their rows (read a source, take one upstream partition, concatenate
the buckets an exchange sent them, or join two sides), run the record operators fused
into the stage, then either return their rows or split them into one bucket per
partition of the next stage (a task with several outputs, so each bucket is a future of
its own in the engine's store). The split of a sort (range boundaries) and of a
repartition (positions) is worked out at run time from what the stage before made.
"""

from __future__ import annotations

import collections
import functools
import itertools
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from plait.data.expr import SortKey
from plait.data.kernels import Step, Task, first_failure, partition_task
from plait.data.plan import (
    Cache,
    CacheBox,
    Join,
    Narrow,
    Op,
    Repartition,
    Shuffle,
    Sort,
    Source,
    Union,
)
from plait.runtime.context import current_engine
from plait.runtime.future import Future

SAMPLE_PER_PARTITION = 64  # keys a sort samples from each partition, for every output partition
# a join side of at most this many rows (counted as it is made) is sent whole to every
# task of the other side (the right side of an inner or left join, the left side of an
# inner or right join) instead of shuffling both sides
BROADCAST_ROWS = 20_000
BROADCAST_BYTES = 64 << 20  # or, for tables, at most this many bytes
# a hash join's bucket of the left side is skewed when it holds more than SKEW_FACTOR
# times the median bucket and more than SKEW_MIN_ROWS rows (or, tables, SKEW_MIN_BYTES):
# its left buckets are then joined in up to SKEW_SPLITS tasks, each with all of the
# right side's bucket (an inner or left join)
SKEW_FACTOR = 4
SKEW_MIN_ROWS = 100_000
SKEW_MIN_BYTES = 64 << 20
SKEW_SPLITS = 8


@dataclass(eq=False)
class Stage:
    kind: str  # read | rows | concat | join | union | cached
    partitions: int
    inputs: tuple[Stage, ...] = ()
    steps: tuple[Step, ...] = ()
    split: tuple | None = None  # (kind, count, ...): static, or completed at run time (range, slices)
    specs: tuple = ()
    how: str = ""
    on: tuple | None = None  # a join of tables: its columns
    box: CacheBox | None = None  # a cached dataset's partitions: kept after this stage runs
    label: str = ""
    number: int = 0
    # a join, for the run-time choice: its left side whole, its right side split by key
    left_whole: Stage | None = None
    shuffle_right: Stage | None = None
    sized: bool = False  # its tasks also give the size of what they made (a join measures it)
    note: str = ""

    def describe(self) -> str:
        what = {
            "read": f"read {self.label}",
            "rows": "from one partition each",
            "concat": "concatenate the buckets sent here",
            "join": f"{self.how} join of the buckets sent here",
            "union": "the partitions of its inputs, in order",
            "cached": "cached partitions",
        }[self.kind]
        parts = [what, *(s.label for s in self.steps)]
        if self.split is not None:
            kind, count = self.split[0], self.split[1]
            words = {
                "hash": "by key hash",
                "hash_rows": "by row hash",
                "single": "into one",
                "range": "by key range, boundaries from the sample at run time",
                "sampled": "its rows, and a sample of their keys",
                "slices": "by position, from the counts at run time",
            }.get(kind) or f"by hash of {', '.join(self.split[2])}"  # hash_columns
            parts.append(words if kind == "sampled" else f"split into {count} ({words})")
        inputs = f" <- stage {', '.join(str(i.number) for i in self.inputs)}" if self.inputs else ""
        tasks = "no tasks" if self.kind in ("union", "cached") else f"{self.partitions} task(s)"
        note = f" ({self.note})" if self.note else ""
        return f"stage {self.number}: {tasks}: " + " -> ".join(parts) + inputs + note


@dataclass
class Planner:
    """Turns an optimized plan into stages; a shared sub-plan becomes one stage."""

    made: dict = field(default_factory=dict)
    order: list[Stage] = field(default_factory=list)

    def stage(self, op: Op, steps: tuple[Step, ...] = (), split: tuple | None = None) -> Stage:
        key = (id(op), tuple(map(id, steps)), split)
        found = self.made.get(key)
        if found is None:
            found = self.made[key] = self._stage(op, steps, split)
            if not found.number:
                found.number = len(self.order) + 1
                self.order.append(found)
        return found

    def _stage(self, op: Op, steps: tuple, split: tuple | None) -> Stage:
        t = type(op)
        if t is Narrow:
            return self.stage(op.input, op.steps + steps, split)
        if t is Source:
            return Stage("read", op.partitions, steps=steps, split=split, specs=op.specs, label=op.label)
        if t is Shuffle:
            count = op.partitions
            up = self.stage(op.input, op.map_side, op.split)
            return Stage("concat", count, (up,), op.reduce + steps, split)
        if t is Join:
            count = op.partitions
            left = self.stage(op.left, (), op.split(0))
            right = self.stage(op.right)
            join = Stage("join", count, (left, right), steps, split, how=op.how, on=op.on)
            shuffled = join.shuffle_right = Stage("rows", right.partitions, (right,), split=op.split(1))
            shuffled.note = "if the join shuffles"
            self._add(shuffled)
            if op.how != "outer":  # a side may be sent whole: measured as it is made
                right.sized = left.sized = True
                left.note = left.note or "if the join shuffles, or sends its left side whole"
                ways = {
                    "inner": "the smaller side whole to every task of the other",
                    "left": "the right side whole to every left task",
                    "right": "the left side whole to every right task",
                }
                join.note = (
                    f"it sends {ways[op.how]} if that side has at most {BROADCAST_ROWS:,} rows (or is a table "
                    f"of at most {BROADCAST_BYTES >> 20} MB); else a hash join of stage {left.number} and {shuffled.number}"
                )
                if op.how != "right":
                    whole = join.left_whole = self.stage(op.left)
                    whole.sized = op.how == "inner"
                    whole.note = whole.note or "if the join sends its right side whole"
            return join
        if t is Sort:
            count = op.partitions
            per = SAMPLE_PER_PARTITION * count // max(1, op.input.partitions) + 1
            up = self.stage(op.input, (), ("sampled", 2, op.key, per))  # its rows and a sample of keys
            ranged = Stage("rows", up.partitions, (up,), split=("range", count, op.key, op.reverse))
            self._add(ranged)
            if type(op.key) is SortKey:  # columns of tables
                order = Step("order", arg=op.key, label=f"order by {op.key}", where=op.where)
            else:
                order = Step("sort", arg=(op.key, op.reverse), label="sort", where=op.where)
            return Stage("concat", count, (ranged,), (order, *steps), split)
        if t is Repartition:
            up = self.stage(op.input)
            sliced = Stage("rows", up.partitions, (up,), split=("slices", op.count))
            self._add(sliced)
            return Stage("concat", op.count, (sliced,), steps, split)
        if t is Union:
            parts = tuple(self.stage(p, steps, split) for p in op.parts)
            return Stage("union", sum(p.partitions for p in parts), parts)
        if t is Cache:
            box = op.box
            if box.futures is not None and box.engine is current_engine():
                base = Stage("cached", len(box.futures), box=box)
            else:
                base = Stage("union", op.partitions, (self.stage(op.input),), box=box)
            if not steps and split is None:
                return base
            self._add(base)
            return Stage("rows", base.partitions, (base,), steps, split)
        raise AssertionError(f"no stage for {t.__name__}")

    def _add(self, stage: Stage) -> None:
        stage.number = len(self.order) + 1
        self.order.append(stage)


def plan(op: Op, steps: tuple[Step, ...] = ()) -> tuple[Stage, list[Stage]]:
    planner = Planner()
    root = planner.stage(op, steps)
    return root, planner.order


class Runner:
    """Submits each stage's tasks once, inputs first; the futures of every stage it ran."""

    capture = True  # tasks return their failures (kernels.Failed): see ordered_values
    measures = True  # a join measures its sides before it chooses how to run

    def __init__(self, count_rows: bool = False) -> None:
        self.outputs: dict[int, list] = {}
        self.ran: list[list] = []  # each stage's futures, in the order submitted (inputs first)
        self.sizes: dict[int, list] = {}  # a sized stage's size futures, in task order
        self.count_rows = count_rows  # the tasks that read sources give their sizes (a progress bar's rows)
        self.rows_read: list = []  # those sizes' futures

    def values(self, futures: list, progress: bool | None = None) -> list:
        """The values of ``futures`` (a failure: see ``ordered_values``). ``progress``: a
        bar over every task."""
        from plait.runtime.api import _progress

        if progress is False or not futures or type(futures[0]) is not Future:
            return ordered_values(futures, self.ran)
        # one future per task (a task's outputs end together)
        every = [out[0] if type(out) is tuple else out for made in self.ran for out in made]
        rows = self.rows_read if self.count_rows else None
        with _progress(every, current_engine(), progress, f"plait data, {len(self.ran)} stage(s):", rows):
            return ordered_values(futures, self.ran)

    def run(self, stage: Stage) -> list:
        """One entry per task of ``stage``: a future, or a tuple of futures when it splits."""
        key = id(stage)
        if key not in self.outputs:
            self.outputs[key] = out = [submit() for submit in self._calls(stage)]
            self.ran.append(out)
            if stage.box is not None and stage.kind != "cached":
                self._keep(stage.box, out)
        return self.outputs[key]

    def _keep(self, box: CacheBox, out: list) -> None:
        box.futures, box.engine = list(out), current_engine()

    def stream(self, stage: Stage, window: int) -> Iterator:
        """The futures of ``stage``'s tasks in order, at most ``window`` submitted ahead of
        the one the caller is at: back-pressure, so a consumer slower than the workers does
        not fill the store with partitions it has not reached. None of them is kept here."""
        if stage.box is not None:  # a cached dataset keeps every partition anyway
            yield from self.run(stage)
            return
        ahead: collections.deque = collections.deque()
        for submit in self._calls(stage):
            ahead.append(submit())
            if len(ahead) >= window:
                yield ahead.popleft()
        while ahead:
            yield ahead.popleft()

    def _calls(self, stage: Stage) -> list[Callable[[], Any]]:
        """One callable per task of ``stage`` that submits it (its inputs' stages run first)."""
        kind = stage.kind
        if kind == "union":  # no tasks of its own: its inputs' tasks, in order
            return [submit for i in stage.inputs for submit in self._calls(i)]
        if kind == "cached":
            assert stage.box is not None and stage.box.futures is not None
            return [functools.partial(_given, f) for f in stage.box.futures]
        if kind == "read":
            return [functools.partial(self._call, stage, i, ("read", spec), ()) for i, spec in enumerate(stage.specs)]
        if kind == "join":
            return self._join_calls(stage)
        upstream = [self.run(i) for i in stage.inputs]
        if kind == "rows":
            if not stage.steps and stage.split is None:
                return [functools.partial(_given, f) for f in upstream[0]]
            splits = self._run_time_splits(stage, upstream[0])
            parts = [f[0] if type(f) is tuple else f for f in upstream[0]]  # sampled: (rows, keys)
            return [functools.partial(self._call, stage, i, ("rows",), (f,), splits[i]) for i, f in enumerate(parts)]
        if kind == "concat":
            buckets = _buckets(upstream[0], stage.partitions)
            return [functools.partial(self._call, stage, j, ("concat",), tuple(b)) for j, b in enumerate(buckets)]
        raise AssertionError(f"unknown stage {kind!r}")

    def _join_calls(self, stage: Stage) -> list[Callable[[], Any]]:
        """A broadcast join when a side turns out small: the right side sent whole to every
        left task (an inner or left join), or the left side to every right task (an inner
        or right join), the smaller of the two when both are; else a hash join. The sizes
        come with the sides' partitions (``Stage.sized``)."""
        how = stage.how
        right = self.run(stage.inputs[1])
        if not self.measures or how == "outer":
            return self._hash_join(stage, self.run(stage.inputs[0]), right)
        if how != "right":
            right_size = self._size(stage.inputs[1], right)
            if self._fits(right_size):
                assert stage.left_whole is not None
                lefts = self.run(stage.left_whole)
                if how == "inner":
                    left_size = self._size(stage.left_whole, lefts)
                    if self._fits(left_size) and _smaller(left_size, right_size):
                        return self._broadcast(stage, lefts, right, right_whole=False)
                return self._broadcast(stage, lefts, right, right_whole=True)
            if how == "left":
                return self._hash_join(stage, self.run(stage.inputs[0]), right)
        left = self.run(stage.inputs[0])  # split by key, and measured
        if self._fits(self._size(stage.inputs[0], left)):
            return self._broadcast(stage, _flat(left), right, right_whole=False)
        return self._hash_join(stage, left, right)

    def _broadcast(self, stage: Stage, lefts: list, rights: list, right_whole: bool) -> list[Callable[[], Any]]:
        """A task per partition of one side, each given the whole of the other."""
        if right_whole:
            make = ("join", stage.how, 1, stage.on)
            return [functools.partial(self._call, stage, i, make, (part, *rights)) for i, part in enumerate(lefts)]
        make = ("join", stage.how, len(lefts), stage.on)
        return [functools.partial(self._call, stage, i, make, (*lefts, part)) for i, part in enumerate(rights)]

    def _hash_join(self, stage: Stage, left_split: list, right: list) -> list[Callable[[], Any]]:
        """A task per key bucket: the left side's, split by key, and the right side's, split
        now; a skewed left bucket of an inner or left join is cut into several tasks."""
        n = stage.partitions
        left = _buckets(left_split, n)
        assert stage.shuffle_right is not None
        shuffled = _buckets(self.run(stage.shuffle_right), n)
        groups = [[left[j]] for j in range(n)]
        per_task = self._reported(stage.inputs[0], left_split)  # each left task's [(rows, bytes)] per bucket
        if stage.how in ("inner", "left") and per_task is not None and n > 1:
            groups = _cut_skewed([[sizes[j] for sizes in per_task] for j in range(n)], left)
        return [
            functools.partial(self._call, stage, i, ("join", stage.how, len(part), stage.on), (*part, *shuffled[j]))
            for i, (j, part) in enumerate((j, part) for j in range(n) for part in groups[j])
        ]

    def _size(self, stage: Stage, outputs: list) -> tuple[int, int]:
        """``(rows, bytes)`` of a stage's output (bytes for tables only, else 0): as its
        tasks reported it, or (a stage without tasks of its own) counted by probe tasks."""
        per_task = self._reported(stage, outputs)
        if per_task is None:  # a partition is a task's first output unless the stage splits
            parts = [out[0] if type(out) is tuple else out for out in outputs] if stage.split is None else _flat(outputs)
            return _total([s[0] for s in self._probe_all(parts, Step("size", label="size"))])
        return _total([size for sizes in per_task for size in sizes])

    def _reported(self, stage: Stage, outputs: list) -> list[list[tuple[int, int]]] | None:
        """Each task's ``[(rows, bytes)]`` per bucket, if every task of ``stage`` gave it."""
        futures = self.sizes.get(id(stage))
        return self._values(futures) if futures is not None and len(futures) == len(outputs) else None

    @staticmethod
    def _fits(size: tuple[int, int]) -> bool:
        """Small enough to send whole to every task of the other side: few rows, or (a
        table) few bytes."""
        rows, nbytes = size
        return rows <= BROADCAST_ROWS or 0 < nbytes <= BROADCAST_BYTES

    def _call(self, stage: Stage, index: int, make: tuple, args: tuple, split: Any = None) -> Any:
        split = split if split is not None else stage.split
        count = stage.split[1] if stage.split is not None else 1
        reads = self.count_rows and stage.kind == "read"
        sized = (stage.sized or reads) and self.measures
        task = self._derive(Task, index, make, stage.steps, split, self.capture, stage.number, sized)
        out = self._submit_task(f"data:stage{stage.number}", count + sized, task, args)
        if not sized:
            return out
        self.sizes.setdefault(id(stage), []).append(out[-1])
        if reads:
            self.rows_read.append(out[-1])
        return out[0] if count == 1 else out[:-1]

    # what a graph builder does otherwise (see GraphBuilder)
    def _submit_task(self, name: str, count: int, task: Any, args: tuple) -> Any:
        out = partition_task.options(name=name, num_returns=count if count > 1 else 1)(task, *args)
        return _owned(tuple(out)) if count > 1 else _owned(out)

    def _probe_all(self, partitions: list, step: Step) -> list:
        """``step`` run on each partition (a small result each), waited for."""
        made = [self._submit_task("data:probe", 1, Task(i, ("rows",), (step,)), (f,)) for i, f in enumerate(partitions)]
        return self._values(made)

    def _derive(self, fn: Callable, *args: Any) -> Any:
        return fn(*args)

    def _values(self, futures: list) -> list:
        values = _get(futures)
        raise_first_failure(values)
        return values

    def _run_time_splits(self, stage: Stage, upstream: list) -> list:
        split = stage.split
        if split is None or split[0] not in ("range", "slices"):
            return [split] * len(upstream)
        if split[0] == "range":  # each upstream task gave (its rows, a sample of their keys)
            _, count, key, reverse = split
            samples = self._values([sampled[1] for sampled in upstream])
            return [self._derive(range_split, count, key, reverse, *samples)] * len(upstream)
        counts = self._probe_all(upstream, Step("count", label="count"))
        return [self._derive(slice_split, split[1], i, *counts) for i in range(len(upstream))]


class GraphBuilder(Runner):
    """The same stages as a graph of the IR instead of submitted tasks: a task node per
    partition, probe tasks and the splits worked out from them as driver operations. A
    join is drawn as a hash join (a run chooses a broadcast when a side is small)."""

    capture = False  # a graph's run raises a task's failure itself
    measures = False  # a join is drawn as a hash join

    def __init__(self, graph: Any) -> None:
        super().__init__()
        self.graph = graph

    def _keep(self, box: CacheBox, out: list) -> None:
        pass

    def _submit_task(self, name: str, count: int, task: Any, args: tuple) -> Any:
        call = partition_task.options(name=name, num_returns=count if count > 1 else 1)
        node = self.graph.add_task(call, (task, *args))
        return tuple(self.graph.unpack(node, count)) if count > 1 else node

    def _values(self, futures: list) -> list:
        return futures  # nodes: the operations that need them take them as arguments

    def _derive(self, fn: Callable, *args: Any) -> Any:
        from plait.graph.ir import Node

        if any(type(a) is Node for a in args):
            return self.graph.add_op(fn, *args)
        return fn(*args)


def range_split(count: int, key: Any, reverse: bool, *samples: list) -> tuple:
    """A sort's split: boundaries from the keys sampled from every partition."""
    return ("range", count, boundaries(sorted(itertools.chain.from_iterable(samples)), count), key, reverse)


def slice_split(count: int, index: int, *counts: list) -> tuple:
    """A repartition's split for input partition ``index``, from every partition's row count."""
    sizes = [c[0] for c in counts]
    total = sum(sizes)
    return ("slices", count, sum(sizes[:index]), [total * p // count for p in range(count)])


def _cut_skewed(sizes: list[list[tuple[int, int]]], buckets: list[list]) -> list[list[list]]:
    """Each bucket's inputs (one per left task, ``sizes[j][i]`` their size) as they go to
    join tasks: all in one task, or, for a skewed bucket, in runs of consecutive inputs
    of about the median bucket's size (at most ``SKEW_SPLITS`` runs)."""
    rows = [sum(r for r, _ in bucket) for bucket in sizes]
    median = max(1, statistics.median(rows))
    out = []
    for j, bucket in enumerate(buckets):
        nbytes = sum(b for _, b in sizes[j])
        if rows[j] <= SKEW_FACTOR * median or (rows[j] < SKEW_MIN_ROWS and nbytes < SKEW_MIN_BYTES):
            out.append([bucket])
            continue
        target = max(median, -(-rows[j] // SKEW_SPLITS))
        runs: list[list] = [[]]
        held = 0
        for part, (r, _) in zip(bucket, sizes[j], strict=True):
            if held >= target and len(runs) < SKEW_SPLITS:
                runs.append([])
                held = 0
            runs[-1].append(part)
            held += r
        out.append(runs)
    return out


def _total(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    return sum(r for r, _ in sizes), sum(b for _, b in sizes)


def _smaller(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """``a`` smaller than ``b``: by bytes where both are tables, else by rows."""
    return a[1] < b[1] if a[1] and b[1] else a[0] < b[0]


def ordered_values(futures: list, ran: list[list]) -> list:
    """The values of ``futures``; on a failure, the one the sequential program would have
    met first: the earliest stage's, the lowest partition's. A task's own exception comes
    back as a value (``kernels.Failed``); a task the engine failed (its worker died past
    its retries) is looked for in ``ran``, each stage's outputs, inputs first."""
    from plait.runtime.api import wait

    try:
        values = _get(futures)
    except Exception:
        for made in ran:
            flat = _flat(made)
            if flat:
                wait(flat, len(flat))
            for f in flat:
                if f.exception() is not None:
                    f.result()  # raises it
        raise
    raise_first_failure(values)
    return values


def raise_first_failure(values: list) -> None:
    failed = first_failure(values)
    if failed is not None:
        raise failed.exception()


def _flat(outputs: list) -> list[Future]:
    """The futures of one stage's outputs (a task that splits gives a tuple of them)."""
    return [f for out in outputs for f in (out if type(out) is tuple else (out,)) if type(f) is Future]


def _given(future: Any) -> Any:
    return future


def _owned(out: Any) -> Any:
    """The action reports the first failure of its tasks: the others are not lost when dropped."""
    for future in out if type(out) is tuple else (out,):
        if type(future) is Future:
            future.mark_seen()
    return out


def _get(futures: list) -> list:
    """Their values; as they are when the calls ran in place (the sequential reference
    run of ``@parallel`` code gives values, not futures)."""
    from plait.runtime.api import get

    if all(type(f) is Future for f in futures):
        return get(futures)
    return [get(f) if type(f) is Future else f for f in futures]


def _buckets(upstream: list, count: int) -> list[list]:
    """For each output partition, the bucket every upstream task made for it, in task order."""
    if count == 1:
        return [list(upstream)]
    return [[outputs[j] for outputs in upstream] for j in range(count)]


def boundaries(sample: list, count: int) -> list:
    """``count - 1`` keys that cut a sorted sample into parts of about equal size (fewer
    when keys repeat: equal keys must stay in one partition)."""
    if count <= 1 or not sample:
        return []
    cuts = [sample[len(sample) * p // count] for p in range(1, count)]
    unique = [cuts[0]]
    for c in cuts[1:]:
        if unique[-1] < c:
            unique.append(c)
    return unique
