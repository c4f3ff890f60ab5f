"""Fixtures: real engines, started and stopped around each test."""

from __future__ import annotations

import os

import pytest

import plait

ENGINES = ["inline", "local"]


@pytest.fixture(params=ENGINES)
def engine(request):
    """Each semantic test runs on both the inline and the local engine."""
    with plait.init(engine=request.param, workers=2):
        yield request.param


@pytest.fixture
def local():
    with plait.init(engine="local", workers=2) as session:
        yield session.engine


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
