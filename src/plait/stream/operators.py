"""What each operator does with the records and notifications that reach it (one instance per worker).

Each class has ``receive(ctx, port, time, records)`` and ``notify(ctx, time)``.
Operators that work per timestamp (counting, reducing, joining) keep their
state under the timestamp, ask to be notified at it, and emit and drop that
state when the notification says the timestamp is complete.
"""

from __future__ import annotations

import pickle
from collections import Counter
from collections.abc import Callable
from typing import Any

from plait.stream.timestamp import Time


class Operator:
    flushes = False  # holds records within a step, to send at its end (``flush``)

    def receive(self, ctx: Any, port: int, time: Time, records: list) -> None:
        raise NotImplementedError

    def flush(self, ctx: Any) -> None:
        pass

    def notify(self, ctx: Any, time: Time) -> None:
        pass


class Map(Operator):
    def __init__(self, fn: Callable) -> None:
        self.fn = fn

    def receive(self, ctx, port, time, records):
        ctx._emit_list(list(map(self.fn, records)))


class FlatMap(Map):
    def receive(self, ctx, port, time, records):
        fn = self.fn
        out: list = []
        for record in records:
            out.extend(fn(record))
        ctx._emit_list(out)


class Filter(Map):
    def receive(self, ctx, port, time, records):
        ctx._emit_list(list(filter(self.fn, records)))


class Inspect(Map):
    def receive(self, ctx, port, time, records):
        for record in records:
            self.fn(record)
        ctx.emit_many(records)


class Forward(Operator):
    """Records on unchanged: exchange, broadcast and concat are this, with their pacts."""

    def receive(self, ctx, port, time, records):
        ctx.emit_many(records)


class Partition(Operator):
    def __init__(self, parts: int, fn: Callable) -> None:
        self.parts = parts
        self.fn = fn

    def receive(self, ctx, port, time, records):
        buckets: list[list] = [[] for _ in range(self.parts)]
        for record in records:
            index = self.fn(record)
            if not isinstance(index, int) or not 0 <= index < self.parts:
                raise ValueError(
                    f"partition({self.parts}, fn): fn returned {index!r} for {record!r}; "
                    f"it must return an int from 0 to {self.parts - 1}"
                )
            buckets[index].append(record)
        for index, bucket in enumerate(buckets):
            if bucket:
                ctx.emit_many(bucket, port=index)


class CountByKey(Operator):
    def __init__(self, key: Callable | None) -> None:
        self.key = key

    def receive(self, ctx, port, time, records):
        counts = ctx.state.get(time)
        if counts is None:
            counts = ctx.state[time] = Counter()
            ctx.notify_at(time)
        counts.update(records if self.key is None else map(self.key, records))

    def notify(self, ctx, time):
        ctx.emit_many(ctx.state.pop(time).items())


class CountBatch(CountByKey):
    """A step's own counts, before the exchange: one dict of counts per worker that owns
    some of the keys crosses between workers, instead of a record per word."""

    flushes = True

    def __init__(self, key: Callable | None) -> None:
        super().__init__(key)
        self.held: dict[Time, Counter] = {}

    def receive(self, ctx, port, time, records):
        counts = self.held.get(time)
        if counts is None:
            counts = self.held[time] = Counter()
        counts.update(records if self.key is None else map(self.key, records))

    def flush(self, ctx):
        held, self.held = self.held, {}
        owner = ctx._owner.owner_of
        for time, counts in held.items():
            parts: dict[int, dict] = {}
            for key, n in counts.items():
                worker = owner(key)
                part = parts.get(worker)
                if part is None:
                    part = parts[worker] = {}
                part[key] = n
            ctx._emitted[(0, time)] = list(parts.items())  # (worker, counts): exchanged by worker


class SumCounts(Operator):
    def receive(self, ctx, port, time, records):
        counts = ctx.state.get(time)
        if counts is None:
            counts = ctx.state[time] = Counter()
            ctx.notify_at(time)
        for _, part in records:
            counts.update(part)

    def notify(self, ctx, time):
        ctx.emit_many(ctx.state.pop(time).items())


class ReduceByKey(Operator):
    def __init__(self, key: Callable, fn: Callable) -> None:
        self.key = key
        self.fn = fn

    def receive(self, ctx, port, time, records):
        reduced = ctx.state.get(time)
        if reduced is None:
            reduced = ctx.state[time] = {}
            ctx.notify_at(time)
        key, fn = self.key, self.fn
        for record in records:
            k = key(record)
            reduced[k] = fn(reduced[k], record) if k in reduced else record

    def notify(self, ctx, time):
        ctx.emit_many(ctx.state.pop(time).values())


class ReduceBatch(ReduceByKey):
    """A step's records reduced on their own worker before the exchange (a reduction that
    may run in any order, as a per-timestamp one must, may also run in parts)."""

    flushes = True

    def __init__(self, key: Callable, fn: Callable) -> None:
        super().__init__(key, fn)
        self.held: dict[Time, dict] = {}

    def receive(self, ctx, port, time, records):
        reduced = self.held.get(time)
        if reduced is None:
            reduced = self.held[time] = {}
        key, fn = self.key, self.fn
        for record in records:
            k = key(record)
            reduced[k] = fn(reduced[k], record) if k in reduced else record

    def flush(self, ctx):
        held, self.held = self.held, {}
        for time, reduced in held.items():
            ctx._emitted[(0, time)] = list(reduced.values())


class Join(Operator):
    """Per timestamp, ``(key, left, right)`` for every pair with equal keys, emitted as soon
    as both sides have arrived (a symmetric hash join); a timestamp's tables go when it is
    complete."""

    def __init__(self, left_key: Callable, right_key: Callable) -> None:
        self.keys = (left_key, right_key)

    def receive(self, ctx, port, time, records):
        tables = ctx.state.get(time)
        if tables is None:
            tables = ctx.state[time] = ({}, {})
            ctx.notify_at(time)
        mine, theirs = tables[port], tables[1 - port]
        key = self.keys[port]
        out = []
        for record in records:
            k = key(record)
            mine.setdefault(k, []).append(record)
            for other in theirs.get(k, ()):
                out.append((k, record, other) if port == 0 else (k, other, record))
        ctx.emit_many(out)

    def notify(self, ctx, time):
        del ctx.state[time]


class Window(Operator):
    """Epochs ``[k*size, (k+1)*size)`` gathered (on one worker: the channel sends them all
    there) and emitted as one record ``(first_epoch, records)`` at the window's last epoch,
    once that epoch is complete."""

    def __init__(self, size: int) -> None:
        self.size = size

    def receive(self, ctx, port, time, records):
        start = time[0] - time[0] % self.size
        at = (start + self.size - 1, *time[1:])
        held = ctx.state.get(at)
        if held is None:
            held = ctx.state[at] = []
            ctx.notify_at(at)
        held.extend(records)

    def notify(self, ctx, time):
        ctx.emit((time[0] - self.size + 1, ctx.state.pop(time)))


class Unary(Operator):
    def __init__(self, on_receive: Callable, on_notify: Callable | None) -> None:
        self.on_receive = on_receive
        self.on_notify = on_notify

    def receive(self, ctx, port, time, records):
        self.on_receive(ctx, time, records)

    def notify(self, ctx, time):
        if self.on_notify is None:
            raise RuntimeError("notify_at was called, but the operator has no on_notify")
        self.on_notify(ctx, time)


class Binary(Unary):
    def __init__(self, on_left: Callable, on_right: Callable, on_notify: Callable | None) -> None:
        super().__init__(on_left, on_notify)
        self.on_right = on_right

    def receive(self, ctx, port, time, records):
        (self.on_receive if port == 0 else self.on_right)(ctx, time, records)


class ToDriver(Operator):
    """Capture and sink: the records go back to the driver with the step's results."""

    def receive(self, ctx, port, time, records):
        ctx._owner.output(ctx._op, time, records)


class Drop(Operator):
    """A probe's end of the channel: only its progress matters."""

    def receive(self, ctx, port, time, records):
        pass


# ------------------------------------------------------------------ loops
class Ingress(Operator):
    def receive(self, ctx, port, time, records):
        ctx._emitted[(0, time + (0,))] = list(records)


class Egress(Operator):
    def receive(self, ctx, port, time, records):
        ctx._emitted[(0, time[:-1])] = list(records)


class Feedback(Operator):
    def __init__(self, max_iterations: int | None) -> None:
        self.max_iterations = max_iterations

    def receive(self, ctx, port, time, records):
        following = time[-1] + 1
        if self.max_iterations is None or following < self.max_iterations:
            ctx._emitted[(0, time[:-1] + (following,))] = list(records)


class Ticks(Operator):
    """One record per time that reaches a loop's head, per worker: tells a stream brought
    into the loop with ``scope.enter`` that an iteration has begun."""

    def receive(self, ctx, port, time, records):
        if time not in ctx.state:
            ctx.state[time] = True
            ctx.notify_at(time)
            ctx.emit(None)

    def notify(self, ctx, time):
        del ctx.state[time]


class Enter(Operator):
    """A stream brought into a loop: its records (port 0, at iteration 0) are held and sent
    again at every iteration the loop begins (port 1, ticks), so every iteration sees them."""

    def receive(self, ctx, port, time, records):
        outer, counter = time[:-1], time[-1]
        held = ctx.state.get(outer)
        if held is None:
            held = ctx.state[outer] = ([], {0})
        records_held, begun = held
        if port == 0:
            records_held.extend(records)
            for i in begun:
                ctx._emitted.setdefault((0, outer + (i,)), []).extend(records)
        elif counter not in begun:
            begun.add(counter)
            if records_held:
                ctx._emitted.setdefault((0, time), []).extend(records_held)


def _canonical(record: Any) -> Any:
    try:
        hash(record)
        return record
    except TypeError:
        return pickle.dumps(record, protocol=5)


class LoopCompare(Operator):
    """Per iteration, whether this worker's share of the loop's collection changed
    (port 0: the collection going in, port 1: what the body made of it)."""

    def receive(self, ctx, port, time, records):
        sides = ctx.state.get(time)
        if sides is None:
            sides = ctx.state[time] = (Counter(), Counter())
            ctx.notify_at(time)
        sides[port].update(map(_canonical, records))

    def notify(self, ctx, time):
        before, after = ctx.state.pop(time)
        ctx.emit(before != after)


class LoopDecide(Operator):
    """Per iteration, once every worker's ``LoopCompare`` has said whether its share changed:
    the body's output goes round again (port 0) if any share changed and iterations are
    left, and otherwise leaves the loop (port 1): the collection at its fixed point."""

    def __init__(self, max_iterations: int | None) -> None:
        self.max_iterations = max_iterations

    def receive(self, ctx, port, time, records):
        held = ctx.state.get(time)
        if held is None:
            held = ctx.state[time] = [[], False]
            ctx.notify_at(time)
        if port == 0:  # what the body made of the collection
            held[0].extend(records)
        else:  # every worker's flag
            held[1] = held[1] or any(records)

    def notify(self, ctx, time):
        after, changed = ctx.state.pop(time)
        more = self.max_iterations is None or time[-1] + 1 < self.max_iterations
        if after:
            ctx.emit_many(after, port=0 if changed and more else 1)
