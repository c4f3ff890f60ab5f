"""Granularity control: measured tiny tasks run in place under @parallel; the rest go to workers.

What counts as tiny is a threshold on measured run time; the tests set it
themselves (a generous one), so they check behaviour, not the machine's speed.
"""

from __future__ import annotations

import os

import pytest

import plait
from plait.parallel import granularity


@plait.task
def tiny(x):
    return x + 1


@plait.task
def tiny_fails(x):
    if x == 3:
        raise ValueError("three")
    return x


@plait.task
def where(x):
    return os.getpid()


@plait.parallel
def loop(n):
    total = 0
    for i in range(n):
        total += tiny(i)
    return total


@plait.parallel
def pids(n):
    return [where(i) for i in range(n)]


@plait.parallel
def looks_at_futures(n):
    out = []
    for i in range(n):
        f = tiny(i)
        out.append(f.result())
    return out


@plait.parallel
def catches(n):
    caught = []
    for i in range(n):
        try:
            caught.append(tiny_fails(i))
        except ValueError as err:
            caught.append(str(err))
    return caught


@pytest.fixture
def generous(monkeypatch):
    monkeypatch.setattr(granularity, "INLINE_BELOW", 1.0)
    with plait.init(engine="local", workers=2) as session:
        yield session.engine


def _measure(engine, task, n=10):
    plait.get([task(i % n) for i in range(10)])
    assert engine.typical_run_time(task.name) is not None


def test_measured_tiny_tasks_run_in_place(generous):
    _measure(generous, where)
    assert set(pids(20)) == {os.getpid()}  # every call ran in the driver
    assert loop(50) == sum(range(1, 51))


def test_unmeasured_tasks_go_to_workers(generous):
    assert os.getpid() not in set(pids(4))  # never seen run: dispatched


def test_tasks_with_resource_requests_always_go_to_workers(generous):
    _measure(generous, where)

    @plait.parallel
    def with_options(n):
        return [where.options(num_cpus=1, timeout=30)(i) for i in range(n)]

    assert os.getpid() not in set(with_options(4))


def test_code_that_looks_at_futures_keeps_getting_futures(generous):
    _measure(generous, tiny)
    assert looks_at_futures(5) == [1, 2, 3, 4, 5]


def test_failures_of_tasks_run_in_place_raise_where_python_would(generous):
    _measure(generous, tiny_fails, n=3)
    assert catches(5) == [0, 1, 2, "three", 4]


def test_switched_off(generous, monkeypatch):
    _measure(generous, where)
    monkeypatch.setattr(granularity, "ENABLED", False)
    assert os.getpid() not in set(pids(4))


def test_a_task_slow_in_place_is_not_run_in_place_again(generous, monkeypatch):
    _measure(generous, where)
    monkeypatch.setattr(granularity, "INLINE_BELOW", 1e-9)  # every run in place now looks slow...
    granularity._slow.discard(id(where))
    monkeypatch.setattr(generous, "typical_run_time", lambda name: 0.0)  # ...though measured tiny
    first = pids(4)
    # two slow runs in a row (one might be the machine being busy), then to workers
    assert first[:2] == [os.getpid()] * 2 and os.getpid() not in first[2:]
    granularity._slow.discard(id(where))
