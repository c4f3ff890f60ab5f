"""Actors: state, call order, handles passed around, death and restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

import plait
from plait.runtime.context import current_engine
from tests.test_local_engine import _until
from tests.test_parallel_fusion import gated


@plait.actor
class Log:
    def __init__(self, prefix=""):
        self.prefix = prefix
        self.items = []

    def append(self, item):
        self.items.append(self.prefix + str(item))
        return len(self.items)

    def snapshot(self):
        return list(self.items)

    def pid(self):
        return os.getpid()

    def slow_append(self, item, delay):
        time.sleep(delay)
        return self.append(item)

    def explode(self):
        raise RuntimeError("actor method failed")


@plait.task
def slow_value(x, delay):
    time.sleep(delay)
    return x


@plait.task
def append_from_task(log, item):
    return log.append(item).result()


def test_calls_run_in_call_order(engine):
    log = Log("x")
    futures = [log.append(i) for i in range(200)]
    assert plait.get(futures) == list(range(1, 201))
    assert log.snapshot().result() == [f"x{i}" for i in range(200)]


def test_order_kept_when_an_earlier_call_waits_for_input(engine):
    log = Log()
    log.append(slow_value("first", 0.3))
    log.append("second")
    assert log.snapshot().result() == ["first", "second"]


def test_handle_passed_to_tasks(engine):
    log = Log()
    assert plait.get([append_from_task(log, "a")]) == [1]
    assert log.snapshot().result() == ["a"]


def test_a_handle_pickled_and_rebuilt_still_calls_the_actor(engine):
    import pickle

    log = Log()
    log.append("a").result()
    again = pickle.loads(pickle.dumps(log))
    assert again == log and again.append("b").result() == 2
    assert append_from_task(again, "c").result() == 3  # and passed on to a task
    assert log.snapshot().result() == ["a", "b", "c"]


def test_method_exception_keeps_actor_alive(engine):
    log = Log()
    with pytest.raises(RuntimeError, match="actor method failed"):
        log.explode().result()
    assert log.append(1).result() == 1


def test_unknown_method(engine):
    log = Log()
    with pytest.raises(AttributeError, match="no method 'nope'"):
        log.nope()


def test_init_failure_fails_calls(engine):
    @plait.actor
    class Broken:
        def __init__(self):
            raise ValueError("cannot start")

        def ping(self):
            return "pong"

    b = Broken()
    with pytest.raises(plait.ActorDiedError, match="cannot start"):
        b.ping().result()


def test_kill_fails_pending_and_later_calls(engine):
    log = Log()
    assert log.append(1).result() == 1
    plait.kill(log)
    with pytest.raises(plait.ActorDiedError, match="killed"):
        log.append(2).result()


def test_actor_runs_in_its_own_process(local):
    a, b = Log(), Log()
    pids = {a.pid().result(), b.pid().result()}
    assert len(pids) == 2 and os.getpid() not in pids


def test_actor_death_fails_calls_clearly(local):
    log = Log()
    pid = log.pid().result()
    pending = log.slow_append("never", 30)
    time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(plait.ActorDiedError, match="SIGKILL"):
        pending.result(timeout=20)
    with pytest.raises(plait.ActorDiedError):
        log.append("after").result(timeout=20)


def test_actor_restarts(local):
    @plait.actor(max_restarts=1)
    class Restartable:
        def __init__(self):
            self.calls = 0

        def pid(self):
            self.calls += 1
            return os.getpid()

        def count(self):
            return self.calls

    r = Restartable()
    first = r.pid().result()
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 20
    second = None
    while time.monotonic() < deadline:
        try:
            second = r.pid().result(timeout=20)
            break
        except plait.ActorDiedError:
            time.sleep(0.05)  # calls in flight at the death fail; later ones reach the new process
    assert second is not None and second != first
    assert r.count().result() >= 1  # state was rebuilt by __init__
    os.kill(second, signal.SIGKILL)
    time.sleep(0.5)
    with pytest.raises(plait.ActorDiedError):
        r.count().result(timeout=20)


def test_actor_pid_helper_matches(local):
    log = Log()
    assert current_engine().actor_pid(log) == log.pid().result()


@plait.actor
class AsyncCounter:
    """The shape of Ray's async actors: async methods, a task living across calls."""

    def __init__(self):
        self.total = 0
        self.background = None

    async def add(self, x):
        await asyncio.sleep(0.001)
        self.total += x
        return self.total

    async def start_ticking(self, n):
        async def tick():
            for _ in range(n):
                await asyncio.sleep(0.001)
                self.total += 1

        self.background = asyncio.get_running_loop().create_task(tick())
        return "started"

    async def ticked(self):
        await self.background
        return self.total

    def value(self):
        return self.total


def test_async_methods_run_on_the_actors_event_loop(engine):
    """They were accepted and silently never run (a ported Ray example summed to 0)."""
    counter = AsyncCounter()
    totals = plait.get([counter.add(i) for i in range(1, 11)])
    # side by side: each call sees the total after its own addition, in some order
    assert max(totals) == 55 and len(set(totals)) == 10
    assert counter.value().result() == 55
    assert counter.start_ticking(5).result() == "started"
    assert counter.ticked().result() == 60


# ------------------------------------------- calls side by side (Ray's threaded and async actors)
@plait.actor(max_concurrency=2)
class Meeting:
    """Each call waits for a second one to arrive: only calls that run at once can meet."""

    def __init__(self):
        self.barrier = threading.Barrier(2, timeout=60)
        self.lock = threading.Lock()
        self.inside = 0
        self.most_inside = 0

    def meet(self, i):
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.barrier.wait()
        with self.lock:
            self.inside -= 1
        return i

    def meet_and_get(self, x):
        self.barrier.wait()
        return plait.get(square(x))  # asks the engine from a call running beside another

    def most_at_once(self):
        return self.most_inside


@plait.task
def square(x):
    return x * x


@plait.actor
class Signal:
    """Ray's async actor shape: one call waits on an asyncio.Event a later call sets."""

    def __init__(self):
        self.event = asyncio.Event()

    async def wait(self):
        await self.event.wait()
        return "woken"

    async def wake(self):
        self.event.set()
        return "set"

    async def square_plus_one(self, x):
        return await square(x) + 1  # a task's future awaited on the actor's event loop


def test_threaded_actor_runs_up_to_max_concurrency_calls_at_once(engine):
    meeting = Meeting()
    assert plait.get([meeting.meet(i) for i in range(6)]) == list(range(6))
    assert meeting.most_at_once().result() == 2  # at once, and never more than max_concurrency


def test_calls_side_by_side_may_wait_for_tasks(engine):
    meeting = Meeting()
    assert plait.get([meeting.meet_and_get(x) for x in (3, 4, 5, 6)], timeout=60) == [9, 16, 25, 36]


def test_async_actor_calls_run_side_by_side(engine):
    bell = Signal()
    waiting = bell.wait()
    assert bell.wake().result(timeout=60) == "set"
    assert waiting.result(timeout=60) == "woken"
    assert plait.get([bell.square_plus_one(x) for x in range(4)], timeout=60) == [1, 2, 5, 10]


def test_max_concurrency_must_be_a_positive_int():
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="max_concurrency"):
            plait.actor(max_concurrency=bad)(type("Plain", (), {}))
        with pytest.raises(ValueError, match="max_concurrency"):
            Log.options(max_concurrency=bad)


@plait.actor
class Holder:
    """Keeps futures passed as themselves and reads them in later calls."""

    def __init__(self, first):
        self.kept = [first]

    def keep(self, future):
        self.kept.append(future)
        return isinstance(future, plait.Future)

    def read_all(self):
        return plait.get(self.kept)


def test_an_actor_keeps_unresolved_futures_across_calls(engine):
    holder = Holder(plait.unresolved(square(3)))
    assert holder.keep(plait.unresolved(square(4))).result(timeout=60) is True
    assert holder.read_all().result(timeout=60) == [9, 16]


# ---------------------------------------------------------------- ActorPool
@plait.actor
class Doubler:
    def double(self, v):
        return 2 * v

    def slow_double(self, v):
        time.sleep(0.2 if v == 0 else 0.0)
        return 2 * v

    def fail_on(self, v):
        if v == 3:
            raise ValueError("three")
        return v

    def pid(self):
        return os.getpid()


def test_actor_pool_map_keeps_order_and_unordered_gives_all(engine):
    """Ray's ActorPool example: pool.map(lambda a, v: a.double.remote(v), [1, 2, 3, 4])."""
    pool = plait.ActorPool([Doubler(), Doubler()])
    assert list(pool.map(lambda a, v: a.double(v), [1, 2, 3, 4])) == [2, 4, 6, 8]
    unordered = list(pool.map_unordered(lambda a, v: a.slow_double(v), range(6)))
    assert sorted(unordered) == [0, 2, 4, 6, 8, 10]


def test_actor_pool_submit_get_next_and_errors(engine):
    pool = plait.ActorPool([Doubler(), Doubler()])
    for v in range(5):
        pool.submit(lambda a, v: a.fail_on(v), v)  # three of them wait in the pool for an actor
    got = []
    while pool.has_next():
        try:
            got.append(pool.get_next())
        except ValueError as err:
            got.append(str(err))
    assert got == [0, 1, 2, "three", 4]
    with pytest.raises(StopIteration):
        pool.get_next()
    with pytest.raises(TypeError, match="actor call"):
        pool.submit(lambda a, v: v, 1)


def test_actor_pool_spreads_calls_over_its_actors(local):
    actors = [Doubler(), Doubler()]
    pids = set(plait.get([a.pid() for a in actors]))
    pool = plait.ActorPool(actors)
    assert set(pool.map(lambda a, _: a.pid(), range(6))) == pids
    idle = pool.pop_idle()
    assert idle is not None and pool.has_free()
    pool.push(idle)
    assert len(pids) == 2


def test_status_says_an_actor_waits_for_resources_held_by_others(local):
    """It said "queued behind earlier calls" for the first call of an actor that had not
    started because other actors held every CPU."""
    import plait as p

    holders = [Log.options(num_cpus=1)() for _ in range(2)]  # the two CPUs of this engine
    assert p.get([h.append(1) for h in holders]) == [1, 1]
    late = Log.options(num_cpus=1)()
    call = late.append("x")
    record = next(r for r in p.status() if r["name"].endswith("append") and r["id"] == call.id)
    assert "has not started" in record["why"] and "CPU" in record["why"] and "Log" in record["why"]
    p.kill(holders[0])
    assert call.result(timeout=60) == 1


# -------------------------------------------------------------- named actors
@plait.task
def bump_named(name, k):
    return plait.get_actor(name).append(k).result()


def test_named_actors_are_found_from_anywhere(engine):
    """Ray's named actors: Counter.options(name="c").remote(); ray.get_actor("c")."""
    first = Log.options(name="the-log")("n")
    assert first.append(1).result() == 1
    found = plait.get_actor("the-log")
    assert found == first and found.append(2).result() == 2
    assert bump_named("the-log", 3).result() == 3  # from inside a task
    with pytest.raises(ValueError, match="exists already"):
        Log.options(name="the-log")()
    again = Log.options(name="the-log", get_if_exists=True)()
    assert again == first and again.snapshot().result() == ["n1", "n2", "n3"]
    with pytest.raises(ValueError, match="no actor named 'nobody'"):
        plait.get_actor("nobody")
    plait.kill(first)
    with pytest.raises(ValueError, match="no actor named 'the-log'"):
        plait.get_actor("the-log")
    with pytest.raises(TypeError, match="needs name"):
        Log.options(get_if_exists=True)


# ------------------------------------------- actors made by tasks and actors
@plait.task
def make_log_and_fill(n, future_prefix):
    log = Log(future_prefix)  # created from inside a task
    for i in range(n):
        log.append(i)
    return log, log.snapshot().result()


@plait.actor
class Spawner:
    def spawn(self, prefix):
        child = Log(prefix)  # created from inside an actor
        child.append("a").result()  # calls of different callers are not ordered: wait for it
        return child


def test_actors_created_inside_tasks_and_actors(engine):
    """The local engine refused these (Ray allows them)."""
    prefix = plait.put("p")
    log, items = make_log_and_fill(3, prefix).result()
    assert items == ["p0", "p1", "p2"]
    assert log.append(3).result() == 4  # the handle works in the driver too
    child = Spawner().spawn("c").result()
    assert child.snapshot().result() == ["ca"]


@plait.actor
class AsyncAdder:
    def __init__(self):
        self.total = 0

    async def add(self, amount):
        self.total += amount
        return self.total


def test_an_async_actor_runs_a_call_whose_input_is_ready_before_one_still_waiting(local, tmp_path):
    """Ray's rule for actors that run calls side by side: no call order, so a call waiting
    for its input does not hold back the calls behind it (task-orders.rst, async actors)."""
    gate = str(tmp_path / "open")
    adder = AsyncAdder()
    late = adder.add(gated(1, gate))  # its input: 1, once the gate is open
    ready = adder.add(2)
    try:
        assert ready.result(timeout=60) == 2  # ran while the first call's input was not there
    finally:
        open(gate, "w").close()
    assert late.result(timeout=60) == 3


@plait.actor
class Waiter:
    """Async calls that wait on an event no one sets, and what became of them."""

    def __init__(self):
        self.log = []
        self.never = None

    async def wait_forever(self, tag):
        self.never = self.never or asyncio.Event()
        self.log.append(("started", tag))
        try:
            await self.never.wait()
        except asyncio.CancelledError:
            self.log.append(("cancelled", tag))
            raise
        return tag

    async def seen(self):
        return list(self.log)

    def pid(self):
        return os.getpid()


def test_cancel_of_a_running_async_actor_call_cancels_its_coroutine_and_the_actor_goes_on(local):
    """As on Ray: the coroutine gets ``asyncio.CancelledError`` at its ``await``, the call's
    future is cancelled at once, and the actor, its state and its other calls go on."""
    waiter = Waiter()
    pid = plait.get(waiter.pid(), timeout=60)
    first, second = waiter.wait_forever("a"), waiter.wait_forever("b")
    _until(lambda: len(plait.get(waiter.seen(), timeout=60)) == 2, "both calls to start")
    assert plait.get(waiter.seen(), timeout=60) == [("started", "a"), ("started", "b")]
    assert first.cancel() is True
    assert first.cancelled()
    with pytest.raises(plait.CancelledError):
        first.result(timeout=60)
    _until(lambda: ("cancelled", "a") in plait.get(waiter.seen(), timeout=60), "the coroutine to see it")
    assert plait.get(waiter.seen(), timeout=60)[2:] == [("cancelled", "a")]  # b still waits
    assert not second.done()
    with pytest.raises(plait.NotSupported, match="without force"):
        second.cancel(force=True)
    assert second.cancel() is True
    with pytest.raises(plait.CancelledError):
        second.result(timeout=60)
    assert plait.get(waiter.pid(), timeout=60) == pid  # the same process: not restarted
    assert first.cancel() is True  # cancelled already: still True, nothing more happens
