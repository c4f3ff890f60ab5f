"""Every engine against the Engine protocol (src/plait/runtime/engine.py).

The same checks run on the inline and local engines here, on Ray and Dask in
tests/test_cluster_engines.py (which re-collects the tests that take the
``engine`` fixture), on the engine a task sees inside a worker, and on the
tracing engine. A check reads the protocol, never an engine's internals.
"""

from __future__ import annotations

import threading
import time

import pytest

import plait
from plait.runtime.calls import Call, Earlier
from plait.runtime.context import current_engine
from plait.runtime.engine import Engine
from plait.runtime.future import CANCELLED, FAILED, FINISHED, PENDING, Future
from plait.runtime.options import TaskOptions

REQUIRED = (
    "submit", "put", "wait_for", "value_of", "refresh", "cancel", "release", "adopt",
    "create_actor", "call_actor", "kill_actor", "status", "timeline_events", "shutdown",
)  # fmt: skip
OPTIONS = TaskOptions()


@plait.task
def double(x):
    return 2 * x


@plait.task
def refuse(x):
    raise ValueError(f"no {x}")


@plait.task
def nap(seconds):
    time.sleep(seconds)
    return seconds


def shape_problems(engine) -> list[str]:
    """What is wrong with ``engine``'s shape: its class, its methods, its capabilities."""
    problems = []
    if not isinstance(engine, Engine) or Engine not in type(engine).__mro__:
        problems.append(f"{type(engine).__name__} does not subclass plait.runtime.engine.Engine")
    for name in REQUIRED:
        if getattr(type(engine), name, None) is getattr(Engine, name):
            problems.append(f"{type(engine).__name__} does not implement {name}()")
    if not isinstance(engine.name, str) or not engine.name:
        problems.append("name must be a non-empty str")
    for flag in ("concurrent_clients", "tracing", "awaits_by_waiting", "distant_workers"):
        if not isinstance(getattr(engine, flag), bool):
            problems.append(f"{flag} must be a bool")
    room = engine.idle_capacity()
    if room is not None and (not isinstance(room, int) or room < 0):
        problems.append(f"idle_capacity() gave {room!r}: an int >= 0, or None")
    known = engine.resources()
    if known is not None:
        if not (isinstance(known, tuple) and len(known) == 2 and all(isinstance(d, dict) for d in known)):
            problems.append(f"resources() gave {known!r}: a pair of dicts (total, free), or None")
        elif not all(isinstance(v, (int, float)) and v >= 0 for d in known for v in d.values()):
            problems.append(f"resources() gave {known!r}: amounts must be numbers >= 0")
        elif any(known[1].get(k, 0) > v + 1e-9 for k, v in known[0].items()):
            problems.append(f"resources() gave {known!r}: more free than in total")
    typical = engine.typical_run_time("a task never called")
    if typical is not None:
        problems.append(f"typical_run_time() of a task never called gave {typical!r}, not None")
    return problems


@plait.task
def problems_inside_a_task():
    return shape_problems(current_engine())


def test_every_engine_has_the_protocols_shape(engine):
    assert shape_problems(current_engine()) == []


def test_the_engine_inside_a_task_has_the_protocols_shape(engine):
    assert problems_inside_a_task().result() == []


def test_the_tracing_engine_has_the_protocols_shape():
    from plait.graph import Graph
    from plait.parallel.tracing import TracingEngine

    problems = shape_problems(TracingEngine(Graph(), None))
    assert problems == []


def test_submit_wait_for_and_value_of(engine):
    e = current_engine()
    f = e.submit(double, (21,), {}, OPTIONS)
    assert isinstance(f, Future)
    e.wait_for([f], 1, None)
    assert f._state == FINISHED  # final when wait_for returns, without result()
    assert e.value_of(f) == 42 and f.result() == 42
    e.refresh(f)  # a no-op on a settled future
    assert f._state == FINISHED


def test_values_of_gives_values_in_order(engine):
    e = current_engine()
    futures = [e.submit(double, (i,), {}, OPTIONS) for i in range(6)] + [e.put([1, 2])]
    e.wait_for(futures, len(futures), None)
    assert e.values_of(futures) == [0, 2, 4, 6, 8, 10, [1, 2]]
    assert e.values_of([]) == []
    assert plait.get(futures) == [0, 2, 4, 6, 8, 10, [1, 2]]


def test_submit_many_gives_one_future_per_call_in_order(engine):
    e = current_engine()
    first = e.submit(double, (1,), {}, OPTIONS)
    futures = e.submit_many(double, [((i,), {}) for i in range(5)] + [((first,), {}), ((), {"x": 7})], OPTIONS)
    assert all(isinstance(f, Future) for f in futures) and len({f.id for f in futures}) == 7
    assert plait.get(futures) == [0, 2, 4, 6, 8, 4, 14]
    failed = e.submit_many(refuse, [((1,), {}), ((2,), {})], OPTIONS)
    e.wait_for(failed, 2, None)
    assert [str(f._exc) for f in failed] == ["no 1", "no 2"]  # each call fails on its own
    assert e.submit_many(double, [], OPTIONS) == []


@plait.task
def submit_many_inside_a_task(n):
    return plait.get(current_engine().submit_many(double, [((i,), {}) for i in range(n)], OPTIONS))


def test_submit_many_inside_a_task(engine):
    assert submit_many_inside_a_task(4).result() == [0, 2, 4, 6]


@plait.task
def add(a, b):
    return a + b


@plait.task(num_cpus=0)
def total(items):
    return sum(items)


def test_submit_graph_runs_calls_that_read_each_other(engine):
    e = current_engine()
    outside = e.submit(double, (5,), {}, OPTIONS)
    calls = [
        Call(double, (1,), {}, OPTIONS),  # 0: 2
        Call(add, (Earlier(0), outside), {}, OPTIONS),  # 1: 12
        Call(add, (Earlier(1),), {"b": Earlier(0)}, OPTIONS),  # 2: 14
        Call(total, ([Earlier(0), Earlier(1), {"no": "marker"}.get("x", 3)],), {}, total.task_options),  # 3: 17
        Call(add, ("a-string", "-and-more"), {}, OPTIONS),  # 4: strings stay strings
        Call(total, ((Earlier(2), Earlier(3)),), {}, OPTIONS),  # 5: 31
    ]
    futures = e.submit_graph(calls)
    assert all(isinstance(f, Future) for f in futures) and len({f.id for f in futures}) == len(calls)
    assert plait.get(futures) == [2, 12, 14, 17, "a-string-and-more", 31]
    assert e.submit_graph([]) == []


def test_a_failure_in_a_graph_reaches_the_calls_that_read_it(engine):
    e = current_engine()
    futures = e.submit_graph([
        Call(refuse, (1,), {}, OPTIONS), Call(add, (Earlier(0), 1), {}, OPTIONS), Call(double, (4,), {}, OPTIONS),
    ])
    e.wait_for(futures, 3, None)
    assert [f._state for f in futures] == [FAILED, FAILED, FINISHED]
    with pytest.raises(ValueError, match="no 1"):
        futures[1].result()
    assert futures[2].result() == 8


def test_submit_graph_refuses_a_marker_that_is_not_an_earlier_call(engine):
    e = current_engine()
    with pytest.raises(ValueError, match=r"call 1 of the graph \('add'\) reads Earlier\(1\): a call may read only"):
        e.submit_graph([Call(double, (1,), {}, OPTIONS), Call(add, (Earlier(1), 1), {}, OPTIONS)])
    with pytest.raises(ValueError, match="num_returns=2"):
        e.submit_graph([Call(double, (1,), {}, TaskOptions(num_returns=2))])


@plait.task
def graph_inside_a_task(n):
    e = current_engine()
    calls = [Call(double, (i,), {}, OPTIONS) for i in range(n)]
    calls.append(Call(total, ([Earlier(i) for i in range(n)],), {}, OPTIONS))
    return e.submit_graph(calls)[-1].result()


def test_submit_graph_inside_a_task(engine):
    assert graph_inside_a_task(4).result() == 12


def test_a_released_future_fails_and_cannot_be_passed_on(engine):
    e = current_engine()
    f = e.submit(double, (21,), {}, OPTIONS)
    kept = e.put([1, 2, 3])
    assert f.result() == 42
    gate = e.submit(nap, (0.3,), {}, OPTIONS)
    reader = e.submit(add, (kept, [gate]), {}, OPTIONS)  # waits for gate, then reads kept
    pending = e.submit(nap, (0.3,), {}, OPTIONS)
    if e.name != "inline":  # there every call has run by the time its future exists
        with pytest.raises(ValueError, match="still pending and cannot be released"):
            pending.release()
    f.release()
    kept.release()  # a call submitted before still reads it
    f.release()  # twice: nothing more
    assert f.done() and f._state == FAILED
    with pytest.raises(plait.ReleasedError, match=r"was released \(Future.release\(\)\)"):
        f.result()
    assert isinstance(f.exception(), plait.ReleasedError)
    for passed in ((f,), ([f],), (plait.unresolved(f),)):
        with pytest.raises(plait.ReleasedError):
            e.submit(double, passed, {}, OPTIONS)
    with pytest.raises(plait.ReleasedError):
        e.submit(double, (), {"x": f}, OPTIONS)
    assert pending.result() == 0.3
    assert reader.result() == [1, 2, 3, 0.3]


def test_a_future_of_another_engine_is_refused_not_taken_for_one_of_its_own(engine):
    from plait.engines.inline import InlineEngine
    from plait.runtime.options import EngineConfig

    e = current_engine()
    other = InlineEngine(EngineConfig())
    theirs = other.put("another engine's value")  # its id is a small number, as ours are
    ours = [e.put(i) for i in range(3)]
    for passed in ((theirs,), ([theirs],), ({"k": theirs},), (plait.unresolved(theirs),)):
        with pytest.raises(plait.PlaitError, match="belongs to (the|another) inline engine.*, not to the .* engine this call"):
            e.submit(double, passed, {}, OPTIONS)
    with pytest.raises(plait.PlaitError, match="a future is good only with the engine that made it"):
        e.submit(double, (), {"x": theirs}, OPTIONS)
    with pytest.raises(plait.PlaitError, match="belongs to (the|another) inline engine"):
        e.put([theirs])
    assert plait.get(ours) == [0, 1, 2]  # and the engine goes on


@plait.actor
class Label:
    def __init__(self, text):
        self.text = text

    def read(self):
        return self.text


def test_an_actor_handle_of_another_engine_is_refused(engine):
    from plait.engines.inline import InlineEngine
    from plait.runtime.options import ActorOptions, EngineConfig

    e = current_engine()
    other = InlineEngine(EngineConfig())
    theirs = other.create_actor(Label, ("theirs",), {}, ActorOptions())
    ours = e.create_actor(Label, ("ours",), {}, ActorOptions())
    with pytest.raises(plait.PlaitError, match="belongs to another engine than the .* engine this call goes to"):
        e.call_actor(theirs, "read", (), {})
    with pytest.raises(plait.PlaitError, match="an actor handle is good only with the engine that created"):
        e.kill_actor(theirs)
    assert e.call_actor(ours, "read", (), {}).result() == "ours"


class RefusesPickling:
    def __reduce__(self):
        raise RuntimeError("this object refuses to be pickled")


def test_a_value_that_cannot_be_pickled_is_refused_with_a_serialization_error(engine):
    e = current_engine()
    with pytest.raises(plait.SerializationError, match="cannot put a value of type list: it cannot be pickled"):
        e.put([RefusesPickling()])
    with pytest.raises(plait.SerializationError, match="refuses to be pickled"):
        e.submit(double, ([RefusesPickling()],), {}, OPTIONS)
    assert e.submit(double, (4,), {}, OPTIONS).result() == 8


def test_a_failure_is_final_with_its_exception(engine):
    e = current_engine()
    f = e.submit(refuse, (3,), {}, OPTIONS)
    e.wait_for([f], 1, None)
    assert f._state == FAILED and isinstance(f._exc, ValueError) and "no 3" in str(f._exc)
    with pytest.raises(ValueError, match="no 3"):
        f.result()


def test_put_adopt_and_dependencies(engine):
    e = current_engine()
    box = e.put({"k": [1, 2]})
    e.wait_for([box], 1, None)
    assert e.value_of(box) == {"k": [1, 2]}
    again = e.adopt(box._id, box.name)
    assert isinstance(again, Future) and again.result() == {"k": [1, 2]}
    assert e.submit(double, (e.submit(double, (1,), {}, OPTIONS),), {}, OPTIONS).result() == 4


def test_wait_for_returns_at_its_timeout(engine):
    e = current_engine()
    slow = e.submit(nap, (2.0,), {}, OPTIONS)
    e.wait_for([slow], 1, 0.01)
    assert slow._state in (PENDING, FINISHED)  # no error; a 2 s nap cannot have ended
    e.wait_for([slow], 1, None)
    assert slow._state == FINISHED


def test_callbacks_are_pushed_and_cancel_answers(engine):
    e = current_engine()
    seen = threading.Event()
    f = e.submit(double, (5,), {}, OPTIONS)
    f.add_done_callback(lambda fut: seen.set())
    assert seen.wait(60) and f.result() == 10
    assert e.cancel(f) is False  # finished: nothing to cancel
    assert f._state != CANCELLED


@plait.actor
class Told:
    """Starts a call and returns; its done-callback must run with nobody waiting for it."""

    def __init__(self):
        self.told = threading.Event()
        self.outcome = None

    def start(self, x):
        inner = current_engine().submit(double, (x,), {}, OPTIONS)
        inner.add_done_callback(self._done)

    def _done(self, fut):
        self.outcome = fut.result()
        self.told.set()

    def outcome_when_told(self):
        return self.told.wait(60), self.outcome


def test_callbacks_are_pushed_inside_an_actor(engine):
    told = Told()
    told.start(21).result()
    assert told.outcome_when_told().result() == (True, 42)


@plait.task
def awaits_nested(x):
    import asyncio

    async def main():
        futures = [double(i) for i in range(x)]
        return [await f for f in futures]

    return asyncio.run(main())


def test_await_inside_a_task(engine):
    assert awaits_nested(5).result() == [0, 2, 4, 6, 8]


def test_status_and_timeline_are_records(engine):
    e = current_engine()
    e.submit(double, (1,), {}, OPTIONS).result()
    assert isinstance(e.status(), list) and all(isinstance(r, dict) for r in e.status())
    events = e.timeline_events()
    assert isinstance(events, list) and all(isinstance(ev, dict) for ev in events)
