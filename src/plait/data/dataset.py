"""``Dataset``: a query over partitioned rows, captured lazily and run by its actions.

Transformations (``map``, ``reduce_by_key``, ``join``, ``sort``, ...) only build a logical
plan; an action (``collect``, ``count``, ``write_json``, ...) optimizes it, plans stages
and runs them as tasks on the current engine. Each operator remembers the user's line
that made it, so ``explain()`` and errors point there.
"""

from __future__ import annotations

import functools
import operator
import os
import random
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from plait.data import finish, kernels
from plait.data.kernels import Step
from plait.data.optimize import optimize
from plait.data.physical import GraphBuilder, Runner, plan
from plait.data.plan import (
    Cache,
    Join,
    Narrow,
    Op,
    Repartition,
    Shuffle,
    Sort,
    Source,
    Union,
    parallelism,
    render,
)
from plait.parallel.callees import pure
from plait.runtime.api import unresolved
from plait.runtime.future import Future

_HERE = os.path.dirname(os.path.abspath(__file__))
JOINS = ("inner", "left", "right", "outer")


def caller() -> str:
    """``file:line`` of the first frame outside this package: the user's line."""
    frame = sys._getframe(1)
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _HERE:
        frame = frame.f_back
    if frame is None:
        return ""
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


def _callable(method: str, fn: Any) -> None:
    if not callable(fn):
        raise TypeError(f"Dataset.{method} takes a function, got {type(fn).__name__} {fn!r}")


def _positive(method: str, name: str, value: Any, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if type(value) is not int or value < 1:
        raise ValueError(f"Dataset.{method}: {name}={value!r} must be a positive int")


def sink(plan_it: Callable) -> Callable:
    """An action that writes: its directory is cleared of temporaries when it ends, and
    under ``@parallel`` it also waits, like any effect, for what comes before it (it must
    not write if an earlier call failed)."""
    run = action(plan_it, cleanup=finish.remove_temporaries)
    run.__plait_effect__ = True  # type: ignore[attr-defined]
    return run


def action(plan_it: Callable, cleanup: Callable | None = None) -> Callable:
    """An action: ``plan_it`` checks the arguments and gives (the steps that end each
    partition's last task, how the driver combines the partitions' outputs, its argument).
    Called in plain code it runs to the value; ``@parallel`` code calls its twin,
    ``__plait_future__``, which returns a future of the value at once (the combining runs
    in a task), so the program goes on while the action runs. ``progress=True`` draws a
    bar over the action's tasks (``plait.init(progress=True)`` turns it on for all)."""

    @functools.wraps(plan_it)
    def run(self: Dataset, *args: Any, progress: bool | None = None, **kwargs: Any) -> Any:
        steps, combine, arg = plan_it(self, *args, **kwargs)
        try:
            return combine(arg, self._run(*steps, progress=progress))
        finally:
            if cleanup is not None:
                cleanup(arg)

    def submit(self: Dataset, *args: Any, progress: bool | None = None, **kwargs: Any) -> Any:
        steps, combine, arg = plan_it(self, *args, **kwargs)
        runner, futures = self._submit(*steps)
        parts = [_unresolved(f) for f in futures]
        ran = [[_unresolved(out) for out in made] for made in runner.ran]
        return finish.finish_task.options(name=f"data:{plan_it.__name__}")(combine, arg, cleanup, parts, ran)

    run.__plait_future__ = submit  # type: ignore[attr-defined]
    return run


def _unresolved(out: Any) -> Any:
    """A task's outputs as themselves (a task that splits gives a tuple of them)."""
    if type(out) is tuple:
        return tuple(_unresolved(f) for f in out)
    return unresolved(out) if type(out) is Future else out


def transformation(method: Callable) -> Callable:
    """A method that only makes a new plan: under ``@parallel`` it never waits for earlier work."""
    return pure(method)


class Dataset:
    """Rows in partitions. Build with ``plait.data.from_items``, ``range``, ``read_text``, ..."""

    __slots__ = ("_op",)

    def __init__(self, op: Op) -> None:
        self._op = op

    # ------------------------------------------------------------ record operators
    def _narrow(self, step: Step) -> Dataset:
        return Dataset(Narrow("", "", self._op, (step,)))

    def _step(self, kind: str, fn: Any, label: str | None = None, arg: Any = None) -> Dataset:
        _callable(kind, fn)
        return self._narrow(Step(kind, fn, arg, label or f"{kind}({_name(fn)})", caller()))

    @transformation
    def map(self, fn: Callable[[Any], Any]) -> Dataset:
        return self._step("map", fn)

    @transformation
    def flat_map(self, fn: Callable[[Any], Iterable]) -> Dataset:
        return self._step("flat_map", fn)

    @transformation
    def filter(self, fn: Callable[[Any], Any]) -> Dataset:
        return self._step("filter", fn)

    @transformation
    def map_partitions(self, fn: Callable[[Iterator], Iterable]) -> Dataset:
        """``fn`` gets an iterator over one partition's rows and gives that partition's new rows."""
        return self._step("map_partitions", fn)

    @transformation
    def key_by(self, fn: Callable[[Any], Any]) -> Dataset:
        """``(fn(row), row)`` pairs."""
        return self._step("key_by", fn)

    @transformation
    def sample(self, fraction: float, seed: int | None = None) -> Dataset:
        """Each row kept with probability ``fraction``; the same rows every run for one seed
        and one partitioning."""
        if not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
            raise ValueError(f"Dataset.sample: fraction={fraction!r} must be a number from 0 to 1")
        seed = random.randrange(1 << 62) if seed is None else seed
        return self._narrow(Step("sample", None, (float(fraction), seed), f"sample({fraction})", caller()))

    # ------------------------------------------------------------ exchanges
    def _shuffle(self, by: str, reduce: Step, partitions: int | None) -> Dataset:
        return Dataset(Shuffle(reduce.label, reduce.where, self._op, by, partitions, (reduce,)))

    @transformation
    def reduce_by_key(self, fn: Callable[[Any, Any], Any], partitions: int | None = None) -> Dataset:
        """``(key, value)`` pairs to one pair per key, its values combined with ``fn`` (which
        must be associative: it runs on each partition first, then across them)."""
        _callable("reduce_by_key", fn)
        _positive("reduce_by_key", "partitions", partitions)
        return self._shuffle("hash", Step("combine", fn, None, f"reduce_by_key({_name(fn)})", caller()), partitions)

    @transformation
    def group_by_key(self, partitions: int | None = None) -> Dataset:
        """``(key, value)`` pairs to ``(key, [values])``, one per key."""
        _positive("group_by_key", "partitions", partitions)
        return self._shuffle("hash", Step("group", label="group_by_key", where=caller()), partitions)

    @transformation
    def count_by_value(self, partitions: int | None = None) -> Dataset:
        """``(row, count)`` for each distinct row."""
        _positive("count_by_value", "partitions", partitions)
        where = caller()
        ones = self._narrow(Step("ones", label="pair with 1", where=where))
        return ones._shuffle("hash", Step("combine", operator.add, None, "count_by_value", where), partitions)

    @transformation
    def distinct(self, partitions: int | None = None) -> Dataset:
        _positive("distinct", "partitions", partitions)
        return self._shuffle("hash_rows", Step("distinct", label="distinct", where=caller()), partitions)

    @transformation
    def top(self, n: int, key: Callable | None = None) -> Dataset:
        """The ``n`` largest rows (by ``key``), largest first: ``sorted(rows, key=key, reverse=True)[:n]``."""
        _positive("top", "n", n, allow_none=False)
        if key is not None:
            _callable("top", key)
        return self._shuffle("single", Step("top", None, (n, key), f"top({n})", caller()), None)

    @transformation
    def join(self, other: Dataset, how: str = "inner", partitions: int | None = None) -> Dataset:
        """``(k, v)`` and ``(k, w)`` pairs to ``(k, (v, w))``; ``None`` stands in for the
        missing side of a left, right or outer join."""
        if not isinstance(other, Dataset):
            raise TypeError(f"Dataset.join takes a Dataset, got {type(other).__name__}")
        if how not in JOINS:
            raise ValueError(f"Dataset.join: how={how!r}; it is one of {', '.join(JOINS)}")
        _positive("join", "partitions", partitions)
        return Dataset(Join(f"join({how})", caller(), self._op, other._op, how, partitions))

    @transformation
    def sort(self, key: Callable | None = None, reverse: bool = False) -> Dataset:
        """Every row in order, as ``sorted(rows, key=key, reverse=reverse)`` (stable)."""
        if key is not None:
            _callable("sort", key)
        label = f"sort({_name(key)})" if key is not None else "sort"
        return Dataset(Sort(label, caller(), self._op, key, bool(reverse)))

    @transformation
    def repartition(self, partitions: int) -> Dataset:
        """``partitions`` partitions of about equal size, rows in the same order."""
        _positive("repartition", "partitions", partitions, allow_none=False)
        return Dataset(Repartition(f"repartition({partitions})", caller(), self._op, partitions))

    @transformation
    def union(self, *others: Dataset) -> Dataset:
        """This dataset's rows, then each other's, in order."""
        for o in others:
            if not isinstance(o, Dataset):
                raise TypeError(f"Dataset.union takes Datasets, got {type(o).__name__}")
        return Dataset(Union("union", caller(), (self._op, *(o._op for o in others))))

    @transformation
    def cache(self) -> Dataset:
        """Keep the partitions once computed: later actions on this dataset (or on datasets
        made from it) start from them."""
        return Dataset(Cache("cache", caller(), self._op))

    # ------------------------------------------------------------ running
    @property
    def num_partitions(self) -> int:
        return self._op.partitions

    def _submit(self, *steps: Step) -> tuple[Runner, list]:
        """Every stage's tasks submitted, ``steps`` at the end of the last; one future per
        output partition."""
        root, _ = plan(optimize(self._op), steps)
        runner = Runner()
        return runner, runner.run(root)

    def _run(self, *steps: Step, progress: bool | None = None) -> list:
        """The output of each partition, with ``steps`` run at the end of its last stage."""
        runner, futures = self._submit(*steps)
        return runner.values(futures, progress) if futures else []

    def iter_rows(self, ahead: int | None = None) -> Iterator:
        """The rows in partition order, one partition at a time in the driver; at most
        ``ahead`` partitions (twice the workers by default) are computed ahead of the one
        being read, so reading a dataset larger than memory takes memory for those only."""
        _positive("iter_rows", "ahead", ahead)
        root, _ = plan(optimize(self._op))
        runner = Runner()
        for future in runner.stream(root, ahead or 2 * parallelism()):
            yield from runner.values([future])[0]

    @action
    def collect(self) -> Any:
        """Every row, in partition order."""
        return (), finish.rows, None

    @action
    def take(self, n: int) -> Any:
        """The first ``n`` rows, in order (each partition stops after its first ``n``)."""
        if type(n) is not int or n < 0:
            raise ValueError(f"Dataset.take: n={n!r} must be an int of 0 or more")
        return (Step("head", arg=n, label=f"first {n}"),), finish.first, n

    @action
    def count(self) -> Any:
        return (Step("count", label="count"),), finish.total, 0

    @action
    def sum(self, start: Any = 0) -> Any:
        """``sum(rows, start)``; partitions add up their rows first (so floats may differ in the
        last digits from one sequential sum)."""
        return (Step("sum", label="sum"),), finish.total, start

    @action
    def reduce(self, fn: Callable[[Any, Any], Any]) -> Any:
        """``functools.reduce(fn, rows)`` for an associative ``fn``."""
        _callable("reduce", fn)
        return (Step("reduce", fn, label=f"reduce({_name(fn)})", where=caller()),), finish.reduced, fn

    @action
    def aggregate(self, zero: Any, seq_op: Callable[[Any, Any], Any], comb_op: Callable[[Any, Any], Any]) -> Any:
        """Each partition folds its rows into a copy of ``zero`` with ``seq_op``; the
        partitions' results are folded into another copy with ``comb_op``."""
        _callable("aggregate", seq_op)
        _callable("aggregate", comb_op)
        step = Step("aggregate", None, (zero, seq_op), f"aggregate({_name(seq_op)})", caller())
        return (step,), finish.aggregated, (zero, comb_op)

    # ------------------------------------------------------------ sinks
    def _sink(self, fmt: str, directory: str | os.PathLike, overwrite: bool, options: dict) -> tuple:
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        old = [n for n in os.listdir(directory) if n.startswith(kernels.PART_PREFIX)]
        if old and not overwrite:
            raise FileExistsError(
                f"{directory!r} already holds {len(old)} part file(s) ({old[0]}, ...): "
                "write elsewhere, or pass overwrite=True to replace them"
            )
        for name in old:
            os.unlink(os.path.join(directory, name))
        step = Step("write", None, (fmt, directory, options), f"write_{fmt}({directory!r})", caller())
        return (step,), finish.written, directory

    @sink
    def write_text(self, directory: str | os.PathLike, *, overwrite: bool = False, encoding: str = "utf-8") -> Any:
        """One file per partition, ``str(row)`` a line; each file written whole, then renamed
        into place. Returns the files' paths."""
        return self._sink("text", directory, overwrite, {"encoding": encoding})

    @sink
    def write_json(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Any:
        """JSON lines, one file per partition (see ``write_text``)."""
        return self._sink("json", directory, overwrite, {})

    @sink
    def write_csv(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Any:
        """Rows that are dicts, one file per partition with a header (see ``write_text``)."""
        return self._sink("csv", directory, overwrite, {})

    def bad_records(self) -> Dataset:
        """The records this dataset's readers dropped with ``on_bad_records="collect"``, as
        ``BadRecord(path, line, record, reason)`` rows in file order (the files are read
        again to find them)."""
        sources: dict[int, Source] = {}

        def walk(op: Op) -> None:
            if type(op) is Source and any(kernels.collects_bad_records(spec) for spec in op.specs):
                sources.setdefault(id(op), op)
            for child in op.inputs:
                walk(child)

        walk(self._op)
        if not sources:
            raise ValueError(
                "Dataset.bad_records(): none of this dataset's readers was given on_bad_records='collect'"
            )
        parts = tuple(
            Source(f"bad records of {s.label}", caller(), tuple(kernels.bad_records_spec(spec) for spec in s.specs))
            for s in sources.values()
        )
        return Dataset(parts[0] if len(parts) == 1 else Union("union", caller(), parts))

    # ------------------------------------------------------------ looking at it
    def explain(self) -> str:
        """The logical plan, the optimized plan and the stages it runs as."""
        optimized = optimize(self._op)
        _, stages = plan(optimized)
        return "\n".join([
            "== logical plan ==", render(self._op),
            "== optimized plan ==", render(optimized),
            "== physical plan ==", *(s.describe() for s in stages),
        ])  # fmt: skip

    def to_graph(self) -> Any:
        """The stages as a ``plait.graph.Graph``: a task node per partition (and the probes
        and splits a sort or a repartition works out at run time), for pictures
        (``to_svg``, ``to_html``, ``show``) or to run: its output is the list of partitions."""
        from plait.graph import Graph

        graph = Graph(name="dataset")
        root, _ = plan(optimize(self._op))
        graph.set_output(list(GraphBuilder(graph).run(root)))
        return graph

    def __repr__(self) -> str:
        return f"<plait.data.Dataset: {self._op.describe()}, {self.num_partitions} partition(s)>"

    def __copy__(self) -> Dataset:
        return self  # immutable: a copy is the same query

    def __deepcopy__(self, memo: dict) -> Dataset:
        return self

    def __reduce__(self) -> Any:
        raise TypeError(
            "a plait.data.Dataset cannot be passed to a task: run an action (collect(), ...) "
            "and pass its result, or build the dataset inside the task"
        )

    def __iter__(self) -> Iterator:
        raise TypeError("a Dataset is not iterated directly: use collect() or iter_rows()")
