#!/usr/bin/env python
"""Run the same workloads on plait and its peers, side by side, in one run.

Systems (``--systems``):

- ``plait``  plait, local engine, ``plait.init(engine="local", workers=2)``
- ``inline`` plait, inline engine (sequential, in-process)
- ``ray``    Ray, ``ray.init(address="local", num_cpus=2, include_dashboard=False)``
- ``dask``   Dask distributed, ``LocalCluster(n_workers=2, threads_per_worker=1,
             processes=True, dashboard_address=None)`` + ``Client``
- ``ppe``    ``concurrent.futures.ProcessPoolExecutor(2)``

Workloads (``--only``): W1 throughput of no-op tasks, W2 round-trip latency,
W3 a chain of dependent tasks, W4 a tree reduction of numpy arrays, W5 moving a
large array to a task and back, W7 start-up to first result and idle memory of
a fresh process, W8 a long stream of no-op tasks with the driver's memory
sampled. Sizes are in ``SIZES`` below.

How it runs. Each system runs in a child process of this script (the same file
with ``--child``): it starts the system once, warms it up, then runs each
workload (a small untimed warm-up, then ``--repeat`` timed repetitions; a
workload stops repeating early once its repetitions have used ``--budget``
seconds, and the table says how many it ran). Results come back over a pipe.
A watchdog in the child reports a workload that runs past its timeout, with
the stacks of its threads (and ``plait.status()`` for plait); this script then
takes ``py-spy dump`` of the child's worker processes, stops them, and goes on
with the remaining workloads in a fresh child. W7 runs a small script per
system in a fresh interpreter each time, so imports count. Every process a
child started is tracked by PID while it runs and stopped if it outlives the
child; nothing is killed by name.

    .venv/bin/python benchmarks/run.py --out BENCHMARKS-results.md --json results.json
    .venv/bin/python benchmarks/run.py --quick
    .venv/bin/python benchmarks/run.py --only W1,W2 --systems plait,ray
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import traceback
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

SYSTEMS = ["plait", "inline", "ray", "dask", "ppe"]
LABELS = {
    "plait": "plait local",
    "inline": "plait inline",
    "ray": "Ray",
    "dask": "Dask",
    "ppe": "PPE",
}
ALIASES = {
    "plait-local": "plait",
    "local": "plait",
    "plait-inline": "inline",
    "processpool": "ppe",
    "processpoolexecutor": "ppe",
    "pool": "ppe",
}
WORKLOADS = ["W1", "W2", "W3", "W4", "W5", "W7", "W8"]

# Sizes per mode. W8 is sized per system: plait's target is a million tasks;
# the others run a smaller stream so the whole run stays within minutes.
SIZES: dict[str, dict[str, Any]] = {
    "full": {
        "W1": 10_000,
        "W2": 500,
        "W3": 1_000,
        "W4": (4_096, 1_000),  # leaves, float64 elements per leaf
        "W5": 200_000_000,  # bytes
        "W8": {"plait": 1_000_000, "inline": None, "ray": 20_000, "dask": 20_000, "ppe": 100_000},
        "W8_chunk": 20_000,  # submitted per window; at most two windows are in flight
        "repeat": 5,
        "budget": 40.0,
    },
    "quick": {
        "W1": 2_000,
        "W2": 200,
        "W3": 200,
        "W4": (1_024, 1_000),
        "W5": 50_000_000,
        "W8": {"plait": 200_000, "inline": None, "ray": None, "dask": None, "ppe": None},
        "W8_chunk": 20_000,
        "repeat": 2,
        "budget": 8.0,
    },
}
TIMEOUTS = {"W1": 150, "W2": 150, "W3": 150, "W4": 150, "W5": 180, "W7": 120, "W8": 300}
START_TIMEOUT = 120  # starting a system and warming it up
W8_FLAT_MB = (
    25.0  # "flat": the driver's RSS peak in the 2nd half of the stream exceeds the 1st half's by less
)
GB = 1e9
MB = 2**20


# ============================================================================ tasks
# Module level, so every system can ship them (this file runs as __main__ in
# the child, and each system pickles __main__ functions by value or forks).


def noop():
    return None


def inc(x):
    return x + 1


def add(a, b):
    return a + b


def touch(arr):
    # read a small slice: the point is getting the array there, not computing on it
    return float(arr[:1024].sum()) + arr.shape[0]


def make(nbytes):
    return np.ones(nbytes // 8)


def make_control(nbytes):
    # the same work as make() in the task, without sending the array back
    arr = np.ones(nbytes // 8)
    return float(arr[-1])


TASKS = {"noop": noop, "inc": inc, "add": add, "touch": touch, "make": make, "make_control": make_control}


# ========================================================================= adapters
class Adapter:
    """One system behind a common face: call, get, get1, put."""

    futures_as_args = True
    system = ""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def call(self, name: str, *args: Any) -> Any:
        raise NotImplementedError

    def get(self, handles: list[Any]) -> list[Any]:
        raise NotImplementedError

    def get1(self, handle: Any) -> Any:
        return self.get([handle])[0]

    def put(self, value: Any) -> Any:
        return value

    def diagnostics(self) -> str:
        return ""


class PlaitAdapter(Adapter):
    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.system = "plait" if engine == "local" else "inline"

    def start(self) -> None:
        import plait

        self.plait = plait
        plait.init(engine=self.engine, workers=2)
        self.tasks = {name: plait.task(fn) for name, fn in TASKS.items()}

    def stop(self) -> None:
        self.plait.shutdown()

    def call(self, name: str, *args: Any) -> Any:
        return self.tasks[name](*args)

    def get(self, handles: list[Any]) -> list[Any]:
        return self.plait.get(handles)

    def get1(self, handle: Any) -> Any:
        return handle.result()

    def put(self, value: Any) -> Any:
        return self.plait.put(value)

    def diagnostics(self) -> str:
        from plait.runtime import context

        out = [str(self.plait.status())]
        engine = context.engine_or_none()
        stats = getattr(engine, "stats", None)
        if stats is not None:
            out.append(f"engine.stats(): {stats()}")
        pids = getattr(engine, "worker_pids", None)
        if pids is not None:
            out.append(f"worker pids: {pids()}")
        return "\n".join(out)


class RayAdapter(Adapter):
    system = "ray"

    def start(self) -> None:
        import ray

        self.ray = ray
        ray.init(address="local", num_cpus=2, include_dashboard=False)
        self.tasks = {name: ray.remote(fn) for name, fn in TASKS.items()}

    def stop(self) -> None:
        self.ray.shutdown()

    def call(self, name: str, *args: Any) -> Any:
        return self.tasks[name].remote(*args)

    def get(self, handles: list[Any]) -> list[Any]:
        return self.ray.get(handles)

    def get1(self, handle: Any) -> Any:
        return self.ray.get(handle)

    def put(self, value: Any) -> Any:
        return self.ray.put(value)


class DaskAdapter(Adapter):
    system = "dask"

    def start(self) -> None:
        from dask.distributed import Client, LocalCluster

        self.cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        self.client = Client(self.cluster)

    def stop(self) -> None:
        try:
            self.client.close()
        finally:
            self.cluster.close()

    def call(self, name: str, *args: Any) -> Any:
        return self.client.submit(TASKS[name], *args, pure=False)

    def get(self, handles: list[Any]) -> list[Any]:
        return self.client.gather(handles)

    def get1(self, handle: Any) -> Any:
        return handle.result()

    def put(self, value: Any) -> Any:
        return self.client.scatter(value, hash=False)


class PoolAdapter(Adapter):
    system = "ppe"
    futures_as_args = False

    def start(self) -> None:
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(2)

    def stop(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def call(self, name: str, *args: Any) -> Any:
        return self.pool.submit(TASKS[name], *args)

    def get(self, handles: list[Any]) -> list[Any]:
        return [h.result() for h in handles]

    def get1(self, handle: Any) -> Any:
        return handle.result()


def make_adapter(system: str) -> Adapter:
    if system == "plait":
        return PlaitAdapter("local")
    if system == "inline":
        return PlaitAdapter("inline")
    if system == "ray":
        return RayAdapter()
    if system == "dask":
        return DaskAdapter()
    if system == "ppe":
        return PoolAdapter()
    raise ValueError(system)


# ======================================================================== workloads
def _now() -> float:
    return time.perf_counter()


def repeat(fn: Any, reps: int, budget: float) -> list[Any]:
    """Run ``fn`` up to ``reps`` times; stop early once ``budget`` seconds are spent."""
    out = []
    start = _now()
    for _ in range(reps):
        t = _now()
        out.append(fn())
        spent = _now() - start
        if spent + (_now() - t) > budget and out:
            break
    return out


def w1(a: Adapter, n: int) -> float:
    t = _now()
    handles = [a.call("noop") for _ in range(n)]
    a.get(handles)
    return _now() - t


def w2(a: Adapter, n: int) -> list[float]:
    lat = []
    for _ in range(n):
        t = _now()
        a.get1(a.call("noop"))
        lat.append(_now() - t)
    return lat


def w3(a: Adapter, n: int) -> float:
    t = _now()
    if a.futures_as_args:
        h = a.call("inc", 0)
        for _ in range(n - 1):
            h = a.call("inc", h)
        value = a.get1(h)
    else:
        value = 0
        for _ in range(n):
            value = a.get1(a.call("inc", value))
    elapsed = _now() - t
    if value != n:
        raise AssertionError(f"W3 chain returned {value!r}, expected {n}")
    return elapsed


def w4_leaves(leaves: int, length: int) -> tuple[list[np.ndarray], float]:
    arrays = [np.full(length, float(i)) for i in range(leaves)]
    return arrays, float(sum(range(leaves)))


def w4(a: Adapter, arrays: list[np.ndarray], expected: float) -> float:
    t = _now()
    level: list[Any] = arrays
    if a.futures_as_args:
        while len(level) > 1:
            level = [a.call("add", level[i], level[i + 1]) for i in range(0, len(level), 2)]
        result = a.get1(level[0])
    else:  # values come back to the driver after each level
        while len(level) > 1:
            level = a.get([a.call("add", level[i], level[i + 1]) for i in range(0, len(level), 2)])
        result = level[0]
    elapsed = _now() - t
    if not (result[0] == expected and result[-1] == expected):
        raise AssertionError(f"W4 reduction returned {result[:3]}..., expected {expected}")
    return elapsed


def w5_to(a: Adapter, arr: np.ndarray) -> float:
    t = _now()
    ref = a.put(arr)
    value = a.get1(a.call("touch", ref))
    elapsed = _now() - t
    if value != float(arr[:1024].sum()) + arr.shape[0]:
        raise AssertionError(f"W5 touch returned {value!r}")
    del ref
    return elapsed


def w5_back(a: Adapter, nbytes: int) -> float:
    t = _now()
    h = a.call("make", nbytes)
    arr = a.get1(h)
    last = arr[-1]
    elapsed = _now() - t
    if arr.nbytes != nbytes // 8 * 8 or last != 1.0:
        raise AssertionError(f"W5 back returned {arr.nbytes} bytes")
    del h, arr
    return elapsed


def w5_control(a: Adapter, nbytes: int) -> float:
    t = _now()
    a.get1(a.call("make_control", nbytes))
    return _now() - t


def w5_copy(arr: np.ndarray) -> float:
    t = _now()
    copy = arr.copy()
    elapsed = _now() - t
    del copy
    return elapsed


class RSSSampler:
    """Samples this process's RSS every ``period`` s in a thread."""

    def __init__(self, period: float = 0.02) -> None:
        import psutil

        self.proc = psutil.Process()
        self.period = period
        self.samples: list[tuple[float, int, int]] = []  # (t, rss, tasks submitted so far)
        self.progress = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((_now(), self.proc.memory_info().rss, self.progress))
            self._stop.wait(self.period)

    def __enter__(self) -> RSSSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((_now(), self.proc.memory_info().rss, self.progress))


def w8(a: Adapter, n: int, chunk: int) -> dict[str, Any]:
    import gc

    gc.collect()
    sampler = RSSSampler()
    base = sampler.proc.memory_info().rss
    with sampler:
        t = _now()
        prev: list[Any] | None = None
        for start in range(0, n, chunk):
            handles = [a.call("noop") for _ in range(min(chunk, n - start))]
            if prev is not None:
                a.get(prev)
            prev = handles
            sampler.progress = start + len(handles)
        if prev is not None:
            a.get(prev)
        elapsed = _now() - t
        del prev, handles
    samples = sampler.samples
    rss = [s[1] for s in samples]
    # a leak grows with the number of tasks; the allocator's warm-up does not:
    # compare the highest RSS in the second half of the stream with the first half's
    first = [s[1] for s in samples if s[2] <= n // 2] or rss[:1]
    second = [s[1] for s in samples if s[2] > n // 2] or rss[-1:]
    # a coarse trace for the JSON: at most ~200 points
    step = max(1, len(samples) // 200)
    trace = [(round(s[0] - samples[0][0], 3), round(s[1] / MB, 1), s[2]) for s in samples[::step]]
    return {
        "n": n,
        "chunk": chunk,
        "time": elapsed,
        "rss_before_mb": base / MB,
        "rss_peak_mb": max(rss) / MB,
        "rise_mb": (max(rss) - base) / MB,
        "rss_first_half_max_mb": max(first) / MB,
        "rss_end_mb": rss[-1] / MB,
        "growth_mb": (max(second) - max(first)) / MB,
        "trace": trace,
    }


def warmup(a: Adapter) -> None:
    a.get([a.call("noop") for _ in range(200)])
    a.get1(a.call("inc", 1))
    x = np.ones(1000)
    a.get1(a.call("add", x, x))
    a.get1(a.call("touch", a.put(np.ones(2048))))
    a.get1(a.call("make", 8 * 1000))
    a.get1(a.call("make_control", 8 * 1000))


def run_workload(a: Adapter, w: str, cfg: dict[str, Any], reps: int, budget: float) -> dict[str, Any]:
    if w == "W1":
        n = cfg["W1"]
        w1(a, max(100, n // 10))
        return {"n": n, "times": repeat(lambda: w1(a, n), reps, budget)}
    if w == "W2":
        n = cfg["W2"]
        w2(a, max(20, n // 10))
        runs = repeat(lambda: w2(a, n), reps, budget)
        return {
            "n": n,
            "medians_us": [statistics.median(r) * 1e6 for r in runs],
            "p10_us": [float(np.percentile(r, 10) * 1e6) for r in runs],
            "p90_us": [float(np.percentile(r, 90) * 1e6) for r in runs],
        }
    if w == "W3":
        n = cfg["W3"]
        w3(a, max(20, n // 10))
        return {"n": n, "times": repeat(lambda: w3(a, n), reps, budget)}
    if w == "W4":
        leaves, length = cfg["W4"]
        small, small_expected = w4_leaves(max(16, leaves // 16), length)
        w4(a, small, small_expected)
        arrays, expected = w4_leaves(leaves, length)
        return {
            "leaves": leaves,
            "length": length,
            "times": repeat(lambda: w4(a, arrays, expected), reps, budget),
        }
    if w == "W5":
        nbytes = cfg["W5"]
        arr = np.ones(nbytes // 8)
        # one untimed round at full size: the first touch of fresh memory can cost
        # far more than the copy itself (notably in VMs), and would skew a median of few
        w5_copy(arr)
        w5_to(a, arr)
        w5_back(a, nbytes)
        w5_control(a, nbytes)
        out: dict[str, list[float]] = {"copy": [], "to": [], "back": [], "control": []}

        def one() -> None:
            out["copy"].append(w5_copy(arr))
            out["to"].append(w5_to(a, arr))
            out["back"].append(w5_back(a, nbytes))
            out["control"].append(w5_control(a, nbytes))

        repeat(one, reps, budget)
        return {"bytes": arr.nbytes, **out}
    if w == "W8":
        n = cfg["W8"].get(a.system)
        if not n:
            return {"skipped": "not run for this system in this mode"}
        # smaller streams get smaller windows, so that they too have many windows
        chunk = min(cfg["W8_chunk"], max(1_000, n // 10))
        runs = repeat(lambda: w8(a, n, chunk), reps, budget)
        return {"n": n, "runs": runs}
    raise ValueError(w)


# ===================================================================== child side
class Watchdog:
    """Reports a workload that runs past its timeout, with every thread's stack."""

    def __init__(self, emit: Any, adapter: Adapter, workload: str, timeout: float) -> None:
        self.emit = emit
        self.adapter = adapter
        self.workload = workload
        self.timer = threading.Timer(timeout, self.fire)
        self.timer.daemon = True
        self.timeout = timeout

    def start(self) -> Watchdog:
        self.timer.start()
        return self

    def cancel(self) -> None:
        self.timer.cancel()

    def fire(self) -> None:
        stacks = []
        names = {t.ident: t.name for t in threading.enumerate()}
        for ident, frame in sys._current_frames().items():
            if ident == threading.get_ident():
                continue
            stacks.append(f"--- thread {names.get(ident, ident)}\n" + "".join(traceback.format_stack(frame)))
        diag: list[str] = []

        def collect() -> None:
            try:
                diag.append(self.adapter.diagnostics())
            except Exception:  # noqa: BLE001
                diag.append("diagnostics failed:\n" + traceback.format_exc())

        t = threading.Thread(target=collect, daemon=True)
        t.start()
        t.join(10)
        if t.is_alive():
            diag.append("diagnostics (e.g. plait.status()) did not return within 10 s")
        self.emit(
            {
                "event": "timeout",
                "workload": self.workload,
                "timeout_s": self.timeout,
                "stacks": "\n".join(stacks),
                "diagnostics": "\n".join(d for d in diag if d),
            }
        )
        # the parent dumps the worker processes with py-spy, then stops us


def child_main(args: argparse.Namespace) -> None:
    out = os.fdopen(args.result_fd, "w", buffering=1)
    lock = threading.Lock()

    def emit(obj: dict[str, Any]) -> None:
        with lock:
            out.write(json.dumps(obj) + "\n")
            out.flush()

    cfg = SIZES["quick" if args.quick else "full"]
    adapter = make_adapter(args.system)
    t = _now()
    try:
        dog = Watchdog(emit, adapter, "start", START_TIMEOUT).start()
        adapter.start()
        warmup(adapter)
        dog.cancel()
    except BaseException:
        emit({"event": "fatal", "error": traceback.format_exc()})
        try:
            adapter.stop()
        except BaseException:  # noqa: BLE001
            pass
        return
    emit({"event": "started", "seconds": _now() - t, "pid": os.getpid()})
    try:
        for w in args.workloads.split(","):
            emit({"event": "begin", "workload": w})
            dog = Watchdog(emit, adapter, w, args.timeouts[w]).start()
            t = _now()
            try:
                result = run_workload(adapter, w, cfg, args.repeat, args.budget)
            except Exception:
                emit({"event": "error", "workload": w, "error": traceback.format_exc()})
            else:
                emit({"event": "result", "workload": w, "result": result, "wall_s": _now() - t})
            finally:
                dog.cancel()
    finally:
        t = _now()
        try:
            adapter.stop()
        except BaseException:
            emit({"event": "stop_error", "error": traceback.format_exc()})
        emit({"event": "end", "stop_s": _now() - t})


# ==================================================================== parent side
def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    for key in list(env):
        if key.startswith("PLAIT_"):
            del env[key]  # the harness chooses engine and workers explicitly
    return env


class Tracker:
    """Tracks every descendant of a process we started, by PID and start time."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.psutil = psutil
        self.pid = pid
        self.seen: dict[int, tuple[float, str]] = {}

    def poll(self) -> None:
        try:
            root = self.psutil.Process(self.pid)
            for p in root.children(recursive=True):
                if p.pid not in self.seen:
                    try:
                        self.seen[p.pid] = (p.create_time(), " ".join(p.cmdline())[:160])
                    except (self.psutil.NoSuchProcess, self.psutil.AccessDenied):
                        pass
        except self.psutil.NoSuchProcess:
            pass

    def alive(self) -> list[Any]:
        procs = []
        for pid, (created, _) in self.seen.items():
            try:
                p = self.psutil.Process(pid)
                if abs(p.create_time() - created) < 0.01 and p.status() != self.psutil.STATUS_ZOMBIE:
                    procs.append(p)
            except self.psutil.NoSuchProcess:
                pass
        return procs

    def stop_leftovers(self, grace: float) -> list[str]:
        """Wait up to ``grace`` s for descendants to exit, then kill the rest (by PID)."""
        deadline = time.monotonic() + grace
        procs = self.alive()
        while procs and time.monotonic() < deadline:
            time.sleep(0.2)
            procs = self.alive()
        killed = []
        for p in procs:
            killed.append(f"pid {p.pid}: {self.seen[p.pid][1]}")
            try:
                p.kill()
            except self.psutil.NoSuchProcess:
                pass
        return killed


def pyspy_dump(pids: list[int]) -> str:
    exe = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(exe):
        return "(py-spy not available)"
    import psutil

    out = []
    for pid in pids:
        try:
            if "python" not in " ".join(psutil.Process(pid).cmdline()[:1]):
                continue  # a native process (e.g. Ray's raylet): nothing for py-spy
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        try:
            r = subprocess.run([exe, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=15)
            out.append(f"=== py-spy dump --pid {pid}\n{r.stdout}{r.stderr}")
        except (subprocess.TimeoutExpired, OSError) as exc:
            out.append(f"=== py-spy dump --pid {pid}: {exc}")
    return "\n".join(out)


def tail(path: str, n: int = 4000) -> str:
    try:
        with open(path, errors="replace") as f:
            data = f.read()
        return data[-n:]
    except OSError:
        return ""


def run_system(system: str, workloads: list[str], args: argparse.Namespace, logdir: str) -> dict[str, Any]:
    """Run ``workloads`` on ``system`` in child processes; restart after a hang or crash."""
    results: dict[str, Any] = {"workloads": {}, "errors": [], "starts": [], "leftovers": []}
    remaining = list(workloads)
    attempt = 0
    while remaining:
        attempt += 1
        log_path = os.path.join(logdir, f"{system}-{attempt}.log")
        r_fd, w_fd = os.pipe()
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--child",
            "--system",
            system,
            "--only",
            ",".join(remaining),
            "--result-fd",
            str(w_fd),
            "--repeat",
            str(args.repeat),
            "--budget",
            str(args.budget),
            "--timeout-json",
            json.dumps(args.timeouts),
        ] + (["--quick"] if args.quick else [])
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, pass_fds=(w_fd,), env=child_env(), cwd=ROOT
            )
        os.close(w_fd)
        tracker = Tracker(proc.pid)
        reader = os.fdopen(r_fd)
        current = "start"
        deadline = time.monotonic() + START_TIMEOUT + 30
        buf = ""
        finished = False
        killed_child = False
        print(f"  [{LABELS[system]}] child pid {proc.pid}, log {log_path}", file=sys.stderr, flush=True)
        try:
            while True:
                tracker.poll()
                ready, _, _ = select.select([reader], [], [], 0.25)
                events = []
                if ready:
                    chunk = os.read(r_fd, 1 << 20).decode()
                    if not chunk:  # the child closed its end: it exited
                        break
                    buf += chunk
                    while "\n" in buf:
                        line, buf = buf.split("\n", 1)
                        events.append(json.loads(line))
                for ev in events:
                    kind = ev["event"]
                    if kind == "started":
                        results["starts"].append(ev["seconds"])
                        print(
                            f"  [{LABELS[system]}] started + warmed up in {ev['seconds']:.1f} s",
                            file=sys.stderr,
                        )
                    elif kind == "fatal":
                        results["errors"].append(
                            {
                                "workload": "start",
                                "kind": "error",
                                "error": ev["error"],
                                "log_tail": tail(log_path),
                            }
                        )
                        for w in remaining:
                            results["workloads"][w] = {"failed": "system failed to start"}
                        remaining = []
                    elif kind == "begin":
                        current = ev["workload"]
                        deadline = time.monotonic() + args.timeouts[current] + 45
                    elif kind in ("result", "error"):
                        w = ev["workload"]
                        if kind == "result":
                            results["workloads"][w] = ev["result"]
                            print(f"  [{LABELS[system]}] {w} done in {ev['wall_s']:.1f} s", file=sys.stderr)
                        else:
                            results["workloads"][w] = {"failed": "error"}
                            results["errors"].append({"workload": w, "kind": "error", "error": ev["error"]})
                            print(f"  [{LABELS[system]}] {w} FAILED:\n{ev['error']}", file=sys.stderr)
                        remaining.remove(w)
                        current = "between workloads"
                    elif kind == "timeout":
                        w = ev["workload"]
                        tracker.poll()
                        dump = pyspy_dump([p.pid for p in tracker.alive()])
                        results["errors"].append(
                            {
                                "workload": w,
                                "kind": "timeout",
                                "error": f"{w} on {LABELS[system]} did not finish within {ev['timeout_s']} s",
                                "driver_stacks": ev["stacks"],
                                "diagnostics": ev["diagnostics"],
                                "worker_stacks": dump,
                            }
                        )
                        print(
                            f"  [{LABELS[system]}] {w} TIMED OUT after {ev['timeout_s']} s", file=sys.stderr
                        )
                        if w == "start":
                            for x in remaining:
                                results["workloads"][x] = {"failed": "system start timed out"}
                            remaining = []
                        else:
                            results["workloads"][w] = {"failed": "timeout"}
                            remaining.remove(w)
                        raise TimeoutError
                    elif kind == "stop_error":
                        results["errors"].append(
                            {"workload": "shutdown", "kind": "error", "error": ev["error"]}
                        )
                    elif kind == "end":
                        results["stop_s"] = ev["stop_s"]
                        finished = True
                if time.monotonic() > deadline:
                    tracker.poll()
                    dump = pyspy_dump([proc.pid] + [p.pid for p in tracker.alive()])
                    results["errors"].append(
                        {
                            "workload": current,
                            "kind": "timeout",
                            "error": f"{current} on {LABELS[system]}: no answer from the child before the hard deadline",
                            "worker_stacks": dump,
                            "log_tail": tail(log_path),
                        }
                    )
                    if current in remaining:
                        results["workloads"][current] = {"failed": "timeout"}
                        remaining.remove(current)
                    elif current == "start":
                        for x in remaining:
                            results["workloads"][x] = {"failed": "system start timed out"}
                        remaining = []
                    raise TimeoutError
        except TimeoutError:
            tracker.poll()
            killed_child = True
            try:
                proc.kill()
            except OSError:
                pass
        finally:
            reader.close()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            leftovers = tracker.stop_leftovers(grace=5.0)
            if leftovers:
                why = (
                    "the harness killed the child after a timeout"
                    if killed_child
                    else "after a normal shutdown"
                )
                results["leftovers"].append({"attempt": attempt, "when": why, "killed": leftovers})
        if not finished and current in remaining:
            # the child died in the middle of a workload
            results["errors"].append(
                {
                    "workload": current,
                    "kind": "crash",
                    "error": f"the child exited with code {proc.returncode} during {current}",
                    "log_tail": tail(log_path),
                }
            )
            results["workloads"][current] = {"failed": f"crash (exit {proc.returncode})"}
            remaining.remove(current)
        elif not finished and current == "start" and remaining:
            results["errors"].append(
                {
                    "workload": "start",
                    "kind": "crash",
                    "error": f"the child exited with code {proc.returncode} while starting",
                    "log_tail": tail(log_path),
                }
            )
            for x in remaining:
                results["workloads"][x] = {"failed": "system failed to start"}
            remaining = []
    return results


# ---------------------------------------------------------------------------- W7
W7_COMMON = """
import json, os, time

def report(t_first, shutdown):
    import psutil
    time.sleep(1.0)
    me = psutil.Process()
    procs = [me] + me.children(recursive=True)
    rss = pss = 0
    names = []
    for p in procs:
        try:
            info = p.memory_full_info()
            rss += info.rss
            pss += info.pss
            names.append(p.name())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    t = time.perf_counter()
    shutdown()
    stop_s = time.perf_counter() - t
    with os.fdopen(int(os.environ["BENCH_RESULT_FD"]), "w") as f:
        f.write(json.dumps({"t_first": t_first, "rss": rss, "pss": pss, "nprocs": len(names),
                            "names": names, "shutdown_s": stop_s}))
"""

W7_SCRIPTS = {
    "plait": """
import plait

@plait.task
def noop():
    return 1

if __name__ == "__main__":
    plait.init(engine="local", workers=2)
    assert noop().result(60) == 1
    report(time.time(), plait.shutdown)
""",
    "inline": """
import plait

@plait.task
def noop():
    return 1

if __name__ == "__main__":
    plait.init(engine="inline")
    assert noop().result(60) == 1
    report(time.time(), plait.shutdown)
""",
    "ray": """
import ray

@ray.remote
def noop():
    return 1

if __name__ == "__main__":
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    assert ray.get(noop.remote()) == 1
    report(time.time(), ray.shutdown)
""",
    "dask": """
from dask.distributed import Client, LocalCluster

def noop():
    return 1

if __name__ == "__main__":
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    assert client.submit(noop, pure=False).result() == 1
    def stop():
        client.close()
        cluster.close()
    report(time.time(), stop)
""",
    "ppe": """
from concurrent.futures import ProcessPoolExecutor

def noop():
    return 1

if __name__ == "__main__":
    pool = ProcessPoolExecutor(2)
    assert pool.submit(noop).result() == 1
    report(time.time(), pool.shutdown)
""",
}


def run_w7_once(system: str, scriptdir: str, logdir: str, rep: int) -> dict[str, Any]:
    path = os.path.join(scriptdir, f"w7_{system}.py")
    with open(path, "w") as f:
        f.write(W7_COMMON + textwrap.dedent(W7_SCRIPTS[system]))
    r_fd, w_fd = os.pipe()
    env = child_env()
    env["BENCH_RESULT_FD"] = str(w_fd)
    log_path = os.path.join(logdir, f"w7-{system}-{rep}.log")
    with open(log_path, "w") as log:
        t0 = time.time()
        proc = subprocess.Popen(
            [sys.executable, path],
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(w_fd,),
            env=env,
            cwd=scriptdir,
        )
    os.close(w_fd)
    tracker = Tracker(proc.pid)
    deadline = time.monotonic() + TIMEOUTS["W7"]
    data = b""
    result: dict[str, Any]
    try:
        while True:
            tracker.poll()
            ready, _, _ = select.select([r_fd], [], [], 0.1)
            if ready:
                chunk = os.read(r_fd, 1 << 16)
                if not chunk:
                    break
                data += chunk
            if time.monotonic() > deadline:
                dump = pyspy_dump([proc.pid] + [p.pid for p in tracker.alive()])
                proc.kill()
                return {
                    "failed": "timeout",
                    "error": f"W7 start-up script did not finish within {TIMEOUTS['W7']} s",
                    "worker_stacks": dump,
                    "log_tail": tail(log_path),
                    "leftovers": {
                        "when": "the harness killed the script after a timeout",
                        "killed": tracker.stop_leftovers(0.0),
                    },
                }
        proc.wait(timeout=60)
        if not data:
            result = {"failed": f"exit {proc.returncode}", "error": "no result", "log_tail": tail(log_path)}
        else:
            result = json.loads(data)
            result["startup_s"] = result.pop("t_first") - t0
            result["exit_s"] = time.time() - t0
    except subprocess.TimeoutExpired:
        proc.kill()
        result = {"failed": "did not exit", "error": "the W7 script hung on exit", "log_tail": tail(log_path)}
    finally:
        os.close(r_fd)
    leftovers = tracker.stop_leftovers(grace=5.0)
    if leftovers:
        result["leftovers"] = {"when": "after the script exited normally", "killed": leftovers}
    return result


def run_w7(systems: list[str], args: argparse.Namespace, logdir: str) -> dict[str, Any]:
    """Fresh interpreters, interleaved across systems so load drifts hit all alike."""
    scriptdir = tempfile.mkdtemp(prefix="plait-bench-w7-")
    out: dict[str, Any] = {s: {"runs": [], "errors": []} for s in systems}
    started = {s: 0.0 for s in systems}
    for rep in range(args.repeat):
        for s in systems:
            if rep > 0 and started[s] > args.budget:
                continue  # this system used its budget
            if out[s]["runs"] == [] and out[s]["errors"] and rep > 0:
                continue
            t = time.monotonic()
            r = run_w7_once(s, scriptdir, logdir, rep)
            started[s] += time.monotonic() - t
            if "failed" in r:
                out[s]["errors"].append(r)
                print(f"  [{LABELS[s]}] W7 run {rep + 1} FAILED: {r['error']}", file=sys.stderr)
            else:
                out[s]["runs"].append(r)
                print(
                    f"  [{LABELS[s]}] W7 run {rep + 1}: first result {r['startup_s']:.2f} s, "
                    f"idle RSS {r['rss'] / MB:.0f} MB over {r['nprocs']} processes",
                    file=sys.stderr,
                )
            if r.get("leftovers"):
                out[s].setdefault("leftovers", []).append(r["leftovers"])
    shutil.rmtree(scriptdir, ignore_errors=True)
    return out


# ======================================================================== reporting
def med(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# metric key -> (workload, label, unit, better)
def metric_specs(cfg: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    leaves, length = cfg["W4"]
    return [
        ("w1_rate", "W1", f"W1 {cfg['W1']:,} no-op tasks, submit then gather", "tasks/s", "higher"),
        ("w2_lat", "W2", f"W2 round trip of one no-op task (median of {cfg['W2']:,})", "µs", "lower"),
        ("w3_rate", "W3", f"W3 chain of {cfg['W3']:,} dependent tasks", "tasks/s", "higher"),
        ("w4_time", "W4", f"W4 tree reduction of {leaves:,} arrays of {length:,} float64", "s", "lower"),
        (
            "w5_copy",
            "W5",
            f"W5 baseline: in-process arr.copy() of {cfg['W5'] / 1e6:.0f} MB",
            "GB/s",
            "higher",
        ),
        ("w5_to", "W5", "W5 array to a task (put + task reads a slice)", "GB/s", "higher"),
        ("w5_back", "W5", "W5 array back, end to end (task makes it, driver gets it)", "GB/s", "higher"),
        ("w5_back_net", "W5", "W5 array back, net of making it in the task", "GB/s", "higher"),
        ("w7_start", "W7", "W7 fresh process to first result (imports included)", "s", "lower"),
        ("w7_rss", "W7", "W7 idle memory, RSS of driver + all its processes", "MB", "lower"),
        ("w7_pss", "W7", "W7 idle memory, PSS of driver + all its processes", "MB", "lower"),
        ("w8_rate", "W8", "W8 long stream of no-op tasks (n per system below)", "tasks/s", "higher"),
        ("w8_peak", "W8", "W8 driver RSS peak above its level before the stream", "MB", "lower"),
        ("w8_growth", "W8", "W8 driver RSS growth, 2nd half of the stream vs 1st half (max)", "MB", "lower"),
    ]


def compute_metrics(system: str, res: dict[str, Any], w7: dict[str, Any] | None) -> dict[str, Any]:
    """Medians per metric (None if not run), with repetitions and notes."""
    m: dict[str, Any] = {}
    wl = res.get("workloads", {})

    def put(key: str, value: float | None, reps: int, note: str = "", failed: str = "") -> None:
        m[key] = {"value": value, "reps": reps, "note": note, "failed": failed}

    def failed_all(keys: list[str], why: str) -> None:
        for k in keys:
            put(k, None, 0, failed=why)

    r = wl.get("W1")
    if r is not None:
        if "failed" in r:
            failed_all(["w1_rate"], r["failed"])
        else:
            put("w1_rate", r["n"] / med(r["times"]), len(r["times"]))
    r = wl.get("W2")
    if r is not None:
        if "failed" in r:
            failed_all(["w2_lat"], r["failed"])
        else:
            put("w2_lat", med(r["medians_us"]), len(r["medians_us"]))
    r = wl.get("W3")
    if r is not None:
        if "failed" in r:
            failed_all(["w3_rate"], r["failed"])
        else:
            note = "sequential submit+result (no futures as args)" if system == "ppe" else ""
            put("w3_rate", r["n"] / med(r["times"]), len(r["times"]), note)
    r = wl.get("W4")
    if r is not None:
        if "failed" in r:
            failed_all(["w4_time"], r["failed"])
        else:
            note = "values return to the driver after each level" if system == "ppe" else ""
            put("w4_time", med(r["times"]), len(r["times"]), note)
    r = wl.get("W5")
    if r is not None:
        keys = ["w5_copy", "w5_to", "w5_back", "w5_back_net"]
        if "failed" in r:
            failed_all(keys, r["failed"])
        else:
            b = r["bytes"]
            n = len(r["to"])
            put("w5_copy", b / med(r["copy"]) / GB, n)
            put("w5_to", b / med(r["to"]) / GB, n)
            put("w5_back", b / med(r["back"]) / GB, n)
            net = med(r["back"]) - med(r["control"])
            if net > 0:
                put("w5_back_net", b / net / GB, n)
            else:  # in-process (inline), returning the array costs nothing measurable
                put("w5_back_net", None, n, note="not measurable: the control took as long")
    if w7 is not None:
        runs = w7.get("runs", [])
        if runs:
            put("w7_start", med([x["startup_s"] for x in runs]), len(runs))
            put("w7_rss", med([x["rss"] / MB for x in runs]), len(runs), f"{runs[0]['nprocs']} process(es)")
            put("w7_pss", med([x["pss"] / MB for x in runs]), len(runs))
        elif w7.get("errors"):
            failed_all(["w7_start", "w7_rss", "w7_pss"], w7["errors"][0]["failed"])
    r = wl.get("W8")
    if r is not None:
        keys = ["w8_rate", "w8_peak", "w8_growth"]
        if "failed" in r:
            failed_all(keys, r["failed"])
        elif "skipped" in r:
            for k in keys:
                put(k, None, 0, note="not run")
        else:
            runs = r["runs"]
            n = r["n"]
            note = f"n={n:,}"
            put("w8_rate", n / med([x["time"] for x in runs]), len(runs), note)
            note = f"n={n:,}, windows of {runs[0]['chunk']:,}"
            put("w8_peak", max(x["rise_mb"] for x in runs), len(runs), note)
            put("w8_growth", max(x["growth_mb"] for x in runs), len(runs), note)
    return m


def fmt_value(v: float | None, unit: str) -> str:
    if v is None:
        return "—"
    if unit == "tasks/s":
        return f"{v:,.0f}/s"
    if unit == "µs":
        return f"{v:,.0f} µs"
    if unit == "s":
        return f"{v:.3f} s" if v < 10 else f"{v:.1f} s"
    if unit == "GB/s":
        return f"{v:.2f} GB/s"
    if unit == "MB":
        return f"{v:,.0f} MB"
    return f"{v:.3g} {unit}"


NO_RATIO = {"w5_copy", "w8_peak", "w8_growth"}
# in-process: no transfer, no processes to start; a ratio to plait local says nothing
INLINE_NO_RATIO = {"w5", "w7", "w8"}


def ratio(key: str, better: str, plait: dict[str, Any] | None, other: dict[str, Any] | None) -> float | None:
    """How many times better plait local is than ``other`` (>1: plait better)."""
    if key in NO_RATIO or not plait or not other:
        return None
    a, b = plait.get("value"), other.get("value")
    if not a or not b:
        return None
    return a / b if better == "higher" else b / a


def build_report(data: dict[str, Any]) -> str:
    cfg = SIZES[data["mode"]]
    systems = data["systems"]
    metrics = data["metrics"]
    specs = [s for s in metric_specs(cfg) if s[1] in data["workloads"]]
    lines = []
    meta = data["meta"]
    lines.append(f"Run {meta['date']} — `{meta['command']}`")
    lines.append("")
    lines.append(
        f"Machine: {meta['cpu_count']} CPU(s) ({meta['cpu_model']}), {meta['mem_gb']:.0f} GB RAM, "
        f"{meta['platform']}; Python {meta['python']}; load average before/after "
        f"{meta['load_before']} / {meta['load_after']}."
    )
    lines.append(
        "Versions: "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
        + f"; plait tree {meta['git']}."
    )
    lines.append(
        f"Mode: {data['mode']}; up to {data['repeat']} repetitions per workload (fewer where a workload's "
        f"repetitions used its {data['budget']:.0f} s budget: see `×k` marks); each cell is the median over "
        "repetitions, and `(plait N×)` means plait local is N times better than that system "
        "(higher throughput, or lower time/latency/memory); no ratio is given for plait inline on "
        "W5/W7/W8, where it moves nothing between processes."
    )
    lines.append("")
    header = "| Workload | " + " | ".join(LABELS[s] for s in systems) + " |"
    lines.append(header)
    lines.append("|" + "---|" * (len(systems) + 1))
    footnotes: list[str] = []
    for key, _w, label, unit, better in specs:
        cells = []
        for s in systems:
            cell_m = metrics.get(s, {}).get(key)
            if cell_m is None:
                cells.append("n/a")
                continue
            if cell_m["failed"]:
                cells.append(f"**FAILED: {cell_m['failed']}**")
                continue
            if cell_m["value"] is None:
                cells.append("n/a (" + (cell_m["note"] or "not run") + ")")
                continue
            text = fmt_value(cell_m["value"], unit)
            if s != "plait" and not (s == "inline" and key[:2] in INLINE_NO_RATIO):
                rt = ratio(key, better, metrics.get("plait", {}).get(key), cell_m)
                if rt is not None:
                    text += f" (plait {rt:.2f}×)" if rt < 10 else f" (plait {rt:.1f}×)"
            if cell_m["reps"] and cell_m["reps"] < data["repeat"]:
                text += f" ×{cell_m['reps']}"
            note = cell_m["note"]
            if note and (note.startswith("n=") or "process(es)" in note):
                text += f" [{note}]"
            elif note:
                if note not in footnotes:
                    footnotes.append(note)
                text += "*" * (footnotes.index(note) + 1)
            cells.append(text)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    for i, note in enumerate(footnotes, 1):
        lines.append(f"{'*' * i} {note}")
    if footnotes:
        lines.append("")
    lines.append(
        "`×k`: the number of repetitions when fewer than asked. W7 runs a fresh interpreter per repetition "
        "(start-up time counted from before `Popen` to the first result; memory after one task and 1 s idle, "
        "summed over the driver and all its descendant processes). W5 'net' subtracts the time of a control task "
        "that makes the same array in the worker but returns a scalar. W8 submits in windows of "
        f"up to {cfg['W8_chunk']:,} tasks (n/10 for smaller streams; at most two windows in flight) and samples "
        "the driver's RSS every 20 ms; it runs a smaller stream on the other systems (n in the cell) and is "
        "skipped where marked n/a. Driver RSS in W8 includes whatever earlier workloads (W5's arrays) left mapped, "
        "hence the rise above the start rather than the absolute peak."
    )
    lines.append("")
    lines.append("Targets (plait local):")
    lines.append("")
    lines.append("| Target | Measured | Met? |")
    lines.append("|---|---|---|")
    for row in data["targets"]:
        lines.append(f"| {row['target']} | {row['measured']} | {row['verdict']} |")
    lines.append("")
    if data["failures"]:
        lines.append("Failures:")
        lines.append("")
        for f in data["failures"]:
            lines.append(
                f"- {LABELS.get(f['system'], f['system'])} {f['workload']}: {f['kind']}: {f['summary']}"
            )
        lines.append("")
    if data["leftovers"]:
        lines.append("Processes still alive after their driver finished (stopped by PID by the harness):")
        lines.append("")
        for s, items in data["leftovers"].items():
            for item in items:
                procs = "; ".join(item["killed"])
                lines.append(f"- {LABELS[s]} ({item['when']}): {len(item['killed'])} process(es): {procs}")
        lines.append("")
    return "\n".join(lines)


def evaluate_targets(metrics: dict[str, dict[str, Any]], workloads: list[str]) -> list[dict[str, str]]:
    def v(system: str, key: str) -> float | None:
        cell = metrics.get(system, {}).get(key)
        return cell["value"] if cell and not cell["failed"] else None

    rows = []

    def row(target: str, measured: str, ok: bool | None) -> None:
        verdict = "n/a" if ok is None else ("met" if ok else "**missed**")
        rows.append({"target": target, "measured": measured, "verdict": verdict})

    p = "plait"
    if "W1" in workloads:
        a, r, q = v(p, "w1_rate"), v("ray", "w1_rate"), v("ppe", "w1_rate")
        row(
            "W1 ≥ 10× Ray",
            f"{a / r:.1f}× Ray" if a and r else "not measured",
            (a / r >= 10) if a and r else None,
        )
        row("W1 ≥ PPE", f"{a / q:.2f}× PPE" if a and q else "not measured", (a >= q) if a and q else None)
    if "W2" in workloads:
        a, q = v(p, "w2_lat"), v("ppe", "w2_lat")
        row(
            "W2 median ≤ 1.2× PPE's",
            f"{a:,.0f} µs vs PPE {q:,.0f} µs ({a / q:.2f}×)" if a and q else "not measured",
            (a <= 1.2 * q) if a and q else None,
        )
    if "W3" in workloads:
        a, r = v(p, "w3_rate"), v("ray", "w3_rate")
        row(
            "W3 ≥ 5× Ray",
            f"{a / r:.1f}× Ray" if a and r else "not measured",
            (a / r >= 5) if a and r else None,
        )
    if "W5" in workloads:
        c = v(p, "w5_copy")
        for key, what in (
            ("w5_to", "to a task"),
            ("w5_back_net", "back (net)"),
            ("w5_back", "back (end to end)"),
        ):
            a = v(p, key)
            row(
                f"W5 {what} ≥ ½ in-process copy",
                f"{a:.2f} GB/s vs copy {c:.2f} GB/s ({a / c:.2f}×)" if a and c else "not measured",
                (a >= 0.5 * c) if a and c else None,
            )
    if "W7" in workloads:
        a = v(p, "w7_start")
        row(
            "W7 start-up to first result < 0.5 s",
            f"{a:.3f} s" if a else "not measured",
            (a < 0.5) if a else None,
        )
        a, r = v(p, "w7_rss"), v("ray", "w7_rss")
        row(
            "W7 idle memory < ¼ of Ray's (RSS)",
            f"{a:,.0f} MB vs Ray {r:,.0f} MB ({a / r:.2f}×)" if a and r else "not measured",
            (a < r / 4) if a and r else None,
        )
        a, r = v(p, "w7_pss"), v("ray", "w7_pss")
        row(
            "W7 idle memory < ¼ of Ray's (PSS)",
            f"{a:,.0f} MB vs Ray {r:,.0f} MB ({a / r:.2f}×)" if a and r else "not measured",
            (a < r / 4) if a and r else None,
        )
    if "W8" in workloads:
        g = v(p, "w8_growth")
        cell = metrics.get(p, {}).get("w8_growth") or {}
        row(
            f"W8 flat driver memory (2nd-half growth < {W8_FLAT_MB:.0f} MB)",
            f"{g:+.1f} MB ({cell.get('note', '')}); peak {v(p, 'w8_peak'):.0f} MB above the start"
            if g is not None
            else "not measured",
            (g < W8_FLAT_MB) if g is not None else None,
        )
    return rows


# ============================================================================= meta
def machine_meta(argv: list[str]) -> dict[str, Any]:
    import psutil

    cpu_model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for mod in ("plait", "ray", "dask", "distributed", "numpy"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod)
        except Exception:  # noqa: BLE001
            versions[mod] = "?"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        git = head.strip() + (" + uncommitted changes in src/" if dirty else "")
    except OSError:
        git = "?"
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": "python " + " ".join([os.path.relpath(os.path.abspath(__file__), ROOT)] + argv),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "mem_gb": psutil.virtual_memory().total / 2**30,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "git": git,
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


# ============================================================================= main
def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, 2 repetitions, W8 on plait only")
    ap.add_argument(
        "--repeat", type=int, default=None, help="timed repetitions per workload (default 5; quick 2)"
    )
    ap.add_argument("--budget", type=float, default=None, help="stop repeating a workload after this many s")
    ap.add_argument("--only", default=",".join(WORKLOADS), help="workloads, e.g. W1,W2")
    ap.add_argument(
        "--systems", default=",".join(SYSTEMS), help="systems, e.g. plait,ray (" + ",".join(SYSTEMS) + ")"
    )
    ap.add_argument(
        "--timeout", type=float, default=None, help="per-workload timeout in s (default: per workload)"
    )
    ap.add_argument("--out", default=None, help="also write the markdown report here")
    ap.add_argument("--json", default=None, help="write all results (samples, errors, stacks) as JSON here")
    ap.add_argument("--logdir", default=None, help="where child logs go (default: a new temp dir)")
    # internal
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--system", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result-fd", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--timeout-json", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "full"
    args.repeat = args.repeat or SIZES[mode]["repeat"]
    args.budget = args.budget if args.budget is not None else SIZES[mode]["budget"]
    if args.timeout_json:
        args.timeouts = json.loads(args.timeout_json)
    else:
        args.timeouts = {w: (args.timeout or t) for w, t in TIMEOUTS.items()}
    wl = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    bad = [w for w in wl if w not in WORKLOADS]
    if bad:
        ap.error(f"unknown workload(s) {bad}; choose from {WORKLOADS}")
    args.workloads = ",".join(w for w in WORKLOADS if w in wl)
    ss = [ALIASES.get(s.strip().lower(), s.strip().lower()) for s in args.systems.split(",") if s.strip()]
    bad = [s for s in ss if s not in SYSTEMS]
    if bad:
        ap.error(f"unknown system(s) {bad}; choose from {SYSTEMS}")
    args.system_list = [s for s in SYSTEMS if s in ss]
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.child:
        child_main(args)
        return 0
    import psutil  # noqa: F401  (fail early if missing)

    mode = "quick" if args.quick else "full"
    cfg = SIZES[mode]
    workloads = args.workloads.split(",")
    in_child = [w for w in workloads if w != "W7"]
    logdir = args.logdir or tempfile.mkdtemp(prefix="plait-bench-logs-")
    os.makedirs(logdir, exist_ok=True)
    meta = machine_meta(argv)
    print(f"plait benchmarks ({mode}); logs in {logdir}", file=sys.stderr, flush=True)
    t_start = time.monotonic()
    raw: dict[str, Any] = {}
    interrupted = None

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    w7: dict[str, Any] = {}
    try:
        for s in args.system_list:
            if in_child:
                t = time.monotonic()
                print(f"[{LABELS[s]}] {', '.join(in_child)}", file=sys.stderr, flush=True)
                raw[s] = run_system(s, in_child, args, logdir)
                raw[s]["wall_s"] = time.monotonic() - t
            else:
                raw[s] = {"workloads": {}, "errors": [], "leftovers": []}
        if "W7" in workloads:
            print("[W7] fresh-process start-up and idle memory", file=sys.stderr, flush=True)
            w7 = run_w7(args.system_list, args, logdir)
    except KeyboardInterrupt:
        interrupted = "interrupted; results are partial"
        print(interrupted, file=sys.stderr)
    meta["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    meta["wall_s"] = time.monotonic() - t_start
    metrics = {s: compute_metrics(s, raw.get(s, {}), w7.get(s)) for s in args.system_list}
    failures = []
    leftovers: dict[str, Any] = {}
    for s in args.system_list:
        for e in raw.get(s, {}).get("errors", []):
            failures.append(
                {
                    "system": s,
                    "workload": e["workload"],
                    "kind": e["kind"],
                    "summary": _summary(e["error"]),
                    **e,
                }
            )
        for e in w7.get(s, {}).get("errors", []):
            failures.append(
                {"system": s, "workload": "W7", "kind": e["failed"], "summary": _summary(e["error"]), **e}
            )
        lo = raw.get(s, {}).get("leftovers", []) + w7.get(s, {}).get("leftovers", [])
        if lo:
            leftovers[s] = lo
    data = {
        "meta": meta,
        "mode": mode,
        "repeat": args.repeat,
        "budget": args.budget,
        "sizes": {k: v for k, v in cfg.items()},
        "workloads": workloads,
        "systems": args.system_list,
        "metrics": metrics,
        "failures": failures,
        "leftovers": leftovers,
        "raw": raw,
        "w7": w7,
        "logdir": logdir,
        "interrupted": interrupted,
    }
    data["targets"] = evaluate_targets(metrics, workloads)
    report = build_report(data)
    report += f"\nTotal wall time {meta['wall_s']:.0f} s.\n"
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write("# plait benchmark results\n\n" + report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1, default=str)
    return 1 if failures or interrupted else 0


def _summary(error: str) -> str:
    lines = [x for x in (error or "").strip().splitlines() if x.strip()]
    return lines[-1].strip() if lines else "?"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
