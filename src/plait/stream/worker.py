"""One worker of a dataflow: an instance of every operator, run one step at a time.

A step takes the messages and notifications the driver hands it, runs them,
and returns what goes elsewhere: messages for other workers, the records
captured for the driver, and the step's pointstamp changes as one batch.
Messages between this worker's own operators (a pipeline channel, or an
exchange that hashes to this worker) are delivered within the step, so a
chain of operators costs no trip through the driver, and their pointstamps
never need counting: nothing outside the step could observe them.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from plait.runtime.hashing import stable_hash
from plait.stream.plan import Plan
from plait.stream.timestamp import Time, less_equal

Message = tuple[int, int, Time, list]  # (operator, input port, time, records)


class StreamError(RuntimeError):
    """A dataflow was used in a way it cannot run: the message says what and how to fix it."""


class Context:
    """What an operator's code sees: ``emit``, ``notify_at``, its worker's ``state``."""

    __slots__ = ("worker", "peers", "state", "time", "_op", "_name", "_length", "_emitted", "_owner")

    def __init__(self, owner: Worker, op: int, name: str, length: int) -> None:
        self.worker = owner.index
        self.peers = owner.peers
        self.state: dict = {}
        self.time: Time = ()
        self._op = op
        self._name = name
        self._length = length
        self._emitted: dict[tuple[int, Time], list] = {}
        self._owner = owner

    def emit(self, record: Any, time: Time | None = None, port: int = 0) -> None:
        """Send ``record`` on, at the current time or a later one."""
        self.emit_many((record,), time, port)

    def emit_many(self, records: Any, time: Time | None = None, port: int = 0) -> None:
        at = self.time if time is None else self._later(time, "emit at")
        batch = self._emitted.get((port, at))
        if batch is None:
            self._emitted[(port, at)] = list(records)
        else:
            batch.extend(records)

    def _emit_list(self, records: list, port: int = 0) -> None:
        """``emit_many`` at the current time of a list no one else holds (not copied)."""
        batch = self._emitted.get((port, self.time))
        if batch is None:
            self._emitted[(port, self.time)] = records
        else:
            batch.extend(records)

    def notify_at(self, time: Time | None = None) -> None:
        """Ask for ``on_notify(ctx, time)`` once no record at ``time`` or earlier can still arrive."""
        at = self.time if time is None else self._later(time, "notify_at")
        self._owner.request(self._op, at)

    def _later(self, time: Any, what: str) -> Time:
        time = tuple(time) if isinstance(time, (tuple, list)) else (time,)
        if len(time) != self._length or not less_equal(self.time, time):
            raise StreamError(
                f"operator {self._name!r}: {what} {time} is not at or after the time being "
                f"worked on, {self.time} (a timestamp is (epoch, one counter per enclosing loop)); "
                "an operator can only produce at the time it works on or later"
            )
        return time


class Worker:
    def __init__(self, plan: Plan, index: int, peers: int) -> None:
        self.index = index
        self.peers = peers
        self.ops = {op.id: op for op in plan.ops}
        self.consumers = plan.consumers()
        self.logic = {op.id: op.logic() for op in plan.ops if op.logic is not None}
        self.contexts = {
            op.id: Context(self, op.id, op.name, op.depth + 1) for op in plan.ops if op.logic is not None
        }
        self.requested: set[tuple[int, Time]] = set()
        self._changes: dict = {}
        self._outgoing: list[tuple[int, Message]] = []
        self._outputs: list[tuple[int, Time, list]] = []
        self._local: deque[Message] = deque()
        self._flushing = sorted(op for op, logic in self.logic.items() if logic.flushes)
        self._hashes: dict = {}  # stable_hash of keys seen lately: keys repeat

    # ------------------------------------------------------------------ a step
    def step(self, messages: list[Message], notifications: list[tuple[int, Time]]) -> tuple:
        """Run the messages, then the notifications (earliest first); return (messages
        for others as (worker, message), outputs for the driver, pointstamp changes)."""
        changes = self._changes
        for message in messages:
            key = (("in", message[0], message[1]), message[2])
            changes[key] = changes.get(key, 0) - 1
            self._local.append(message)
        self._drain()
        self._flush_held()
        for op, time in sorted(notifications, key=lambda n: n[1]):
            if (op, time) not in self.requested:
                continue  # another worker's request at this pointstamp
            self.requested.discard((op, time))
            key = (("op", op), time)
            changes[key] = changes.get(key, 0) - 1
            ctx = self.contexts[op]
            ctx.time = time
            try:
                self.logic[op].notify(ctx, time)
            except Exception as exc:
                self._note(exc, op, "on_notify", time)
                raise
            self._flush(op, ctx)
            self._drain()
            self._flush_held()
        outgoing, outputs = self._outgoing, self._outputs
        batch = [(k, v) for k, v in changes.items() if v]
        self._outgoing, self._outputs, self._changes = [], [], {}
        return outgoing, outputs, batch

    def request(self, op: int, time: Time) -> None:
        if (op, time) not in self.requested:
            self.requested.add((op, time))
            key = (("op", op), time)
            self._changes[key] = self._changes.get(key, 0) + 1

    def owner_of(self, key: Any) -> int:
        """The worker an exchange on ``key`` sends it to."""
        hashes = self._hashes
        try:
            h = hashes.get(key)
        except TypeError:  # an unhashable key (a list, say): hashed by its pickle
            return stable_hash(key) % self.peers
        if h is None:
            if len(hashes) > _HASHES_KEPT:
                hashes.clear()
            h = hashes[key] = stable_hash(key)
        return h % self.peers

    def output(self, op: int, time: Time, records: list) -> None:
        self._outputs.append((op, time, records))

    def _drain(self) -> None:
        local = self._local
        while local:
            op, port, time, records = local.popleft()
            ctx = self.contexts[op]
            ctx.time = time
            try:
                self.logic[op].receive(ctx, port, time, records)
            except Exception as exc:
                self._note(exc, op, "receiving records", time)
                raise
            self._flush(op, ctx)

    def _flush_held(self) -> None:
        """What operators held within the step goes on before the step ends (until none
        holds anything: one's records may reach another that holds)."""
        while True:
            sent = False
            for op in self._flushing:
                ctx = self.contexts[op]
                self.logic[op].flush(ctx)
                if ctx._emitted:
                    sent = True
                    self._flush(op, ctx)
                    self._drain()
            if not sent:
                return

    def _note(self, exc: Exception, op: int, doing: str, time: Time) -> None:
        exc.add_note(f"in stream operator {self.ops[op].name!r} ({doing} at time {time}, worker {self.index})")

    def _flush(self, op: int, ctx: Context) -> None:
        if not ctx._emitted:
            return
        emitted, ctx._emitted = ctx._emitted, {}
        for (port, time), records in emitted.items():
            if records:
                self.route(op, port, time, records)

    def route(self, op: int, port: int, time: Time, records: list) -> None:
        for target, target_port, pact in self.consumers.get((op, port), ()):
            for worker, share in split(records, pact, self.peers, self.index, self.owner_of):
                message = (target, target_port, time, share)
                if worker == self.index:
                    self._local.append(message)
                else:
                    key = (("in", target, target_port), time)
                    self._changes[key] = self._changes.get(key, 0) + 1
                    self._outgoing.append((worker, message))


_HASHES_KEPT = 1 << 17


def split(records: list, pact: Any, peers: int, here: int, owner: Any = None) -> list[tuple[int, list]]:
    """The records each worker gets over a channel with ``pact``, from worker ``here``
    (``owner``: the worker of a key, where the caller keeps its own cache of hashes)."""
    if peers == 1 or pact.kind == "pipeline":
        return [(here, records)]
    if pact.kind == "broadcast":
        return [(w, records if w == here else list(records)) for w in range(peers)]
    key = pact.key
    buckets: list[list] = [[] for _ in range(peers)]
    if owner is None:
        for record in records:
            buckets[stable_hash(key(record)) % peers].append(record)
    else:
        for record in records:
            buckets[owner(key(record))].append(record)
    return [(w, bucket) for w, bucket in enumerate(buckets) if bucket]
