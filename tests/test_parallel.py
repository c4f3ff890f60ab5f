"""@plait.parallel keeps sequential meaning: values, printed output and exceptions."""

from __future__ import annotations

import functools
import time

import pytest

import plait
from plait.parallel.check import ParallelCheckError
from tests import parallel_corpus as corpus
from tests.outcomes import outcome, sequential_outcome
from tests.test_tasks import three_values


@pytest.mark.parametrize(
    "program,args,kwargs",
    corpus.PROGRAMS,
    ids=[f"{p.__name__}{args}" for p, args, _ in corpus.PROGRAMS],
)
def test_equivalent_to_sequential(engine, program, args, kwargs):
    run = functools.partial(program, **kwargs)
    assert outcome(run, *args) == sequential_outcome(functools.partial(program.fn, **kwargs), *args)


def test_check_mode_passes_and_reports(engine):
    checked = plait.parallel(corpus.accumulate.fn, check=True)
    assert checked(5) == 20

    # check mode compares the two runs: a function with hidden state differs between them
    flaky = plait.parallel(_counter_program, check=True)
    _COUNTER.clear()
    with pytest.raises(ParallelCheckError, match="differs|returned"):
        flaky(3)


_COUNTER: list = []


def _bump():
    _COUNTER.append(1)
    return len(_COUNTER)


def _counter_program(n):
    total = 0
    for _ in range(n):
        total += _bump()
    return total


def test_lookahead_launches_independent_work_before_a_blocked_if():
    @plait.task
    def stamp(delay):
        start = time.time()
        time.sleep(delay)
        return start, time.time()

    @plait.parallel
    def program():
        first = stamp(0.5)
        if first[0] > 0:  # waits for the slow task
            flag = True
        later = stamp(0)  # does not depend on the if: starts at once
        return first, later, flag

    with plait.init(workers=3):
        plait.get([stamp(0) for _ in range(3)])  # workers warm
        first, later, flag = program()
    assert flag is True
    assert later[0] < first[1]  # launched while the if still waited for the slow task


def test_loop_iterations_overlap():
    @plait.task
    def span(i):
        start = time.time()
        time.sleep(0.3)
        return start, time.time()

    @plait.parallel
    def program(n):
        spans = []
        for i in range(n):
            s = span(i)
            if s[0] > 0:  # each iteration waits on its own result only
                spans.append(s)
        return spans

    with plait.init(workers=4):
        plait.get([span(i) for i in range(4)])
        spans = program(4)
    latest_start = max(s for s, _ in spans)
    earliest_end = min(e for _, e in spans)
    assert latest_start < earliest_end  # all four ran at the same time


def test_called_from_task_and_from_ordinary_code(engine):
    @plait.task
    def outer(n):
        return corpus.accumulate(n)

    assert outer(4).result() == corpus.accumulate(4) == 12


REFUSALS = {
    "generator": ("def f(x):\n    yield x\n", "yield"),
    "async": ("async def f(x):\n    return x\n", "async"),
    "global": ("G = 1\ndef f(x):\n    global G\n    G = x\n", "global"),
    "nested def": ("def f(x):\n    def g():\n        return 1\n    return g()\n", "module level"),
    "match": ("def f(x):\n    match x:\n        case 1:\n            return 1\n", "match"),
    "locals": ("def f(x):\n    return locals()\n", "frame"),
    "lambda over reassigned": ("def f(x):\n    y = 1\n    g = lambda: y\n    y = 2\n    return g()\n", "assigned more than once"),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_refusals_name_the_line(tmp_path, name, monkeypatch):
    source, fragment = REFUSALS[name]
    module = tmp_path / f"refused_{name.replace(' ', '_')}.py"
    module.write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict = {}
    exec(compile(source, str(module), "exec"), namespace)
    with pytest.raises(plait.ParallelSyntaxError) as info:
        plait.parallel(namespace["f"])
    message = str(info.value)
    assert fragment in message
    assert str(module) in message and ":" in message


def test_source_not_available():
    namespace: dict = {}
    exec("def f(x):\n    return x\n", namespace)
    with pytest.raises(plait.ParallelSyntaxError, match="source"):
        plait.parallel(namespace["f"])


def test_parallel_in_a_script_run_as_main(tmp_path):
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "sweep.py"
    script.write_text(
        textwrap.dedent(
            """
            import plait

            @plait.task
            def square(x):
                return x * x

            @plait.parallel
            def sweep(n):
                total = 0
                big = []
                for i in range(n):
                    s = square(i)
                    total += s
                    if s > 10:
                        big.append(i)
                print("big", big)
                return total

            if __name__ == "__main__":
                print("total", sweep(6))
            """
        )
    )
    for engine_name in ("local", "inline"):
        result = subprocess.run(
            [sys.executable, "-m", "plait", "run", str(script), "--engine", engine_name, "--workers", "2"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == ["big [4, 5]", "total 55"]


def unpack_num_returns(n):
    out = []
    for i in range(n):
        low, mid, high = three_values(i)
        out.append(low + high)
    return out, mid


def test_num_returns_tasks_in_parallel_code(engine):
    assert outcome(plait.parallel(unpack_num_returns), 5) == sequential_outcome(unpack_num_returns, 5)


@plait.task
def as_mapping(x):
    return {"first": x, "second": x + 1}


@plait.parallel
def spreads_results(n):
    items = corpus.pair(n)  # a tuple of two, pending
    named = as_mapping(n)
    combined = [0, *items, *(corpus.work(i) for i in range(2))]
    inside = corpus.work(max(*items))
    merged = {**named, "third": n + 2}
    keyed = dict(**named)
    return combined, (*items,), {*items}, inside, merged, keyed


def test_star_and_double_star_unpack_pending_results(engine):
    """``*x`` and ``**x`` over a task's pending result (in displays and in calls) unpack its value."""
    got = outcome(spreads_results, 3)
    assert got == sequential_outcome(spreads_results.fn, 3)
    assert got[0][0] == "returned"
