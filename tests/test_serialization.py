"""What cannot cross a process boundary fails clearly, at the call, naming the culprit."""

from __future__ import annotations

import threading

import pytest

import plait


@plait.task
def identity(x, y=None):
    return x


def test_unpicklable_argument_named_at_the_call(engine):
    lock = threading.Lock()
    with pytest.raises(plait.SerializationError) as info:
        identity(1, y=lock)
    message = str(info.value)
    assert "argument 'y'" in message and "identity" in message and "lock" in message


def test_unpicklable_positional_argument(engine):
    with pytest.raises(TypeError, match="argument 0"):
        identity(threading.Lock())


def test_unpicklable_result_is_an_error_not_a_hang(engine):
    @plait.task
    def make_lock():
        return threading.Lock()

    with pytest.raises(plait.SerializationError, match="make_lock.*cannot be pickled"):
        make_lock().result(timeout=30)


def test_unpicklable_exception_still_reported(engine):
    class Weird(Exception):
        def __init__(self):
            super().__init__("weird")
            self.lock = threading.Lock()

    @plait.task
    def raise_weird():
        raise Weird()

    with pytest.raises(Exception, match="weird") as info:
        raise_weird().result(timeout=30)
    assert "Weird" in str(info.value) or isinstance(info.value, Weird)


def test_unpicklable_closure_is_named(local):
    lock = threading.Lock()

    @plait.task
    def uses_lock():
        with lock:
            return 1

    with pytest.raises(plait.SerializationError, match="uses_lock"):
        uses_lock()


def test_classes_defined_in_tests_travel(engine):
    class Point:
        def __init__(self, x, y):
            self.x, self.y = x, y

    @plait.task
    def norm(p):
        return (p.x**2 + p.y**2) ** 0.5

    assert norm(Point(3, 4)).result() == 5.0
