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
from plait.data.expr import Agg, Expr, SortKey, as_expr, lit
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
from plait.runtime.context import current_engine

_HERE = os.path.dirname(os.path.abspath(__file__))
JOINS = ("inner", "left", "right", "outer")
BATCH_FORMATS = ("arrow", "pandas", "numpy")


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


def _names(method: str, names: Any, allow_empty: bool = False) -> tuple[str, ...]:
    """Column names: one str, or an iterable of them."""
    found = (names,) if isinstance(names, str) else tuple(names) if names is not None else ()
    if not all(isinstance(n, str) and n for n in found):
        raise TypeError(f"Dataset.{method}: columns are given by name (str), got {list(found)!r}")
    if not found and not allow_empty:
        raise ValueError(f"Dataset.{method}: name at least one column")
    return found


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
        _, futures = self._submit(*steps)
        return finish.finish_task.options(name=f"data:{plan_it.__name__}")(combine, arg, cleanup, *futures)

    run.__plait_future__ = submit  # type: ignore[attr-defined]
    return run


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
    def join(
        self,
        other: Dataset,
        how: str = "inner",
        partitions: int | None = None,
        *,
        on: str | Iterable[str] | None = None,
        left_on: str | Iterable[str] | None = None,
        right_on: str | Iterable[str] | None = None,
        suffix: str = "_right",
    ) -> Dataset:
        """``(k, v)`` and ``(k, w)`` pairs to ``(k, (v, w))``; ``None`` stands in for the
        missing side of a left, right or outer join. With ``on=`` (or ``left_on=`` and
        ``right_on=``) a join of tables on columns, as SQL's: one row per matching pair,
        nulls for a missing side, null keys match nothing; the right side's other columns
        that clash with the left's get ``suffix``."""
        if not isinstance(other, Dataset):
            raise TypeError(f"Dataset.join takes a Dataset, got {type(other).__name__}")
        if how not in JOINS:
            raise ValueError(f"Dataset.join: how={how!r}; it is one of {', '.join(JOINS)}")
        _positive("join", "partitions", partitions)
        columns = None
        if on is not None or left_on is not None or right_on is not None:
            if on is not None and (left_on is not None or right_on is not None):
                raise ValueError("Dataset.join: give on=, or left_on= and right_on=, not both")
            left = _names("join", on if on is not None else left_on)
            right = _names("join", on if on is not None else right_on)
            if len(left) != len(right):
                raise ValueError(f"Dataset.join: left_on={list(left)} and right_on={list(right)} differ in length")
            columns = (left, right, suffix)
        label = f"join({how}" + (f" on {', '.join(columns[0])}" if columns else "") + ")"
        return Dataset(Join(label, caller(), self._op, other._op, how, partitions, columns))

    @transformation
    def sort(self, key: Callable | None = None, reverse: bool = False) -> Dataset:
        """Every row in order, as ``sorted(rows, key=key, reverse=reverse)`` (stable)."""
        if key is not None:
            _callable("sort", key)
        label = f"sort({_name(key)})" if key is not None else "sort"
        return Dataset(Sort(label, caller(), self._op, key, bool(reverse)))

    # ------------------------------------------------------------ columnar operators
    def _columnar(self, kind: str, arg: Any, label: str, fn: Any = None) -> Dataset:
        return self._narrow(Step(kind, fn, arg, label, caller()))

    @transformation
    def where(self, condition: Expr) -> Dataset:
        """The rows for which ``condition`` (an expression of columns) is true; a null
        condition drops the row, as SQL's WHERE."""
        if type(condition) is not Expr:
            raise TypeError(
                f"Dataset.where takes a column expression such as data.col('x') > 3, got {condition!r} "
                "(a Python function goes to filter())"
            )
        return self._columnar("where", condition, f"where {condition}")

    @transformation
    def select(self, *columns: str | Expr) -> Dataset:
        """Only these columns (names, or expressions named with ``alias``), in this order."""
        if not columns:
            raise ValueError("Dataset.select: name at least one column")
        exprs = tuple(as_expr(c, "Dataset.select") for c in columns)
        names = [e.output_name for e in exprs]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ValueError(f"Dataset.select: the column(s) {doubled} would appear twice: alias() one of them")
        return self._columnar("select", exprs, f"select {', '.join(map(str, exprs))}")

    @transformation
    def with_column(self, name: str, value: Expr | Any) -> Dataset:
        """Every column, and ``name`` set to ``value`` (added, or replaced if it is there)."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"Dataset.with_column: the name must be a column name, got {name!r}")
        value = value if type(value) is Expr else lit(value)
        return self._columnar("with_column", (name, value), f"with {name} = {value}")

    def group_by(self, *keys: str) -> GroupBy:
        """Rows grouped by the values of columns ``keys`` (none: one group of every row);
        ``.agg(name=data.sum("x"), ...)`` gives one row per group."""
        return GroupBy(self, _names("group_by", keys, allow_empty=True))

    @transformation
    def order_by(self, *columns: str, descending: bool | Iterable[bool] = False) -> Dataset:
        """Every row, ordered by the columns (nulls last), as SQL's ORDER BY; ``descending``
        is one flag or one per column."""
        names = _names("order_by", columns)
        flags = (bool(descending),) * len(names) if isinstance(descending, bool) else tuple(map(bool, descending))
        if len(flags) != len(names):
            raise ValueError(f"Dataset.order_by: {len(flags)} descending flag(s) for {len(names)} column(s)")
        key = SortKey(names, flags)
        return Dataset(Sort(f"order by {key}", caller(), self._op, key, False))

    @transformation
    def limit(self, n: int) -> Dataset:
        """The first ``n`` rows, in order, as one partition."""
        if type(n) is not int or n < 0:
            raise ValueError(f"Dataset.limit: n={n!r} must be an int of 0 or more")
        return self._shuffle("single", Step("head", arg=n, label=f"limit {n}", where=caller()), None)

    @transformation
    def explode(self, column: str) -> Dataset:
        """Each item of the list column ``column`` on a row of its own, the other columns
        repeated beside it; a row whose list is empty or null gives no row (as SQL's
        UNNEST and Spark's explode)."""
        (name,) = _names("explode", column)
        return self._columnar("explode", name, f"explode {name}")

    @transformation
    def map_batches(self, fn: Callable[[Any], Any], batch_format: str = "arrow") -> Dataset:
        """``fn`` on each partition as a whole: a ``pyarrow.Table``, a pandas DataFrame, or a
        dict of numpy arrays (``batch_format``); it returns one of those (or a list of dicts)."""
        _callable("map_batches", fn)
        if batch_format not in BATCH_FORMATS:
            raise ValueError(f"Dataset.map_batches: batch_format={batch_format!r}; it is one of {', '.join(BATCH_FORMATS)}")
        return self._columnar("map_batches", batch_format, f"map_batches({_name(fn)}, {batch_format})", fn)

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

    def _submit(self, *steps: Step, count_rows: bool = False) -> tuple[Runner, list]:
        """Every stage's tasks submitted, ``steps`` at the end of the last; one future per
        output partition."""
        root, _ = plan(optimize(self._op), steps)
        runner = Runner(count_rows)
        return runner, runner.run(root)

    def _run(self, *steps: Step, progress: bool | None = None) -> list:
        """The output of each partition, with ``steps`` run at the end of its last stage."""
        from plait.runtime.api import progress_wanted

        runner, futures = self._submit(*steps, count_rows=progress_wanted(progress, current_engine()))
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

    @action
    def to_arrow(self) -> Any:
        """Every row as one ``pyarrow.Table``, partitions in order."""
        return (), finish.table, None

    @action
    def to_pandas(self) -> Any:
        """Every row as one pandas DataFrame, partitions in order."""
        return (), finish.data_frame, None

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

    @sink
    def write_parquet(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Any:
        """One Parquet file per partition (see ``write_text``)."""
        return self._sink("parquet", directory, overwrite, {})

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


class GroupBy:
    """``Dataset.group_by(...)``: waits for its aggregates (``agg``)."""

    __slots__ = ("_dataset", "_keys")

    def __init__(self, dataset: Dataset, keys: tuple[str, ...]) -> None:
        self._dataset, self._keys = dataset, keys

    @pure
    def agg(self, partitions: int | None = None, **aggregates: Agg) -> Dataset:
        """One row per group: its key columns, then one column per aggregate, named as
        the keywords (``total=data.sum("x"), n=data.count()``). Each aggregate runs on
        every partition first and again over the partials of each group."""
        if not aggregates:
            raise ValueError("GroupBy.agg: give at least one aggregate, as total=data.sum('x')")
        for name, agg in aggregates.items():
            if type(agg) is not Agg:
                raise TypeError(
                    f"GroupBy.agg: {name}={agg!r} is not an aggregate: use data.sum, data.count, "
                    "data.mean, data.min or data.max"
                )
            if name in self._keys:
                raise ValueError(f"GroupBy.agg: {name!r} is a key column already")
        _positive("agg", "partitions", partitions)
        spec = (self._keys, tuple(aggregates.items()))
        label = f"group by {', '.join(self._keys) or '()'}: " + ", ".join(f"{n}={a}" for n, a in aggregates.items())
        step = Step("agg", None, spec, label, caller())
        op = self._dataset._op
        if not self._keys:
            return Dataset(Shuffle(label, step.where, op, "single", None, (step,)))
        return Dataset(Shuffle(label, step.where, op, "hash_columns", partitions, (step,), keys=self._keys))

    def __repr__(self) -> str:
        return f"<plait.data.GroupBy by {list(self._keys)} of {self._dataset!r}>"
