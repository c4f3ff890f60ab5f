"""Random imperative programs: @plait.parallel must give exactly the sequential result.

The grammar is in tests/hypo_grammar.py: module-level plain helpers (pure,
calling tasks, printing, writing a module-level dict, appending to a list
argument, calling each other, try/except, loops with early return), conditions
computed by helpers and by task results, builtins and comprehensions over lists
of futures, tree summations, loops over lists, break/continue/return in nested
loops. Each program runs sequentially and under @parallel, on the inline and
the local engine; the return value, the exception (type and message), the
printed output and the module-level dict ``LOG`` must be the same.

The CI variant is small. For a hunt::

    PLAIT_HYPOTHESIS_EXAMPLES=10000 .venv/bin/python -m pytest tests/test_parallel_property.py

With PLAIT_HYPOTHESIS_EXAMPLES set, examples are random (derandomize off) unless
PLAIT_HYPOTHESIS_DERANDOMIZE=1; the default run is derandomized, so CI is
repeatable. PLAIT_HYPOTHESIS_ENGINES=local restricts the engines,
PLAIT_HYPOTHESIS_WITHOUT=helper_tasks,genexp switches grammar features off
(to look past a known bug; see FEATURES in hypo_grammar.py).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import itertools
import os
import signal
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plait
from plait.parallel.check import sequential
from tests.hypo_grammar import programs

_counter = itertools.count()
_examples_env = os.environ.get("PLAIT_HYPOTHESIS_EXAMPLES")
EXAMPLES = int(_examples_env or "60")
DERANDOMIZE = os.environ.get("PLAIT_HYPOTHESIS_DERANDOMIZE", "0" if _examples_env else "1") not in ("", "0")
ENGINES = [e for e in os.environ.get("PLAIT_HYPOTHESIS_ENGINES", "inline,local").split(",") if e]
HANG_S = float(os.environ.get("PLAIT_HYPOTHESIS_HANG_S", "20"))  # a parallel run this slow counts as a hang


class _Hang(BaseException):
    """Raised in the main thread when a parallel run takes longer than HANG_S (a deadlock)."""


@contextlib.contextmanager
def _watchdog(seconds: float):
    """Interrupt a blocked wait in this thread after ``seconds`` (SIGUSR2: pytest-timeout keeps SIGALRM)."""
    armed = threading.Event()

    def handler(signum, frame):
        if armed.is_set():
            armed.clear()
            raise _Hang()

    previous = signal.signal(signal.SIGUSR2, handler)
    main = threading.get_ident()
    timer = threading.Timer(seconds, lambda: armed.is_set() and signal.pthread_kill(main, signal.SIGUSR2))
    timer.daemon = True
    armed.set()
    timer.start()
    try:
        yield
    finally:
        armed.clear()
        timer.cancel()
        signal.signal(signal.SIGUSR2, previous)


def _load(source: str, tmp_path) -> object:
    path = tmp_path / f"generated_{next(_counter)}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outcome(fn, args, log: dict):
    log.clear()
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), _watchdog(HANG_S):
            value = fn(*args)
    except _Hang:
        return ("hung", f"no result after {HANG_S:g} s"), out.getvalue(), dict(log)
    except Exception as exc:  # noqa: BLE001 - compared below
        return ("raised", type(exc).__name__, str(exc)), out.getvalue(), dict(log)
    return ("returned", value), out.getvalue(), dict(log)


@pytest.fixture(scope="module", params=ENGINES)
def engine(request):
    with plait.init(engine=request.param, workers=2):
        yield request.param


@pytest.mark.timeout(max(900, 3 * EXAMPLES))
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZE,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(source=programs(), args=st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)))
def test_random_programs_match_sequential(engine, tmp_path_factory, source, args):
    module = _load(source, tmp_path_factory.mktemp("gen"))
    module.LOG.clear()
    ok, value, printed = sequential(module.program, args, {})
    expected = (
        ("returned", value) if ok else ("raised", type(value).__name__, str(value)),
        printed,
        dict(module.LOG),
    )
    got = _outcome(plait.parallel(module.program), args, module.LOG)
    assert got == expected, f"args={args}\n{source}"
