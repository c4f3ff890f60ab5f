"""Ray's and Dask's own example programs: plait's compatibility layers against the originals.

Each program in tests/compat_examples/ray and tests/compat_examples/dask runs
as its own ``python`` process twice over: as it is there (on plait.compat.ray
or plait.compat.dask) and with its import lines turned back to ``ray`` or
``dask`` (the program as the framework's documentation has it). The time is
the wall time of the whole process, interpreter and framework start-up
included (plait starts in a fraction of a second, Ray in several seconds);
the sides alternate in each repetition. Reported per program: the medians and
the ratio original / plait (how many times faster plait is), then the
geometric mean of the ratios and each side's total.

    python benchmarks/compat_programs.py [--repeat 3] [--suite ray|dask|all] [--only NAME] [--timeout 300]

A run counts when it ends within the timeout with the program's own exit
status (0, or 1 for a program that ends with the documented error); a program
with a run that does not, on either side, is reported as such and left out of
the ratios and totals. Results also go to benchmarks/results_compat.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "tests" / "compat_examples"
RESULTS = Path(__file__).resolve().parent / "results_compat.json"

# as a notebook cell runs: a __main__ without a file (Dask's process workers cannot
# start under a script that has no `if __name__ == "__main__"` guard)
RUN_AS_CELL = "import sys; path = sys.argv[1]; exec(compile(open(path).read(), path, 'exec'))"
# Dask itself deadlocks on this one on a small machine (every worker thread waits in gather)
HANGS_ON_DASK = {"task_launch_get_client.py"}
# programs that end with the error their documentation shows: exit status 1 on both sides
EXIT_STATUS = {"futures_exceptions.py": 1}
SIDES = ("plait", "original")
_RAY_IMPORT = re.compile(r"^\s*(import|from)\s+plait\.compat\.ray\b")


def original_ray(text: str) -> str:
    """The Ray program as its documentation has it: ``plait.compat.ray`` -> ``ray`` on import lines."""
    lines = [
        line.replace("plait.compat.ray", "ray") if _RAY_IMPORT.match(line) else line
        for line in text.splitlines()
    ]
    return "\n".join(lines) + "\n"


def original_dask(text: str) -> str:
    """The Dask program as its documentation has it: its import lines back."""
    text = text.replace("import plait.compat.dask as dask", "import dask")
    text = text.replace("plait.compat.dask.distributed", "dask.distributed")
    return text.replace("from plait.compat.dask import", "from dask import")


ORIGINAL = {"ray": original_ray, "dask": original_dask}


@dataclass
class Run:
    seconds: float
    exit_status: int | None  # None: timed out (killed)
    stderr_tail: str = ""


@dataclass
class Program:
    suite: str
    name: str
    runs: dict[str, list[Run]] = field(default_factory=lambda: {side: [] for side in SIDES})
    skipped: dict[str, str] = field(default_factory=dict)  # side -> why it was not run

    def ok(self, side: str) -> list[Run]:
        expected = EXIT_STATUS.get(self.name, 0)
        return [run for run in self.runs[side] if run.exit_status == expected]

    def median(self, side: str) -> float | None:
        ok = self.ok(side)
        return statistics.median(run.seconds for run in ok) if ok else None

    def failures(self, side: str) -> str:
        """What went wrong on one side, in words ('' when every run counted)."""
        if side in self.skipped:
            return self.skipped[side]
        runs, expected = self.runs[side], EXIT_STATUS.get(self.name, 0)
        bad = [run for run in runs if run.exit_status != expected]
        if not bad:
            return ""
        kinds = sorted({"timed out" if run.exit_status is None else f"exit {run.exit_status}" for run in bad})
        return f"{', '.join(kinds)} ({len(bad)} of {len(runs)} runs)"

    def ratio(self) -> float | None:
        if any(self.failures(side) for side in SIDES):
            return None
        plait, original = self.median("plait"), self.median("original")
        return original / plait if plait and original else None


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PLAIT_", "RAY_", "DASK_", "PYTHONUNBUFFERED"))
    }
    env.pop("FOO", None)  # gotchas_env_var.py reads it, unset as Ray's documentation assumes
    return env


def _kill_group(pgid: int) -> None:
    """Kill what is left of one run's session (Ray's daemons, Dask's workers): only processes it started."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_once(suite: str, path: Path, timeout: float) -> Run:
    """One run of one program file as its own process, in its own session; its wall time."""
    command = (
        [sys.executable, str(path)] if suite == "ray" else [sys.executable, "-c", RUN_AS_CELL, str(path)]
    )
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=path.parent, env=_env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        _, err = proc.communicate(timeout=timeout)
        seconds, status = time.perf_counter() - start, proc.returncode
    except subprocess.TimeoutExpired:
        seconds, status = time.perf_counter() - start, None
        _kill_group(proc.pid)
        _, err = proc.communicate()
    _kill_group(proc.pid)  # stragglers of a run that ended, so they do not load the next one
    return Run(seconds, status, "" if status == EXIT_STATUS.get(path.name, 0) else err[-2000:])


def check_imports(suite: str, originals: dict[str, str]) -> dict[str, str]:
    """Each original program's import lines, run once: program -> the error, for those that fail."""
    imports = {
        name: "\n".join(line for line in text.splitlines() if re.match(r"\s*(import|from)\s", line))
        for name, text in originals.items()
    }
    probe = (
        "import json, sys\n"
        "failed = {}\n"
        "for name, code in json.loads(sys.stdin.read()).items():\n"
        "    try:\n"
        "        exec(code, {'__name__': '__main__'})\n"
        "    except Exception as e:\n"
        "        failed[name] = f'{type(e).__name__}: {e}'\n"
        "print(json.dumps(failed))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", probe], env=_env(), text=True, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(json.dumps(imports), timeout=120)
    finally:
        _kill_group(proc.pid)
    if proc.returncode != 0:
        return dict.fromkeys(originals, f"import check exited {proc.returncode}: {err[-500:]}")
    return json.loads(out.strip().splitlines()[-1])


def run_suite(suite: str, repeat: int, timeout: float, only: list[str]) -> list[Program]:
    files = sorted(p for p in (EXAMPLES / suite).glob("*.py") if not only or p.name in only or p.stem in only)
    programs = []
    with tempfile.TemporaryDirectory(prefix=f"compat-{suite}-") as tmp:
        originals = {}
        for path in files:
            text = path.read_text()
            originals[path.name] = ORIGINAL[suite](text)
            if "plait" in originals[path.name]:
                raise SystemExit(f"{suite}/{path.name}: 'plait' left after turning the imports back")
            for side, body in zip(SIDES, (text, originals[path.name]), strict=True):
                (Path(tmp) / side).mkdir(exist_ok=True)
                (Path(tmp) / side / path.name).write_text(body)
        broken = check_imports(suite, originals) if files else {}
        for path in files:
            program = Program(suite, path.name)
            if path.name in broken:
                program.skipped["original"] = f"does not import: {broken[path.name]}"
            if suite == "dask" and path.name in HANGS_ON_DASK:
                program.skipped["original"] = "hangs on Dask (not run)"
            for rep in range(repeat):
                for side in SIDES if rep % 2 == 0 else SIDES[::-1]:
                    if side in program.skipped:
                        continue
                    # each run in a fresh directory: what a program writes does not reach the next run
                    with tempfile.TemporaryDirectory(dir=tmp) as cwd:
                        target = Path(cwd) / path.name
                        target.write_text((Path(tmp) / side / path.name).read_text())
                        program.runs[side].append(run_once(suite, target, timeout))
            programs.append(program)
            _progress(program)
    return programs


def _progress(program: Program) -> None:
    cells = []
    for side in SIDES:
        median = program.median(side)
        cells.append(f"{side} {median:.2f} s" if median is not None else f"{side} -")
        if program.failures(side):
            cells.append(program.failures(side))
    print(f"  {program.suite}/{program.name}: " + "; ".join(cells), file=sys.stderr, flush=True)


def _cell(program: Program, side: str) -> str:
    median, failures = program.median(side), program.failures(side)
    if side in program.skipped:
        return failures
    text = f"{median:.2f}" if median is not None else "-"
    return f"{text} ({failures})" if failures else text


def report(suite: str, programs: list[Program]) -> dict[str, object]:
    """The suite's markdown table, printed; its summary returned."""
    framework = {"ray": "Ray", "dask": "Dask"}[suite]
    print(f"\n## {suite}: plait.compat.{suite} against {framework}\n")
    print(f"| program | plait median (s) | {framework} median (s) | {framework} / plait |")
    print("|---|---|---|---|")
    for program in programs:
        ratio = program.ratio()
        shown = f"{ratio:.2f}x" if ratio is not None else "excluded"
        print(f"| {program.name} | {_cell(program, 'plait')} | {_cell(program, 'original')} | {shown} |")
    compared = [program for program in programs if program.ratio() is not None]
    ratios = [program.ratio() for program in compared]
    geomean = math.exp(statistics.fmean(math.log(r) for r in ratios)) if ratios else None
    totals = {side: sum(program.median(side) for program in compared) for side in SIDES}
    if geomean is not None:
        print(
            f"\n{len(compared)} of {len(programs)} programs compared: geometric mean {framework} / plait = "
            f"{geomean:.2f}x; total of medians: plait {totals['plait']:.1f} s, {framework} {totals['original']:.1f} s"
        )
    else:
        print(f"\n0 of {len(programs)} programs compared")
    return {"compared": len(compared), "programs": len(programs), "geomean_ratio": geomean, "total_s": totals}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per program and side")
    parser.add_argument("--suite", default="all", choices=["ray", "dask", "all"])
    parser.add_argument(
        "--only", action="append", default=[], help="a program (file name or stem); repeatable"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    options = parser.parse_args()
    suites = ["ray", "dask"] if options.suite == "all" else [options.suite]
    started = time.perf_counter()
    results: dict[str, object] = {
        "command": " ".join(["python", *sys.argv]),
        "repeat": options.repeat,
        "timeout_s": options.timeout,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "versions": {package: _version(package) for package in ("plait", "ray", "dask", "distributed")},
        "suites": {},
    }
    for suite in suites:
        programs = run_suite(suite, options.repeat, options.timeout, options.only)
        summary = report(suite, programs)
        results["suites"][suite] = {
            "summary": summary,
            "programs": [
                {
                    "name": program.name,
                    "median_s": {side: program.median(side) for side in SIDES},
                    "ratio_original_over_plait": program.ratio(),
                    "failures": {side: program.failures(side) for side in SIDES if program.failures(side)},
                    "runs": {side: [asdict(run) for run in program.runs[side]] for side in SIDES},
                }
                for program in programs
            ],
        }
    results["wall_s"] = time.perf_counter() - started
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwhole benchmark: {results['wall_s']:.0f} s; results in {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
