"""Local-engine behaviour that has no inline counterpart: real concurrency and waiting."""

from __future__ import annotations

import os
import time

import pytest

import plait
from plait.runtime.context import current_engine


@plait.task
def sleep_return(x, delay):
    time.sleep(delay)
    return x


def test_tasks_run_in_parallel(local):
    @plait.task
    def span(delay):
        start = time.time()
        time.sleep(delay)
        return start, time.time()

    (s1, e1), (s2, e2) = plait.get([span(1.0), span(1.0)])
    assert s1 < e2 and s2 < e1  # the two calls overlapped in time


def test_get_timeout(local):
    f = sleep_return(1, 2.0)
    with pytest.raises(TimeoutError):
        plait.get([f], timeout=0.1)
    with pytest.raises(plait.GetTimeoutError):
        f.result(timeout=0.05)
    assert f.result(timeout=10) == 1


def test_wait_heterogeneous_durations(local):
    slow = sleep_return("slow", 1.5)
    fast = [sleep_return(i, 0.05 * i) for i in range(4)]
    done, pending = plait.wait([slow, *fast], num_returns=2, timeout=10)
    assert not slow.done()  # it returned as soon as two were done, the slow one still running
    assert slow not in done and len(done) == 2
    done, pending = plait.wait([slow], num_returns=1, timeout=0.1)
    assert done == [] and pending == [slow]
    done, pending = plait.wait([slow, *fast], num_returns=5, timeout=10)
    assert len(done) == 5 and slow.result() == "slow"


def test_as_completed_yields_in_finish_order(local):
    futures = [sleep_return(d, d) for d in (0.6, 0.1, 0.3)]
    assert [f.result() for f in plait.as_completed(futures, timeout=10)] == [0.1, 0.3, 0.6]


def test_cancel_queued_task(local):
    blockers = [sleep_return(i, 1.0) for i in range(2)]
    time.sleep(0.1)
    queued = sleep_return("queued", 0)
    assert queued.cancel()
    assert queued.cancelled()
    with pytest.raises(plait.CancelledError):
        queued.result()
    dependent_of_cancelled = sleep_return(queued, 0)
    with pytest.raises(plait.CancelledError):
        dependent_of_cancelled.result(timeout=10)
    assert plait.get(blockers) == [0, 1]
    assert not blockers[0].cancel()  # finished tasks cannot be cancelled


def test_fib_recursion_on_two_workers_does_not_deadlock(local):
    @plait.task
    def fib(n):
        if n < 2:
            return n
        a, b = fib(n - 1), fib(n - 2)
        return plait.get(a) + plait.get(b)

    assert fib(15).result(timeout=120) == 610


def test_blocked_worker_lends_its_cpu(local):
    @plait.task
    def parent():
        # both children are started by other workers while this one waits
        start = time.time()
        total = sum(plait.get([sleep_return(1, 0.5), sleep_return(2, 0.5)]))
        return total, start, time.time()

    (t1, s1, e1), (t2, s2, e2) = plait.get([parent(), parent()], timeout=60)
    assert t1 == t2 == 3
    # both parents held the two workers at once, and their children still ran
    assert s1 < e2 and s2 < e1


def test_status_explains_waiting_tasks(local):
    first = sleep_return("a", 1.0)
    second = sleep_return(first, 0)
    time.sleep(0.2)
    report = plait.status()
    by_id = {rec["id"]: rec for rec in report}
    assert by_id[first.id]["state"] == "running"
    assert by_id[second.id]["state"] == "waiting"
    assert "sleep_return" in by_id[second.id]["why"]
    assert "unfinished" in str(report)
    second.result(timeout=10)
    assert str(plait.status()) == "plait: no unfinished tasks"


def test_status_reports_resource_wait():
    @plait.task(resources={"license": 1})
    def licensed(delay):
        time.sleep(delay)
        return True

    with plait.init(workers=2, resources={"license": 1}):
        first, second = licensed(1.0), licensed(0)
        time.sleep(0.3)
        states = {rec["id"]: rec for rec in plait.status()}
        assert states[second.id]["state"] == "ready"
        assert "license" in states[second.id]["why"]
        assert plait.get([first, second], timeout=20) == [True, True]


def test_many_tasks_and_memory_is_freed(local):
    engine = current_engine()
    for _ in range(3):
        assert sum(plait.get([sleep_return(i, 0) for i in range(3000)])) == sum(range(3000))
    deadline = time.monotonic() + 5
    while engine.stats()["results"] > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = engine.stats()
    assert stats["results"] == 0 and stats["refs"] == 0 and stats["tasks"] == 0


def test_callback_cannot_block_the_scheduler(local):
    errors = []

    def callback(fut):
        try:
            sleep_return(1, 0).result()
        except RuntimeError as exc:
            errors.append(str(exc))

    f = sleep_return(1, 0)
    f.add_done_callback(callback)
    f.result()
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    assert errors and "done-callback" in errors[0]


@plait.task
def wait_for_file(path, value):
    while not os.path.exists(path):
        time.sleep(0.01)
    return value


@plait.task
def pid_after(delay):
    time.sleep(delay)
    return os.getpid()


def _until(condition, what: str) -> None:
    """Wait for a state (``what``), however long the machine takes: a state that never
    comes is a hang, which pytest-timeout reports with every thread's stack."""
    while not condition():
        time.sleep(0.02)


def _state_of(name: str) -> str | None:
    return next((r["state"] + " " + r["why"] for r in plait.status() if r["name"] == name), None)


def test_extra_workers_started_for_blocked_ones_are_retired(local, monkeypatch, tmp_path):
    from plait.engines.local import engine as engine_module

    monkeypatch.setattr(engine_module, "IDLE_RETIRE_S", 0.2)
    engine = current_engine()
    original = set(engine.worker_pids())
    gate = str(tmp_path / "gate")

    @plait.task
    def parent(box):
        return plait.get(box[0])  # runs elsewhere: this worker blocks and lends its CPU

    slow = wait_for_file(gate, "slow")  # holds one worker until the test opens the gate
    _until(lambda: (_state_of("wait_for_file") or "").startswith("running"), "the gated task to run")
    waiting = parent(plait.put([slow]))
    _until(lambda: "blocked in get()" in (_state_of("test_extra_workers_started_for_blocked_ones_are_retired.<locals>.parent") or ""), "the parent to block")
    others = plait.get([pid_after(0.05) for _ in range(4)], timeout=60)
    assert set(others).isdisjoint(original)  # both original workers are busy: an extra one ran them
    open(gate, "w").close()
    assert waiting.result(timeout=60) == "slow"
    _until(lambda: len(engine.worker_pids()) == 2, "the extra worker to retire")


def test_submit_from_many_threads(local):
    import threading

    results = {}

    def client(k):
        results[k] = sum(plait.get([sleep_return(i, 0) for i in range(500)]))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == {k: sum(range(500)) for k in range(8)}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.parametrize("total", [200_000])
def test_driver_memory_stays_flat_over_many_tasks(local, total):
    engine = current_engine()

    @plait.task
    def noop(i):
        return i

    window = 20_000
    plait.get([noop(i) for i in range(window)])  # warm up: pools and caches reach size
    baseline = _rss_mb()
    for start in range(0, total, window):
        assert len(plait.get([noop(i) for i in range(start, start + window)])) == window
    growth = _rss_mb() - baseline
    assert growth < 40, f"driver grew by {growth:.1f} MB over {total} tasks"
    deadline = time.monotonic() + 5
    while engine.stats()["results"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.stats()["results"] == 0


@plait.task
def gated(path, pid_file):
    with open(pid_file, "w") as f:
        f.write(str(os.getpid()))
    while not os.path.exists(path):
        time.sleep(0.01)
    return "opened"


def test_cancel_of_a_running_task_and_cancel_force(local, tmp_path):
    """cancel() of a running task answers False and it keeps running; force=True stops it."""
    engine = current_engine()
    pid_file = tmp_path / "pid"
    running = gated(str(tmp_path / "never"), str(pid_file))
    _until(lambda: pid_file.exists() and pid_file.read_text() != "", "the task to start")
    pid = int(pid_file.read_text())
    assert running.cancel() is False and not running.done()
    assert running.cancel(force=True) is True
    assert running.cancelled()
    with pytest.raises(plait.CancelledError, match="cancelled"):
        running.result()
    _until(lambda: pid not in engine.worker_pids() and len(engine.worker_pids()) == 2, "the worker to be replaced")
    assert plait.get([sleep_return(i, 0) for i in range(4)]) == [0, 1, 2, 3]  # the engine goes on


def test_force_cancel_of_an_actor_call_is_refused(local, tmp_path):
    from tests.test_actors import Log

    log = Log()
    busy = log.slow_append("x", 1.0)
    _until(lambda: "running" in (_state_of("Log.slow_append") or ""), "the call to run")
    with pytest.raises(plait.NotSupported, match="plait.kill"):
        busy.cancel(force=True)
    assert busy.result() == 1


def test_queued_work_is_shared_evenly_among_busy_workers(tmp_path):
    """Equal tasks behind busy workers split 9/5/3/3 over four: the first worker to finish
    took half the queue. A worker now takes its share among all the workers."""
    import re

    with plait.init(engine="local", workers=4):
        gates = [tmp_path / f"gate{i}" for i in range(4)]
        pid_files = [tmp_path / f"pid{i}" for i in range(4)]
        holders = [gated(str(g), str(p)) for g, p in zip(gates, pid_files, strict=True)]
        _until(lambda: all(p.exists() and p.read_text() for p in pid_files), "all four workers to be busy")
        rest = tmp_path / "rest"
        queued = [wait_for_file(str(rest), i) for i in range(12)]
        _until(lambda: sum(r["state"] == "ready" for r in plait.status()) == 12, "the calls to queue")
        gates[0].touch()  # one worker finishes: it takes its share of the twelve
        assert holders[0].result(timeout=60) == "opened"

        def on_workers() -> dict:
            counts: dict = {}
            for r in plait.status():
                m = re.search(r"on worker (\d+)", r["why"])
                if m and r["name"] == "wait_for_file":
                    counts[m.group(1)] = counts.get(m.group(1), 0) + 1
            return counts

        _until(lambda: sum(on_workers().values()) > 0, "the freed worker to take calls")
        assert list(on_workers().values()) == [3]  # 12 over 4 workers, not half of them
        for g in gates[1:]:
            g.touch()
        rest.touch()
        assert plait.get(queued, timeout=60) == list(range(12))


@plait.task
def until_exists(path, label, started=None):
    if started:
        open(started, "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.005)
    return label


@plait.task
def quick(x):
    return x


def test_short_tasks_mixed_in_do_not_unbalance_long_ones(local, tmp_path):
    """Six long calls, each followed by a short call of its result (as `s += f(i)` makes
    them), over two workers: each worker runs three long calls, as if the short ones were
    not there. The long calls end one at a time, in the order equal calls would, when the
    test opens their gates, so the placement is the same on every run."""
    plait.get([quick(i) for i in range(20)])  # measured: a quick call is a short one
    gates = [str(tmp_path / f"gate{i}") for i in range(6)]
    longs, shorts = [], []
    for i, gate in enumerate(gates):
        longs.append(until_exists(gate, i))
        shorts.append(quick(longs[-1]))
    # 0 and 1 run first; then the first worker takes its share (2 and 3), the second
    # worker its own (4), and 5 goes to whichever is free first: the second
    for i in (0, 1, 2, 4):
        open(gates[i], "w").close()
        assert longs[i].result(timeout=120) == i
    for i in (3, 5):
        open(gates[i], "w").close()
    assert plait.get(shorts, timeout=120) == list(range(6))
    runs: dict = {}
    for event in current_engine().timeline_events():
        if event["name"] == "until_exists":
            runs.setdefault(event["worker"], []).append(event["start"])
    assert sorted(len(v) for v in runs.values()) == [3, 3], runs


def test_a_result_is_not_held_back_by_the_long_call_after_it(tmp_path):
    """A worker sends the results it has before it starts a call that may run long: the
    caller of a quick call batched before a long one gets its result while the long one runs."""
    gates = [str(tmp_path / "gate0"), str(tmp_path / "gate1")]
    with plait.init(engine="local", workers=1):
        started = str(tmp_path / "started")
        first = until_exists(gates[0], "first", started)  # the worker runs it: the next two wait, together
        quick_one = quick(7)
        long_one = until_exists(gates[1], "long")
        try:
            deadline = time.monotonic() + 60
            while not os.path.exists(started) and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.05)  # it has run a while: measured as a call that may run long
            open(gates[0], "w").close()
            assert first.result(timeout=60) == "first"
            assert quick_one.result(timeout=30) == 7  # while the long call still runs
            assert not long_one.done()
        finally:
            open(gates[1], "w").close()
        assert long_one.result(timeout=60) == "long"


def test_retry_exceptions_naming_a_class_of_the_main_script(tmp_path):
    """Options travel to workers by value: an exception class defined in ``__main__`` (the
    usual place in a script) once made every worker that unpickled them die, and the call hang."""
    script = tmp_path / "script.py"
    script.write_text(
        "import plait\n"
        "class Flaky(Exception):\n"
        "    pass\n"
        "attempts = []\n"
        "@plait.task(retries=2, retry_exceptions=(Flaky,))\n"
        "def once_flaky(marker):\n"
        "    import os\n"
        "    if not os.path.exists(marker):\n"
        "        open(marker, 'w').close()\n"
        "        raise Flaky('first attempt')\n"
        "    return 'second attempt'\n"
        "if __name__ == '__main__':\n"
        "    with plait.init(workers=1):\n"
        f"        print(plait.get(once_flaky({str(tmp_path / 'marker')!r}), timeout=120))\n"
    )
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "second attempt"


def test_what_tasks_and_actors_print_reaches_a_piped_stdout_line_by_line(tmp_path):
    """A worker's stdout is the driver's. Piped (a test, ``| tee``, a batch system) it was held
    in blocks and dropped at exit: a task's print never showed. Each line now leaves as it is
    printed, while the task still runs, nothing is lost at shutdown, and what the driver
    printed before a call left reads before what the call prints."""
    gate = tmp_path / "gate"
    script = tmp_path / "script.py"
    script.write_text(
        "import os, sys, time\n"
        "import plait\n"
        "@plait.task\n"
        "def chatty(gate):\n"
        "    print('task started')\n"
        "    while not os.path.exists(gate):\n"
        "        time.sleep(0.01)\n"
        "    print('task done')\n"
        "    print('task error line', file=sys.stderr)\n"
        "    return 1\n"
        "@plait.actor\n"
        "class Talker:\n"
        "    def say(self, i):\n"
        "        print('actor says', i)\n"
        "        return i\n"
        "if __name__ == '__main__':\n"
        "    with plait.init(workers=2):\n"
        "        print('driver starts')\n"
        "        talker = Talker()\n"
        "        plait.get([talker.say(i) for i in range(3)], timeout=120)\n"
        f"        plait.get(chatty({str(gate)!r}), timeout=120)\n"
        "    print('driver done')\n"
    )
    import select
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        seen = []
        while "task started" not in seen:  # before the task may finish: it waits for the gate
            ready, _, _ = select.select([proc.stdout], [], [], 120)
            assert ready, f"no line while the task runs; so far {seen}"
            line = proc.stdout.readline()
            assert line, f"stdout closed; so far {seen}"
            seen.append(line.strip())
        gate.touch()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    lines = seen + [line.strip() for line in out.splitlines() if line.strip()]
    assert lines[0] == "driver starts"  # printed before any call left: it reads first
    assert sorted(lines[1:-1]) == sorted(["actor says 0", "actor says 1", "actor says 2", "task started", "task done"])
    assert lines[-1] == "driver done"
    assert "task error line" in err
