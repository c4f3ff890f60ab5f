"""``plait.compat.dask`` against Dask itself: random ``dask.delayed`` programs built the
same way with both, every value compared; keys, purity and errors as Dask has them;
the ``Client``/``LocalCluster`` stand-ins."""

from __future__ import annotations

import operator
import random

import dask as real_dask
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import plait
import plait.compat.dask as dask
from plait.compat.dask.distributed import Client, LocalCluster, as_completed


def inc(x):
    return x + 1


def add(x, y):
    return x + y


def total(items):
    return sum(items)


def draw():
    return random.random()


def pair(x):
    return (x, -x)


STEP = st.one_of(
    st.tuples(st.just("inc"), st.integers(0, 50)),
    st.tuples(st.just("add"), st.integers(0, 50), st.integers(0, 50)),
    st.tuples(st.just("op"), st.sampled_from(["+", "-", "*", "//", "%", "neg"]), st.integers(0, 50), st.integers(-3, 9)),
    st.tuples(st.just("sum"), st.lists(st.integers(0, 50), max_size=4)),
    st.tuples(st.just("pair"), st.integers(0, 50), st.integers(0, 1)),
    st.tuples(st.just("dict"), st.integers(0, 50), st.integers(0, 50)),
)
OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv, "%": operator.mod}


def build(module, steps, seeds):
    """The same program of delayed calls in ``module`` (Dask, or plait's stand-in)."""
    values = [module.delayed(s) for s in seeds]
    for step in steps:
        pick = lambda i: values[i % len(values)]  # noqa: E731
        kind = step[0]
        if kind == "inc":
            values.append(module.delayed(inc)(pick(step[1])))
        elif kind == "add":
            values.append(module.delayed(add)(pick(step[1]), pick(step[2])))
        elif kind == "op":
            _, op, i, const = step
            if op == "neg":
                values.append(-pick(i))
            elif op in ("//", "%"):
                values.append(OPS[op](pick(i), const or 1))  # never by zero: Dask would raise as plait does
            else:
                values.append(OPS[op](pick(i), const) if const % 2 else OPS[op](const, pick(i)))
        elif kind == "sum":
            values.append(module.delayed(total)([pick(i) for i in step[1]]))
        elif kind == "pair":
            values.append(module.delayed(pair, nout=2)(pick(step[1]))[step[2]])
        else:
            values.append(module.delayed(dict)(a=pick(step[1]), b=[pick(step[2]), 1])["b"][0])
    return values


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(STEP, min_size=1, max_size=25), seeds=st.lists(st.integers(-20, 20), min_size=1, max_size=3),
       chosen=st.lists(st.integers(0, 100), min_size=1, max_size=5))  # fmt: skip
def test_random_delayed_programs_compute_what_dask_computes(steps, seeds, chosen):
    theirs = build(real_dask, steps, seeds)
    ours = build(dask, steps, seeds)
    picked = sorted({i % len(ours) for i in chosen})
    expected = real_dask.compute(*[theirs[i] for i in picked], scheduler="sync")
    with plait.init(engine="local", workers=2):
        assert dask.compute(*[ours[i] for i in picked]) == expected
        assert [ours[i].compute() for i in picked] == list(expected)
        # containers of delayed values, as Dask walks them
        assert dask.compute({"all": [ours[i] for i in picked]})[0] == {"all": list(expected)}


def test_keys_and_purity_are_as_in_dask(local):
    assert dask.delayed(inc, pure=True)(1).key == dask.delayed(inc, pure=True)(1).key
    assert dask.delayed(inc)(1).key != dask.delayed(inc)(1).key  # impure by default: never merged
    assert dask.delayed(inc)(1).key.startswith("inc-")
    draws = [dask.delayed(draw)() for _ in range(4)]
    assert len(set(dask.compute(*draws))) == 4  # four calls, not one
    same = dask.delayed(draw, pure=True)()
    first, again = dask.compute(same, same)  # one key: computed once in the graph
    assert first == again
    assert dask.is_dask_collection(same) and not dask.is_dask_collection(1)


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def norm1(self):
        return abs(self.x) + abs(self.y)


def test_classes_attributes_and_methods(local):
    point = dask.delayed(Point)(dask.delayed(inc)(2), -4)
    assert dask.compute(point.x, point.norm1(), point.y * 2) == (3, 7, -8)
    assert dask.delayed(inc).compute() is inc  # a delayed function's own value is the function


def test_what_dask_refuses_plait_refuses(local):
    d = dask.delayed(inc)(1)
    with pytest.raises(TypeError, match="not iterable"):
        list(d)
    with pytest.raises(TypeError, match="Truth of Delayed"):
        bool(d)
    with pytest.raises(TypeError, match="immutable"):
        d.x = 1
    a, b = dask.delayed(pair, nout=2)(3)
    assert dask.compute(a, b) == (3, -3)
    with pytest.raises(plait.NotSupported, match="scheduler"):
        d.compute(scheduler="a-cluster-i-named")


def test_a_failing_call_raises_its_own_error_and_the_rest_is_computed(local):
    def fails(x):
        raise ValueError(f"bad {x}")

    bad = dask.delayed(fails)(dask.delayed(inc)(1))
    with pytest.raises(ValueError, match="bad 2"):
        bad.compute()
    assert dask.delayed(inc)(41).compute() == 42


def test_a_long_chain_and_a_persisted_value(local):
    value = dask.delayed(inc)(0)
    for _ in range(2000):  # far past Python's recursion limit if lowered recursively
        value = dask.delayed(inc)(value)
    assert value.compute() == 2001
    kept = dask.delayed(inc)(10).persist()
    assert isinstance(kept, dask.Delayed)
    assert dask.compute(kept + 1, kept * 2) == (12, 22)


def test_visualize_writes_plait_picture(local, tmp_path):
    path = dask.delayed(add)(dask.delayed(inc)(1), 2).visualize(filename=str(tmp_path / "g.html"))
    assert "<html" in open(path).read().lower()
    with pytest.raises(plait.NotSupported, match=".html"):
        dask.delayed(inc)(1).visualize(filename=str(tmp_path / "g.png"))


def test_client_and_local_cluster_stand_ins_run_on_plait():
    with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
        assert plait.is_initialized()
        futures = client.map(inc, range(10))
        assert client.gather(futures) == list(range(1, 11))
        assert client.submit(add, 1, 2).result() == 3
        graph = dask.delayed(total)([dask.delayed(inc)(i) for i in range(5)])
        assert client.compute(graph).result() == 15
        assert client.compute([graph, graph], sync=True) == [15, 15]
        done = sorted(f.result() for f in as_completed(client.map(inc, [5, 6, 7])))
        assert done == [6, 7, 8]
        scattered = client.scatter([1, 2])
        assert client.submit(add, *scattered).result() == 3
    assert not plait.is_initialized()  # the client started plait, and stopped it


# ---- dask.distributed: what Dask's futures programs use ---------------------------------


def _sleep_then(value, seconds):
    import time

    time.sleep(seconds)
    return value


def test_as_completed_takes_futures_added_while_iterating_and_counts_what_is_left(local):
    client = Client()
    seq = as_completed(client.map(inc, range(4)))
    assert seq.count() == 4
    total_seen, added = 0, 0
    while seq.count() > 1:  # the tree reduction of dask-examples' futures notebook
        a, b = next(seq), next(seq)
        seq.add(client.submit(add, a, b, priority=1))  # a hint, not an argument of add
        added += 1
    assert added == 3
    (last,) = list(seq)
    total_seen = last.result()
    assert total_seen == sum(range(1, 5))
    assert seq.is_empty() and seq.count() == 0
    batches = list(as_completed(client.map(inc, range(6)), with_results=True).batches())
    assert sorted(r for batch in batches for _, r in batch) == list(range(1, 7))
    failing = as_completed([client.submit(operator.truediv, 1, 0)], with_results=True, raise_errors=False)
    ((future, exc),) = list(failing)
    assert isinstance(exc, ZeroDivisionError)


def test_wait_returns_dasks_sets_and_raises_on_timeout(local):
    from plait.compat.dask.distributed import wait

    client = Client()
    fast, slow = client.submit(inc, 1), client.submit(_sleep_then, 0, 30)
    first = wait([fast, slow], return_when="FIRST_COMPLETED")
    assert fast in first.done and first.done | first.not_done == {fast, slow}
    with pytest.raises(TimeoutError):
        wait([fast, slow], timeout=0.2)
    slow.cancel(force=True)
    done = wait([fast, fast])  # a future given twice is one future
    assert done.done == {fast} and done.not_done == set()


def test_submit_and_map_take_dasks_options_without_passing_them_on(local):
    client = Client()
    hints = dict(key="k", workers=["w"], priority=10, fifo_timeout="1s", allow_other_workers=True, pure=False)
    assert client.submit(add, 1, 2, **hints).result() == 3
    assert client.gather(client.map(add, [1, 2], [10, 20], batch_size=1, **hints)) == [11, 22]


def test_retries_rerun_a_call_that_failed(local, tmp_path):
    marker = tmp_path / "failed-once"

    def fails_once(path):
        import os

        if not os.path.exists(path):
            open(path, "w").close()
            raise ValueError("first attempt")
        return "second attempt"

    client = Client()
    assert client.submit(fails_once, str(marker), retries=1).result() == "second attempt"
    marker.unlink()
    with pytest.raises(ValueError, match="first attempt"):
        client.submit(fails_once, str(marker)).result()


class Counter:
    n = 0

    def __init__(self, start=0):
        self.n = start

    def increment(self):
        self.n += 1
        return self.n


def test_a_dask_actor_runs_methods_in_order_and_reads_attributes(local):
    client = Client()
    counter = client.submit(Counter, 10, actor=True).result()
    futures = [counter.increment() for _ in range(5)]
    assert [f.result() for f in futures] == [11, 12, 13, 14, 15]
    assert counter.n == 15  # reading an attribute blocks until the actor answers
    assert dir(counter) == ["increment", "n"]
    assert "Counter" in repr(counter)
    with pytest.raises(TypeError, match="needs a class"):
        client.submit(inc, 1, actor=True)


def _fib(n):
    from plait.compat.dask.distributed import get_client, rejoin, secede

    if n < 2:
        return n
    client = get_client()
    a, b = client.submit(_fib, n - 1), client.submit(_fib, n - 2)
    secede()
    a, b = client.gather([a, b])
    rejoin()
    return a + b


@dask.delayed
def _delayed_fib(n):
    if n < 2:
        return n
    a, b = dask.compute(_delayed_fib(n - 1), _delayed_fib(n - 2))
    return a + b


def test_tasks_that_submit_or_compute_more_tasks_do_not_deadlock_on_one_worker():
    with plait.init(engine="local", workers=1):
        client = Client()
        assert client.submit(_fib, 8).result() == 21
        assert _delayed_fib(8).compute() == 21  # compute inside a task, a delayed function pickled


def _holds_lease(sem, seconds):
    import os
    import time

    with sem:
        start = time.time()
        time.sleep(seconds)
        return os.getpid(), start, time.time()


def _waits_for(event_name):
    from plait.compat.dask.distributed import Event

    return Event(event_name).wait(timeout=60)


def test_semaphore_lock_and_event_are_shared_by_every_task_and_client():
    from plait.compat.dask.distributed import Event, Lock, Semaphore

    with plait.init(engine="local", workers=4):
        client = Client()
        sem = Semaphore(max_leases=2, name="database")
        spans = client.gather(client.map(_holds_lease, [sem] * 6, [0.3] * 6))
        for _, start, _ in spans:  # never more than two leases held at one moment
            assert sum(1 for _, s, e in spans if s <= start < e) <= 2
        lock = Lock("one-at-a-time")
        spans = client.gather(client.map(_holds_lease, [lock] * 3, [0.2] * 3))
        for _, start, _ in spans:
            assert sum(1 for _, s, e in spans if s <= start < e) == 1
        assert lock.acquire() and lock.locked() and not lock.acquire(timeout=0.1)
        lock.release()
        assert not lock.locked()
        waiting = client.map(_waits_for, ["go"] * 3)
        assert not Event("go").is_set()
        assert not any(f.done() for f in waiting)
        Event("go").set()
        assert client.gather(waiting) == [True, True, True]
        assert Event("other").wait(timeout=0.1) is False


def test_cluster_scale_grows_and_shrinks_the_local_engine():
    with LocalCluster(n_workers=1) as cluster, Client(cluster) as client:
        engine = client.engine
        assert len(engine.worker_pids()) == 1
        cluster.scale(3)
        assert len(engine.worker_pids()) == 3
        assert engine.resources()[0]["CPU"] == 3
        assert client.gather(client.map(_sleep_then, range(3), [0.1] * 3)) == [0, 1, 2]
        cluster.scale(1)
        assert engine.resources()[0]["CPU"] == 1
        with pytest.raises(ValueError, match="whole number"):
            engine.scale(0)
        with pytest.raises(plait.NotSupported, match="adaptive"):
            cluster.scale()


def test_what_dask_distributed_has_and_plait_does_not_is_named():
    import plait.compat.dask.distributed as distributed

    for name in ("Queue", "Variable", "Scheduler", "get_worker"):
        with pytest.raises(plait.NotSupported, match=name):
            getattr(distributed, name)
    with pytest.raises(AttributeError):
        distributed.no_such_thing  # noqa: B018
    with pytest.raises(plait.NotSupported, match="asynchronous"):
        Client(asynchronous=True)


def test_a_chain_of_delayed_calls_runs_fused_as_dask_fuses_it(local):
    from plait.compat.dask.lower import plan

    chain = dask.delayed(inc)(0)
    for _ in range(49):
        chain = dask.delayed(inc)(chain)

    def tasks(**options):
        return sum(1 for n in plan((chain,), traverse=True, options=options).nodes if n.op == "task")

    assert tasks() == 1
    assert tasks(optimize_graph=False) == 50
    assert chain.compute() == 50
    assert chain.compute(optimize_graph=False) == 50
