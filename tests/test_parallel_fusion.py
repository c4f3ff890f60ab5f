"""Chains of small operations on pending results: one call per FUSE_MAX links, never a different answer."""

from __future__ import annotations

import os
import threading
import time

import pytest

import plait
from plait.parallel.check import sequential
from plait.parallel.runtime import FUSE_MAX


@plait.task
def value(i):
    return i


@plait.task
def gated(i, path):
    """Finishes once ``path`` exists: the test looks at the calls waiting behind it first."""
    deadline = time.monotonic() + 120
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return i


@plait.parallel
def accumulate(n, path):
    s = 0
    for i in range(n):
        s += gated(i, path)
    return s


def test_a_chain_of_additions_waits_for_the_task_results_not_for_each_link(local, tmp_path):
    gate = str(tmp_path / "open")
    n = FUSE_MAX - 1
    out: dict = {}
    runner = threading.Thread(target=lambda: out.setdefault("value", accumulate(n, gate)))
    runner.start()
    try:
        deadline = time.monotonic() + 120
        waiting: list = []
        while time.monotonic() < deadline:
            waiting = [r for r in plait.status() if r["name"] != "gated" and r["state"] == "waiting"]
            if len(waiting) >= n:
                break
            time.sleep(0.02)
        # every link waits for the task results it sums, none for the link before it
        assert len(waiting) >= n, plait.status()
        for record in waiting:
            inputs = record["why"].split(": ", 1)[1].split(", ")
            assert {name.split("#")[0] for name in inputs} == {"gated"}, record
    finally:
        open(gate, "w").close()
        runner.join(120)
    assert out["value"] == sum(range(n))


@plait.parallel
def mixed_chain(n):
    s, t, flags = 1, 0, []
    for i in range(n):
        v = value(i)
        s = s * 3 - v  # a long chain: more links than one call computes
        t = -(t + v) if i % 3 else t - s  # one result read by two chains
        flags.append(s > t)
        flags.append(not (v == 2))
    return s, t, s % 7, flags


@plait.parallel
def chain_that_divides_by_zero(n):
    s = 10
    out = []
    for _ in range(n):
        s = s - value(1)
        try:
            out.append(100 // s + s)  # s reaches 0 in the tenth round: this link raises, and is caught
        except ZeroDivisionError:
            out.append("zero")
    return s, out


@plait.parallel
def chain_that_fails(n):
    s = 0
    for i in range(n):
        s = s + value(i)
        s = s // (3 - i)  # fails at i == 3; the links after it never happen
    return s


@pytest.mark.parametrize(
    "program, args",
    [(mixed_chain, (3 * FUSE_MAX,)), (chain_that_divides_by_zero, (12,)), (chain_that_fails, (6,))],
)
def test_fused_chains_give_the_sequential_answer(engine, program, args):
    expected = sequential(program.fn, args, {})
    try:
        got = (True, program(*args))
    except Exception as exc:  # noqa: BLE001 - compared with the sequential run's
        got = (False, exc)
    assert got[0] == expected[0]
    if got[0]:
        assert got[1] == expected[1]
    else:
        assert type(got[1]) is type(expected[1]) and str(got[1]) == str(expected[1])
