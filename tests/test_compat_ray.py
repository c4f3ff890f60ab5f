"""``plait.compat.ray``: Ray programs on plait, their semantics where Ray's and plait's differ."""

from __future__ import annotations

import asyncio
import time

import pytest

import plait
import plait.compat.ray as ray
from plait.compat.ray.util import ActorPool


@pytest.fixture(params=["local", "inline"])
def session(request):
    ray.init(num_cpus=2, local_mode=request.param == "inline")
    yield request.param
    ray.shutdown()


@ray.remote
def square(x):
    return x * x


@ray.remote
def refs_seen(items):
    """What a task sees of refs nested in a list: refs, as on Ray."""
    return [isinstance(r, ray.ObjectRef) for r in items], ray.get(items)


@ray.remote
def fails(message):
    raise KeyError(message)


@ray.remote(num_returns=2)
def pair(x):
    return x, x + 1


@ray.remote
class Counter:
    def __init__(self, start=0):
        self.n = start

    def incr(self, by=1):
        self.n += by
        return self.n


@ray.remote
class Doubler:
    def double(self, v):
        return v * 2


@ray.remote
class AsyncWorker:
    async def slow(self, i):
        await asyncio.sleep(0.05)
        return i


def test_tasks_actors_and_returns(session):
    assert ray.get([square.remote(i) for i in range(5)]) == [0, 1, 4, 9, 16]
    a, b = pair.remote(3)
    assert ray.get([a, b]) == [3, 4]
    c = Counter.remote(10)
    assert ray.get([c.incr.remote() for _ in range(3)]) == [11, 12, 13]
    assert ray.get(c.incr.remote(by=square.remote(2))) == 17  # a top-level ref is resolved
    assert ray.get(square.options(num_cpus=1).remote(7)) == 49


def test_refs_nested_in_containers_arrive_as_refs(session):
    refs = [square.remote(i) for i in range(3)]
    kinds, values = ray.get(refs_seen.remote(refs))
    assert kinds == [True, True, True] and values == [0, 1, 4]


def test_a_task_error_is_both_ray_task_error_and_its_own_type(session):
    ref = fails.remote("missing")
    with pytest.raises(KeyError) as caught:
        ray.get(ref)
    assert isinstance(caught.value, ray.exceptions.RayTaskError)
    assert isinstance(caught.value.cause, KeyError)
    assert "missing" in str(caught.value)
    with pytest.raises(ray.exceptions.RayTaskError):
        ray.get([square.remote(1), ref])


def test_get_timeout_and_cancel_of_a_running_task():
    ray.init(num_cpus=2)
    try:
        blocker = sleeper.remote(60)
        with pytest.raises(ray.exceptions.GetTimeoutError):
            ray.get(blocker, timeout=0.1)
        with pytest.raises(plait.GetTimeoutError):  # the plait error it stands for
            ray.get(blocker, timeout=0.1)
        ray.cancel(blocker)  # running: stopped, as Ray's cancel does
        with pytest.raises(ray.exceptions.TaskCancelledError):
            ray.get(blocker, timeout=60)
        ready, pending = ray.wait([square.remote(2), sleeper.remote(60)], num_returns=1, timeout=30)
        assert ray.get(ready) == [4] and len(pending) == 1
        ray.cancel(pending[0], force=True)
    finally:
        ray.shutdown()


@ray.remote
def sleeper(seconds):
    time.sleep(seconds)
    return seconds


def test_actors_by_name_pools_and_kill(session):
    first = Counter.options(name="shared", get_if_exists=True).remote()
    again = Counter.options(name="shared", get_if_exists=True).remote()
    ray.get(first.incr.remote())
    assert ray.get(again.incr.remote()) == 2
    assert ray.get(ray.get_actor("shared").incr.remote()) == 3
    with pytest.raises(ValueError, match="Failed to look up actor"):
        ray.get_actor("nobody")
    pool = ActorPool([Doubler.remote(), Doubler.remote()])
    assert list(pool.map(lambda a, v: a.double.remote(v), [1, 2, 3, 4])) == [2, 4, 6, 8]
    assert sorted(pool.map_unordered(lambda a, v: a.double.remote(v), [5, 6])) == [10, 12]
    pool.submit(lambda a, v: a.double.remote(v), "x")
    pool.submit(lambda a, v: a.double.remote(v), None)
    assert pool.get_next() == "xx"
    with pytest.raises(TypeError) as caught:  # the actor call's own error, as Ray raises it
        pool.get_next()
    assert isinstance(caught.value, ray.exceptions.RayTaskError)
    ray.kill(first)
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(first.incr.remote(), timeout=60)


def test_async_actor_calls_run_and_return_in_order_of_their_refs(session):
    worker = AsyncWorker.remote()
    assert ray.get([worker.slow.remote(i) for i in range(20)]) == list(range(20))


def test_misuse_gets_ray_errors(session):
    with pytest.raises(TypeError, match=r"try '.*square.remote\(\)'"):
        square(1)
    with pytest.raises(TypeError, match=r"Counter.remote\(\)"):
        Counter()
    with pytest.raises(TypeError, match=r"incr.remote\(\)"):
        Counter.remote().incr()
    with pytest.raises(ValueError, match="ObjectRef or a list"):
        ray.get(5)
    with pytest.raises(TypeError, match="put"):
        ray.put(square.remote(1))
    with pytest.raises(RuntimeError, match="ray.init twice"):
        ray.init()
    assert ray.init(ignore_reinit_error=True) is not None
    assert ray.is_initialized()
    assert ray.cluster_resources()["CPU"] == 2
    assert 0 <= ray.available_resources().get("CPU", 0) <= 2


def test_what_plait_cannot_honour_is_refused_by_name():
    with pytest.raises(plait.NotSupported, match="runtime_env"):
        ray.init(runtime_env={"pip": ["requests"]})
    with pytest.raises(plait.NotSupported, match="engine='ray'"):
        ray.init(address="auto")
    with pytest.raises(plait.NotSupported, match="streaming generators"):

        @ray.remote
        def numbers():
            yield 1

    with pytest.raises(plait.NotSupported, match="num_returns='dynamic'"):
        ray.remote(num_returns="dynamic")(lambda: [1])
    with pytest.raises(plait.NotSupported, match="lifetime='detached'"):
        ray.remote(lifetime="detached")(type("Detached", (), {}))
    with pytest.raises(plait.NotSupported, match="plait.data"):
        ray.data  # noqa: B018
    with pytest.raises(plait.NotSupported, match="@ray.method"):
        ray.method(num_returns=2)
    assert not ray.is_initialized()


@pytest.mark.parametrize("cluster", ["ray", "dask"])
def test_the_same_program_runs_on_a_cluster_engine(cluster):
    """``engine=`` runs a Ray program through plait on Ray itself, or on Dask."""
    pytest.importorskip(cluster)
    ray.init(num_cpus=2, engine=cluster)
    try:
        assert ray.get([square.remote(i) for i in range(4)]) == [0, 1, 4, 9]
        kinds, values = ray.get(refs_seen.remote([square.remote(3)]))
        assert kinds == [True] and values == [9]
        c = Counter.remote()
        assert ray.get([c.incr.remote() for _ in range(3)]) == [1, 2, 3]
        with pytest.raises(KeyError) as caught:
            ray.get(fails.remote("gone"))
        assert isinstance(caught.value, ray.exceptions.RayTaskError)
        assert ray.cluster_resources()["CPU"] >= 1
    finally:
        ray.shutdown()


@ray.remote
class AsyncWaiter:
    def __init__(self):
        self.cancelled = 0

    async def wait(self):
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def started(self):
        return True

    async def cancellations(self):
        return self.cancelled


def test_cancel_of_a_running_async_actor_call_cancels_its_coroutine():
    """Ray's ``actors.py`` documentation: ``ray.cancel`` of a running call of an async actor
    cancels its ``asyncio.Task``; ``ray.get`` raises ``TaskCancelledError``."""
    ray.init(num_cpus=2)
    try:
        actor = AsyncWaiter.remote()
        ref = actor.wait.remote()
        assert ray.get(actor.started.remote(), timeout=60)  # calls run side by side: wait has started
        ray.cancel(ref)
        with pytest.raises(ray.exceptions.TaskCancelledError):
            ray.get(ref, timeout=60)
        while ray.get(actor.cancellations.remote(), timeout=60) == 0:
            time.sleep(0.02)
        assert ray.get(actor.cancellations.remote(), timeout=60) == 1
        with pytest.raises(ValueError, match="force"):  # Ray: force=True is refused for actor calls
            ray.cancel(actor.wait.remote(), force=True)
    finally:
        ray.shutdown()
