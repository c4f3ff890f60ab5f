"""The Ray and Dask engines, on real clusters started here.

A Ray cluster of two nodes (one CPU each, ``ray.cluster_utils.Cluster``) and a
Dask ``LocalCluster`` of two worker processes (one thread each) are started
once for this module and torn down at its end, one after the other. The
semantic tests of ``test_tasks.py``, ``test_actors.py``, ``test_parallel.py``,
``test_graph_run.py`` and ``test_stream.py`` (those that take the ``engine`` fixture) run here
unchanged on both engines: this module's ``engine`` fixture attaches plait to
the running cluster. Then come tests of
what is particular to these engines: nested futures in arbitrary objects,
attaching and detaching, ``NotSupported`` options, and faults with real kills
(a Ray node removed, a Dask worker process killed by PID mid-job).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import plait
import tests.test_actors as actor_tests
import tests.test_data as data_tests
import tests.test_data_columnar as columnar_tests
import tests.test_engine_conformance as conformance_tests
import tests.test_graph_run as graph_tests
import tests.test_parallel as parallel_tests
import tests.test_parallel_fusion as fusion_tests
import tests.test_stream as stream_tests
import tests.test_tasks as task_tests
from plait.runtime.context import current_engine
from tests.test_data_columnar import tpch  # noqa: F401 - a fixture of the columnar tests
from tests.test_tools import test_timeline_has_one_event_per_task  # noqa: F401 - collected here

pytest.importorskip("ray")
pytest.importorskip("distributed")

KINDS = ["ray", "dask"]


# ------------------------------------------------------------------ clusters
class Cluster:
    """One running cluster: what the engine attaches to, and handles for fault tests."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.ray_cluster = None
        self.client = None
        self.local_cluster = None
        if kind == "ray":
            self._start_ray()
        else:
            self._start_dask()

    def _start_ray(self) -> None:
        import ray
        from ray.cluster_utils import Cluster as RayCluster

        self.ray_cluster = RayCluster(
            initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
        )
        self.ray_cluster.add_node(num_cpus=1)
        self.ray_cluster.wait_for_nodes()
        ray.init(address=self.ray_cluster.address, include_dashboard=False, log_to_driver=False)

    def _start_dask(self) -> None:
        import dask
        import distributed

        # one crash too many fails a task (the default, 3, makes the crash test slow)
        with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
            self.local_cluster = distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                host="127.0.0.1",
            )
        self.client = distributed.Client(self.local_cluster)
        self.client.wait_for_workers(2)

    def attach(self) -> plait.runtime.api.Session:
        if self.kind == "ray":
            return plait.init(engine="ray")
        return plait.init(engine="dask", client=self.client)

    def close(self) -> None:
        if self.kind == "ray":
            import ray

            ray.shutdown()
            self.ray_cluster.shutdown()  # stops the processes it started, by PID
        else:
            self.client.close()
            self.local_cluster.close()


@pytest.fixture(scope="module", params=KINDS)
def cluster(request):
    """Module-scoped and parametrized: pytest runs every Ray test, stops Ray, then Dask."""
    c = Cluster(request.param)
    yield c
    c.close()


@pytest.fixture
def engine(cluster):
    """Overrides conftest's: the semantic tests imported below run on Ray and Dask."""
    with cluster.attach():
        yield cluster.kind


def only(kind: str):
    return pytest.mark.parametrize("cluster", [kind], indirect=True)


# ------------------------------------------- the semantic tests, re-collected
def _engine_tests(*modules) -> dict:
    found: dict = {}
    for module in modules:
        for name, fn in vars(module).items():
            if name.startswith("test_") and callable(fn) and "engine" in inspect.signature(fn).parameters:
                assert name not in found, f"two semantic tests named {name}"
                found[name] = fn
    return found


globals().update(
    _engine_tests(
        task_tests, actor_tests, parallel_tests, fusion_tests, graph_tests, conformance_tests, data_tests, columnar_tests,
        stream_tests,
    )
)


def test_nested_tasks(engine):
    """fib(12) as tasks; on Ray a smaller tree by default (see the slow variant below)."""
    if engine != "ray":
        task_tests.test_nested_tasks(engine)
        return

    @plait.task
    def fib(n):
        if n < 2:
            return n
        return sum(plait.get([fib(n - 1), fib(n - 2)]))

    assert fib(7).result() == 13


@pytest.mark.slow
@only("ray")
def test_nested_tasks_full_size_on_ray(engine):
    # each Ray worker blocked in a nested get releases its CPU and Ray starts
    # another worker process, so fib(12) starts dozens of processes: over a
    # minute on a loaded two-core machine
    task_tests.test_nested_tasks(engine)


# ------------------------------------------------------ particular to these
@dataclasses.dataclass
class Holder:
    label: str
    inner: object


@plait.task
def unwrap(holder):
    return holder.label, holder.inner


@plait.task
def which_engine():
    return type(current_engine()).__name__


@plait.task
def nested_engine():
    return which_engine().result()


@plait.task
def nap(x, seconds):
    time.sleep(seconds)
    return x


def test_futures_inside_any_object_are_dependencies(engine):
    a = task_tests.add(2, 3)
    assert unwrap(Holder("h", {"deep": [a]})).result() == ("h", {"deep": [5]})


def test_tasks_see_the_same_engine_inside_workers(engine):
    expected = {"ray": "RayEngine", "dask": "DaskEngine"}[engine]
    assert which_engine().result() == expected
    assert nested_engine().result() == expected


@plait.task
def make_future(x):
    return task_tests.add(x, 1)  # a future made in a worker, returned inside the result


@plait.task
def actor_inside_a_task(n):
    log = actor_tests.Log("t")
    for i in range(n):
        log.append(i)
    return log.snapshot().result()


def test_keyword_futures_and_futures_returned_from_tasks(engine):
    a = task_tests.add(1, 2)
    assert task_tests.add(1, b=a).result() == 4
    assert task_tests.add(a, b=a).result() == 6
    inner = make_future(41).result()
    assert isinstance(inner, plait.Future)
    time.sleep(0.5)  # the task that made it is long gone: the value must still be there
    assert inner.result(timeout=30) == 42


def test_actor_created_inside_a_task(engine):
    assert actor_inside_a_task(3).result(timeout=60) == ["t0", "t1", "t2"]


def test_wait_returns_as_soon_as_enough_are_done(engine):
    futures = [nap(0, 0.0), nap(1, 0.0), nap(2, 4)]
    done, pending = plait.wait(futures, num_returns=2, timeout=30)
    assert len(done) == 2 and pending == [futures[2]]
    assert not futures[2].done()  # it returned with the 4 s task still running
    with pytest.raises(plait.GetTimeoutError):
        futures[2].result(timeout=0.2)
    assert plait.status() and "nap" in str(plait.status())
    assert futures[2].result(timeout=30) == 2  # Dask cannot stop a running task: leave none behind


def test_cancel_a_queued_task(engine):
    # fill both slots, then cancel one that has not started
    blockers = [nap(i, 3) for i in range(2)]
    queued = nap("never", 0)
    assert queued.cancel()
    with pytest.raises(plait.CancelledError):
        queued.result(timeout=10)
    assert plait.get(blockers, timeout=60) == [0, 1]


def test_cancel_force_of_a_running_task(engine, tmp_path):
    """Ray stops it; Dask cannot interrupt a running task and says so."""
    from tests.test_local_engine import _until, gated

    pid_file = tmp_path / "pid"
    running = gated(str(tmp_path / "never"), str(pid_file))
    _until(lambda: pid_file.exists() and pid_file.read_text() != "", "the task to start")
    if engine == "dask":
        with pytest.raises(plait.NotSupported, match="cannot stop running task"):
            running.cancel(force=True)
        (tmp_path / "never").touch()
        assert running.result(timeout=60) == "opened"
        return
    assert running.cancel(force=True) is True
    with pytest.raises(plait.CancelledError):
        running.result(timeout=60)
    assert task_tests.add(1, 2).result(timeout=60) == 3  # the cluster goes on


def test_shutdown_leaves_an_attached_cluster_running(cluster):
    with cluster.attach():
        assert task_tests.add(1, 1).result() == 2
    assert not plait.is_initialized()
    if cluster.kind == "ray":
        import ray

        assert ray.is_initialized()
    else:
        assert cluster.client.status == "running"
    with cluster.attach():
        assert task_tests.add(2, 2).result() == 4


# ------------------------------------------------- several driver threads
@plait.task
def threaded_scale(x, k):
    return x * k


def test_many_threads_submit_and_fetch_concurrently(engine, tmp_path):
    """Driver threads at once: submit, put, actor calls, wait, done(), result(), get."""
    threads, per_thread, calls = 8, 12, 5
    log = actor_tests.Log()
    start = threading.Barrier(threads)

    def client(t):
        start.wait(timeout=60)  # all threads submit at the same time
        base = plait.put(t * 1000)
        scaled = [threaded_scale(task_tests.add(base, i), 2) for i in range(per_thread)]
        echoed = [task_tests.echo([t, i]) for i in range(per_thread)]  # values not carried by a status
        appended = [log.append((t, i)) for i in range(calls)]
        plait.wait(scaled, num_returns=2, timeout=120)
        deadline = time.monotonic() + 120
        while not scaled[-1].done() and time.monotonic() < deadline:
            time.sleep(0.01)
        return (
            [f.result(timeout=120) for f in scaled],
            plait.get(echoed, timeout=120),
            plait.get(appended, timeout=120),
        )

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(client, range(threads)))
    for t, (scaled, echoed, appended) in enumerate(results):
        assert scaled == [(t * 1000 + i) * 2 for i in range(per_thread)]
        assert echoed == [[t, i] for i in range(per_thread)]
        assert appended == sorted(appended)  # a thread's calls ran in its order
    entries = [ast.literal_eval(e) for e in log.snapshot().result(timeout=60)]
    assert sorted(entries) == [(t, i) for t in range(threads) for i in range(calls)]
    for t in range(threads):
        assert [i for tt, i in entries if tt == t] == list(range(calls))
    # each call settled once, whichever threads (or the watcher) saw it finish
    trace = json.load(open(plait.timeline(str(tmp_path / "trace.json"))))
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["name"] == "threaded_scale"]
    assert len(spans) == threads * per_thread


@plait.task
def lookahead_here():
    return bool(current_engine().concurrent_clients)


def test_lookahead_in_the_driver_not_inside_tasks(engine):
    assert current_engine().concurrent_clients
    assert lookahead_here().result(timeout=60) is False  # @parallel in a task runs in place


@plait.task
def meet(marker_dir, i, n, patience):
    """Start, then wait (up to ``patience`` s) until calls ``0..n-1`` have all started."""
    start = time.time()
    open(os.path.join(marker_dir, f"{i}.started"), "w").close()
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if all(os.path.exists(os.path.join(marker_dir, f"{j}.started")) for j in range(n)):
            break
        time.sleep(0.02)
    return start, time.time()


@plait.parallel
def meeting_loop(marker_dir, n, patience):
    spans = []
    for i in range(n):
        s = meet(marker_dir, i, n, patience)
        if s[0] > 0:  # each iteration waits on its own result: only lookahead starts the next
            spans.append(s)
    return spans


def test_parallel_looks_ahead_on_cluster_engines(engine, tmp_path):
    """Mirrors test_parallel.test_loop_iterations_overlap: the two iterations run at once.

    Each call waits until the other has started (the cluster has two slots), so
    with lookahead both return as soon as both run; without it the first would
    wait out its patience before the second were even submitted, and the spans
    would not overlap.
    """
    warm = tmp_path / "warm"
    warm.mkdir()
    plait.get([meet(str(warm), i, 2, 60) for i in range(2)], timeout=120)  # both slots' workers up
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    spans = meeting_loop(str(marker_dir), 2, 60)
    assert len(spans) == 2
    latest_start = max(s for s, _ in spans)
    earliest_end = min(e for _, e in spans)
    assert latest_start < earliest_end  # both iterations' calls ran at the same time


@plait.parallel
def meeting_search(marker_dir, n, patience):
    spans = []
    for i in range(n):
        s = meet(marker_dir, i, n, patience)
        spans.append(s)
        if s[0] < 0:  # never true, but a return test: issuing waits here every iteration
            return None
    return spans


def test_parallel_speculates_past_a_return_test_on_cluster_engines(engine, tmp_path):
    """Only speculation can start the second call while the first iteration's test waits."""
    warm = tmp_path / "warm"
    warm.mkdir()
    plait.get([meet(str(warm), i, 2, 60) for i in range(2)], timeout=120)
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    spans = meeting_search(str(marker_dir), 2, 30)
    assert len(spans) == 2
    assert max(s for s, _ in spans) < min(e for _, e in spans)  # the two calls ran at once


@plait.parallel
def accumulate_gated(n, path):
    s = 0
    for i in range(n):
        s += fusion_tests.gated(i, path)
    return s


def test_a_sum_over_pending_results_adds_no_task_on_cluster_engines(engine, tmp_path):
    """``s += f(i)``: on a cluster every link would be a scheduler hop (or, fused, a call
    fetching every result before it), so the driver adds the results as they arrive. While
    the calls wait, they are all the cluster has; the sum is still the sequential one."""
    gate = str(tmp_path / "open")
    n = 5
    out: dict = {}
    runner = threading.Thread(target=lambda: out.setdefault("value", accumulate_gated(n, gate)))
    runner.start()
    try:
        deadline = time.monotonic() + 120
        names: list = []
        while time.monotonic() < deadline and len(names) < n:
            names = [r["name"] for r in plait.status()]
            time.sleep(0.02)
        time.sleep(0.2)  # time enough for a lifted call to be submitted, were there one
        names = [r["name"] for r in plait.status()]
        assert names == ["gated"] * n, names
    finally:
        open(gate, "w").close()
        runner.join(120)
    assert out["value"] == sum(range(n))


@only("dask")
def test_dask_refuses_what_it_cannot_honour(engine):
    @plait.actor(max_restarts=1)
    class Restartable:
        def ping(self):
            return "pong"

    with pytest.raises(plait.NotSupported, match="dask engine.*max_restarts=1"):
        Restartable()
    with pytest.raises(plait.NotSupported, match="dask engine.*num_gpus=1"):
        task_tests.add.options(num_gpus=1)(1, 1)
    with pytest.raises(plait.NotSupported, match="dask engine.*num_cpus=2"):
        task_tests.add.options(num_cpus=2)(1, 1)
    with pytest.raises(plait.InfeasibleResourcesError, match="db"):
        task_tests.add.options(resources={"db": 1})(1, 1)


# ------------------------------------------------------------------- faults
@plait.task(retries=3)
def step(i):
    time.sleep(0.05)
    try:
        import ray

        where = ray.get_runtime_context().get_node_id() if ray.is_initialized() else os.getpid()
    except ImportError:
        where = os.getpid()
    return i, where


def _crash_marker_task(marker, retries):
    @plait.task(retries=retries)
    def crash_once():
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return "survived"

    return crash_once


@only("ray")
def test_ray_node_removed_mid_job(cluster, engine):
    rc = cluster.ray_cluster
    victim = next(iter(rc.worker_nodes))
    futures = [step(i) for i in range(80)]
    time.sleep(1.0)
    rc.remove_node(victim)
    try:
        results = plait.get(futures, timeout=150)
        assert [i for i, _ in results] == list(range(80))
        assert victim.node_id in {node for _, node in results}  # it did run some before it went
    finally:
        rc.add_node(num_cpus=1)
        rc.wait_for_nodes()


@only("ray")
def test_ray_worker_crash_is_retried_then_reported(engine, tmp_path):
    assert _crash_marker_task(str(tmp_path / "ran"), 1)().result(timeout=60) == "survived"

    @plait.task(retries=0)
    def always():
        os._exit(1)

    with pytest.raises(plait.WorkerCrashedError, match="always"):
        always().result(timeout=60)


@only("ray")
def test_ray_actor_death_and_restart(engine):
    log = actor_tests.Log()
    pid = log.pid().result()
    pending = log.slow_append("never", 30)
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(plait.ActorDiedError):
        pending.result(timeout=30)
    with pytest.raises(plait.ActorDiedError):
        log.append("after").result(timeout=30)

    @plait.actor(max_restarts=1)
    class Restartable:
        def pid(self):
            return os.getpid()

    r = Restartable()
    first = r.pid().result(timeout=30)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 30
    second = None
    while second is None and time.monotonic() < deadline:
        try:
            second = r.pid().result(timeout=30)
        except plait.ActorDiedError:
            time.sleep(0.1)
    assert second is not None and second != first


@only("dask")
def test_dask_worker_killed_mid_job(cluster, engine):
    client = cluster.client
    pids = list(client.run(os.getpid).values())
    futures = [step(i) for i in range(60)]
    plait.wait(futures, num_returns=10, timeout=60)
    assert not all(f.done() for f in futures)  # mid-job
    os.kill(pids[0], signal.SIGKILL)
    try:
        # what the dead worker held is computed again elsewhere
        results = plait.get(futures, timeout=150)
        assert [i for i, _ in results] == list(range(60))
    finally:
        client.wait_for_workers(2, timeout=60)


@only("dask")
def test_dask_worker_crash_is_retried_then_reported(cluster, engine, tmp_path):
    assert _crash_marker_task(str(tmp_path / "ran"), 1)().result(timeout=60) == "survived"

    @plait.task
    def always():
        os._exit(1)

    with pytest.raises(plait.WorkerCrashedError, match="always"):
        always().result(timeout=90)
    cluster.client.wait_for_workers(2, timeout=60)


@only("dask")
def test_dask_actor_dies_with_its_worker(cluster, engine):
    log = actor_tests.Log()
    pid = log.pid().result(timeout=30)
    pending = log.slow_append("never", 30)
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    try:
        with pytest.raises(plait.ActorDiedError, match="died|left the cluster"):
            pending.result(timeout=60)
        with pytest.raises(plait.ActorDiedError):
            log.append("after").result(timeout=30)
    finally:
        cluster.client.wait_for_workers(2, timeout=60)


@plait.task(num_returns=3)
def spread(x):
    return x, [x, x], {"x": x}


@only("ray")
def test_num_returns_on_ray_is_one_ray_task_with_one_span(engine, tmp_path):
    """Ray's own num_returns: no task per item, and the call's span recorded once."""
    calls = [spread(i) for i in range(4)]
    assert [plait.get(list(items)) for items in calls] == [[i, [i, i], {"x": i}] for i in range(4)]
    trace = json.load(open(plait.timeline(str(tmp_path / "trace.json"))))
    names = [e["name"] for e in trace["traceEvents"] if e.get("ph") == "X"]
    assert len([n for n in names if n.endswith("spread")]) == 4 and not [n for n in names if "spread[" in n]


# ------------------------------------------------------------ placement hints
@plait.task(num_returns=2)
def value_made_on_a_node(i):
    import ray

    time.sleep(0.3)  # long enough that both nodes get some of them
    return ray.get_runtime_context().get_node_id(), bytes(1_000_000)  # stored, not inlined


@plait.task
def node_of_this_task(_data_size):
    import ray

    return ray.get_runtime_context().get_node_id()


@only("ray")
def test_near_runs_a_call_on_the_node_that_holds_the_value(engine):
    made = [value_made_on_a_node(i) for i in range(6)]
    nodes = plait.get([node for node, _ in made], timeout=120)  # the values stay where made
    plait.wait([data for _, data in made], num_returns=6, timeout=120)
    assert len(set(nodes)) == 2, "the test needs values on both nodes"
    placed = [node_of_this_task.options(near=data)(1) for _, data in made]  # data not an argument
    assert plait.get(placed, timeout=120) == nodes


@plait.task
def bytes_made_somewhere(i):
    time.sleep(0.3)
    return bytes(1_000_000)


@plait.task
def worker_of_this_task():
    import distributed

    return distributed.get_worker().address


@only("dask")
def test_near_runs_a_call_on_a_worker_that_holds_the_value(cluster, engine):
    made: list = []
    holders: list = []
    for batch in range(10):  # on a loaded machine one worker may take a whole batch: make more
        more = [bytes_made_somewhere(6 * batch + i) for i in range(6)]
        plait.get(more, timeout=120)
        made += more
        holders += [set(cluster.client.who_has([f._payload])[f._payload.key]) for f in more]
        if len(set().union(*holders)) == 2:
            break
    assert len(set().union(*holders)) == 2, "the test needs values on both workers"
    # one call at a time: with several queued at once Dask's work stealing may move one
    # (a hint's restrictions are loose), which is allowed and would make this test flaky
    placed = [worker_of_this_task.options(near=f)().result(timeout=120) for f in made]
    assert all(where in held for where, held in zip(placed, holders, strict=True))
