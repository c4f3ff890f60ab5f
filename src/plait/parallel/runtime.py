"""Running a compiled ``@parallel`` function as a dataflow of statements.

The issuer walks the function's statements in program order, as the
sequential program would, and *issues* each one: it binds the variable
versions the statement reads and reserves new versions (slots) for the ones
it writes, the way an out-of-order processor renames registers. Then it runs
the statement at once. Task calls return futures, and operators, attribute
reads and subscripts on futures become small tasks, so most statements finish
immediately with futures in their slots.

A statement that needs a value that is not there yet (an ``if`` on a
result, a call of an ordinary function with a future argument, a variable
whose writer is still waiting) *detaches*: a new thread takes over the
issuer's explicit continuation and goes on issuing the statements after it,
while the old thread waits and finishes the statement. A later statement that
reads a variable the detached one writes waits on that slot; everything else
runs ahead and launches its tasks. A compound statement whose header waits is
run as a *unit* on a private copy of the variables and publishes its final
versions when done. Statements that may jump out (``break``, ``continue``,
``return`` leaving them) never detach: the issuer waits there.

Side effects keep program order through barriers at the moment they happen:
reading a mutable object waits for earlier detached statements that may
write objects; writing one also waits for earlier readers; a call of an
ordinary function (``print``, I/O, methods) waits until every earlier
statement has finished and every earlier task has succeeded. Exceptions are
reported in program order: the invocation raises the earliest failure, and
statements after a failure are abandoned before they perform any effect.
"""

from __future__ import annotations

import dataclasses
import itertools
import linecache
import logging
import operator
import pickle
import sys
import threading
import types
import weakref
from collections.abc import Callable
from typing import Any

from plait.errors import PlaitError
from plait.parallel import aliases, callees, granularity, native, undo
from plait.parallel.compiler import FUTURE_API, MUTATORS, PURE, STRUCTURAL, CompiledFunction, Stmt
from plait.parallel.function import ParallelFunction
from plait.runtime.api import get
from plait.runtime.future import FAILED, FINISHED, PENDING, Future
from plait.runtime.options import task_options
from plait.runtime.task import TaskCall, TaskFunction

UNBOUND = object()
MAX_DETACHED = 512  # threads waiting on behalf of one invocation before lookahead pauses
_local = threading.local()
log = logging.getLogger("plait.parallel")
# nested calls run inline in their caller's thread; every so many levels a new thread
# takes over, so deep recursion is bounded by Python's limit per thread, as it is sequentially
INLINE_DEPTH = 12
NATIVE_LOOK_EVERY = 16  # iterations between looks at whether a loop's tasks became tiny
SPECULATION_RETRY = 0.1  # seconds between looks for idle workers while issuing waits in place


class _Abort(BaseException):
    """An earlier statement failed: this one is abandoned (never seen by users)."""


class _Unwind(BaseException):
    """A task call inside a try body failed: unwind to that try statement, past inner ones."""

    def __init__(self, exc: BaseException, collector: Collector) -> None:
        super().__init__("unwind")
        self.exc = exc
        self.collector = collector


class _Jump(BaseException):
    def __init__(self, kind: str, value: Any = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.value = value


def _apply(fn: Callable, args: tuple, kwargs: dict) -> Any:
    return fn(*args, **kwargs)


apply_task = TaskFunction(_apply, task_options("lifted", name="lifted"))
_OPTIONS: dict[str, Any] = {}


def _lift_options(name: str) -> Any:
    opts = _OPTIONS.get(name)
    if opts is None:
        opts = _OPTIONS[name] = task_options(name, apply_task.task_options, name=name)
    return opts


class _Leaf:
    """In a fused expression: the value of the fused call's argument ``index``."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __reduce__(self) -> tuple:
        return _Leaf, (self.index,)


class _Node:
    """A lifted operation, ``fn`` of ``specs`` (leaves, nodes, or constants), still pending:
    a later operation on its result may compute it again inside its own call instead of
    waiting for it (``fused``), so a chain of small operations costs one round trip."""

    __slots__ = ("fn", "specs", "size")

    def __init__(self, fn: Callable, specs: tuple, size: int) -> None:
        self.fn = fn
        self.specs = specs
        self.size = size  # operations in it

    def __reduce__(self) -> tuple:
        return _Node, (self.fn, self.specs, self.size)

    def value(self, leaves: tuple) -> Any:
        return self.fn(*[
            leaves[s.index] if type(s) is _Leaf else s.value(leaves) if type(s) is _Node else s
            for s in self.specs
        ])  # fmt: skip


def _apply_fused(node: _Node, *leaves: Any) -> Any:
    return node.value(leaves)


apply_fused_task = TaskFunction(_apply_fused, task_options("lifted", name="lifted"))
# a fused call computes at most this many operations: a long chain (``s += f(i)`` in a loop)
# becomes one call per this many links, each computing only its own links
FUSE_MAX = 8


_BINOPS = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": operator.pow, "<<": operator.lshift,
    ">>": operator.rshift, "|": operator.or_, "^": operator.xor, "&": operator.and_, "@": operator.matmul,
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift,
    ">>=": operator.irshift, "|=": operator.ior, "^=": operator.ixor, "&=": operator.iand,
    "@=": operator.imatmul,
}  # fmt: skip
_CMPS = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge, "in": lambda a, b: a in b, "not in": lambda a, b: a not in b,
}  # fmt: skip
_UNARY = {"neg": operator.neg, "pos": operator.pos, "invert": operator.invert}
# operations that only make a new value of their operands: computed again, they give an
# equal value and do nothing else, so a fused call may compute them again
_FUSIBLE = frozenset(
    [f for op, f in _BINOPS.items() if not op.endswith("=")]
    + [_CMPS[op] for op in ("==", "!=", "<", "<=", ">", ">=")]
    + list(_UNARY.values())
)
_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None), range, frozenset)


def is_before(a: tuple, b: tuple) -> bool:
    """Statement ``a`` comes before ``b`` in program order (and does not contain it)."""
    return a < b and b[: len(a)] != a


# ---------------------------------------------------------------- waitables
_slot_lock = threading.Lock()


class Slot:
    """One version of a local variable. Its event is made only if someone has to wait."""

    __slots__ = ("value", "state", "event")

    def __init__(self, value: Any = None, ready: bool = False) -> None:
        self.value = value
        self.state = 1 if ready else 0  # 0 pending, 1 ready, 2 abandoned
        self.event: threading.Event | None = None

    def ready(self) -> bool:
        return self.state != 0

    def wait(self, timeout: float | None = None) -> None:
        with _slot_lock:  # one event per slot, however many wait
            if self.state != 0:
                return
            if self.event is None:
                self.event = threading.Event()
            event = self.event
        if self.state == 0:  # settled meanwhile, the setter may have missed the event: no wait
            event.wait(timeout)

    def _settle(self, state: int) -> None:
        # no lock: the state is written before the event is read, and a waiter reads the
        # state again after making the event, so one of the two always sees the other
        self.state = state
        event = self.event
        if event is not None:
            event.set()

    def set(self, value: Any) -> None:
        self.value = value
        self._settle(1)

    def abandon(self) -> None:
        self._settle(2)

    def follow(self, other: Slot | None) -> None:
        """Take ``other``'s value (now, or when it is ready)."""
        if other is None:
            self.set(UNBOUND)
        elif other.state == 1:
            self.set(other.value)
        elif other.state == 2:
            self.abandon()
        else:
            threading.Thread(target=self._follow_later, args=(other,), daemon=True).start()

    def _follow_later(self, other: Slot) -> None:
        other.wait()
        if other.state == 1:
            self.set(other.value)
        else:
            self.abandon()


class _FuturesDone:
    __slots__ = ("futures",)

    def __init__(self, futures: list[Future]) -> None:
        self.futures = futures

    def ready(self) -> bool:
        return all(f._state != PENDING for f in self.futures)

    def wait(self, timeout: float | None = None) -> None:
        wait_all(self.futures, timeout)


def wait_all(items: list, timeout: float | None = None) -> None:
    """Wait for futures and nested invocations alike (``timeout`` for each kind)."""
    futures = [f for f in items if type(f) is Future]
    if futures:
        futures[0]._engine.wait_for(futures, len(futures), timeout)
    for item in items:
        if type(item) is Invocation:
            item.done.wait(timeout)


class _Condition:
    __slots__ = ("inv", "predicate")

    def __init__(self, inv: Invocation, predicate: Callable[[], bool]) -> None:
        self.inv = inv
        self.predicate = predicate

    def ready(self) -> bool:
        with self.inv.cond:
            return not self.predicate()

    def wait(self, timeout: float | None = None) -> None:
        with self.inv.cond:
            if timeout is not None:
                if self.predicate():
                    self.inv.cond.wait(timeout)
                return
            while self.predicate():
                self.inv.cond.wait()


# --------------------------------------------------------------- invocation
NEVER_HAPPENED = ((), None)  # the failing point of an abandoned call: before all of it


class Invocation:
    """One call of a ``@parallel`` function or helper: its statements, futures and outcome.

    Inside another invocation it stands in its caller's variables like a future
    (``_state``, ``_exc``), and its caller tracks it like one of its task calls.
    """

    def __init__(
        self, compiled: CompiledFunction, fn: Callable, args: dict[str, Any], lookahead: bool, parent: Ctx | None
    ) -> None:
        self.compiled = compiled
        self.fn = fn
        self.lookahead = lookahead
        self.parent = parent
        self.depth = parent.inv.depth + 1 if parent is not None else 0
        self.root: Invocation = parent.inv.root if parent is not None else self
        self.made_before = len(parent.created) if parent is not None else 0  # the caller's calls so far
        self.escaped: dict[int, Any] = {}  # root only: objects a write gave futures (settled at the end)
        # root only: results changed in place (see aliases); weakly, so a long loop changing
        # results keeps none alive (a reused id only makes a use read the driver's object)
        self.owned: weakref.WeakValueDictionary[int, Future] = weakref.WeakValueDictionary()
        # root only: results of `s += x` that no statement has read since (see binop)
        self.fresh: weakref.WeakSet[Future] = weakref.WeakSet()
        # root only, made at the first: lifted operations as expressions (see Ctx.fused)
        self.lifted: weakref.WeakKeyDictionary[Future, tuple[_Node, tuple]] | None = None
        self.undo: list[tuple[tuple, int, Any]] = []  # writes to outside objects; nested calls
        self.failed_at: tuple[tuple, int | None] | None = None  # a nested call's failing point (or NEVER_HAPPENED)
        self.cond = threading.Condition()
        self.detached: dict[tuple, Stmt] = {}  # statements (and units) still running off the issuer
        self.failures: list[tuple[tuple, BaseException]] = []
        self.futures: list[tuple[tuple, Future | Invocation]] = []
        self.succeeded = 0  # the first futures[:succeeded] have all finished (see calls_succeeded)
        self.lines: dict[int, int] = {}  # id of a future -> the line of the call that made it
        self.delivered: set[int] = set()  # futures whose exception user code already saw
        self.threads = 0
        self.result: Any = None
        self.done = threading.Event()
        self.outcome: tuple[bool, Any] | None = None
        self._state = PENDING
        self._exc: BaseException | None = None
        self.speculative: dict[Any, list[Future]] = {}  # calls started ahead of their iteration
        self.inline_tasks = granularity.ENABLED and not compiled.uses_futures
        # run in its caller's thread: the first time it would wait, its caller goes on without it
        self.caller: Ctx | None = None
        self.caller_thread: threading.Thread | None = None
        self.callbacks: list[Callable[[], None]] = []
        self.passed_pending = _has_pending(args)  # futures among its arguments
        env = {name: Slot(value, True) for name, value in args.items()}
        self.issuer = Issuer(self, env, (), lookahead, [Block(compiled.body)])
        self.issuer.on_done = self._finish

    # waitable
    def ready(self) -> bool:
        return self.done.is_set()

    def wait(self, timeout: float | None = None) -> None:
        self.done.wait(timeout)

    def start(self) -> None:
        """Run in a new thread; the caller gets this invocation as a pending value."""
        _spawn(self.run)

    def run_inline(self, caller: Ctx) -> None:
        """Run in the caller's thread until it would first wait (cheap for calls that never do)."""
        self.caller = caller
        self.caller_thread = threading.current_thread()
        self.run()

    def release_caller(self) -> None:
        """About to wait while run inline: let the caller's program go on in another thread.

        The caller's statement itself still waits for this call, so a function found to
        wait inside is started in a thread of its own from then on."""
        caller = self.caller
        if caller is not None and threading.current_thread() is self.caller_thread:
            self.caller = None
            self.compiled.waits = True
            caller.block_on(_Never())

    def run(self) -> None:
        try:
            self.issuer.run()
        except BaseException as exc:  # noqa: BLE001 - a fault of the runtime itself
            self._settle((False, exc))

    def _settle(self, outcome: tuple[bool, Any]) -> None:
        self.outcome = outcome
        if outcome[0]:
            self._state = FINISHED
        else:
            self._exc = outcome[1]
            self._state = FAILED
        with self.cond:
            self.done.set()
            callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            callback()

    def on_settled(self, callback: Callable[[], None]) -> None:
        with self.cond:
            if not self.done.is_set():
                self.callbacks.append(callback)
                return
        callback()

    def _finish(self) -> None:
        futures = [f for _, f in self.futures]
        if (self.detached or any(f._state == PENDING for f in futures)) and (
            threading.current_thread() is self.caller_thread
        ):
            # run inline and done issuing, but not finished: the caller goes on with this
            # call pending, and another thread waits for the rest
            _spawn(self._finish)
            return
        with self.cond:
            while self.detached:
                self.cond.wait()
        if self.speculative:
            self.drop_speculative()
        futures = [f for _, f in self.futures]
        for f in futures:  # their failures are this call's to report (or were never made)
            if type(f) is Future:
                f._seen = True
        if _engine().tracing:
            failures = [exc for _, exc in self.failures if not isinstance(exc, _Abort)]
            self._settle((False, failures[0]) if failures else (True, self.result))
            return
        wait_all(futures)
        failures = [(seq, 0, exc, -1) for seq, exc in self.failures if not isinstance(exc, _Abort)]
        failures += [
            (seq, -1, self.noted(f), index)
            for index, (seq, f) in enumerate(self.futures)
            if f._state != FINISHED and f._exc is not None and id(f) not in self.delivered
        ]
        if failures:
            failures.sort(key=lambda t: (t[0], t[1]))
            seq, kind, exc, index = failures[0]
            if self.parent is None:
                self.undo_after(seq, index if kind < 0 else None)
            else:  # its caller undoes it, with the calls beside it, in the reverse of write order
                self.failed_at = (seq, index if kind < 0 else None)
        if self.escaped:  # after the undo: a write undone may put back a future
            _settle_escaped(list(self.escaped.values()))
        if failures:
            self._settle((False, failures[0][2]))
        elif any(isinstance(exc, _Abort) for _, exc in self.failures):
            # abandoned: a call before it, in a caller, failed, so sequentially this call never
            # happened; the writes it made before it knew go too (its caller undoes them)
            if self.parent is not None:
                self.failed_at = NEVER_HAPPENED
            self._settle((False, PlaitError("a @parallel statement was abandoned without a cause")))
        else:
            try:
                # no call made and none passed in: nothing in the result can be pending
                made_calls = self.futures or self.passed_pending
                self._settle((True, resolve_deep(self.result, None) if made_calls else self.result))
            except BaseException as exc:  # noqa: BLE001
                self._settle((False, exc))

    def undo_after(self, seq: tuple, index: int | None) -> None:
        """The call failed at statement ``seq`` (at its future ``index``, for a task call's
        failure): undo the writes to outside objects made after that point, last first.
        A nested call that failed is undone from its own failing point, in the same pass
        as its siblings, so that the writes are undone in the reverse of their order."""

        def selected(entry: tuple) -> bool:
            at, mark, how = entry
            # after it: a later statement, or a write of the same statement (or of a
            # statement inside it, when the call was in a compound's header) made after it
            later_here = index is not None and at[: len(seq)] == seq and mark > index
            return is_before(seq, at) or later_here or (type(how) is Invocation and how.failed_at is not None)

        self._undo([entry for entry in self.undo if selected(entry)], seq, index)

    def _undo(self, entries: list[tuple], seq: tuple | None = None, index: int | None = None) -> None:
        """Run the undo ``entries``, last first; ``seq`` None: every nested call entirely."""
        for at, mark, how in reversed(entries):
            try:
                if type(how) is not Invocation:
                    how()
                    continue
                how.done.wait()  # still running: its writes are all made (or it gave up) first
                if seq is None or is_before(seq, at) or (index is not None and at[: len(seq)] == seq and mark > index):
                    how.undo_all()  # made after the failing call: it never happened
                else:
                    how.undo_failed()  # it failed: what it did after its failing call goes
            except Exception:  # noqa: BLE001 - the object changed shape meanwhile: left as it is
                log.debug("could not undo a write at %s", at, exc_info=True)

    def undo_failed(self) -> None:
        """This nested call failed: undo its writes made after its failing call (once)."""
        failed_at, self.failed_at = self.failed_at, None
        if failed_at is NEVER_HAPPENED:
            self._undo(self.undo)
        elif failed_at is not None:
            self.undo_after(*failed_at)

    def undo_inside(self, prefix: tuple, seq: tuple, call: Future | Invocation) -> None:
        """A ``try`` body (statements ``prefix + ...``) raised the failure of ``call``, made
        at ``seq``, and a handler catches it: undo the body's outside writes made after that
        call (sequentially they never happened); the statements after the ``try`` keep
        theirs, which do happen."""
        index = next((i for i in range(len(self.futures) - 1, -1, -1) if self.futures[i][1] is call), None)
        if index is None or not self.undo:
            return

        def after(entry: tuple) -> bool:
            at, mark, how = entry
            if at[: len(prefix)] != prefix:
                return False
            return is_before(seq, at) or (at[: len(seq)] == seq and mark > index) or how is call

        later = [entry for entry in self.undo if after(entry)]
        if later:
            self.undo = [entry for entry in self.undo if not after(entry) or entry[2] is call]  # as in undo_own
            self._undo(later, seq, index)

    def undo_own(self, seq: tuple, call: Future | Invocation) -> None:
        """Statement ``seq`` raises the failure of ``call``: undo its outside writes made after it."""
        index = next((i for i in range(len(self.futures) - 1, -1, -1) if self.futures[i][1] is call), None)
        if index is None or not self.undo:
            return

        def after(entry: tuple) -> bool:
            return entry[0] == seq and (entry[1] > index or entry[2] is call)

        later = [entry for entry in self.undo if after(entry)]
        if later:
            # the failing nested call itself stays: its failure undoes only what it did after
            # its own failing call, and a failure found later before this statement must
            # still undo the rest of it (sequentially, the call then never ran)
            self.undo = [entry for entry in self.undo if not after(entry) or entry[2] is call]
            self._undo(later, seq, index)

    def calls_succeeded(self) -> bool:
        """Has every call made so far succeeded? (Those before ``succeeded`` have.)"""
        futures = self.futures
        k, n = self.succeeded, len(futures)
        while k < n and futures[k][1]._state == FINISHED:
            k += 1
        self.succeeded = k
        return k == n

    def undo_all(self) -> None:
        self.failed_at = None  # all of it goes, the part after its failure included
        self._undo(self.undo)

    def add_speculative(self, key: Any, future: Future) -> None:
        with self.cond:
            self.speculative.setdefault(key, []).append(future)

    def take_speculative(self, key: Any) -> Future | None:
        with self.cond:
            futures = self.speculative.get(key)
            if not futures:
                return None
            future = futures.pop(0)
            if not futures:
                del self.speculative[key]
            return future

    def speculating(self) -> int:
        with self.cond:
            return sum(1 for fs in self.speculative.values() for f in fs if f._state == PENDING)

    def drop_speculative(self) -> None:
        """No iteration made these calls: cancel what has not started; results are never read."""
        with self.cond:
            futures = [f for fs in self.speculative.values() for f in fs]
            self.speculative.clear()
        for future in futures:
            future.mark_seen()  # the program never made it: a failure is nobody's to read
            future.cancel()

    def noted(self, call: Future | Invocation) -> BaseException:
        """The failure of a call made here, with a note naming the line that made it."""
        exc = call._exc
        assert exc is not None
        line = self.lines.get(id(call))
        if line is not None:
            where = f"{self.compiled.filename}:{line}"
            kind = "task call" if type(call) is Future else "call"
            note = f"raised by the {kind} at {where} (in {self.compiled.name}): {_source_line(self.compiled.filename, line)}"
            notes = getattr(exc, "__notes__", None) or []
            if note not in notes:
                exc.add_note(note)
        return exc

    def value(self) -> Any:
        self.done.wait()
        assert self.outcome is not None
        ok, value = self.outcome
        if ok:
            return value
        raise value

    # bookkeeping used by statements
    def add_detached(self, seq: tuple, stmt: Stmt) -> None:
        with self.cond:
            self.detached[seq] = stmt
            self.threads += 1

    def finish_detached(self, seq: tuple) -> None:
        with self.cond:
            self.detached.pop(seq, None)
            self.threads -= 1
            self.cond.notify_all()

    def fail(self, seq: tuple, exc: BaseException) -> None:
        with self.cond:
            self.failures.append((seq, exc))
            self.cond.notify_all()

    def failed_before(self, seq: tuple) -> bool:
        failures = self.failures
        return bool(failures) and any(is_before(s, seq) for s, _ in failures)


# ------------------------------------------------------------------ issuer
def call_natively(
    compiled: CompiledFunction, fn: Callable, arguments: dict, lookahead: Callable[[], bool]
) -> tuple[bool, Any] | None:
    """A call whose tasks are all tiny, run as plain Python (``compiled.native``):
    ``(True, value)``, or ``(False, invocation)`` when a top-level loop turned slow and
    the issuer took the rest of the call over, at the item the loop stopped at. None:
    futures among the arguments, so the call is issued."""
    twin = compiled.native
    values = [arguments[name] for name in twin.names]
    if _has_pending(values):
        return None
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s:%d: the call runs as plain Python: its tasks are measured tiny", compiled.filename, twin.line)
    ended = native.call(twin, values)
    if ended[0] == native.DONE:
        return True, ended[1]
    _, index, iterable, iterator, item, variables = ended
    stmt = compiled.body[index]
    log.debug("%s:%d: an iteration ran slowly: the loop is issued again, and the rest of the call", compiled.filename, stmt.line)
    twin.paused()
    stmt.native.paused()
    kind = _iteration_kind(iterable, stmt)
    if kind == _WALK_COPY:
        rest = [item, *iterator]
        loop = Loop(stmt, iter(rest), False, rest)
    else:
        loop = Loop(stmt, itertools.chain([item], iterator), kind == _WALK_LAZY)
    env = {name: value for name, value in variables.items() if name in compiled.locals}
    invocation = Invocation(compiled, fn, env, lookahead(), None)
    invocation.issuer.stack[-1].i = index + 1
    invocation.issuer.stack.append(loop)
    invocation.run()
    return False, invocation


_WALK_ITSELF, _WALK_COPY, _WALK_LIVE, _WALK_LAZY = range(4)


def _iteration_kind(value: Any, stmt: Stmt) -> int:
    """How a for loop walks ``value``: an immutable sequence walks itself; a container is
    walked as a copy (later statements may run ahead of the loop and change it) unless
    the loop's body changes it (walked live, each item read after the writes before
    it); anything else (a generator, a file) is lazy: advanced in program order,
    behind effects."""
    t = type(value)
    if t in (tuple, str, bytes, range):
        return _WALK_ITSELF
    if t in _CONTAINERS:
        return _WALK_LIVE if stmt.mutates_iterable else _WALK_COPY
    return _WALK_LAZY


class Block:
    __slots__ = ("stmts", "i")

    def __init__(self, stmts: list[Stmt]) -> None:
        self.stmts = stmts
        self.i = 0


class Loop:
    __slots__ = ("stmt", "iterator", "lazy", "broken", "items", "ahead", "native_in")

    def __init__(self, stmt: Stmt, iterator: Any, lazy: bool = False, items: list | None = None) -> None:
        self.stmt = stmt
        self.iterator = iterator  # None for while loops
        self.lazy = lazy  # a generator or file: advanced in program order, after a barrier
        self.broken = False
        self.items = items  # the snapshot a for loop walks, when it has one
        self.ahead = 0  # items before this index have had their calls started speculatively
        self.native_in = 0  # iterations until the next look at whether its native twin may run

    def position(self) -> int:
        """Index of the item the next iteration takes."""
        assert self.items is not None
        return len(self.items) - self.iterator.__length_hint__()


class Publish:
    """End of a unit: its final versions become the ones reserved outside."""

    __slots__ = ("reserved", "seq")

    def __init__(self, reserved: dict[str, Slot], seq: tuple) -> None:
        self.reserved = reserved
        self.seq = seq


class Collector:
    """The futures created inside one try body, with the issuer of the statement that made each."""

    __slots__ = ("entries", "body")

    def __init__(self) -> None:
        self.entries: list[tuple[tuple, Future, Issuer]] = []
        self.body: Issuer | None = None  # the issuer running the try body


class Issuer:
    """Issues statements in program order from an explicit continuation stack."""

    def __init__(
        self,
        inv: Invocation,
        env: dict[str, Slot],
        prefix: tuple,
        lookahead: bool,
        stack: list,
        parent: Ctx | None = None,
        collector: Collector | None = None,
    ) -> None:
        self.inv = inv
        self.env = env
        self.prefix = prefix
        self.counter = 0
        self.lookahead = lookahead
        self.stack = stack
        self.parent = parent  # the try/with statement running this (sequential) issuer
        self.collector = collector  # futures created inside a try body
        self.owner: threading.Thread | None = None
        self.on_done: Callable[[], None] | None = None
        # sequential issuers (try/with blocks) remember the variables before each
        # statement, to roll back to when a task call in it turns out to have raised
        self.snapshots: dict[tuple, dict] | None = {} if parent is not None else None
        # except/else/finally and with blocks: each statement's task calls must succeed
        # before the next statement, so a failure raises right there, as in Python
        self.strict = False

    def rollback(self, seq: tuple) -> None:
        snapshot = self.snapshots.get(seq) if self.snapshots is not None else None
        if snapshot is not None:
            self.env.clear()
            self.env.update(snapshot)

    def next_seq(self) -> tuple:
        self.counter += 1
        return self.prefix + (self.counter,)

    def run(self) -> None:
        me = threading.current_thread()
        self.owner = me
        stack = self.stack
        while stack and self.owner is me:
            self.step()
        if self.owner is me and self.on_done is not None:
            self.on_done()

    def detach(self) -> None:
        """Hand the continuation to a new thread; the current one finishes its statement."""
        self.owner = None
        _spawn(self.run)

    def step(self) -> None:
        frame = self.stack[-1]
        if type(frame) is Block:
            if frame.i >= len(frame.stmts):
                self.stack.pop()
                return
            stmt = frame.stmts[frame.i]
            frame.i += 1
            _DISPATCH[stmt.kind](self, stmt)
        elif type(frame) is Loop:
            self._next_iteration(frame)
        else:
            self.stack.pop()
            self._publish(frame)

    def _publish(self, frame: Publish) -> None:
        for name, slot in frame.reserved.items():
            slot.follow(self.env.get(name))
        self.inv.finish_detached(frame.seq)

    # simple statements -----------------------------------------------------
    def _new_ctx(self, stmt: Stmt, seq: tuple, reserve: frozenset[str]) -> Ctx:
        env = self.env
        if self.snapshots is not None:
            self.snapshots[seq] = dict(env)
        bound = {name: env.get(name) for name in stmt.reads}
        reserved = {}
        for name in reserve:
            slot = Slot()
            reserved[name] = slot
            env[name] = slot
        return Ctx(self, stmt, seq, bound, reserved)

    def _simple(self, stmt: Stmt) -> None:
        ctx = self._new_ctx(stmt, self.next_seq(), stmt.writes)
        ctx.execute(stmt.run)

    def _try(self, stmt: Stmt) -> None:
        ctx = self._new_ctx(stmt, self.next_seq(), stmt.writes)
        ctx.private = dict(ctx.bound)
        try:
            ctx.execute(stmt.run)
        except _Jump as jump:  # break/continue/return inside the try or with block
            self._jump(jump.kind, jump.value)

    _with = _try

    def _return(self, stmt: Stmt) -> None:
        ctx = self._new_ctx(stmt, self.next_seq(), frozenset())
        ctx.can_detach = False
        value = ctx.execute(stmt.test, returns=True)
        if ctx.ok:
            self._jump("return", value)

    def _break(self, stmt: Stmt) -> None:
        self._jump("break")

    def _continue(self, stmt: Stmt) -> None:
        self._jump("continue")

    def _jump(self, kind: str, value: Any = None) -> None:
        stack = self.stack
        if kind == "return":
            stack.clear()
            if self.parent is not None:
                raise _Jump(kind, value)
            self.inv.result = value
            return
        while stack:
            frame = stack[-1]
            if type(frame) is Loop:
                if kind == "break":
                    frame.broken = True
                    stack.pop()
                return
            if type(frame) is Publish:  # a unit never holds a jump that leaves it
                raise AssertionError("jump out of a unit")
            stack.pop()
        raise _Jump(kind)  # leaves a try/with block: the statement running us handles it

    # compound statements ----------------------------------------------------
    def _header(self, stmt: Stmt, seq: tuple) -> Ctx:
        ctx = self._new_ctx(stmt, seq, stmt.header_writes)
        ctx.can_detach = self.lookahead and not stmt.jumps and self.parent is None
        ctx.compound = True
        return ctx

    def _if(self, stmt: Stmt) -> None:
        seq = self.next_seq()
        ctx = self._header(stmt, seq)
        cond = ctx.execute(lambda c: c.truth(stmt.test(c)), returns=True)
        if not ctx.ok:
            return
        branch = Block(stmt.body if cond else stmt.orelse)
        if ctx.unit is None:
            self.stack.append(branch)
        else:
            ctx.unit.stack.append(branch)
            ctx.unit.run()

    def _for(self, stmt: Stmt) -> None:
        seq = self.next_seq()
        ctx = self._header(stmt, seq)
        started = ctx.execute(lambda c: c.loop_iterator(stmt.test(c), stmt), returns=True)
        if not ctx.ok:
            return
        loop = Loop(stmt, *started)
        if ctx.unit is None:
            self.stack.append(loop)
        else:
            ctx.unit.stack.append(loop)
            ctx.unit.run()

    def _while(self, stmt: Stmt) -> None:
        self.stack.append(Loop(stmt, None))

    def _next_iteration(self, loop: Loop) -> None:
        stmt = loop.stmt
        seq = self.next_seq()
        if loop.iterator is None:  # while: evaluate the test for this round
            ctx = self._header(stmt, seq)
            go = ctx.execute(lambda c: c.truth(stmt.test(c)), returns=True)
            if not ctx.ok:
                return
            if ctx.unit is not None:  # the rest of the loop runs as a unit in this thread
                unit = ctx.unit
                if go:
                    unit.stack.append(Block(stmt.body))
                else:
                    unit.stack.pop()
                    unit.stack.append(Block(stmt.orelse))
                unit.run()
                return
            if go:
                self.stack.append(Block(stmt.body))
            else:
                self.stack.pop()
                self.stack.append(Block(stmt.orelse))
            return
        if stmt.native is not None and self.inv.inline_tasks and not loop.lazy:
            loop.native_in -= 1
            if loop.native_in < 0:
                loop.native_in = NATIVE_LOOK_EVERY
                if stmt.native.ready() and self._native_loop(loop, stmt.native):
                    return
        iterator = loop.iterator
        lazy = loop.lazy
        live = stmt.mutates_iterable and loop.items is None  # the list itself, which the body changes
        name = stmt.target_name
        if name is not None and not (lazy or live or self.inv.failures) and self.snapshots is None:
            # the common case, with nothing to wait for: the next item of a list, a range, a
            # tuple, into one name (what the statement below does, without its context)
            for item in iterator:
                self.env[name] = Slot(item, True)
                self.stack.append(Block(stmt.body))
                return
            self._loop_over(loop)
            return

        def advance(c: Ctx) -> bool:
            if lazy:
                c.effect_barrier()  # a generator's own effects keep their place
            elif live:
                c.heap_read()  # after the earlier iterations' writes to it
            try:
                item = next(iterator)
            except StopIteration:
                return False
            stmt.target(c, item)
            return True

        ctx = self._new_ctx(stmt, seq, stmt.target_writes)
        ctx.can_detach = False  # what is issued next depends on it: the issuer waits here
        more = ctx.execute(advance, returns=True)
        if not ctx.ok:
            return
        if more:
            self.stack.append(Block(stmt.body))
        else:
            self._loop_over(loop)

    def _loop_over(self, loop: Loop) -> None:
        """Its items are all taken: the else block, unless it broke."""
        self.stack.pop()
        if not loop.broken:
            self.stack.append(Block(loop.stmt.orelse))

    def _native_loop(self, loop: Loop, twin: native.NativeLoop) -> bool:
        """Run the rest of ``loop`` as plain Python (its tasks are tiny). False: issue the
        next iteration after all (the twin declined, or handed the loop back)."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s:%d: the loop runs as plain Python from here: its tasks are measured tiny",
                self.inv.compiled.filename, loop.stmt.line,
            )  # fmt: skip
        ctx = self._new_ctx(twin.stmt, self.next_seq(), twin.stmt.writes)
        ctx.can_detach = False
        ended = ctx.execute(lambda c: c.run_native(twin, loop.iterator), returns=True)
        if not ctx.ok:
            return True  # it failed before it began (an earlier failure): as a statement does
        if ended is None:
            return False
        how, what = ended
        if how == native.PAUSED:  # an iteration was slow: issued from the next item on
            log.debug("%s:%d: an iteration ran slowly: the loop is issued again", self.inv.compiled.filename, loop.stmt.line)
            twin.paused()
            loop.iterator = itertools.chain([what], loop.iterator)
            loop.items = None
            return False
        self.stack.pop()  # the loop is over (its else block ran in the twin)
        if how == native.RAISED:
            failing = self._new_ctx(twin.stmt, self.next_seq(), frozenset())
            failing.can_detach = False
            failing.execute(lambda c: _reraise(what))
        return True

    def speculate(self) -> bool:
        """The issuer is about to wait in place (on a break, a return, a try): start the task
        calls that the innermost loop's later iterations will make, as far as idle workers
        allow. A call is taken over when its iteration makes it; one never made is cancelled
        unseen when the invocation ends. True if later items are left to start."""
        issuer: Issuer | None = self
        while issuer is not None:
            for frame in reversed(issuer.stack):
                if type(frame) is Loop:
                    if frame.items is not None and frame.stmt.speculate is not None:
                        return issuer._speculate_loop(frame)
                    return False
            issuer = issuer.parent.issuer if issuer.parent is not None else None
        return False

    def _speculate_loop(self, loop: Loop) -> bool:
        inv = self.inv
        if not inv.lookahead:  # in the driver only, as lookahead
            return False
        items = loop.items
        assert items is not None
        start = max(loop.position(), loop.ahead)
        if start >= len(items):
            return False
        room = _engine().idle_capacity()
        if room is None:  # the engine cannot tell: nothing is started speculatively
            return False
        budget = room - inv.speculating()
        if budget <= 0:
            return True
        stmt = loop.stmt
        values = []
        for name in stmt.invariants:
            slot = self.env.get(name)
            if slot is None or slot.state != 1 or slot.value is UNBOUND or _has_pending(slot.value):
                return False
            values.append(slot.value)
        index = start
        while index < len(items) and budget > 0:
            try:
                calls = stmt.speculate(items[index], *values)  # type: ignore[misc]
            except Exception:  # noqa: BLE001 - that iteration will compute it for real
                calls = []
            for fn, args, kwargs in calls:
                key = _call_key(fn, args, kwargs)
                if key is not None:
                    inv.add_speculative(key, fn(*args, **kwargs))
                    budget -= 1
            index += 1
        loop.ahead = index
        return index < len(items)

    def make_unit(self, ctx: Ctx) -> Issuer:
        """Turn the compound statement whose header waits into a unit run by this thread."""
        stmt = ctx.stmt
        private = dict(ctx.bound)
        private.update(ctx.reserved)  # a walrus in the header: filled when the header completes
        reserved = {}
        for name in stmt.writes:
            slot = Slot()
            reserved[name] = slot
            self.env[name] = slot
        unit = Issuer(self.inv, private, ctx.seq, True, [Publish(reserved, ctx.seq)])
        stack = self.stack
        if stack and type(stack[-1]) is Loop and stack[-1].stmt is stmt:
            unit.stack.append(stack.pop())  # the rest of a while loop goes with the unit
        return unit

    def abort_rest(self) -> None:
        """Abandon what is left to issue here; units on the way give up their slots."""
        stack = self.stack
        while stack:
            frame = stack.pop()
            if type(frame) is Publish:
                for slot in frame.reserved.values():
                    slot.abandon()
                self.inv.finish_detached(frame.seq)


_DISPATCH = {
    kind: getattr(Issuer, "_" + kind)
    for kind in ("simple", "if", "for", "while", "try", "with", "return", "break", "continue")
}


def _spawn(target: Callable) -> threading.Thread:
    from plait.runtime.context import override

    engine = override.engine  # a per-thread engine (tracing) goes along

    def run() -> None:
        override.engine = engine
        target()

    thread = threading.Thread(target=run, name="plait-parallel", daemon=True)
    thread.start()
    return thread


# ---------------------------------------------------------------- contexts
class Ctx:
    """What a running statement sees as ``__c``: its variable versions and the hooks."""

    __slots__ = (
        "issuer", "inv", "stmt", "seq", "bound", "reserved", "values", "private", "can_detach",
        "detached", "compound", "unit", "ok", "children", "created", "_collector", "_runs",
    )  # fmt: skip

    def __init__(self, issuer: Issuer, stmt: Stmt, seq: tuple, bound: dict, reserved: dict) -> None:
        self.issuer = issuer
        self.inv = issuer.inv
        self.stmt = stmt
        self.seq = seq
        self.bound = bound
        self.reserved = reserved
        self.values: dict[str, Any] = {}
        self.private: dict[str, Slot] | None = None  # try/with: the versions its blocks make
        self.can_detach = issuer.lookahead and not stmt.jumps and issuer.parent is None
        self.detached = False
        self.compound = False
        self.unit: Issuer | None = None
        self.ok = True
        self.children: list[Invocation] = []
        self.created: list[Future | Invocation] = []
        self._collector: Collector | None = None
        self._runs = 0

    # execution -------------------------------------------------------------
    def execute(self, fn: Callable, returns: bool = False) -> Any:
        try:
            if self.inv.failures and self.inv.failed_before(self.seq):
                raise _Abort()
            result = fn(self)
            if self.created and self.issuer.strict:
                self._raise_own_failure()
        except _Jump:
            self._complete()
            raise
        except BaseException as exc:  # noqa: BLE001 - recorded in program order
            if self.created and isinstance(exc, Exception):
                try:
                    self._raise_own_failure()  # a call this statement made before the error raised first
                except BaseException as earlier:  # noqa: BLE001
                    exc = earlier
            self.ok = False
            self._fail(exc)
            return None
        self._complete()
        return result if returns else None

    def _complete(self) -> None:
        pending_children = [c for c in self.children if not c.ready()] if self.children else None
        if pending_children and not self.detached:
            # the nested calls' effects belong to this statement: later statements'
            # barriers wait for them, but its variables are published now
            self.detached = True
            self.inv.add_detached(self.seq, self.stmt)
        for name, slot in self.reserved.items():
            if name in self.values:
                slot.set(self.values[name])
            elif self.private is not None and name in self.private:
                slot.follow(self.private[name])
            else:
                slot.follow(self.bound.get(name))
        if self.detached and self.unit is None:
            if pending_children:
                self._finish_after(pending_children)
            else:
                self.inv.finish_detached(self.seq)

    def _finish_after(self, children: list[Invocation]) -> None:
        """This statement is done once its nested calls are (their effects are its own)."""
        left = [len(children)]
        lock = threading.Lock()

        def one_settled() -> None:
            with lock:
                left[0] -= 1
                last = left[0] == 0
            if last:
                self.inv.finish_detached(self.seq)

        for child in children:
            child.on_settled(one_settled)

    def _fail(self, exc: BaseException) -> None:
        issuer = self.issuer
        if issuer.parent is not None and not isinstance(exc, _Abort):
            # inside try/with, which runs sequentially: undo the reservations and let
            # the native statement see the exception, as Python would
            for name, slot in self.reserved.items():
                if issuer.env.get(name) is not slot:
                    continue  # already rolled back further
                if self.private is not None and name in self.private:
                    # a try/with left by an exception keeps what its blocks assigned
                    slot.follow(self.private[name])
                    continue
                previous = self.bound.get(name)
                if previous is None:
                    issuer.env.pop(name, None)
                else:
                    issuer.env[name] = previous
            raise exc
        for slot in self.reserved.values():
            slot.abandon()
        self.inv.fail(self.seq, exc)
        if self.unit is not None:
            self.unit.abort_rest()
        elif self.detached:
            self.inv.finish_detached(self.seq)
        elif issuer.owner is threading.current_thread():
            issuer.abort_rest()  # nothing after a failure runs

    # blocking ----------------------------------------------------------------
    def block_on(self, waitable: Any) -> None:
        if waitable.ready():
            return
        if self.inv.caller is not None:
            self.inv.release_caller()
        if self.can_detach and not self.detached and self.inv.threads < MAX_DETACHED:
            issuer = self.issuer
            if issuer.owner is threading.current_thread():
                self.detached = True
                if self.compound:
                    self.unit = issuer.make_unit(self)
                self.inv.add_detached(self.seq, self.stmt)
                issuer.detach()
        elif self.issuer.parent is not None and not self.detached:
            self.issuer.parent.block_on(_Never())  # let the enclosing try/with detach
        if not self.detached and self.issuer.owner is threading.current_thread():
            # nothing is issued while this waits: start later iterations' calls, and again
            # now and then while it waits, as workers become free
            while self.issuer.speculate() and not waitable.ready():
                waitable.wait(SPECULATION_RETRY)
        waitable.wait()

    # variables -------------------------------------------------------------
    def load(self, name: str, seen: bool = True) -> Any:
        values = self.values
        if name in values:
            value = values[name]
        else:
            if self.private is not None and name in self.private:
                slot = self.private[name]
            else:
                slot = self.bound.get(name)
            if slot is None:
                raise UnboundLocalError(f"cannot access local variable {name!r} where it is not associated with a value")
            if slot.state != 1:
                self.block_on(slot)
                if slot.state != 1:
                    raise _Abort()
            value = slot.value
            if type(value) is Future:
                if self.inv.detached:
                    self._own_if_changed_before(name, value)
                fresh = self.inv.root.fresh
                if fresh and seen:
                    fresh.discard(value)  # seen: another name or object may refer to it now
        if value is UNBOUND:
            raise UnboundLocalError(f"cannot access local variable {name!r} where it is not associated with a value")
        return value

    def load_target(self, name: str) -> Any:
        """The value an augmented assignment (``s += x``) updates: read without making it seen."""
        return self.load(name, False)

    def store(self, name: str, value: Any) -> None:
        if self.private is not None:
            slot = Slot(value, True)
            self.private[name] = slot
        else:
            self.values[name] = value

    def store_value(self, name: str, value: Any) -> Any:
        self.store(name, value)
        return value

    def delete(self, name: str) -> None:
        self.load(name)  # NameError semantics: deleting an unbound local fails
        self.store(name, UNBOUND)

    def unbind(self, name: str) -> None:
        """The end of ``except ... as name``: Python unbinds the name, bound or not."""
        self.store(name, UNBOUND)

    def free(self, name: str) -> Any:
        compiled = self.inv.compiled
        cell = self.inv.fn.__closure__[compiled.freevars.index(name)]
        return cell.cell_contents

    # values -----------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        """The concrete value: waits for a future or a nested @parallel call."""
        t = type(value)
        if t is Future:
            if value._state == PENDING:
                self.block_on(_FuturesDone([value]))
            if value._exc is not None:
                self.deliver_failure(value)
            got = value.result()
            if not aliases.cannot_share(got):
                self.heap_read()  # the driver's object: earlier statements may be changing it
            return got
        if t is Invocation:
            if not value.ready():
                self.block_on(value)
            if value.outcome is not None and not value.outcome[0]:
                self.deliver_failure(value)
            got = value.value()
            if not aliases.cannot_share(got):
                self.heap_read()
            return got
        return value

    def spread(self, value: Any) -> Any:
        """What ``*value`` unpacks: a pending result's value; a generator expression's items
        (futures among them, as the items of a list display may be). Its items are read
        now: after the earlier statements that change it."""
        if type(value) is Lazy:
            return value.gen
        value = self.resolve(value)
        if not isinstance(value, _IMMUTABLE) and type(value) is not tuple:
            self.heap_read()
        return value

    def deliver_failure(self, obj: Any, collectors: list[Collector] | None = None) -> None:
        """User code is about to see the failure of ``obj``: raise it where the sequential program did.

        A call made inside an enclosing try body raised there: unwind to that try
        (rolling its variables back). A call made outside every try raised
        before this statement: abandon this statement; the invocation reports
        the failure. A future from elsewhere simply raises.
        """
        exc = obj._exc if type(obj) is Future else obj.outcome[1]
        for collector in (collectors or []) + self._collectors_around():
            if any(entry is obj for _, entry, _ in collector.entries):
                if self.inv.parent is not None:
                    # about to be caught inside a nested call: not if a call its caller made
                    # before it failed (then the nested call never happened: _Abort)
                    self.inv.parent.effect_barrier(self.inv.made_before)
                # the earliest failing call of that try body is the one that raised
                entries = sorted(collector.entries, key=lambda e: e[0])
                pending = [f for _, f, _ in entries if f._state == PENDING]
                if pending:
                    self.block_on(_FuturesDone(pending))
                delivered = self.inv.delivered
                for seq, entry, issuer in entries:
                    if entry._exc is not None and id(entry) not in delivered:
                        delivered.update(id(e) for _, e, _ in entries)
                        issuer.rollback(seq)
                        body = collector.body
                        if body is not None:
                            body.inv.undo_inside(body.prefix, seq, entry)
                        raise _Unwind(issuer.inv.noted(entry), collector)
                delivered.update(id(e) for _, e, _ in entries)
                raise _Unwind(exc, collector)
        for k, entry in enumerate(self.created):
            if entry is obj:
                # made by this very statement: it raises here, as sequentially (so a finally
                # or an except block around it sees it), or an earlier call of it does
                self._raise_own_failure(k)
        if any(entry is obj for _, entry in self.inv.futures):
            raise _Abort()
        raise exc

    def resolve_all(self, value: Any) -> Any:
        if _has_mutable(value):
            self.heap_read()  # a container is read (and copied if it holds futures) as it is now
        pending = []
        _collect(value, pending)
        if pending:
            futures = [p for p in pending if type(p) is Future]
            if futures:
                self.block_on(_FuturesDone(futures))
            for p in pending:
                if type(p) is Invocation and not p.ready():
                    self.block_on(p)
            return resolve_deep(value, self)
        return value

    def resolve_invocations(self, value: Any) -> Any:
        """Replace nested @parallel results inside ``value`` by their values (futures stay)."""
        t = type(value)
        if t is Invocation:  # its value may hold nested calls too (an item given one since)
            got = self.resolve(value)
            return self.resolve_invocations(got) if _has_invocation(got) else got
        if t in (list, tuple, set, frozenset):
            if not _has_invocation(value):
                return value
            return t(self.resolve_invocations(v) for v in value)
        if t is dict:
            return {self.resolve_invocations(k): self.resolve_invocations(v) for k, v in value.items()}
        return value

    def truth(self, value: Any) -> bool:
        value = self.resolve(value)
        if not isinstance(value, _IMMUTABLE):
            self.heap_read()
        return bool(value)

    def lift(self, name: str, fn: Callable, args: tuple, kwargs: dict | None = None) -> Any:
        if _has_mutable(args) or _has_mutable(kwargs):
            # the lifted call captures the containers as they are now: that reads them
            self.heap_read()
        args, kwargs = self.driver_values(args), self.driver_values(kwargs)
        # its value may be part of an input, or the input itself: never a copy
        in_driver = fn in aliases.ALIASING or fn in aliases.IN_PLACE
        if in_driver or _has_invocation(args) or _has_invocation(kwargs):
            pending: list = []
            _collect((args, kwargs), pending)
            if self.inv.lookahead and any(not p.ready() if type(p) is Invocation else in_driver and p._state == PENDING for p in pending):
                # computed in the driver once its inputs are there, without holding up
                # this statement (ordered like any statement that reads objects)
                program = _changed_in_place if fn in aliases.IN_PLACE else _computed
                return self.call_nested(program, _program(program), (fn, args, kwargs or {}), {})
            if in_driver:
                return fn(*self.resolve_all(args), **self.resolve_all(kwargs or {}))
            args, kwargs = self.resolve_invocations((args, kwargs))
        if all(type(a) is not Future or a._state == FINISHED for a in args) and not kwargs:
            values = tuple(a.result() if type(a) is Future else a for a in args)
            if all(_small(v) for v in values) and not _has_pending(values):
                return fn(*values)  # inputs ready and small: computed here, no round trip
        engine = _engine()
        if fn in _FUSIBLE and not kwargs and not engine.tracing and all(map(_operand, args)):
            if engine.distant_workers and self.inv.lookahead:
                # each link of `s += f(i)` a hop through the scheduler, or each fused link a
                # call fetching every result before it: computed here as the results arrive
                return self.call_nested(_computed, _program(_computed), (fn, args, {}), {})
            return self.fused(engine, name, fn, args)
        future = engine.submit(apply_task, (fn, args, kwargs or {}), {}, _lift_options(name))
        self.record(future)
        return future

    def fused(self, engine: Any, name: str, fn: Callable, args: tuple) -> Future:
        """``fn(*args)`` as one call of an expression in which the pending operations among
        ``args`` are computed again (up to ``FUSE_MAX`` operations in all), instead of a call
        that waits for theirs: ``s += f(i)`` in a loop then waits one round trip per
        ``FUSE_MAX`` links, not one per link."""
        root = self.inv.root
        lifted = root.lifted
        if lifted is None:
            lifted = root.lifted = weakref.WeakKeyDictionary()
        leaves: list = []
        positions: dict[int, int] = {}
        specs: list = []
        size = 1
        for a in args:
            if type(a) is Future:
                known = lifted.get(a) if a._state == PENDING else None
                if known is not None and size + known[0].size <= FUSE_MAX:
                    grafted = _graft(known[0], known[1], leaves, positions)
                    if grafted is not None:
                        specs.append(grafted)
                        size += known[0].size
                        continue
                specs.append(_Leaf(_leaf_index(a, leaves, positions)))
            else:
                specs.append(a)
        node = _Node(fn, tuple(specs), size)
        if size == 1:
            future = engine.submit(apply_task, (fn, args, {}), {}, _lift_options(name))
        else:
            future = engine.submit(apply_fused_task, (node, *leaves), {}, _lift_options(name))
        lifted[future] = (node, tuple(map(weakref.ref, leaves)))
        self.record(future)
        return future

    def _raise_own_failure(self, upto: int | None = None) -> None:
        """Raise the first failure among this statement's own calls (up to index ``upto``),
        as the sequential statement raised it: the calls after it never happened (their
        failures are dropped, the outside writes made after it undone)."""
        made = self.created if upto is None else self.created[: upto + 1]
        pending = [f for f in made if f._state == PENDING]
        if pending:
            self.block_on(_FuturesDone(pending))
        inv = self.inv
        for k, f in enumerate(made):
            if f._exc is not None and id(f) not in inv.delivered:
                inv.delivered.update(id(g) for g in self.created[k:])
                inv.undo_own(self.seq, f)
                raise inv.noted(f)

    def record(self, future: Future | Invocation) -> None:
        self.created.append(future)
        inv = self.inv
        inv.futures.append((self.seq, future))  # atomic; readers copy under inv.cond
        inv.lines[id(future)] = self.stmt.line
        issuer: Issuer | None = self.issuer
        while issuer is not None:
            if issuer.collector is not None:
                issuer.collector.entries.append((self.seq, future, self.issuer))
            issuer = issuer.parent.issuer if issuer.parent is not None else None

    # barriers ---------------------------------------------------------------
    def _earlier(self, test: Callable[[Stmt], bool]) -> Callable[[], bool]:
        seq = self.seq
        detached = self.inv.detached

        def predicate() -> bool:
            return any(is_before(s, seq) and test(stmt) for s, stmt in detached.items())

        return predicate

    def _barrier(self, test: Callable[[Stmt], bool]) -> None:
        inv = self.inv
        if inv.detached:
            predicate = self._earlier(test)
            self.block_on(_Condition(inv, predicate))
        if inv.failures and inv.failed_before(self.seq):
            raise _Abort()
        if inv.parent is not None:
            # and the nested calls its caller's statement made before this one (`h(x) + h(y)`):
            # sequentially they ran to the end before this call began
            siblings = [
                c for c in inv.parent.created[: inv.made_before] if type(c) is Invocation and not c.ready() and test(c.compiled)
            ]
            if siblings:
                self.block_on(_FuturesDone(siblings))
            inv.parent._barrier(test)

    def heap_read(self) -> None:
        self._barrier(lambda s: s.heap_write or s.effects)

    def heap_write(self) -> None:
        self._barrier(lambda s: s.heap_read or s.heap_write or s.effects)
        if self.children:
            # a nested call this statement made comes first: one that may read objects must
            # not see this write (its value stored in a dict it reads, say)
            for child in self.children:
                if not child.ready() and child.compiled.heap_read:
                    self.block_on(child)
        collectors = self._collectors_around()
        if collectors:
            # inside try: a task call made before this write would have raised first
            self._raise_failed(collectors)

    def _collectors_around(self) -> list[Collector]:
        """The try bodies this statement runs in, innermost first."""
        collectors = []
        issuer: Issuer | None = self.issuer
        while issuer is not None:
            if issuer.collector is not None:
                collectors.append(issuer.collector)
            issuer = issuer.parent.issuer if issuer.parent is not None else None
        return collectors

    def _raise_failed(self, collectors: list[Collector]) -> None:
        entries = sorted({id(f): (seq, f) for c in collectors for seq, f, _ in c.entries}.values(), key=lambda e: e[0])
        pending = [f for _, f in entries if f._state == PENDING]
        if pending:
            self.block_on(_FuturesDone(pending))
        delivered = self.inv.delivered
        for _, f in entries:
            if f._exc is not None and id(f) not in delivered:
                # sequentially this call raised here: its statement and the later ones
                # did not happen (their variables roll back), and the try around it catches it
                self.deliver_failure(f, collectors)

    def effect_barrier(self, made_before: int | None = None) -> None:
        """Wait until everything before this point has happened and every earlier call has
        succeeded. From a nested call, ``made_before`` is how many calls its caller's
        statement had made when it called (the nested call itself is not among them); an
        earlier call that failed then abandons the nested call (``_Abort``), and the caller
        raises that failure in its own place."""
        self._barrier(lambda s: True)
        if _engine().tracing:
            return  # tracing runs ordinary code as it comes; task results are symbolic
        seq = self.seq
        with self.inv.cond:
            delivered = self.inv.delivered
            # `s < seq`, not is_before: the header of a statement holding this one (a loop
            # over `list(map(task, xs))`) made its calls before this one too
            earlier = [f for s, f in self.inv.futures if s < seq and f._state != 1 and id(f) not in delivered]
        # and the calls this statement made before the effect, which come first too
        made = self.created if made_before is None else self.created[:made_before]
        earlier += [f for f in made if f._state != 1 and id(f) not in delivered]
        if earlier:
            self.block_on(_FuturesDone(earlier))
            for f in earlier:
                if f._exc is not None:
                    if made_before is not None:
                        raise _Abort()  # sequentially, the nested call asking never happened
                    self.deliver_failure(f)  # sequentially, that call raised before this effect
        if self.inv.parent is not None:
            self.inv.parent.effect_barrier(self.inv.made_before)

    # hooks used by the rewritten code ----------------------------------------
    def call(self, fn: Any, args: tuple, kwargs: dict) -> Any:
        kinds = set(map(type, args))
        if kwargs:
            kinds.update(map(type, kwargs.values()))
        if kinds <= _ATOMS:  # the common case: plain values only, nothing to look into
            if type(fn) is TaskFunction:
                return self.call_task(fn, args, kwargs)
        elif Lazy in kinds:
            fn = self.resolve(fn)
            if (fn is any or fn is all) and len(args) == 1 and not kwargs:
                return self.any_all(fn, args[0])
            if fn is next and type(args[0]) is Lazy:
                return next(args[0].gen, *args[1:])
            if not (isinstance(fn, ParallelFunction) or callees.helper(fn) is not None):
                args, kwargs = self.unlazy(fn, args), {k: self.unlazy(fn, (v,))[0] for k, v in kwargs.items()}
        if isinstance(fn, (TaskFunction, TaskCall)):
            if _has_mutable(args) or _has_mutable(kwargs):
                self.heap_read()  # the call pickles them now: after earlier statements fill them
            args, kwargs = self.driver_values(args), self.driver_values(kwargs)
            if _has_invocation(args) or _has_invocation(kwargs):
                args, kwargs = self.resolve_invocations((args, kwargs))
            return self.call_task(fn, args, kwargs)
        if isinstance(fn, ParallelFunction):
            return self.call_nested(fn.fn, fn.compiled, args, kwargs)
        if (fn is map or fn is filter) and len(args) >= 2 and not kwargs:
            return self.lazy_map(fn, args[0], args[1:])
        if type(fn).__hash__ is None:  # an unhashable callable object: an ordinary call
            return self.call_effect(fn, args, kwargs)
        if fn in STRUCTURAL:
            if any(type(a) is Invocation for a in args):
                args = tuple(self.resolve(a) for a in args)
            if any(type(a) is Future and a._state == PENDING for a in args):
                return self.lift(fn.__name__, fn, args, kwargs)  # len(f), list(f), range(f)
            args = tuple(self.resolve(a) if type(a) is Future else a for a in args)
            if _has_mutable(args):
                self.heap_read()
            return fn(*args, **kwargs)
        if fn in PURE:
            return self.call_pure(fn, args, kwargs)
        if fn is _plait_get():
            return self.resolve_all(args[0])
        fn = self.resolve(fn)
        compiled = callees.helper(fn)
        if compiled is not None:
            return self.call_nested(fn, compiled, args, kwargs)
        if callees.is_pure(fn):
            return self.call_pure(fn, args, kwargs)
        return self.call_effect(fn, args, kwargs)

    def call_task(self, fn: Any, args: tuple, kwargs: dict) -> Any:
        inv = self.inv
        future = None
        if inv.speculative:
            key = _call_key(fn, args, kwargs)
            future = inv.take_speculative(key) if key is not None else None
        if future is None:
            if inv.inline_tasks and granularity.tiny(fn, args, kwargs):
                return granularity.run_here(fn, args, kwargs)
            future = fn(*args, **kwargs)
            if type(future) is not Future:  # num_returns: a tuple of futures, or None
                for item in future or ():
                    self.record(item)
                return future
        self.record(future)
        return future

    def map_task(self, task: Any, iterables: tuple) -> list:
        """``task.map(xs, ...)``: one task call per item, as a loop of calls would make them,
        submitted together. The iterables are read now; their items may be pending."""
        iterables = tuple(list(it.gen) if type(it) is Lazy else self.resolve(it) for it in iterables)
        if _has_mutable(iterables):
            self.heap_read()  # the calls pickle the items now: after earlier statements fill them
        iterables = self.driver_values(iterables)
        if _has_invocation(iterables):
            iterables = self.resolve_invocations(iterables)
        futures = task.map(*iterables)
        for future in futures:
            if type(future) is Future:
                self.record(future)
            else:  # num_returns: a tuple of futures, or None
                for item in future or ():
                    self.record(item)
        return futures

    def call_pure(self, fn: Callable, args: tuple, kwargs: dict) -> Any:
        """No effects: lifted over futures, run at once on values, never after a barrier."""
        args = tuple(_materialize(a) for a in args)
        if _has_mutable(args) or _has_mutable(kwargs):
            self.heap_read()  # earlier statements may still be filling these containers
        if _has_pending(args) or _has_pending(kwargs):
            return self.lift(getattr(fn, "__name__", "pure"), fn, args, kwargs)
        return fn(*args, **kwargs)

    def call_submitting(self, submit: Callable, obj: Any, args: tuple, kwargs: dict, effect: bool) -> Future:
        """A method with a form that returns a future at once (a dataset's action): made
        where the program reaches it, like a task call; one that is an ``effect`` (a sink)
        first waits for everything before it, as an effect does, then runs on its own."""
        if effect:
            self.effect_barrier()
        if _has_mutable(args) or _has_mutable(kwargs):
            self.heap_read()  # its tasks pickle them now: after earlier statements fill them
        future = submit(obj, *self.resolve_all(args), **self.resolve_all(kwargs))
        self.record(future)
        return future

    def call_effect(self, fn: Callable, args: tuple, kwargs: dict) -> Any:
        """An ordinary call: it runs after everything before it, on values."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s:%d: %s() is an effect: it waits for the statements and task calls before it",
                self.inv.compiled.filename, self.stmt.line, getattr(fn, "__qualname__", repr(fn)),
            )  # fmt: skip
        self.effect_barrier()
        args = self.resolve_all(args)
        kwargs = self.resolve_all(kwargs)
        return fn(*args, **kwargs)

    def call_nested(self, fn: Callable, compiled: CompiledFunction, args: tuple, kwargs: dict) -> Any:
        """A helper or @parallel function: compiled the same way, its value a pending call."""
        try:
            arguments = compiled.bind(args, kwargs)
        except TypeError:
            return fn(*args, **kwargs)  # Python's own message: binding fails before the body runs
        inv = self.inv
        child = Invocation(compiled, fn, arguments, inv.lookahead, self)
        inv.undo.append((self.seq, len(inv.futures), child))  # undone if it never happened, or failed
        if inv.lookahead and (compiled.waits or child.depth % INLINE_DEPTH == 0):
            child.start()  # it will wait inside: its caller goes on at once
        elif child.depth % INLINE_DEPTH == 0:
            _spawn(child.run).join()  # a fresh frame stack, still one thread at a time
        else:
            child.run_inline(self)
        child.caller = None
        if child.ready() and child._state == FINISHED:
            return child.outcome[1]  # type: ignore[index]
        self.record(child)  # its failure is this call's, in program order, like a task's
        if child.ready():
            self.deliver_failure(child)  # it raised: so does this call, here
        self.children.append(child)
        return child

    def method(self, obj: Any, name: str, args: tuple, kwargs: dict, outside: bool = False) -> Any:
        if type(obj) is Future and name in FUTURE_API:
            if name == "result":
                return self.resolve(obj)  # waits here, like any use of the value
            return getattr(obj, name)(*self.resolve_all(args), **self.resolve_all(kwargs))
        self.own(obj)
        obj = self.resolve(obj)
        if name == "map" and type(obj) in (TaskFunction, TaskCall) and not kwargs:
            return self.map_task(obj, args)
        if Lazy in map(type, args):
            consumer = _EAGER if isinstance(obj, _IMMUTABLE) or type(obj) in _CONTAINERS else None
            args = self.unlazy(consumer, args)
        if name in MUTATORS and type(obj) in _CONTAINERS:
            self.heap_write()
            if _has_pending(args) or _has_pending(kwargs):
                self.inv.root.escaped[id(obj)] = obj
            if outside or self._ahead():
                self.undoable(undo.method(obj, name, args, kwargs))
            return getattr(obj, name)(*args, **kwargs)
        if isinstance(obj, _IMMUTABLE) or type(obj) is tuple:
            args = self.resolve_all(args)
            return getattr(obj, name)(*args, **self.resolve_all(kwargs))
        if isinstance(obj, types.ModuleType):
            return self.call(getattr(obj, name), args, kwargs)
        # a method declared pure, or with a future-returning form (looked up on the class, so
        # no property runs here); any other is an effect
        declared = getattr(type(obj), name, None)
        submit = getattr(declared, "__plait_future__", None)
        if submit is not None:
            return self.call_submitting(submit, obj, args, kwargs, getattr(declared, "__plait_effect__", False))
        if callees.is_pure(declared):
            return self.call_pure(getattr(obj, name), args, kwargs)
        self.effect_barrier()
        args = self.resolve_all(args)
        kwargs = self.resolve_all(kwargs)
        return getattr(obj, name)(*args, **kwargs)

    def settled(self, value: Any) -> Any:
        """A nested call's value once it is known; the pending call itself until then. A
        result the driver holds (or is about to change) as an object: that object."""
        t = type(value)
        if t is Invocation and value.ready():
            return self.resolve(value)
        if t is Future and self._driver_holds(value):
            return self.resolve(value)
        return value

    # results as objects (see aliases) ------------------------------------------
    def _own_if_changed_before(self, name: str, future: Future) -> None:
        """An earlier statement, still running, may change the result in ``name`` in place
        (a loop that waits in its header runs later than the statements after it): this
        read is of the driver's object, after that statement."""
        seq = self.seq
        for s, stmt in list(self.inv.detached.items()):
            if name in stmt.mutates and is_before(s, seq):
                self.inv.root.owned[id(future)] = future
                return

    def own(self, obj: Any) -> None:
        """``obj`` is about to be changed in place: if it is a result, the driver's copy is
        the object from now on (marked before this statement may wait, so the statements
        issued after it read it after this change)."""
        if type(obj) is Future:
            self.inv.root.owned[id(obj)] = obj

    def _driver_holds(self, future: Future) -> bool:
        return id(future) in self.inv.root.owned or aliases.exposed(future)

    def driver_values(self, values: Any) -> Any:
        """Arguments with every result the driver holds as an object replaced by that
        object (read after the statements that may change it): a task or a lifted
        operation must see it as the program left it, not the stored copy."""
        if not values or not _holds(values, (Future,)):
            return values
        pending: list = []
        _collect(values, pending)
        held = {id(f): f for f in pending if type(f) is Future and self._driver_holds(f)}
        if not held:
            return values
        return _replaced(values, {k: self.resolve(f) for k, f in held.items()})

    def binop(self, op: str, a: Any, b: Any) -> Any:
        a, b = self.settled(a), self.settled(b)
        fn = _BINOPS[op]
        base = op.rstrip("=")
        ta, tb = type(a), type(b)
        if ta is Future or tb is Future or ta is Invocation or tb is Invocation:
            if op == base:
                return self.lift(base, _BINOPS[base], (a, b))
            fresh = self.inv.root.fresh
            if ta is Invocation or (ta is Future and a not in fresh):
                return self.in_place(fn, a, b)  # an object other names may refer to
            if ta is not Future and not isinstance(a, _IMMUTABLE):
                b = self.resolve(b)  # `xs += f(x)`: the list itself is extended, as it is now
                self.heap_write()
                return fn(a, b)
            # a number, or a value no other name has seen (the last `s += ...` made it): a
            # new object is the same as the object changed
            value = self.lift(base, _BINOPS[base], (a, b))
            if type(value) is Future:
                fresh.add(value)
            return value
        if base in ("+", "*") and ta in (list, tuple) and (tb is ta or tb is int):
            # concatenation and repetition arrange items without looking at them:
            # no scan for futures, however long the lists
            if op != base and ta is list:
                self.heap_write()
            else:
                self.heap_read()
            return fn(a, b)
        if _has_pending(a) or _has_pending(b):
            return self.lift(base, _BINOPS[base], (a, b))
        if not isinstance(a, _IMMUTABLE) or not isinstance(b, _IMMUTABLE):
            if op != base and not isinstance(a, _IMMUTABLE):
                self.heap_write()
            else:
                self.heap_read()
        return fn(a, b)

    def in_place(self, fn: Callable, a: Future | Invocation, b: Any) -> Any:
        """``a op= b`` with ``a`` pending: computed in the driver on the object itself, once
        it is there, without holding up this statement. On a mutable object the operator
        changes it, so every other name for that object sees the change: this statement
        writes objects (later reads wait for it), and ``a`` is read from the driver from now
        on (a task passed it gets the changed object, not the stored copy)."""
        value = self.lift(fn.__name__, fn, (a, b))
        if type(a) is Future:
            self.own(a)  # after the lift: it must not wait for ``a`` here
        self.stmt = _writing_objects(self.stmt)
        return value

    def unary(self, op: str, a: Any) -> Any:
        if op == "not":
            return not self.truth(a)
        a = self.settled(a)
        if type(a) is Future or type(a) is Invocation:
            return self.lift(op, _UNARY[op], (a,))
        return _UNARY[op](a)

    def compare(self, left: Any, *rest: tuple[str, Callable]) -> Any:
        result: Any = True
        for op, thunk in rest:
            right = thunk()
            if type(right) is Lazy and op in ("in", "not in"):
                right = (self.resolve_all(item) for item in right.gen)  # stops where it is found
            if op in ("is", "is not"):
                lv, rv = self.resolve(left), self.resolve(right)
                result = (lv is rv) if op == "is" else (lv is not rv)
            else:
                left, right = self.settled(left), self.settled(right)
                if _has_pending(left) or _has_pending(right):
                    result = self.lift(op, _CMPS[op], (left, right))
                else:
                    if not isinstance(left, _IMMUTABLE) or not isinstance(right, _IMMUTABLE):
                        self.heap_read()
                    result = _CMPS[op](left, right)
            if len(rest) > 1 and not self.truth(result):
                return result
            left = right
        return result

    def and_(self, first: Any, *thunks: Callable) -> Any:
        value = first
        for thunk in thunks:
            if not self.truth(value):
                return value
            value = thunk()
        return value

    def or_(self, first: Any, *thunks: Callable) -> Any:
        value = first
        for thunk in thunks:
            if self.truth(value):
                return value
            value = thunk()
        return value

    def ifexp(self, test: Any, body: Callable, orelse: Callable) -> Any:
        return body() if self.truth(test) else orelse()

    def getattr(self, obj: Any, name: str) -> Any:
        obj = self.settled(obj)
        if type(obj) is Future or type(obj) is Invocation:
            return self.lift(f".{name}", getattr, (obj, name))
        if not isinstance(obj, _IMMUTABLE) and type(obj).__name__ != "module":
            self.heap_read()
        return getattr(obj, name)

    def getitem(self, obj: Any, key: Any) -> Any:
        obj = self.settled(obj)
        if type(obj) is Future or type(obj) is Invocation:
            return self.lift("[]", operator.getitem, (obj, key))
        key = self.resolve_all(key)
        if not isinstance(obj, _IMMUTABLE):
            self.heap_read()
        return obj[key]

    def setattr(self, obj: Any, name: str, value: Any, outside: bool = False) -> None:
        self.own(obj)
        obj = self.resolve(obj)
        self.heap_write()
        if _has_pending(value):
            self.inv.root.escaped[id(obj)] = obj
        if outside or self._ahead():
            self.undoable(undo.setattr_(obj, name))
        setattr(obj, name, value)

    def setitem(self, obj: Any, key: Any, value: Any, outside: bool = False) -> None:
        self.own(obj)
        obj = self.resolve(obj)
        key = self.resolve_all(key)
        self.heap_write()
        if _has_pending(value):
            self.inv.root.escaped[id(obj)] = obj
        if outside or self._ahead():
            self.undoable(undo.setitem(obj, key))
        obj[key] = value

    def delitem(self, obj: Any, key: Any, outside: bool = False) -> None:
        self.own(obj)
        obj = self.resolve(obj)
        key = self.resolve_all(key)
        self.heap_write()
        if outside or self._ahead():
            self.undoable(undo.delitem(obj, key))
        del obj[key]

    def delattr(self, obj: Any, name: str, outside: bool = False) -> None:
        self.own(obj)
        obj = self.resolve(obj)
        self.heap_write()
        if outside or self._ahead():
            self.undoable(undo.setattr_(obj, name))
        delattr(obj, name)

    def _ahead(self) -> bool:
        """Might a call before this write still fail, or has one failed? Then the write runs
        ahead of it and is undone if it does, whatever object it changes: a local name may
        refer to an outside object (``ys = xs``), a local object may be stored in one."""
        if self.created and any(f._state != FINISHED for f in self.created):
            return True
        inv: Invocation | None = self.inv
        while inv is not None:
            if inv.detached or inv.failures or not inv.calls_succeeded():
                return True
            inv = inv.parent.inv if inv.parent is not None else None
        return False

    def undoable(self, how: Callable[[], None] | None) -> None:
        """A write that a failure before it would undo (sequentially, it never happened)."""
        if how is not None:
            inv = self.inv
            inv.undo.append((self.seq, len(inv.futures), how))

    def iterate(self, value: Any) -> Any:
        value = self.resolve(value)
        if type(value) is Lazy:
            return value.gen
        if not isinstance(value, _IMMUTABLE):
            self.heap_read()
        return value

    def loop_iterator(self, value: Any, stmt: Stmt) -> tuple[Any, bool, list | None]:
        """The loop's iterator, whether it is lazy, and the snapshot it walks (if any)."""
        value = self.iterate(value)
        kind = _iteration_kind(value, stmt)
        if kind == _WALK_ITSELF:
            return iter(value), False, value  # its own snapshot
        if kind == _WALK_COPY:
            snapshot = list(value)
            return iter(snapshot), False, snapshot
        return iter(value), kind == _WALK_LAZY, None

    def unpack(self, value: Any, count: int, star: int) -> list:
        value = self.resolve(value)
        if type(value) is Lazy:
            value = list(value.gen)
        if not isinstance(value, _IMMUTABLE) and type(value) is not tuple:
            self.heap_read()
        items = list(value)
        if star < 0:
            if len(items) != count:
                if len(items) > count:
                    raise ValueError(f"too many values to unpack (expected {count})")
                raise ValueError(f"not enough values to unpack (expected {count}, got {len(items)})")
            return items
        after = count - star - 1
        if len(items) < count - 1:
            raise ValueError(f"not enough values to unpack (expected at least {count - 1}, got {len(items)})")
        return items[:star] + [items[star : len(items) - after]] + items[len(items) - after :]

    def format(self, value: Any, conversion: int, spec: str) -> str:
        value = self.resolve_all(value)
        if conversion == ord("r"):
            value = repr(value)
        elif conversion == ord("s"):
            value = str(value)
        elif conversion == ord("a"):
            value = ascii(value)
        return format(value, spec)

    def join(self, *parts: str) -> str:
        return "".join(parts)

    def dict_display(self, keys: list, values: list) -> dict:
        return {self.resolve(k): v for k, v in zip(keys, values, strict=True)}

    # generator expressions ---------------------------------------------------
    def genexp(self, make: Callable[[], Any], speculable: bool) -> Lazy:
        return Lazy(make(), speculable)

    def lazy_map(self, kind: Any, fn: Any, iterables: tuple) -> Lazy:
        """``map``/``filter``: lazy as in Python, each call made through this statement's hooks
        (so a task or helper passed in is called as one)."""
        fn = self.resolve(fn)
        sources = [self.iterate(it) for it in iterables]
        if kind is map:
            calls = (self.call(fn, items, {}) for items in zip(*sources, strict=False))
            return Lazy(calls, _is_task(fn) or fn in PURE or callees.is_pure(fn))
        if fn is None:
            return Lazy((x for x in sources[0] if self.truth(x)), False)
        return Lazy((x for x in sources[0] if self.truth(self.call(fn, (x,), {}))), False)

    def unlazy(self, consumer: Any, values: tuple) -> tuple:
        """Generator expressions handed to ``consumer``, in the form that keeps their meaning.

        A builtin that only arranges items (``zip``, ``enumerate``, ``list``) takes the
        generator itself: items are computed as it asks, futures and all. One that computes
        from every item (``sum``, ``max``, ``sorted``), a task, and a method of a value take
        every item now, so the calls inside all start at once. Any other call sees each item
        as a value, computed and waited for only when it asks for it, in order.
        """
        out = []
        for value in values:
            if type(value) is Lazy:
                if type(consumer).__hash__ is None:
                    value = (self.resolve_all(item) for item in value.gen)
                elif consumer in STRUCTURAL:
                    value = value.gen
                elif consumer is _EAGER or consumer in PURE or callees.is_pure(consumer) or _is_task(consumer):
                    value = list(value.gen)
                else:
                    value = (self.resolve_all(item) for item in value.gen)
            out.append(value)
        return tuple(out)

    def any_all(self, fn: Callable, lazy: Any) -> bool:
        """``any``/``all`` over a generator expression, stopping where the sequential loop stops.

        Elements made only of task calls and pure operations are all computed now (the
        tasks run in parallel); the decision then reads them in order, and the calls of
        the elements after it are dropped: never waited for, their failures never seen.
        Other elements are computed one at a time, as asked for."""
        if type(lazy) is not Lazy:
            return fn(self.resolve_all(lazy))
        if not lazy.speculable:
            return fn(self.truth(item) for item in lazy.gen)
        items: list[tuple[Any, list]] = []
        error: BaseException | None = None
        while True:
            mark = len(self.created)
            try:
                item = next(lazy.gen)
            except StopIteration:
                break
            except Exception as exc:  # noqa: BLE001 - raised only if the sequential loop gets here
                error = exc
                break
            items.append((item, self.created[mark:]))
        want = fn is any
        for i, (item, _) in enumerate(items):
            try:
                decided = self.truth(item) is want
            except BaseException:
                self.drop_calls(items[i + 1 :])
                raise
            if decided:
                self.drop_calls(items[i + 1 :])
                return want
        if error is not None:
            raise error
        return not want

    def drop_calls(self, items: list[tuple[Any, list]]) -> None:
        """Calls made ahead for elements the sequential program never computes: forget them."""
        dropped = {id(f) for _, made in items for f in made}
        for _, made in items:
            for f in made:
                if type(f) is Future:
                    f.mark_seen()
        if dropped:
            self.inv.delivered.update(dropped)
            self.created = [f for f in self.created if id(f) not in dropped]

    def run_native(self, twin: native.NativeLoop, iterator: Any) -> tuple[int, Any] | None:
        """The loop's native twin, on the values of the variables it uses."""
        self.heap_write()  # it reads and changes objects: after the statements touching them
        values = []
        for name in twin.names:
            try:
                values.append(self.load(name) if self.bound.get(name) is not None else UNBOUND)
            except UnboundLocalError:
                values.append(UNBOUND)
        if Lazy in map(type, values):
            for name, value in zip(twin.names, values, strict=True):
                self.store(name, value)
            return None
        values = self.resolve_all(values)
        how, what, final = native.start(twin, iterator, UNBOUND, values)
        for name in twin.names:
            self.store(name, final.get(name, UNBOUND))
        return how, what

    def native(self, fast: Callable, hooked: Callable, names: tuple[str, ...]) -> Any:
        """A comprehension that only computes: plain Python when its inputs hold no futures."""
        values = [self.load(name) for name in names]
        if _has_mutable(values):
            self.heap_read()  # first: an earlier statement may still be filling a list it reads
        if _has_pending(values):
            return hooked()
        return fast(*values)

    def discard(self, value: Any) -> None:
        return None

    def assert_(self, test: Any, message: Callable) -> None:
        if not self.truth(test):
            msg = message()
            raise AssertionError(self.resolve_all(msg)) if msg is not None else AssertionError()

    # try/with ----------------------------------------------------------------
    def mark(self) -> Collector:
        self._collector = Collector()
        return self._collector

    def run_block(self, index: int) -> None:
        # only the try body (block 0) collects: handlers, else and finally do not
        collector = self._collector if index == 0 else None
        assert self.private is not None
        issuer = Issuer(
            self.inv,
            self.private,
            self.seq + (index, self._next_run()),
            False,
            [Block(self.stmt.blocks[index])],
            parent=self,
            collector=collector,
        )
        issuer.strict = collector is None
        if collector is not None:
            collector.body = issuer
        issuer.run()

    INTERNAL = (_Jump, _Unwind, _Abort)  # what a try unit's handlers never catch

    def run_final(self, index: int) -> None:
        """A try statement's finally block, unless a failure from before the statement is
        passing through it (an outer try body's call raised here, or an earlier statement
        failed): sequentially the statement never began, so neither does its finally."""
        if type(sys.exception()) in (_Unwind, _Abort):
            return
        self.run_block(index)

    def _next_run(self) -> int:
        self._runs += 1
        return self._runs

    def guard(self, collector: Collector) -> None:
        """Run a try body; its task calls must have succeeded, as they would have sequentially."""
        try:
            try:
                self.run_block(0)
            except _Jump:
                self._raise_failed([collector])  # leaving by break/continue/return: the calls came first
                raise
            except Exception:
                self._raise_failed([collector])  # a call made before the error raised first
                raise
            self._raise_failed([collector])
        except _Unwind as unwind:
            if unwind.collector is not collector:
                raise  # a call in an outer try body failed: that try handles it
            raise unwind.exc from unwind.exc.__cause__


class Lazy:
    """A generator expression: its elements are computed, through the hooks of the
    statement that wrote it, when its consumer asks for them."""

    __slots__ = ("gen", "speculable")

    def __init__(self, gen: Any, speculable: bool) -> None:
        self.gen = gen
        self.speculable = speculable  # only task calls and pure operations inside


class _EAGER:
    """Stands for a consumer that takes every element (a method of a value or container)."""


class _Never:
    """A waitable that is never ready: used only to trigger a detach."""

    def ready(self) -> bool:
        return False

    def wait(self, timeout: float | None = None) -> None:
        return None


_CONTAINERS = (list, dict, set, bytearray)



def _reraise(exc: BaseException) -> None:
    raise exc


def _call_key(fn: Any, args: tuple, kwargs: dict) -> Any:
    """What identifies a task call for taking over a speculative one (exact types included)."""
    if type(fn) is not TaskFunction or fn.task_options.num_returns != 1:
        return None
    if _has_pending(args) or _has_pending(kwargs):
        return None
    try:
        return fn, pickle.dumps((args, sorted(kwargs.items())), protocol=5)
    except Exception:  # noqa: BLE001 - not speculated
        return None


_WRITING: dict[int, Stmt] = {}


def _writing_objects(stmt: Stmt) -> Stmt:
    """``stmt`` as a statement that writes objects (while it runs, later reads wait for it)."""
    if stmt.heap_write and stmt.heap_read:
        return stmt
    writing = _WRITING.get(id(stmt))
    if writing is None or writing.node is not stmt.node:
        writing = _WRITING[id(stmt)] = dataclasses.replace(stmt, heap_read=True, heap_write=True)
    return writing


@callees.pure
def _apply_values(fn: Callable, args: tuple, kwargs: dict) -> Any:
    return fn(*args, **kwargs)


def _computed(fn, args, kwargs):
    """An operation over nested calls' values, run as a nested program: it waits for them."""
    return _apply_values(fn, get(args), get(kwargs))


def _changed_in_place(fn, args, kwargs):
    """An in-place operator on a pending object: on the object itself, after everything
    before it (which may read the object as it was). A number or a string is no object to
    change: then it is an ordinary operation, waiting for nothing else."""
    target = get(args[0])
    if _shares_nothing(target):
        return _apply_values(fn, (target, *get(args[1:])), get(kwargs))
    return _apply_in_place(fn, (target, *get(args[1:])), get(kwargs))


@callees.pure
def _shares_nothing(value: Any) -> bool:
    return aliases.cannot_share(value)


def _apply_in_place(fn: Callable, args: tuple, kwargs: dict) -> Any:
    return fn(*args, **kwargs)  # not pure: a call of it is an effect, ordered after the ones before


_programs: dict[Callable, CompiledFunction] = {}


def _program(fn: Callable) -> CompiledFunction:
    """The compiled form of one of the nested programs above (made once)."""
    compiled = _programs.get(fn)
    if compiled is None:
        from plait.parallel.compiler import compile_function

        compiled = compile_function(fn)
        compiled.waits = True
        compiled = _programs.setdefault(fn, compiled)
    return compiled


def _operand(value: Any) -> bool:
    """An operand a fused expression may hold: a result, or a small constant."""
    return type(value) is Future or (type(value) in _ATOMS and _small(value))


def _leaf_index(future: Future, leaves: list, positions: dict[int, int]) -> int:
    index = positions.get(id(future))
    if index is None:
        index = positions[id(future)] = len(leaves)
        leaves.append(future)
    return index


def _graft(node: _Node, refs: tuple, leaves: list, positions: dict[int, int]) -> _Node | None:
    """``node`` with its leaves renumbered into ``leaves``; None if one of them is gone (its
    future dropped: the operation is then waited for, not computed again)."""
    mine = [ref() for ref in refs]
    if any(f is None for f in mine):
        return None

    def renumbered(spec: Any) -> Any:
        if type(spec) is _Leaf:
            return _Leaf(_leaf_index(mine[spec.index], leaves, positions))
        if type(spec) is _Node:
            return _Node(spec.fn, tuple(map(renumbered, spec.specs)), spec.size)
        return spec

    return renumbered(node)


def _small(value: Any) -> bool:
    """Cheap enough to compute with in the driver."""
    t = type(value)
    if t in _ATOMS:
        return t not in (str, bytes) or len(value) < 4096
    if t in (list, tuple) and len(value) <= 64:
        return set(map(type, value)) <= _ATOMS
    return False


def _replaced(values: Any, objects: dict[int, Any]) -> Any:
    """``values`` with the futures whose ids are in ``objects`` replaced (containers rebuilt)."""
    t = type(values)
    if t is Future:
        return objects.get(id(values), values)
    if t in _SEQUENCES:
        if not _holds(values, (Future,)):
            return values
        return t(_replaced(v, objects) for v in values)
    if t is dict:
        if not _holds(values, (Future,)):
            return values
        return {_replaced(k, objects): _replaced(v, objects) for k, v in values.items()}
    return values


def _is_task(fn: Any) -> bool:
    return isinstance(fn, (TaskFunction, TaskCall))


def _source_line(filename: str, line: int) -> str:
    return linecache.getline(filename, line).strip()


def _plait_get() -> Any:
    from plait.runtime.api import get

    return get



def _engine() -> Any:
    from plait.runtime.context import current_engine

    return current_engine()


_ATOMS = frozenset({int, float, complex, str, bytes, bool, type(None)})
_SEQUENCES = (list, tuple, set, frozenset)
_PENDING = (Future, Invocation)


def _holds(value: Any, kinds: tuple[type, ...]) -> bool:
    """Is an object of one of ``kinds`` in ``value`` (containers searched)?

    The types of a container's items are collected at C speed first, so a list
    of a million numbers costs one pass and no recursion."""
    t = type(value)
    if t in kinds:
        return True
    if t in _SEQUENCES:
        items: Any = value
    elif t is dict:
        items = (*value.keys(), *value.values()) if len(value) < 64 else [*value.keys(), *value.values()]
    else:
        return False
    present = set(map(type, items))
    if present <= _ATOMS:
        return False
    if any(k in present for k in kinds):
        return True
    return any(_holds(v, kinds) for v in items if type(v) in _SEQUENCES or type(v) is dict)


def _collect(value: Any, out: list) -> None:
    t = type(value)
    if t is Future or t is Invocation:
        out.append(value)
    elif (t in _SEQUENCES or t is dict) and _holds(value, _PENDING):
        for v in value.values() if t is dict else value:
            _collect(v, out)
        if t is dict:
            for k in value:
                _collect(k, out)


def _has_pending(value: Any) -> bool:
    return _holds(value, _PENDING)


_VIEWS = (type({}.keys()), type({}.values()), type({}.items()))


def _materialize(value: Any) -> Any:
    """Dict views become lists, so the futures inside them are seen (and can be lifted)."""
    return list(value) if isinstance(value, _VIEWS) else value


def _has_invocation(value: Any) -> bool:
    return _holds(value, (Invocation,))


def _has_mutable(value: Any) -> bool:
    if type(value) in (tuple,):
        return any(_has_mutable(v) for v in value)
    if type(value) is dict:
        return any(_has_mutable(v) for v in value.values())
    return not isinstance(value, _IMMUTABLE) and type(value) not in (Future, Invocation)


def resolve_deep(value: Any, ctx: Ctx | None) -> Any:
    """``value`` with every future inside replaced by its value.

    Lists, dicts and sets are the program's own objects, which sequentially hold
    values: they are settled in place, so every name and object that refers to them
    sees the values. Tuples and frozensets are rebuilt."""
    t = type(value)
    if t is Future or t is Invocation:
        if ctx is not None:
            got = ctx.resolve(value)
        else:
            got = value.result() if t is Future else value.value()
        # a value the driver fetched may have been given futures since (xs[0] = f(xs))
        return resolve_deep(got, ctx) if type(got) in _SEQUENCES or type(got) is dict else got
    if t not in _SEQUENCES and t is not dict:
        return value
    if not _has_pending(value):
        return value
    if ctx is None:
        pending: list = []
        _collect(value, pending)
        wait_all(pending)
    if t is list:
        for i, item in enumerate(value):
            settled = resolve_deep(item, ctx)
            if settled is not item:
                value[i] = settled
        return value
    if t is dict:
        if any(type(k) in _PENDING for k in value):
            items = [(resolve_deep(k, ctx), resolve_deep(v, ctx)) for k, v in value.items()]
            value.clear()
            value.update(items)
        else:
            for key, item in list(value.items()):
                settled = resolve_deep(item, ctx)
                if settled is not item:
                    value[key] = settled
        return value
    if t is set:
        items = [resolve_deep(v, ctx) for v in value]
        value.clear()
        value.update(items)
        return value
    return t(resolve_deep(v, ctx) for v in value)  # tuple, frozenset


def _settle_escaped(objects: list) -> None:
    """Objects outside the program's variables (a global dict, an argument's attributes)
    that were given futures: settled in place once every call has finished."""
    seen: set[int] = set()
    for obj in objects:
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        try:
            if type(obj) in _SEQUENCES or type(obj) is dict:
                resolve_deep(obj, None)
            elif hasattr(obj, "__dict__"):
                for name, item in list(vars(obj).items()):
                    if _has_pending(item):
                        setattr(obj, name, resolve_deep(item, None))
        except Exception:  # noqa: BLE001 - a failed call: the invocation reports it
            continue
