"""Fault tolerance with real process kills: nothing computed is lost, failures are named."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time

import pytest

import plait
from plait.runtime.context import current_engine
from tests.conftest import pid_alive


@plait.task
def leaf(i):
    return i


@plait.task
def combine(a, b):
    time.sleep(0.0005)
    return a + b


def test_sigkill_random_workers_during_a_10000_task_dag(local):
    engine = current_engine()
    stop = threading.Event()
    kills = []

    def killer():
        rng = random.Random(0)
        while not stop.is_set() and len(kills) < 6:
            time.sleep(0.15)
            pids = engine.worker_pids()
            if pids:
                pid = rng.choice(pids)
                try:
                    os.kill(pid, signal.SIGKILL)
                    kills.append(pid)
                except ProcessLookupError:
                    pass

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        # 5,000 leaves reduced pairwise: 9,999 tasks, each a dependency of the next level
        level = [leaf(i) for i in range(5000)]
        while len(level) > 1:
            nxt = [combine(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        result = level[0].result(timeout=300)
    finally:
        stop.set()
        thread.join()
    assert result == sum(range(5000))
    assert kills, "the test must really kill workers"
    assert len(engine.worker_pids()) == 2  # replaced


@pytest.mark.parametrize(
    "how",
    ["sigkill", "os_exit", "segfault"],
)
def test_crash_is_retried_then_reported(local, tmp_path, how):
    marker = tmp_path / "ran"

    @plait.task(retries=1)
    def crash_once():
        if not marker.exists():
            marker.write_text("x")
            _crash(how)
        return "survived"

    assert crash_once().result(timeout=60) == "survived"

    @plait.task(retries=1)
    def always_crash():
        _crash(how)

    with pytest.raises(plait.WorkerCrashedError, match="always_crash") as info:
        always_crash().result(timeout=60)
    assert "retries=1" in str(info.value)
    assert leaf(5).result(timeout=30) == 5  # the engine recovered


def _crash(how):
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "os_exit":
        os._exit(3)
    else:
        import ctypes

        ctypes.string_at(0)


class _CrashesWhenUnpickled:
    """Stands for what a task may capture that kills the process rebuilding it (a C
    extension's object, a module whose import exits)."""

    def __init__(self, how):
        self.how = how

    def __reduce__(self):
        return (_crash, (self.how,))


@pytest.mark.parametrize("how", ["os_exit", "segfault"])
def test_a_task_whose_function_kills_the_worker_that_unpickles_it_is_retried_then_reported(local, how):
    """Functions were unpickled as they arrived, before any call ran: a worker that died of it
    was charged to no call, so the call went to the next worker, and the next, for ever."""
    captured = _CrashesWhenUnpickled(how)

    @plait.task(retries=1)
    def uses_it():
        return captured is not None

    with pytest.raises(plait.WorkerCrashedError, match="uses_it") as info:
        uses_it().result(timeout=120)
    assert "retries=1" in str(info.value)
    assert leaf(5).result(timeout=60) == 5  # the engine recovered
    assert len(current_engine().worker_pids()) == 2


class _FailsWhenUnpickled:
    def __reduce__(self):
        return (int, ("not a number",))


def test_a_task_whose_function_cannot_be_unpickled_fails_with_the_reason(local):
    captured = _FailsWhenUnpickled()

    @plait.task
    def uses_it():
        return captured is not None

    pids = set(current_engine().worker_pids())
    with pytest.raises(plait.SerializationError, match="could not be loaded in a worker") as info:
        uses_it().result(timeout=60)
    assert "invalid literal for int()" in str(info.value)
    assert leaf(5).result(timeout=60) == 5
    assert set(current_engine().worker_pids()) == pids  # no worker died of it


def test_results_computed_before_a_crash_are_kept(local):
    done = [leaf(i) for i in range(20)]
    assert plait.get(done) == list(range(20))
    for pid in current_engine().worker_pids():
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    assert plait.get([combine(done[0], done[19])], timeout=30) == [19]
    assert plait.get(done) == list(range(20))


def test_queued_tasks_survive_their_worker(local):
    @plait.task
    def slow(i):
        time.sleep(0.05)
        return i

    futures = [slow(i) for i in range(60)]
    time.sleep(0.2)
    for pid in current_engine().worker_pids():
        os.kill(pid, signal.SIGKILL)
    assert plait.get(futures, timeout=60) == list(range(60))


def test_timeout_stops_the_worker_and_engine_goes_on(local):
    @plait.task(timeout=0.3)
    def hang():
        time.sleep(60)

    before = set(current_engine().worker_pids())
    with pytest.raises(plait.TaskTimeoutError):
        hang().result(timeout=30)
    assert leaf(1).result(timeout=30) == 1
    assert set(current_engine().worker_pids()) != before


def test_workers_that_cannot_start_fail_tasks_instead_of_looping(tmp_path, monkeypatch):
    # a sitecustomize that breaks every new Python process started with this path
    (tmp_path / "sitecustomize.py").write_text("import os\nif os.environ.get('PLAIT_BREAK_WORKERS'):\n    raise SystemExit(7)\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("PLAIT_BREAK_WORKERS", "1")
    with plait.init(workers=2):
        with pytest.raises(plait.PlaitError, match="keep dying before they start"):
            leaf(1).result(timeout=60)


def test_a_num_returns_call_whose_worker_dies_is_retried_with_all_its_items(local, tmp_path):
    marker = tmp_path / "ran"

    @plait.task(retries=1, num_returns=3)
    def crash_once_then_split(x):
        if not marker.exists():
            marker.write_text("x")
            os.kill(os.getpid(), signal.SIGKILL)
        return x, x + 1, [x] * 2

    a, b, c = crash_once_then_split(4)
    assert plait.get([c, b, a], timeout=60) == [[4, 4], 5, 4]

    @plait.task(retries=0, num_returns=2)
    def always_crash():
        os.kill(os.getpid(), signal.SIGKILL)

    for item in always_crash():
        with pytest.raises(plait.WorkerCrashedError, match="always_crash"):
            item.result(timeout=60)


@plait.task(retries=0)
def crash_leaving_a_child(how, pidfile):
    """Start a long-lived child (by the shell, or a bare fork that keeps every descriptor),
    write its pid, then die."""
    if how == "shell":
        os.system(f"sleep 300 & echo $! > {pidfile}")
    else:
        pid = os.fork()
        if pid == 0:
            time.sleep(300)
            os._exit(0)
        with open(pidfile, "w") as f:
            f.write(str(pid))
    os._exit(3)


@pytest.mark.parametrize("how", ["shell", "fork"])
def test_a_crash_is_seen_while_a_child_the_task_started_lives_on(local, tmp_path, how):
    pidfile = tmp_path / "child.pid"
    f = crash_leaving_a_child(how, str(pidfile))
    try:
        # the child lives 300 s: only the worker's own exit can have ended the call
        with pytest.raises(plait.WorkerCrashedError, match="exit code 3"):
            f.result(timeout=120)
    finally:
        deadline = time.monotonic() + 30
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGKILL)  # the child this test made
    assert plait.get([leaf(1), leaf(2)]) == [1, 2]


@plait.task
def nap(seconds):
    time.sleep(seconds)
    return seconds


def test_an_internal_error_in_the_scheduler_fails_every_pending_call_at_once(monkeypatch):
    with plait.init(engine="local", workers=1) as session:
        engine = session.engine
        running = nap(60)  # its worker is busy with it: shutdown stops it
        queued = nap(0)
        pids = [w.proc.pid for w in engine.workers.values()]

        def broken() -> None:  # a fault injected into the scheduler's own loop
            raise RuntimeError("injected scheduler fault")

        monkeypatch.setattr(engine, "_check_deadlines", broken)
        woken = leaf(1)  # wakes the scheduler thread, which then fails
        for f in (running, queued, woken):
            with pytest.raises(plait.EngineError, match="scheduler failed .*injected scheduler fault.*plait.shutdown"):
                f.result(timeout=60)
        with pytest.raises(plait.EngineError, match="cannot go on"):
            leaf(2)
        (record,) = plait.status()
        assert record["state"] == "failed" and "injected scheduler fault" in record["why"]
    for pid in pids:  # shutdown still stops every worker it started
        assert not pid_alive(pid)


def test_a_call_whose_outcome_the_scheduler_cannot_take_fails_and_the_rest_go_on(monkeypatch):
    with plait.init(engine="local", workers=1) as session:  # one worker: it must be free again
        engine = session.engine
        real = engine._on_done
        faults = []

        def fails_once(worker, tid, *rest):  # a fault injected into the handler of one outcome
            if not faults:
                faults.append(tid)
                raise RuntimeError("injected handler fault")
            return real(worker, tid, *rest)

        monkeypatch.setattr(engine, "_on_done", fails_once)
        first = leaf(1)
        with pytest.raises(plait.EngineError, match="could not take the outcome of 'leaf'.*injected handler fault"):
            first.result(timeout=60)
        assert plait.get([leaf(i) for i in range(5)], timeout=60) == [0, 1, 2, 3, 4]


_OOM_DRIVER = """
import plait

@plait.task(retries=0)
def hungry():
    block = bytearray(600 * 1024 * 1024)  # written: every page is touched
    return len(block)

with plait.init(engine="local", workers=1):
    try:
        hungry().result(timeout=120)
        print("no error")
    except plait.WorkerCrashedError as exc:
        print(exc)
"""


def _memory_cgroup(tmp_name: str, limit: int) -> tuple[str, str] | None:
    """A child memory cgroup limited to ``limit`` bytes: (its directory, the file that takes
    pids), or None where this process may not make one."""
    v1 = "/sys/fs/cgroup/memory"
    try:
        if os.path.isdir(v1):
            path = os.path.join(v1, tmp_name)
            os.mkdir(path)
            with open(os.path.join(path, "memory.limit_in_bytes"), "w") as f:
                f.write(str(limit))
            with contextlib.suppress(OSError):  # no swap to escape to
                with open(os.path.join(path, "memory.memsw.limit_in_bytes"), "w") as f:
                    f.write(str(limit))
        else:
            path = os.path.join("/sys/fs/cgroup", tmp_name)
            os.mkdir(path)
            with open(os.path.join(path, "memory.max"), "w") as f:
                f.write(str(limit))
            with contextlib.suppress(OSError):
                with open(os.path.join(path, "memory.swap.max"), "w") as f:
                    f.write("0")
    except OSError:
        return None
    return path, os.path.join(path, "cgroup.procs")


def test_a_worker_stopped_by_the_out_of_memory_killer_is_reported_as_such(tmp_path):
    import subprocess
    import sys

    made = _memory_cgroup(f"plait-test-{os.getpid()}", 300 * 1024 * 1024)
    if made is None:
        pytest.skip("needs a memory cgroup this test may create (root)")
    path, procs = made
    try:
        script = tmp_path / "driver.py"
        script.write_text(_OOM_DRIVER)
        # the driver, and so its workers, in the small cgroup
        done = subprocess.run(
            ["sh", "-c", f'echo $$ > {procs} && exec "{sys.executable}" "{script}"'],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "died (killed by SIGKILL by the kernel's out-of-memory killer" in done.stdout, done.stdout
        assert "Give it memory=" in done.stdout
    finally:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.rmdir(path)
                break
            except OSError:  # its last processes are still exiting
                time.sleep(0.1)


@plait.actor
class SlowToStart:
    def __init__(self, marker_dir, data):
        self.total = float(data.sum())
        with open(os.path.join(marker_dir, f"init-{os.getpid()}"), "w"):
            pass  # this __init__ has begun: the test may kill it now
        time.sleep(1.0)

    def total_of_data(self):
        return self.total


def test_an_actor_killed_in_its_init_is_restarted_with_its_large_arguments(local, tmp_path):
    import numpy as np

    engine = current_engine()
    data = np.ones(500_000)  # 4 MB: a store file, read again by each restart
    actor = SlowToStart.options(max_restarts=2)(str(tmp_path), data)
    deadline = time.monotonic() + 60
    while not list(tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.01)

    def answers():
        got = []
        for _ in range(3):
            try:
                got.append(actor.total_of_data().result(timeout=120))
            except plait.ActorDiedError:
                pass  # a call made while it died
        return got

    os.kill(engine.actor_pid(actor), signal.SIGKILL)  # in __init__: a death, not a failing __init__
    first = answers()
    assert first and set(first) == {500_000.0}
    os.kill(engine.actor_pid(actor), signal.SIGKILL)  # once more, after __init__ finished
    second = answers()
    assert second and set(second) == {500_000.0}
    assert len(list(tmp_path.iterdir())) == 3  # __init__ ran three times
    plait.kill(actor)
    deadline = time.monotonic() + 30
    while engine.stats()["bytes_in_memory"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.stats()["bytes_in_memory"] == 0  # its arguments went with it
