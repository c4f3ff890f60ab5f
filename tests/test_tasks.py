"""The task API's semantics, on both the inline and the local engine."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

import plait


@plait.task
def add(a, b=0):
    return a + b


@plait.task
def total(values):
    return sum(values)


@plait.task
def echo(x):
    return x


@plait.task
def fail(message):
    raise ValueError(message)


class CustomError(Exception):
    def __init__(self, code, detail):
        super().__init__(code, detail)
        self.code = code


@plait.task
def fail_custom():
    raise CustomError(7, "custom")


def test_call_returns_future_and_value(engine):
    f = add(1, 2)
    assert isinstance(f, plait.Future)
    assert f.result() == 3
    assert f.done()
    assert plait.get(f) == 3
    assert add(1, b=5).result() == 6


def test_futures_as_arguments_are_dependencies(engine):
    a = add(1, 2)
    b = add(a, 10)
    assert b.result() == 13
    assert total([a, b, 4]).result() == 20


def test_futures_inside_containers(engine):
    a, b = add(1, 1), add(2, 2)
    assert echo([a, (b, {"k": a})]).result() == [2, (4, {"k": 2})]
    assert echo({"x": a, "y": [b]}).result() == {"x": 2, "y": [4]}
    assert echo({a, 5}).result() == {2, 5}


def test_map_submits_many_calls_together(engine):
    """Dask's client.map: one call per item (per tuple of items), futures in order."""
    a = add(1, 2)
    assert plait.get(add.map(range(4), [10, 20, 30, a])) == [10, 21, 32, 6]
    assert plait.get(echo.map(x for x in "abc")) == ["a", "b", "c"]  # any iterable
    assert plait.get(add.options(name="named_add").map([1], [1])) == [2]
    assert add.map([], []) == []
    failing = fail.map(["one", "two"])
    assert [str(f.exception()) for f in failing] == ["one", "two"]  # each fails on its own
    assert plait.get(total.map([[a, 1], [a, a]])) == [4, 6]  # futures inside arguments too


def test_a_call_whose_dependency_failed_already_still_gets_its_future(engine):
    """Admitting such a call finishes it at once; its future must still be returned."""
    failed = fail("early")
    with pytest.raises(ValueError):
        failed.result()
    for f in [add(failed, 1), *add.map([failed, failed], [1, 2])]:
        assert isinstance(f, plait.Future)
        with pytest.raises(ValueError, match="early"):
            f.result()


def test_map_refuses_arguments_of_unequal_length(engine):
    with pytest.raises(ValueError, match="shorter"):
        add.map([1, 2, 3], [1, 2])
    with pytest.raises(TypeError, match="at least one iterable"):
        add.map()


def test_map_of_a_task_with_num_returns(engine):
    pairs = three_values.map([1, 5])
    assert [plait.get(list(p)) for p in pairs] == [[1, 2, 3], [5, 6, 7]]


def test_get_list_keeps_order(engine):
    futures = [add(i, i) for i in range(50)]
    assert plait.get(futures) == [2 * i for i in range(50)]
    assert plait.get(tuple(futures[:3])) == [0, 2, 4]
    assert plait.get([]) == []


def test_get_rejects_non_futures(engine):
    with pytest.raises(TypeError, match="plait.Future"):
        plait.get([add(1, 1), 3])


def test_exception_keeps_type_and_remote_traceback(engine):
    f = fail("boom")
    with pytest.raises(ValueError, match="boom") as info:
        f.result()
    cause = info.value.__cause__
    assert isinstance(cause, plait.RemoteTraceback)
    assert "in fail" in cause.tb and "raise ValueError(message)" in cause.tb
    assert isinstance(f.exception(), ValueError)


def test_custom_exception_type_and_attributes(engine):
    with pytest.raises(CustomError) as info:
        fail_custom().result()
    assert info.value.code == 7


def test_failure_propagates_to_dependents(engine):
    bad = fail("upstream")
    downstream = add(bad, 1)
    with pytest.raises(ValueError, match="upstream"):
        downstream.result()
    with pytest.raises(ValueError, match="upstream"):
        plait.get([add(1, 1), downstream])


def test_arguments_are_captured_at_call_time(engine):
    config = {"n": 1}
    f = echo(config)
    config["n"] = 2
    assert f.result() == {"n": 1}


def test_wait_and_as_completed(engine):
    futures = [add(i) for i in range(10)]
    done, pending = plait.wait(futures, num_returns=3)
    assert len(done) == 3 and len(done) + len(pending) == 10
    assert set(done).isdisjoint(pending)
    done, pending = plait.wait(futures, num_returns=10, timeout=30)
    assert len(done) == 10 and not pending
    assert sorted(f.result() for f in plait.as_completed(futures)) == list(range(10))


def test_wait_rejects_bad_num_returns(engine):
    futures = [add(1)]
    with pytest.raises(ValueError, match="num_returns"):
        plait.wait(futures, num_returns=2)


def test_put_value_shared_by_tasks(engine):
    ref = plait.put(list(range(100)))
    assert ref.done()
    assert plait.get([total(ref), total(ref)]) == [4950, 4950]
    assert ref.result() == list(range(100))


def test_done_callback(engine):
    seen = []
    f = add(2, 3)
    f.add_done_callback(lambda fut: seen.append(fut.result()))
    f.result()
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == [5]
    f.add_done_callback(lambda fut: seen.append("late"))
    assert seen[-1] == "late"


def test_await_future(engine):
    async def main():
        return await add(20, 22)

    assert asyncio.run(main()) == 42


def test_options_per_call_and_name(engine):
    f = add.options(name="renamed", retries=0)(1, 1)
    assert f.result() == 2
    assert f.name == "renamed"
    with pytest.raises(TypeError, match="unknown option"):
        add.options(cpus=2)


def test_decorator_options_validated():
    with pytest.raises(ValueError, match="num_cpus"):
        plait.task(num_cpus=-1)(lambda: None)
    with pytest.raises(TypeError, match="retry_exceptions"):
        plait.task(retry_exceptions="yes")(lambda: None)


def test_closures_and_lambdas_ship_by_value(engine):
    offset = 100

    @plait.task
    def shifted(x):
        return x + offset

    square = plait.task(lambda x: x * x)
    assert plait.get([shifted(1), square(shifted(1))]) == [101, 10201]


def fail_twice(marker):
    """Raises OSError on the first two calls (counted in the file ``marker``), then counts."""
    n = int(marker.read_text()) if marker.exists() else 0
    marker.write_text(str(n + 1))
    if n < 2:
        raise OSError("transient")
    return n


def test_retry_exceptions(engine, tmp_path):
    marker = tmp_path / "attempts"

    @plait.task(retries=3, retry_exceptions=[OSError])
    def flaky():
        return fail_twice(marker)

    assert flaky().result() == 2

    @plait.task(retries=3, retry_exceptions=[OSError])
    def wrong_kind():
        raise KeyError("not retried")

    with pytest.raises(KeyError):
        wrong_kind().result()


def test_per_call_options_are_the_ones_the_call_runs_with(engine, tmp_path):
    """On the local engine the worker ran every call with the decorator's options: a
    per-call .options(retries=..., retry_exceptions=...) was silently ignored."""
    marker = tmp_path / "attempts"

    @plait.task
    def flaky():
        return fail_twice(marker)

    assert flaky.options(retries=3, retry_exceptions=[OSError])().result(timeout=60) == 2
    marker.unlink()
    with pytest.raises(OSError):
        flaky().result(timeout=60)  # the decorator's options again: no retries on exceptions
    assert marker.read_text() == "1"


def test_near_is_a_hint_every_engine_takes(engine):
    data = add(1, 2)
    assert add.options(near=data)(10, 20).result(timeout=60) == 30
    assert plait.get(add.options(near=plait.put(5)).map([1, 2], [3, 4]), timeout=60) == [4, 6]
    pending = add(1, 1)  # not finished yet (or finished): a hint either way
    assert add.options(near=pending)(pending, 1).result(timeout=60) == 3
    with pytest.raises(TypeError, match="near=.*plait.Future"):
        add.options(near=3)


def test_timeout_option(engine):
    @plait.task(timeout=0.2, retries=0)
    def slow():
        time.sleep(1.0)
        return "late"

    with pytest.raises(plait.TaskTimeoutError, match="timeout"):
        slow().result()
    assert add(1, 1).result() == 2  # the engine goes on


def test_nested_tasks(engine):
    @plait.task
    def fib(n):
        if n < 2:
            return n
        return sum(plait.get([fib(n - 1), fib(n - 2)]))

    assert fib(12).result() == 144


def test_nested_future_passed_on(engine):
    @plait.task
    def outer(x):
        inner = add(x, 1)
        return add(inner, 1).result()

    assert plait.get([outer(i) for i in range(6)]) == [i + 2 for i in range(6)]


def test_futures_inside_put_values_stay_futures(engine):
    a = add(1, 2)
    box = plait.put({"inner": a})

    @plait.task
    def open_box(b):
        return plait.get(b["inner"]) * 2

    assert open_box(box).result() == 6
    assert box.result()["inner"].result() == 3


def test_context_manager_and_reinit():
    with plait.init(engine="inline"):
        assert plait.is_initialized()
        with pytest.raises(RuntimeError, match="already initialized"):
            plait.init()
    assert not plait.is_initialized()


def test_unknown_engine():
    with pytest.raises(ValueError, match="unknown engine"):
        plait.init(engine="nope")


class Unpicklable(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()  # cannot cross a process boundary as itself


@plait.task
def raise_unpicklable(message):
    raise Unpicklable(message)


@plait.task
def call_through(depth, message):
    if depth == 0:
        return raise_unpicklable(message).result()
    return call_through(depth - 1, message).result()


def test_a_task_error_message_is_not_repeated_at_each_hop(engine):
    """It doubled at every pickle hop: "task 'x' raised Bad: task 'x' raised Bad: ..."."""
    with pytest.raises(plait.TaskError) as info:
        call_through(2, "the detail").result()
    assert str(info.value).count("the detail") == 1
    assert str(info.value).count("raised") == 1
    assert info.value.type_name == "Unpicklable" and info.value.message == "the detail"


def test_a_future_has_no_truth_value(engine):
    f = echo(0)
    with pytest.raises(TypeError, match=r"\.result\(\)"):
        if f:
            pass
    assert f.result() == 0


async def _coroutine_task(x):
    return x


def _generator_task(n):
    yield from range(n)


class _Holder:
    def method(self, x):
        return x


@pytest.mark.parametrize(
    ("fn", "says"),
    [
        (_coroutine_task, "async def"),
        (_generator_task, "generator"),
        (_Holder.method, "method"),
    ],
)
def test_functions_a_task_cannot_be_are_refused_at_decoration(fn, says):
    with pytest.raises(TypeError, match=says):
        plait.task(fn)
    with pytest.raises(TypeError, match=says):
        plait.task(retries=0)(fn)


@pytest.mark.parametrize("engine_name", ["inline", "local"])
def test_unknown_init_keywords_are_errors(engine_name):
    with pytest.raises(TypeError, match="runtime_env"):
        plait.init(engine=engine_name, runtime_env={"pip": ["x"]})
    assert not plait.is_initialized()


# ------------------------------------------------------------- num_returns
@plait.task(num_returns=3)
def three_values(x):
    return x, x + 1, x + 2


@plait.task(num_returns=2)
def split_counts(text):
    """Ray's num_returns word count: one partial count per reducer."""
    low, high = {}, {}
    for word in text.split():
        part = low if word[0] < "n" else high
        part[word] = part.get(word, 0) + 1
    return low, high


@plait.task
def merge_counts(*parts):
    out = {}
    for part in parts:
        for word, n in part.items():
            out[word] = out.get(word, 0) + n
    return out


def test_num_returns_gives_one_future_per_item(engine):
    a, b, c = three_values(10)
    assert isinstance(a, plait.Future) and plait.get([c, a, b]) == [12, 10, 11]
    assert add(b, 1).result() == 12  # each item is a dependency of its own


def test_num_returns_word_count(engine):
    texts = ["apple pear zebra apple", "moon night apple", "zebra zebra kiwi"]
    partials = [split_counts(t) for t in texts]
    low = merge_counts(*[p[0] for p in partials])
    high = merge_counts(*[p[1] for p in partials])
    merged = {**low.result(), **high.result()}
    want: dict = {}
    for word in " ".join(texts).split():
        want[word] = want.get(word, 0) + 1
    assert merged == want


def test_num_returns_per_call_and_zero(engine, tmp_path):
    first, second = echo.options(num_returns=2)((1, 2))
    assert plait.get([first, second]) == [1, 2]
    marker = tmp_path / "ran"

    @plait.task(num_returns=0)
    def touch(path):
        open(path, "w").close()

    assert touch(str(marker)) is None
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.01)
    assert marker.exists()  # it ran, though nothing waits for it


def test_the_local_engine_stores_the_items_of_one_call_apart(tmp_path):
    """One task call, no task per item: the timeline has one span for the call."""
    import numpy as np

    @plait.task(num_returns=2)
    def halves(n):
        data = np.arange(n, dtype=np.float64)
        return data[: n // 2].copy(), data[n // 2 :].copy()

    with plait.init(engine="local", workers=2):
        low, high = halves(400_000)  # both items big enough for store files of their own
        assert low.result().sum() + high.result().sum() == sum(range(400_000))
        del low  # one item freed, the other still there
        assert high.result()[0] == 200_000
        path = plait.timeline(str(tmp_path / "t.json"))
        import json

        with open(path) as f:
            names = [e["name"] for e in json.load(f)["traceEvents"] if e.get("ph") == "X"]
        assert len([n for n in names if n.endswith("halves")]) == 1 and not [n for n in names if "halves[" in n]


def test_num_returns_that_do_not_match_are_errors(engine):
    first, second = echo.options(num_returns=2)([1, 2, 3])
    for item in (first, second):
        with pytest.raises(ValueError, match="num_returns=2 but returned 3 values"):
            item.result()
    with pytest.raises(ValueError, match="num_returns"):
        plait.task(num_returns=-1)(add.fn)


# ------------------------------------------------------------------ memmaps
@plait.task
def fill_rows(out, start, stop, value):
    out[start:stop] = value  # lands in the file: the task maps the same file
    return float(out[start:stop].sum())


@plait.task
def column_sum(view):
    return float(view.sum())


def test_a_memmap_passed_to_tasks_is_shared_through_its_file(engine, tmp_path):
    """joblib's memmap example: each task writes its rows; the writes were lost in copies
    (the result summed to all zeros)."""
    np = pytest.importorskip("numpy")
    out = np.memmap(tmp_path / "out.dat", dtype=np.float64, mode="w+", shape=(40, 3))
    sums = plait.get([fill_rows(out, 10 * i, 10 * (i + 1), i + 1) for i in range(4)])
    assert sums == [30.0 * (i + 1) for i in range(4)]
    out.flush()
    assert float(out.sum()) == sum(30.0 * (i + 1) for i in range(4))
    assert float(np.asarray(out[::10]).sum()) == 3.0 * (1 + 2 + 3 + 4)
    # a strided view of a read-only map reads the right bytes
    readonly = np.memmap(tmp_path / "out.dat", dtype=np.float64, mode="r", shape=(40, 3))
    assert column_sum(readonly[::2, 1]).result() == float(readonly[::2, 1].sum())


def test_a_failure_nobody_read_is_reported_when_its_future_is_dropped(engine, caplog):
    import gc
    import logging

    caplog.set_level(logging.WARNING, logger="plait")
    f = fail("never read")
    plait.wait([f], num_returns=1, timeout=60)
    del f

    def reports() -> list[str]:
        gc.collect()
        return [r.getMessage() for r in caplog.records if "never read" in r.getMessage()]

    deadline = time.monotonic() + 60  # the engine's own thread may still hold it a moment
    while not reports() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(reports()) == 1 and "dropped without its result being read" in reports()[0]

    caplog.clear()
    g = fail("read once")
    with pytest.raises(ValueError):
        g.result()
    h = add(fail("passed on"), 1)  # a dependency: its failure reaches the dependent
    with pytest.raises(ValueError):
        h.result()
    failed_first = fail("failed before it was passed on")
    plait.wait([failed_first], num_returns=1, timeout=60)
    k = add(failed_first, 1)
    with pytest.raises(ValueError):
        k.result()
    del g, h, k, failed_first
    gc.collect()
    assert not [r for r in caplog.records if "dropped without" in r.getMessage()]


@plait.task
def get_inside(values):
    return plait.get(values)  # a mistake: the futures arrived as their values


def test_get_of_a_resolved_argument_inside_a_task_says_why(engine):
    with pytest.raises(TypeError, match="arrive as their values"):
        get_inside([add(1, 2)]).result()
    with pytest.raises(TypeError, match="arrive as their values"):
        get_inside(add(1, 2)).result()
    with pytest.raises(TypeError) as outside:
        plait.get(3)
    assert "arrive as" not in str(outside.value)  # in the driver there is no such hint


# ------------------------------------------- futures passed as themselves (nested refs)
@plait.task
def wait_for_file(path):
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)
    return "opened"


@plait.task
def open_then_read(path, box):
    """Makes the file its input waits for, then reads that input: only a task that
    did not wait for its input before it started can finish."""
    (future,) = box
    assert isinstance(future, plait.Future), type(future)
    open(path, "w").close()
    return future.result(timeout=60)


@plait.task
def read_later(future):
    return plait.get(future)


@plait.task
def hand_on(future):
    return read_later(plait.unresolved(future)).result()


@plait.task
def what_went_wrong(future):
    return type(future.exception()).__name__


def test_an_unresolved_future_arrives_as_itself_and_is_not_waited_for(engine, tmp_path):
    path = str(tmp_path / "flag")
    if engine == "inline":
        open(path, "w").close()  # every inline call runs at once, so its input must be ready
    gate = wait_for_file(path)
    assert open_then_read(path, [plait.unresolved(gate)]).result(timeout=120) == "opened"


def test_an_unresolved_future_can_be_passed_on_and_outlives_the_callers_reference(engine):
    import gc

    reader = hand_on(plait.unresolved(add(20, 1)))  # nobody else holds the input's future
    gc.collect()
    assert reader.result(timeout=60) == 21
    assert read_later(plait.unresolved(plait.put({"k": 1}))).result(timeout=60) == {"k": 1}


def test_the_failure_of_an_unresolved_future_is_the_tasks_to_read(engine):
    failing = fail("inside")
    assert what_went_wrong(plait.unresolved(failing)).result(timeout=60) == "ValueError"
    with pytest.raises(ValueError):
        failing.result()


def test_unresolved_takes_only_futures(engine):
    with pytest.raises(TypeError, match="plait.unresolved takes a plait.Future"):
        plait.unresolved(3)
