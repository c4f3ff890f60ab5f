"""Loops of measured-tiny tasks, and whole calls of them, run as plain Python (their
native twins), with sequential meaning.

What counts as tiny is a threshold on measured run time; the tests set a
generous one themselves, so they check behaviour, not the machine's speed.
Each program is compared with plain sequential Python; whether the loop ran
natively is read from the DEBUG log of ``plait.parallel``.
"""

from __future__ import annotations

import logging
import os
import time

import pytest

import plait
from plait.parallel import granularity
from tests.outcomes import outcome, sequential_outcome
from tests.test_parallel_granularity import _measure, where
from tests.test_parallel_granularity import tiny as inc
from tests.test_parallel_granularity import tiny_fails as fails_at_three

SHARED = [0]


@plait.task
def halve_appending(xs):
    xs.append(0)  # changes its own copy: the caller's list stays as it was
    return [v // 2 for v in xs]


@plait.task
def module_list():
    return SHARED  # the caller gets a copy, as from a worker


@plait.task
def sleepy(i):
    if i >= 5:
        time.sleep(0.001)
    return i


def accumulate(n):
    base = inc(100)
    total = 0
    squares = []
    for i in range(n):
        if i % 4 == 0:
            continue
        total += inc(i) + base
        squares.append(inc(i) * inc(i))
        if total > 900:
            break
    else:
        total = -total
    return total, squares, i


def unbound_after_an_empty_loop(n):
    for i in range(n):
        last = inc(i)
    return last, i


def tuple_targets_and_items(pairs):
    out = {}
    for k, v in pairs:
        out[k] = inc(v)
    return out


def nested_loops(n):
    grid = []
    for i in range(n):
        row = []
        for j in range(i):
            row.append(inc(i * j))
        grid.append(row)
    return grid


def arguments_are_copied(n):
    xs = [1, 2, 3]
    out = []
    for _ in range(n):
        out.append(halve_appending(xs))
    return xs, out


def results_are_copies(n):
    sizes = []
    for i in range(n):
        r = module_list()
        r.append(i)
        sizes.append(len(r))
    return sizes, SHARED


def failure_caught_around_the_loop(n):
    seen = []
    try:
        for i in range(n):
            seen.append(fails_at_three(i))
    except ValueError as err:
        return seen, str(err), i
    return seen, None, i


def failure_ends_the_call(n):
    total = 0
    for i in range(n):
        total += fails_at_three(i)
    return total


def slow_from_five(n):
    out = []
    for i in range(n):
        out.append(sleepy(i))
    return out


def pids(n):
    out = []
    for i in range(n):
        out.append(where(i))
    return out


@pytest.fixture
def generous(monkeypatch):
    """A generous threshold, and every task of this module measured (run on workers)."""
    monkeypatch.setattr(granularity, "INLINE_BELOW", 1.0)
    with plait.init(engine="local", workers=2) as session:
        for task, n in ((inc, 10), (fails_at_three, 3), (where, 10), (sleepy, 4)):
            _measure(session.engine, task, n)
        plait.get([halve_appending([i]) for i in range(10)] + [module_list() for _ in range(10)])
        yield session.engine


def _native_runs(caplog) -> int:
    return sum("runs as plain Python" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("program", "arg"),
    [
        (accumulate, 40),
        (accumulate, 3),
        (unbound_after_an_empty_loop, 0),
        (unbound_after_an_empty_loop, 5),
        (tuple_targets_and_items, [(1, 2), (3, 4), (1, 5)]),
        (nested_loops, 5),
        (arguments_are_copied, 3),
        (results_are_copies, 4),
        (failure_caught_around_the_loop, 6),
        (failure_caught_around_the_loop, 2),
        (failure_ends_the_call, 6),
    ],
)
def test_a_loop_of_tiny_tasks_runs_natively_with_sequential_meaning(generous, caplog, program, arg):
    caplog.set_level(logging.DEBUG, logger="plait.parallel")
    want = sequential_outcome(program, arg)
    pf = plait.parallel(program)
    for _ in range(3):
        assert outcome(pf, arg) == want
    if arg:  # a loop with items reached its twin
        assert _native_runs(caplog) >= 3


def test_the_twin_runs_its_tasks_in_the_driver(generous, caplog):
    caplog.set_level(logging.DEBUG, logger="plait.parallel")
    assert set(plait.parallel(pids)(20)) == {os.getpid()}
    assert _native_runs(caplog) == 1


def test_unmeasured_tasks_keep_the_loop_issued(caplog):
    caplog.set_level(logging.DEBUG, logger="plait.parallel")
    with plait.init(engine="local", workers=2):
        assert os.getpid() not in set(plait.parallel(pids)(4))
    assert _native_runs(caplog) == 0


def test_a_slow_iteration_hands_the_loop_back(generous, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="plait.parallel")
    monkeypatch.setattr(granularity, "SLOW_FACTOR", 0.01)  # 16 iterations over 10 ms are slow
    # (sleepy sleeps 1 ms from item 5 on: the stretches from item 16 on are slow)
    pf = plait.parallel(slow_from_five)
    assert outcome(pf, 40) == sequential_outcome(slow_from_five, 40)
    messages = [r.getMessage() for r in caplog.records]
    assert any("runs as plain Python" in m for m in messages)
    assert any("issued again" in m for m in messages)
    granularity._slow.clear()


def test_a_loop_with_an_effect_is_issued(generous, caplog, capsys):
    caplog.set_level(logging.DEBUG, logger="plait.parallel")

    @plait.parallel
    def prints(n):
        for i in range(n):
            print(inc(i))

    prints(3)
    assert capsys.readouterr().out == "1\n2\n3\n"
    assert _native_runs(caplog) == 0


def straight_line(x, scale=2, *rest, **named):
    """A docstring is no statement to issue."""
    if x < 0:
        return None
    base = inc(x) * scale
    got = [inc(x + 1)] + [v * 2 for v in rest]
    if named:
        got.append(sorted(named))
    return base, got


def raises_at_the_user_line(n):
    total = inc(n)
    return total + fails_at_three(3)


def unbound_in_a_branch(x):
    if x:
        y = inc(x)
    return y  # noqa: F821 - UnboundLocalError for x == 0, as in Python


def _calls_run_natively(caplog) -> int:
    return sum("the call runs as plain Python" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("program", "args", "kwargs"),
    [
        (straight_line, (3,), {}),
        (straight_line, (-1,), {}),
        (straight_line, (3, 5, 6, 7), {"b": 1, "a": 2}),
        (straight_line, (), {"x": 4, "scale": 3}),
        (raises_at_the_user_line, (1,), {}),
        (unbound_in_a_branch, (0,), {}),
        (unbound_in_a_branch, (2,), {}),
        (accumulate, (40,), {}),
        (arguments_are_copied, (3,), {}),
        (results_are_copies, (4,), {}),
        (failure_ends_the_call, (6,), {}),
    ],
)
def test_a_call_of_tiny_tasks_runs_natively_with_sequential_meaning(generous, caplog, program, args, kwargs):
    caplog.set_level(logging.DEBUG, logger="plait.parallel")
    want = sequential_outcome(program, *args, **kwargs)
    pf = plait.parallel(program)
    for _ in range(3):
        assert outcome(pf, *args, **kwargs) == want
    assert _calls_run_natively(caplog) == 3


def test_a_call_with_a_pending_argument_is_issued(generous, caplog):
    caplog.set_level(logging.DEBUG, logger="plait.parallel")
    future = inc(4)  # a future passed in: the issuer waits for it where it is used
    assert outcome(plait.parallel(straight_line), future) == sequential_outcome(straight_line, 5)
    assert _calls_run_natively(caplog) == 0


def two_calls(x):
    first = where(x)
    return first, where(x + 1)


def test_a_call_slow_in_place_goes_to_workers_the_next_time(generous, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="plait.parallel")
    monkeypatch.setattr(granularity, "SLOW_FACTOR", 1e-12)  # every run in place is slow
    pf = plait.parallel(two_calls)
    try:
        assert pf(1) == (os.getpid(), os.getpid())  # measured tiny: both in place, both slow
        assert os.getpid() not in pf(1)  # two slow runs in a row: to workers
        assert _calls_run_natively(caplog) == 1
    finally:
        granularity._slow.clear()


def handed_back_with_state(n):
    seen = [0, 0, 0]
    prefix = inc(0)
    pairs = [(i % 3, i) for i in range(n)]
    for key, i in pairs:
        seen[key] += sleepy(i) + prefix
    after = inc(len(seen))
    return seen, after, key, i


def handed_back_growing(n):
    xs = [0]
    for x in xs:  # the body appends to the list it walks: the loop goes on over the live list
        if len(xs) < n:
            xs.append(sleepy(x + 1))
    return xs


def handed_back_over_a_generator(n):
    out = []
    for i in (v * 2 for v in range(n)):
        out.append(sleepy(i))
    return out, len(out)


@pytest.mark.parametrize(
    "program", [slow_from_five, handed_back_with_state, handed_back_growing, handed_back_over_a_generator]
)
def test_a_slow_loop_hands_the_rest_of_the_call_to_the_issuer(generous, monkeypatch, caplog, program):
    caplog.set_level(logging.DEBUG, logger="plait.parallel")
    monkeypatch.setattr(granularity, "SLOW_FACTOR", 0.01)  # 16 iterations over 10 ms are slow
    try:
        assert outcome(plait.parallel(program), 60) == sequential_outcome(program, 60)
        messages = [r.getMessage() for r in caplog.records]
        assert _calls_run_natively(caplog) == 1
        assert any("issued again, and the rest of the call" in m for m in messages)
    finally:
        granularity._slow.clear()
