"""The user's vocabulary: a ``Dataflow``, its inputs, ``Stream`` operators, loops and outputs.

Building a dataflow only records operators in its ``Plan``; nothing runs until
``flow.run()`` or ``with flow:``. Every stream belongs to a *scope*: the
dataflow itself, or a loop made by ``iterate``, whose timestamps carry one more
counter. Streams of different scopes meet only through ``scope.enter`` (into a
loop) and the loop's own output (out of it).
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable, Iterable
from typing import Any

from plait.stream import operators as ops
from plait.stream.plan import BROADCAST, PIPELINE, OpSpec, Pact, Plan
from plait.stream.timestamp import Summary, Time
from plait.stream.worker import StreamError


class Scope:
    """The dataflow's top level, or one loop: where a stream's timestamps come from."""

    def __init__(self, flow: Dataflow, parent: Scope | None, loop: int | None) -> None:
        self.flow = flow
        self.parent = parent
        self.depth = 0 if parent is None else parent.depth + 1
        self.loops: tuple[int, ...] = () if parent is None else (*parent.loops, loop)  # type: ignore[arg-type]
        self.head: Stream | None = None  # a loop's stream of each iteration's input
        self._ticks: Stream | None = None

    def enter(self, stream: Stream) -> Stream:
        """``stream``, from an enclosing scope, inside this loop: its records are seen by
        every iteration (as if sent again at each), not only the first."""
        if stream.scope is self:
            return stream
        if self.parent is None or stream.scope.depth >= self.depth:
            raise StreamError("scope.enter(stream) brings a stream of an enclosing scope into this loop")
        if stream.scope is not self.parent:
            stream = self.parent.enter(stream)
        inside = stream._then("enter", ops.Ingress, summary=Summary.enter(self.depth), scope=self)
        if self._ticks is None:
            assert self.head is not None
            self._ticks = self.head._then("ticks", ops.Ticks)
        return self.flow._add("enter", ops.Enter, [(inside, PIPELINE), (self._ticks, BROADCAST)], scope=self)


class Stream:
    """Records with timestamps, flowing from one operator's output to the operators after it."""

    def __init__(self, flow: Dataflow, op: int, port: int, scope: Scope) -> None:
        self.flow = flow
        self.op = op
        self.port = port
        self.scope = scope

    # ---------------------------------------------------------- building
    def _then(
        self,
        name: str,
        logic: Callable[[], Any],
        pact: Pact = PIPELINE,
        outputs: int = 1,
        summary: Summary | None = None,
        scope: Scope | None = None,
    ) -> Any:
        return self.flow._add(name, logic, [(self, pact)], outputs, summary, scope)

    def _same_scope(self, other: Stream, what: str) -> None:
        if not isinstance(other, Stream):
            raise TypeError(f"{what} needs a Stream, got {type(other).__name__}")
        if other.flow is not self.flow:
            raise StreamError(f"{what}: the streams belong to two different dataflows")
        if other.scope is not self.scope:
            raise StreamError(
                f"{what}: the streams are in different scopes (one is inside a loop the other "
                "is not); bring an outer stream into a loop with scope.enter(stream)"
            )

    # ---------------------------------------------------------- record operators
    def map(self, fn: Callable[[Any], Any]) -> Stream:
        return self._then("map", lambda: ops.Map(fn))

    def flat_map(self, fn: Callable[[Any], Iterable]) -> Stream:
        return self._then("flat_map", lambda: ops.FlatMap(fn))

    def filter(self, fn: Callable[[Any], bool]) -> Stream:
        return self._then("filter", lambda: ops.Filter(fn))

    def inspect(self, fn: Callable[[Any], Any]) -> Stream:
        """``fn(record)`` on each record as it passes (on the worker that has it)."""
        return self._then("inspect", lambda: ops.Inspect(fn))

    # ---------------------------------------------------------- channels
    def exchange(self, key: Callable[[Any], Any]) -> Stream:
        """Records with equal ``key(record)`` to one worker."""
        return self._then("exchange", ops.Forward, Pact("exchange", key))

    def broadcast(self) -> Stream:
        """Every record to every worker."""
        return self._then("broadcast", ops.Forward, BROADCAST)

    def concat(self, *others: Stream) -> Stream:
        for other in others:
            self._same_scope(other, "concat")
        return self.flow._add("concat", ops.Forward, [(s, PIPELINE) for s in (self, *others)])

    def partition(self, parts: int, fn: Callable[[Any], int]) -> list[Stream]:
        """``parts`` streams; each record goes to stream ``fn(record)``."""
        if not isinstance(parts, int) or parts < 1:
            raise ValueError(f"partition needs a positive number of parts, got {parts!r}")
        first = self._then("partition", lambda: ops.Partition(parts, fn), outputs=parts)
        return [first] + [Stream(self.flow, first.op, port, self.scope) for port in range(1, parts)]

    # ---------------------------------------------------------- per timestamp
    def count_by_key(self, key: Callable[[Any], Any] | None = None) -> Stream:
        """Per timestamp, ``(key, count)`` for each key (``key(record)``, or the record).
        With several workers each batch is counted where it is first, and only its counts
        cross to the worker that owns the key."""
        if self.flow.workers == 1:
            return self._then("count_by_key", lambda: ops.CountByKey(key))
        partial = self._then("count_by_key_batch", lambda: ops.CountBatch(key))
        return partial._then("count_by_key", ops.SumCounts, Pact("exchange", _first))

    def reduce_by_key(self, key: Callable[[Any], Any], fn: Callable[[Any, Any], Any]) -> Stream:
        """Per timestamp, the records of each key combined two at a time with ``fn``, in no
        particular order (so ``fn`` must be associative and commutative); with several
        workers each batch is reduced where it is first, before the exchange."""
        if self.flow.workers > 1:
            self = self._then("reduce_by_key_batch", lambda: ops.ReduceBatch(key, fn))
        return self._then("reduce_by_key", lambda: ops.ReduceByKey(key, fn), Pact("exchange", key))

    def join(self, other: Stream, key: Callable[[Any], Any], other_key: Callable[[Any], Any] | None = None) -> Stream:
        """Per timestamp, ``(k, left, right)`` for each pair with ``key(left) == other_key(right) == k``."""
        self._same_scope(other, "join")
        right = other_key or key
        return self.flow._add(
            "join",
            lambda: ops.Join(key, right),
            [(self, Pact("exchange", key)), (other, Pact("exchange", right))],
        )

    def window(self, size: int) -> Stream:
        """One record ``(first_epoch, records)`` per window of ``size`` epochs, emitted when
        its last epoch is complete."""
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"window needs a positive number of epochs, got {size!r}")
        return self._then("window", lambda: ops.Window(size), Pact("exchange", _nothing))

    # ---------------------------------------------------------- generic operators
    def unary(
        self,
        on_receive: Callable,
        on_notify: Callable | None = None,
        exchange: Callable[[Any], Any] | None = None,
        name: str = "unary",
    ) -> Stream:
        """An operator of your own: ``on_receive(ctx, time, records)``, and
        ``on_notify(ctx, time)`` for the times it asked for with ``ctx.notify_at``."""
        pact = PIPELINE if exchange is None else Pact("exchange", exchange)
        return self._then(name, lambda: ops.Unary(on_receive, on_notify), pact)

    def binary(
        self,
        other: Stream,
        on_left: Callable,
        on_right: Callable,
        on_notify: Callable | None = None,
        exchange: tuple[Callable, Callable] | None = None,
        name: str = "binary",
    ) -> Stream:
        self._same_scope(other, "binary")
        pacts = (PIPELINE, PIPELINE) if exchange is None else tuple(Pact("exchange", k) for k in exchange)
        return self.flow._add(
            name, lambda: ops.Binary(on_left, on_right, on_notify), [(self, pacts[0]), (other, pacts[1])]
        )

    # ---------------------------------------------------------- loops
    def iterate(self, body: Callable[[Stream, Scope], Any], max_iterations: int | None = None) -> Stream:
        """Run ``body`` round a loop until nothing changes.

        ``body(inner, scope)`` gets the loop's collection of an iteration and returns
        either the next iteration's collection (the loop ends when it equals the last one,
        and the loop's output is that fixed point), or a pair ``(feedback, exit)``:
        ``feedback`` goes round again, ``exit`` leaves the loop, and the loop ends when
        nothing goes round. ``max_iterations`` bounds the number of times ``body`` runs.
        """
        if max_iterations is not None and (not isinstance(max_iterations, int) or max_iterations < 1):
            raise ValueError(f"max_iterations must be a positive int or None, got {max_iterations!r}")
        flow = self.flow
        scope = Scope(flow, self.scope, next(flow._loop_ids))
        inside = self._then("ingress", ops.Ingress, summary=Summary.enter(self.scope.depth + 1), scope=scope)
        feedback_op = flow._add("feedback", lambda: None, [], summary=Summary.feedback(scope.depth + 1), scope=scope)
        head = flow._add("head", ops.Forward, [(inside, PIPELINE), (feedback_op, PIPELINE)], scope=scope)
        scope.head = head
        result = body(head, scope)
        if isinstance(result, tuple) and len(result) == 2:
            going_round, leaving = result
            for s, what in ((going_round, "the feedback stream"), (leaving, "the exit stream")):
                head._same_scope(s, f"iterate's body returned {what}, which")
            feedback_logic: Callable[[], Any] = lambda: ops.Feedback(max_iterations)  # noqa: E731
        elif isinstance(result, Stream):
            head._same_scope(result, "iterate's body returned a stream which")
            changed = flow._add("loop_compare", ops.LoopCompare, [(head, PIPELINE), (result, PIPELINE)], scope=scope)
            decide = flow._add(
                "loop_decide",
                lambda: ops.LoopDecide(max_iterations),
                [(result, PIPELINE), (changed, BROADCAST)],
                outputs=2,
                scope=scope,
            )
            going_round, leaving = decide, Stream(flow, decide.op, 1, scope)
            feedback_logic = lambda: ops.Feedback(None)  # noqa: E731
        else:
            raise TypeError(
                "iterate's body must return a Stream (the next iteration's collection) or a pair "
                f"(feedback, exit) of streams, not {type(result).__name__}"
            )
        spec = flow.plan.ops[feedback_op.op]
        spec.inputs = [(going_round.op, going_round.port, PIPELINE)]
        spec.logic = feedback_logic
        return leaving._then("egress", ops.Egress, summary=Summary.leave(scope.depth + 1), scope=self.scope)

    # ---------------------------------------------------------- outputs
    def capture(self) -> Capture:
        """The records, kept in the driver by timestamp: ``by_epoch()``."""
        self._at_top("capture")
        end = self._then("capture", ops.ToDriver)
        out = Capture(self.flow, end.op)
        self.flow._outputs[end.op] = out
        return out

    def sink(self, fn: Callable[[Any], Any]) -> None:
        """``fn(record)`` in the driver, for each record, as it arrives."""
        self._at_top("sink")
        end = self._then("sink", ops.ToDriver)
        self.flow._outputs[end.op] = Sink(fn)

    def probe(self) -> Probe:
        """Which epochs are complete here: ``done(epoch)``, ``frontier()``."""
        self._at_top("probe")
        end = self._then("probe", ops.Drop)
        return Probe(self.flow, end.op)

    def _at_top(self, what: str) -> None:
        if self.scope.depth:
            raise StreamError(f"{what}() works on a stream outside any loop; use the loop's output")


def _first(pair: tuple) -> Any:
    return pair[0]


def _nothing(record: Any) -> None:
    return None


class Input(Stream):
    """Records fed by the program: ``send``, ``advance_to(epoch)``, ``close``."""

    def __init__(self, flow: Dataflow, op: int, scope: Scope, name: str) -> None:
        super().__init__(flow, op, 0, scope)
        self.name = name
        self.epoch = 0
        self.closed = False

    def send(self, *records: Any) -> None:
        """Records at the current epoch (waits while too many are waiting to be worked on)."""
        self._open("send")
        if records:
            self.flow._input_event(self, ("send", self.epoch, list(records)), len(records))

    def send_many(self, records: Iterable[Any]) -> None:
        self.send(*records)

    def advance_to(self, epoch: int) -> None:
        """No more records before ``epoch``: the epochs before it can complete."""
        self._open("advance_to")
        if not isinstance(epoch, int) or epoch < self.epoch:
            raise StreamError(
                f"input {self.name!r}: advance_to({epoch!r}) would go back from epoch {self.epoch}; "
                "epochs are ints that never decrease"
            )
        if epoch > self.epoch:
            self.flow._input_event(self, ("advance", self.epoch, epoch), 0)
            self.epoch = epoch

    def close(self) -> None:
        """No more records at all."""
        if not self.closed:
            self.closed = True
            self.flow._input_event(self, ("close", self.epoch), 0)

    def _open(self, what: str) -> None:
        if self.closed:
            raise StreamError(f"input {self.name!r}: {what} after close()")


class Capture:
    """Records captured at the end of a stream, by timestamp, as they arrive."""

    def __init__(self, flow: Dataflow, op: int) -> None:
        self.flow = flow
        self.op = op
        self._by_time: dict[Time, list] = {}

    def add(self, time: Time, records: list) -> None:
        self._by_time.setdefault(time, []).extend(records)

    def by_epoch(self) -> dict[int, list]:
        """``{epoch: [records]}`` for the epochs seen so far, in epoch order."""
        with self.flow._lock:
            return {t[0]: list(self._by_time[t]) for t in sorted(self._by_time)}

    def records(self) -> list:
        return [r for rs in self.by_epoch().values() for r in rs]

    def done(self, epoch: int) -> bool:
        """Every record of ``epoch`` and earlier has arrived."""
        return self.flow._complete(self.op, epoch)


class Sink:
    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def add(self, time: Time, records: list) -> None:
        for record in records:
            self.fn(record)


class Probe:
    def __init__(self, flow: Dataflow, op: int) -> None:
        self.flow = flow
        self.op = op

    def done(self, epoch: int) -> bool:
        """No record of ``epoch`` or earlier can still reach this point."""
        return self.flow._complete(self.op, epoch)

    def frontier(self) -> list[int]:
        """The epochs that may still arrive here, earliest first (empty once all is done)."""
        return self.flow._frontier(self.op)

    def wait(self, epoch: int, timeout: float | None = None) -> bool:
        """Block until ``done(epoch)``; False if ``timeout`` passed first."""
        return self.flow._wait_complete(self.op, epoch, timeout)


class Dataflow:
    """A timely dataflow: operators over timestamped records, run by ``workers`` workers,
    each running every operator on its share of the data.

    With more than one worker the workers are actor processes of the current engine
    (``processes=False`` keeps them in this process, for debugging); one worker runs in
    this process. ``max_pending`` bounds the records sent but not yet worked on: a
    ``send`` beyond it waits. ``schedule`` (a ``random.Random``) makes the driver deliver
    messages and notifications in a random order with random delays, to test operators
    and the progress protocol under reordering.
    """

    def __init__(
        self,
        workers: int = 1,
        *,
        processes: bool | None = None,
        max_pending: int = 1_000_000,
        schedule: random.Random | None = None,
    ) -> None:
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"a dataflow needs at least one worker, got workers={workers!r}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending!r}")
        self.workers = workers
        self.processes = workers > 1 if processes is None else processes
        self.max_pending = max_pending
        self.schedule = schedule
        self.plan = Plan()
        self.top = Scope(self, None, None)
        self.inputs: list[Input] = []
        self._loop_ids = itertools.count(1)
        self._outputs: dict[int, Any] = {}
        self._feeders: list[tuple[Input, Iterable]] = []
        self._lock = threading.Condition()
        self._early: list[tuple[int, tuple, int]] = []  # input events before the dataflow started
        self._runner: Any = None

    # ---------------------------------------------------------- inputs
    def input(self, name: str | None = None) -> Input:
        name = name or f"input{len(self.inputs)}"
        op = self._add(name, None, [], summary=Summary.identity(1))
        handle = Input(self, op.op, self.top, name)
        self.inputs.append(handle)
        return handle

    def from_iterable(self, items: Iterable[tuple[int, Any]], name: str | None = None) -> Stream:
        """A stream of ``(epoch, record)`` pairs, epochs never decreasing, fed while the
        dataflow runs; the input closes when the iterable ends."""
        handle = self.input(name)
        self._feeders.append((handle, items))
        return handle

    # ---------------------------------------------------------- running
    def run(self) -> None:
        """Run until every input is closed and all work is done (inputs fed with
        ``send`` must be closed first: only ``from_iterable`` inputs close themselves)."""
        fed = {id(handle) for handle, _ in self._feeders}
        for handle in self.inputs:
            if not handle.closed and id(handle) not in fed:
                raise StreamError(
                    f"input {handle.name!r} is still open, so run() would wait for it forever; "
                    "close() it first, or feed it inside `with flow:`"
                )
        with self:
            pass

    def __enter__(self) -> Dataflow:
        from plait.stream.runner import Runner

        if self._runner is not None:
            raise StreamError("this dataflow has run already; build a new Dataflow to run again")
        self._runner = Runner(self)
        self._runner.start()
        return self

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        if kind is not None:
            self._runner.stop()
            return
        fed = {id(handle) for handle, _ in self._feeders}  # those close when their iterable ends
        for handle in self.inputs:  # leaving the block closes what is left open, as a file's would
            if id(handle) not in fed:
                handle.close()
        self._runner.finish()

    def pending(self) -> int:
        """Records sent or passed on but not yet worked on (what ``max_pending`` bounds)."""
        with self._lock:
            if self._runner is None:
                return sum(records for _, _, records in self._early)
            return self._runner.pending

    # ---------------------------------------------------------- internals
    def _add(
        self,
        name: str,
        logic: Callable[[], Any] | None,
        inputs: list[tuple[Stream, Pact]],
        outputs: int = 1,
        summary: Summary | None = None,
        scope: Scope | None = None,
    ) -> Stream:
        if self._runner is not None:
            raise StreamError("a dataflow cannot grow once it has started; add operators before run()")
        at = inputs[0][0].scope if inputs else (scope or self.top)
        out_scope = scope or at
        op = OpSpec(
            id=len(self.plan.ops),
            name=name,
            depth=at.depth,
            inputs=[(s.op, s.port, pact) for s, pact in inputs],
            outputs=outputs,
            summary=summary or Summary.identity(at.depth + 1),
            logic=logic,
            scope=at.loops,
        )
        self.plan.ops.append(op)
        return Stream(self, op.id, 0, out_scope)

    def _input_event(self, handle: Input, event: tuple, records: int) -> None:
        with self._lock:
            if self._runner is None:
                self._early.append((handle.op, event, records))
                return
        self._runner.input_event(handle.op, event, records)

    def _complete(self, op: int, epoch: int) -> bool:
        if self._runner is None:
            return False
        return self._runner.complete(op, epoch)

    def _frontier(self, op: int) -> list[int]:
        if self._runner is None:
            return [0]
        return self._runner.frontier(op)

    def _wait_complete(self, op: int, epoch: int, timeout: float | None) -> bool:
        if self._runner is None:
            raise StreamError("the dataflow is not running: wait inside `with flow:`")
        return self._runner.wait_complete(op, epoch, timeout)
