"""Timeline, progress, the command line, the demo, start-up cost and clean exits."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import plait
from plait.tools.progress import ProgressBar
from tests.conftest import pid_alive

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@plait.task
def square(x):
    return x * x


def test_timeline_has_one_event_per_task(engine, tmp_path):
    plait.get([square(i) for i in range(25)])
    path = plait.timeline(str(tmp_path / "trace.json"))
    trace = json.load(open(path))
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert len(spans) == 25
    assert {e["name"] for e in spans} == {"square"}
    assert all(e["dur"] >= 0 and "tid" in e and "ts" in e for e in spans)


def test_trace_written_at_shutdown(tmp_path):
    path = tmp_path / "at-exit.json"
    with plait.init(workers=2, trace=str(path)):
        plait.get([square(i) for i in range(5)])
    spans = [e for e in json.load(open(path))["traceEvents"] if e["ph"] == "X"]
    assert len(spans) == 5


def test_progress_bar_counts_to_total(local):
    futures = [square(i) for i in range(40)]
    out = io.StringIO()
    with ProgressBar(futures, stream=out, min_interval=0):
        plait.get(futures)
    assert "40/40" in out.getvalue()


def _python(code: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        **kwargs,
    )


def test_import_is_light():
    # how fast it imports is measured in benchmarks/run.py (W7, start-up to first result)
    result = _python(
        """
        import sys
        import plait
        heavy = [m for m in ("numpy", "ray", "dask", "cloudpickle") if m in sys.modules]
        print(heavy)
        """
    )
    assert result.stdout.strip() == "[]", result.stdout


def test_plait_run_command(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import plait

            @plait.task
            def double(x):
                return 2 * x

            print("args", sys.argv[1:])
            print("result", plait.get([double(i) for i in range(4)]))
            """
        )
    )
    trace = tmp_path / "out.json"
    result = subprocess.run(
        [sys.executable, "-m", "plait", "run", str(script), "--workers", "2", "--trace", str(trace), "--", "a", "b"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "args ['a', 'b']" in result.stdout
    assert "result [0, 2, 4, 6]" in result.stdout
    assert len([e for e in json.load(open(trace))["traceEvents"] if e["ph"] == "X"]) == 4
    missing = subprocess.run([sys.executable, "-m", "plait", "run", str(tmp_path / "nope.py")], capture_output=True, text=True)
    assert missing.returncode == 2 and "no such script" in missing.stderr


@pytest.mark.parametrize("engine_name", ["local", "inline"])
def test_demo_runs(engine_name, tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "demo.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PLAIT_ENGINE": engine_name},
    )
    assert result.returncode == 0, result.stderr
    assert "pi ~ 3.1" in result.stdout
    assert (tmp_path / "demo.trace.json").exists()


_DRIVER = """
import os, signal, sys, time
# Ctrl-C as at a terminal: a shell starting a job in the background hands it SIGINT ignored
signal.signal(signal.SIGINT, signal.default_int_handler)
import plait

@plait.task
def nap(x):
    time.sleep(x)
    return x

plait.init(workers=2)
futures = [nap(30) for _ in range(4)]
time.sleep(0.5)
engine = plait.runtime.context.current_engine()
print(" ".join(map(str, engine.worker_pids())), engine.store.dirs.shm, flush=True)
{ending}
"""


def _start_driver(ending: str) -> tuple[subprocess.Popen, list[int], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _DRIVER.format(ending=ending)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    line = proc.stdout.readline().split()
    return proc, [int(p) for p in line[:-1]], line[-1]


def _ended(proc: subprocess.Popen) -> str:
    """Wait for the driver, reading its output (a wait alone deadlocks once the child has
    filled a pipe nobody reads); its stderr, for the failure message."""
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"the driver did not end within 30 s; its stderr:\n{err[-4000:]}") from None
    return err


def _gone(pids: list[int], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(pid_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def test_no_orphans_after_normal_exit():
    proc, pids, shm = _start_driver("sys.exit(0)")
    assert len(pids) == 2
    _ended(proc)
    assert _gone(pids)
    assert not os.path.exists(shm)


def test_no_orphans_after_ctrl_c():
    proc, pids, shm = _start_driver("plait.get(futures)")
    proc.send_signal(signal.SIGINT)
    _ended(proc)
    assert _gone(pids)
    assert not os.path.exists(shm)


def test_no_orphans_after_driver_sigkill():
    proc, pids, shm = _start_driver("plait.get(futures)")
    proc.kill()
    _ended(proc)
    assert _gone(pids, timeout=15)  # workers notice the dead driver and exit
    assert not os.path.exists(shm)  # and remove its store


_IDLE_DRIVER = """
import os, sys, time
import plait

@plait.actor
class Holder:
    def get(self):
        return os.getpid()

@plait.task
def big():
    return bytes(500_000)

plait.init(workers=3)
holder = Holder()
actor_pid = holder.get().result()
kept = [big() for _ in range(3)]
plait.get(kept)  # values in the store; every task worker idle
engine = plait.runtime.context.current_engine()
dirs = engine.store.dirs
print(" ".join(map(str, engine.worker_pids() + [actor_pid])), dirs.shm, dirs.spill, flush=True)
if sys.argv[1] == "os._exit":
    time.sleep(0.2)
    os._exit(0)  # no shutdown, no atexit
time.sleep(120)
"""


@pytest.mark.parametrize("ending", ["sigkill"] * 6 + ["os._exit"] * 2)
def test_a_driver_gone_with_idle_workers_and_an_actor_leaves_nothing(ending):
    proc = subprocess.Popen(
        [sys.executable, "-c", _IDLE_DRIVER, ending],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    *pids, shm, spill = proc.stdout.readline().split()
    pids = [int(p) for p in pids]
    assert len(pids) == 4
    if ending == "sigkill":
        proc.kill()
    _ended(proc)
    assert _gone(pids, timeout=15)
    # a worker that saw the end of its stream waited for the handover to a new parent
    assert not os.path.exists(shm) and not os.path.exists(spill)
