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
(to look past a known bug; see FEATURES in hypo_grammar.py). A parallel run
that gives no result within PLAIT_HYPOTHESIS_HANG_S seconds (default 10; runs
take milliseconds) is reported as "hung" instead of blocking the test.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import itertools
import os
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
# a parallel run this slow counts as a hang (runs take milliseconds); once one hung, shrinking waits less
HANG_S = float(os.environ.get("PLAIT_HYPOTHESIS_HANG_S", "10"))
_hangs: list[str] = []


def _load(source: str, tmp_path) -> object:
    path = tmp_path / f"generated_{next(_counter)}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outcome(fn, args, log: dict):
    """The run's result, printed output and LOG; run in a thread, so a deadlock is reported, not waited for."""
    log.clear()
    out = io.StringIO()
    box: list = []

    def target():
        try:
            box.append(("returned", fn(*args)))
        except Exception as exc:  # noqa: BLE001 - compared below
            box.append(("raised", type(exc).__name__, str(exc)))

    with contextlib.redirect_stdout(out):
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        thread.join(HANG_S if not _hangs else min(HANG_S, 2.0))
    if not box:
        _hangs.append(fn.__name__)
        return ("hung", "no result (a deadlock?)"), out.getvalue(), dict(log)
    return box[0], out.getvalue(), dict(log)


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
