"""Plain helper functions called from @parallel code: compiled the same way, with sequential meaning.

Each test guards one bug found by running ported tutorial programs; the
spans tests prove parallelism by overlapping task spans, never by wall time.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import time

import pytest

import plait
from tests.hypo_tasks import boom, nest
from tests.outcomes import outcome, sequential_outcome


@plait.task
def inc(x):
    return x + 1


@plait.task
def double(x):
    return 2 * x


@plait.task
def span(i, delay=0.3):
    start = time.time()
    time.sleep(delay)
    return start, time.time()


def _same_with_log(pf, *args):
    """The outcome and what the program left in LOG, both as sequentially."""
    LOG.clear()
    got = outcome(pf, *args), dict(LOG)
    LOG.clear()
    assert got == (sequential_outcome(pf.fn, *args), dict(LOG))


def _same_as_sequential(pf, *args):
    got = outcome(pf, *args)
    assert got == sequential_outcome(pf.fn, *args)
    return got


def _all_overlap(spans) -> bool:
    return max(s for s, _ in spans) < min(e for _, e in spans)


# --------------------------------------------------- the dask tutorial's loops
def is_even(x):
    return not x % 2


@plait.parallel
def control_flow(data):
    results = []
    for x in data:
        if is_even(x):
            y = double(x)
        else:
            y = inc(x)
        results.append(y)
    return sum(results)


@plait.parallel
def control_flow_on_results(data):
    results = []
    for x in data:
        if inc(x) > 5:
            y = double(x)
        else:
            y = inc(x)
        results.append(y)
    return sum(results)


def test_helper_condition_then_sum_is_right(engine):
    assert control_flow(range(1, 11)) == 90


def test_task_result_condition_then_sum_is_right(engine):
    assert control_flow_on_results(range(1, 11)) == 104


@plait.parallel
def lifted_over_a_list_still_filling(n):
    parts = []
    for i in range(n):
        r = inc(i)
        if r > -1:  # waits: the appends below detach and finish later
            parts.append(r)
    return sum(parts), max(parts), len(parts), sorted(parts) == parts, f"{parts}"


def test_lifted_and_formatted_containers_wait_for_earlier_writers(engine):
    _same_as_sequential(lifted_over_a_list_still_filling, 6)


# --------------------------------------------------- helpers calling tasks
def risky_plus(i):
    return double(i) + 0


def nested_helper(i):
    return risky_plus(i) * 2 + inc(i)


@plait.parallel
def uses_helpers(n):
    out = []
    for i in range(n):
        out.append(risky_plus(i))
        out.append(nested_helper(i))
    return sum(out), out


def test_plain_helper_does_arithmetic_on_task_results(engine):
    _same_as_sequential(uses_helpers, 5)


def noisy(i, log):
    print("noisy", i)
    log.append(i)
    return inc(i)


@plait.parallel
def effects_in_helpers(n):
    log = []
    total = 0
    for i in range(n):
        total += noisy(i, log)
        print("after", i)
    return total, log


def test_helper_effects_keep_program_order(engine):
    _same_as_sequential(effects_in_helpers, 4)


def fails_quietly(i):
    boom(i)  # its value is never used: the call still raised, sequentially
    return 1


@plait.parallel
def unused_failure():
    x = fails_quietly(5)
    print("never printed")
    return x


@plait.parallel
def failure_caught_around_the_call():
    try:
        x = fails_quietly(5)
    except ValueError as err:
        x = str(err)
    return x


@plait.parallel
def failure_not_caught_where_the_value_is_used():
    x = fails_quietly(10)
    try:
        y = x + 1
    except ValueError:
        y = "wrongly caught"
    return y


@plait.parallel
def effect_after_a_failing_call_in_the_same_statement():
    return [boom(5), print("never printed")]


@pytest.mark.parametrize(
    "program",
    [unused_failure, failure_caught_around_the_call, failure_not_caught_where_the_value_is_used,
     effect_after_a_failing_call_in_the_same_statement],
    ids=lambda p: p.__name__,
)  # fmt: skip
def test_helper_failures_raise_where_the_sequential_program_raised(engine, program):
    _same_as_sequential(program)


def depth(n):
    if n == 0:
        return inc(0)
    return depth(n - 1) + 1


@plait.parallel
def deep_recursion(n):
    return depth(n)


def test_deep_recursion_through_helpers(engine):
    # deeper than Python's frame limit would allow if every level nested in one thread
    assert deep_recursion(400) == 401


def generator_helper(n):
    yield from range(n)


def closure_helper(n):
    def inner(k):
        return k * 2

    return inner(n)


@plait.parallel
def uncompilable_helpers(n):
    total = 0
    for i in generator_helper(n):
        total += inc(i)
    return total + closure_helper(n)


def test_helpers_that_cannot_be_compiled_run_as_ordinary_calls(engine):
    _same_as_sequential(uncompilable_helpers, 4)


def two_args(a, b):
    return a + b


@plait.parallel
def bad_call():
    return two_args(1)


def test_a_bad_helper_call_raises_pythons_own_error(engine):
    with pytest.raises(TypeError) as info:
        bad_call()
    with pytest.raises(TypeError) as direct:
        two_args(1)
    assert str(info.value) == str(direct.value)


# ------------------------------------------------------------ parallelism
def label(i):
    return f"item-{i}"


@plait.parallel
def pure_helper_in_loop(n):
    out = {}
    for i in range(n):
        name = label(i)  # does no effect: does not wait for the spans before it
        out[name] = span(name)
    return list(out.values())


def step(i):
    return span(i)


@plait.parallel
def helper_calling_tasks_in_loop(n):
    out = []
    for i in range(n):
        s = step(i)
        if s[0] > 0:  # waits on this iteration's own result only
            out.append(s)
    return out


@plait.pure
def scaled(x, k):
    def twice(v):  # a nested def: not compilable as a helper, but declared pure
        return 2 * v

    return twice(x) * k


@plait.parallel
def declared_pure_in_loop(n):
    spans = []
    scores = []
    for i in range(n):
        s = span(scaled(i, 1))  # on values: runs at once, without waiting for earlier spans
        spans.append(s)
        scores.append(scaled(s[0], 1))  # lifted over the future: no waiting
        scores.append(math.floor(scaled(s[0], 0)))  # math is pure too
    return spans, scores


@pytest.mark.parametrize("program", [pure_helper_in_loop, helper_calling_tasks_in_loop], ids=lambda p: p.__name__)
def test_helper_calls_in_loops_run_in_parallel(program):
    with plait.init(engine="local", workers=4):
        plait.get([span(i, 0) for i in range(4)])
        spans = program(4)
    assert _all_overlap(spans), spans


def test_declared_pure_functions_are_lifted_over_futures():
    with plait.init(engine="local", workers=4):
        plait.get([span(i, 0) for i in range(4)])
        spans, scores = declared_pure_in_loop(4)
    assert _all_overlap(spans), spans
    assert scores[::2] == [2 * s for s, _ in spans] and scores[1::2] == [0] * 4


def test_pure_refuses_what_it_cannot_mark():
    with pytest.raises(TypeError, match="plait.pure"):
        plait.pure(len)


def test_debug_log_names_the_calls_that_waited(engine, caplog):
    @plait.parallel
    def program():
        total = inc(1)
        print("effect")
        return label(1), total

    with caplog.at_level(logging.DEBUG, logger="plait.parallel"):
        with contextlib.redirect_stdout(io.StringIO()):
            assert program() == ("item-1", 2)
    waited = [r.getMessage() for r in caplog.records if "is an effect" in r.getMessage()]
    assert len(waited) == 1 and "print()" in waited[0], waited


# ------------------------------------------------------------ errors
@plait.parallel
def fails_at_a_known_line(n):
    total = 0
    for i in range(n):
        total += boom(i + 1)
    return total


def test_task_failure_notes_the_line_that_made_the_call(engine):
    with pytest.raises(ValueError, match="boom 5") as info:
        fails_at_a_known_line(6)
    notes = getattr(info.value, "__notes__", [])
    assert any("test_parallel_helpers.py" in n and "total += boom(i + 1)" in n for n in notes), notes


def test_failure_inside_a_helper_notes_both_lines(engine):
    with pytest.raises(ValueError, match="boom 5") as info:
        unused_failure()
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "boom(i)" in notes and "x = fails_quietly(5)" in notes, notes


# ------------------------------------------------ writes to outside objects
LOG: dict = {}
OUT: list = []


def logs_then_fails(lst, x):
    lst.append(x)
    y = boom(x)
    lst.append(y)
    LOG["helper"] = y
    return y


@plait.parallel
def writes_around_a_failure(a):
    LOG[0] = 1
    r = boom(a)
    LOG[0] = 2  # sequentially never written when boom(a) raised
    LOG[1] = r
    OUT.append(inc(a))
    OUT.extend([1, 2])
    return r


@plait.parallel
def helper_writes_around_a_failure(a):
    logs_then_fails(OUT, a)
    LOG["after"] = inc(a)
    return 1


@plait.parallel
def writes_to_an_argument(a, lst):
    lst.append(inc(a))
    x = boom(a)
    lst.append(x)
    lst[0] = 99
    return x


@pytest.mark.parametrize(
    "program,args",
    [(writes_around_a_failure, (5,)), (writes_around_a_failure, (1,)),
     (helper_writes_around_a_failure, (5,)), (helper_writes_around_a_failure, (2,)),
     (writes_to_an_argument, (5, [7])), (writes_to_an_argument, (2, [7]))],
    ids=lambda v: getattr(v, "__name__", repr(v)),
)  # fmt: skip
def test_outside_objects_end_as_the_sequential_program_leaves_them(engine, program, args):
    """Writes after a failing call are undone, and futures written are settled to values."""
    outcomes = []
    for run in (lambda a: sequential_outcome(program.fn, *a), lambda a: outcome(program, *a)):
        LOG.clear()
        OUT.clear()
        fresh = tuple(list(x) if isinstance(x, list) else x for x in args)
        outcomes.append((run(fresh), dict(LOG), list(OUT), fresh))
    assert outcomes[0] == outcomes[1]


def waits_then_prints(x):
    y = inc(x)
    if y > 0:  # waits inside: later calls of it start in a thread of their own
        try:
            print("in", y)  # an effect: waits for what its caller did before calling it
        except ValueError:
            pass
    return y


@plait.parallel
def several_waiting_helpers_in_one_statement(a):
    return waits_then_prints(a) + waits_then_prints(a + 1) + waits_then_prints(a + 2)


@pytest.mark.timeout(60)
def test_an_effect_in_a_helper_does_not_wait_for_its_own_call(engine):
    # the helper's effect waits for its caller's earlier calls, never for itself (a deadlock)
    _same_as_sequential(several_waiting_helpers_in_one_statement, 1)


def announces(x):
    print("h", x)  # sequentially never printed below: boom(0) raised before this call
    return x + 1 > 4


@plait.parallel
def helper_after_a_failing_call_in_a_try(a):
    caught = []
    try:
        out = boom(0) * int(announces(a))
    except ValueError as err:
        caught.append(str(err))
        out = None
    return out, caught


def test_a_helper_called_after_a_failing_call_never_runs(engine):
    # the helper's print waits for the call before it, which failed: the helper is
    # abandoned and the try around the statement catches boom's own error
    _same_as_sequential(helper_after_a_failing_call_in_a_try, 3)


def catches_what_it_is_given(x):
    r = [x]
    try:
        LOG["got"] = int(4 in r)  # lifted over the argument's future
    except ValueError as err:
        LOG["err"] = str(err)
    return 1


@plait.parallel
def argument_fails_before_the_call(a):
    return [catches_what_it_is_given(boom(a)) for _ in range(2)]


def test_a_helper_never_catches_the_failure_of_its_own_argument(engine):
    # sequentially boom(0) raises before the helper is called: nothing is logged
    LOG.clear()
    assert outcome(argument_fails_before_the_call, 0) == sequential_outcome(argument_fails_before_the_call.fn, 0)
    assert LOG == {}


@plait.parallel
def two_failing_calls_in_one_statement(a):
    xs = [v * w for v, w in enumerate([inc(a), 5])]  # [a pending product, 5]
    print("p", list(map(boom, xs)))  # boom(0) fails first, sequentially; boom(5) would too
    return xs


@plait.parallel
def write_in_an_else_block(c):
    try:
        print("p")
    except ValueError:
        pass
    else:
        LOG[0] = boom(boom(c))  # raises before the write, sequentially
    return c


@pytest.mark.parametrize("program,arg", [(two_failing_calls_in_one_statement, 4), (write_in_an_else_block, 0)],
                         ids=["first-failure", "else-block-write"])  # fmt: skip
def test_a_statement_raises_its_first_failing_call_and_writes_nothing_after_it(engine, program, arg):
    _same_with_log(program, arg)


@plait.parallel
def error_after_a_failing_call_in_a_try(a):
    try:
        c = sum(map(boom, [0, a]))  # boom(0) raises first, sequentially
        d = max([])  # never reached sequentially
    finally:
        a = -1
    return c, d


def reads_the_log(x):
    y = inc(x)
    if y > 0:  # waits inside: later calls run in a thread of their own
        y = y + 0
    return LOG.get("k", 0) + 1  # reads the dict its caller stores its value into


@plait.parallel
def stores_a_helper_result_it_reads(n):
    for i in range(n):
        LOG["k"] = reads_the_log(i)  # sequentially the store comes after the call
    return LOG["k"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("program,arg", [(error_after_a_failing_call_in_a_try, 3), (stores_a_helper_result_it_reads, 3)],
                         ids=["call-error-first", "store-after-call"])  # fmt: skip
def test_what_a_statement_does_after_a_call_comes_after_it(engine, program, arg):
    _same_with_log(program, arg)


@plait.parallel
def mutates_a_task_result(a):
    xs = sorted([inc(a), 1])  # a future holding a list
    xs[-1] = len(xs[:])  # mutates the list itself...
    return sum(xs[::-1])  # ...which the later lifted operation must see


def test_a_mutated_task_result_is_what_later_operations_see(engine):
    _same_as_sequential(mutates_a_task_result, 0)


@plait.parallel
def fills_a_task_result_with_calls(a):
    xs = sorted([inc(a), 1])  # a future holding a list
    for k in range(len(xs)):
        xs[k] = inc(xs[k])  # the fetched list now holds futures
        print("p", xs)  # printed as values, as sequentially
    return xs


def test_a_task_result_filled_with_calls_reads_as_values(engine):
    _same_as_sequential(fills_a_task_result_with_calls, 3)


def log_result(x):
    LOG[x % 3] = inc(x)
    return x


def caught_failure_before_a_helper_write(n):
    caught = []
    try:
        a = boom(0)  # raises: sequentially nothing after it in the try body happens
        log_result(n)
        LOG["direct"] = n
    except ValueError as err:
        caught.append(str(err))
        a = -1
    LOG["after"] = a  # after the try: it happens
    return a, caught


def test_writes_after_a_caught_failure_in_a_try_body_are_undone(engine):
    """The handler ran, but a helper's write to a global made after the failing call (and
    a direct one) stayed: only failures nobody caught undid writes."""
    for _ in range(4):
        _same_with_log(plait.parallel(caught_failure_before_a_helper_write), 4)


def fails_then_logs(x):
    t = boom(0)  # raises: sequentially nothing after it in this call happens
    n = [t]
    LOG[0] = len(n)
    print("h", x)
    return 0


def generator_of_failing_helper_calls(n):
    return sum(fails_then_logs(v) for v in range(n))


def test_writes_of_helper_calls_a_generator_started_at_once_are_all_undone(engine):
    """The generator starts every element's call; only the first happens sequentially, and it
    fails. The first call's own undo ran early and a later call's undo then put its write
    back: the writes were not undone in the reverse of their order."""
    for _ in range(6):
        _same_with_log(plait.parallel(generator_of_failing_helper_calls), 3)


@plait.task
def late_boom(x):
    time.sleep(0.2)
    raise ValueError(f"late boom {x}")


def fails_late(x):
    return late_boom(x) + 1


def writes_then_prints(x):
    LOG["k"] = x  # made at once: nothing before it here touches the heap
    print("w", x)  # an effect: waits for the calls before it, in the callers too
    return x


def calls_the_writer(x):
    y = writes_then_prints(x)
    return y


def abandoned_call_two_levels_down(x):
    LOG["k"] = -1
    a = fails_late(x)  # raises, after a while: sequentially nothing after it happens
    calls_the_writer(x)  # runs ahead; its nested call writes, then is abandoned at its print
    return a


def test_the_writes_of_an_abandoned_nested_call_are_undone(engine):
    """An abandoned call (one whose caller's earlier call failed) never happened, but its
    writes before it knew stayed: its caller's statement dropped its undo as that of a call
    that had failed on its own, with nothing to undo."""
    for _ in range(3):
        _same_with_log(plait.parallel(abandoned_call_two_levels_down), 2)


def through_a_local_name(xs):
    ys = xs  # the list passed in, by another name
    t = boom(0)  # raises: sequentially nothing after it happens
    ys.append(1)
    return t


def through_a_local_name_for_a_global(xs):
    d = LOG
    t = boom(0)
    d["k"] = 1
    return t


def through_a_loop_variable(xs):
    for row in [xs]:
        t = boom(0)
        row.append(2)
    return t


def through_an_item(xs):
    pair = (xs, 1)
    t = boom(0)
    pair[0].append(3)
    return t


def into_a_local_list_stored_outside(xs):
    out = []
    LOG["out"] = out  # the local list is reachable from outside from here on
    x = boom(0)
    out.append(1)
    return x


@pytest.mark.parametrize(
    "program",
    [
        through_a_local_name,
        through_a_local_name_for_a_global,
        through_a_loop_variable,
        through_an_item,
        into_a_local_list_stored_outside,
    ],
)
def test_writes_run_ahead_of_a_failing_call_are_undone_whatever_name_they_go_through(engine, program):
    """Only writes through a parameter's or a global's own name were undone; one through a
    local name for the same object (or into a local object stored outside) stayed."""
    for _ in range(3):
        LOG.clear()
        xs = [0]
        got = outcome(plait.parallel(program), xs), xs, dict(LOG)
        LOG.clear()
        ys = [0]
        assert got == (sequential_outcome(program, ys), ys, dict(LOG))
    LOG.clear()


@plait.task
def slow_value(x, delay):
    time.sleep(delay)
    return x


def writes_after_a_wait(x, delay):
    if slow_value(x, delay) > 0:
        LOG[0] = x
    return x


def two_calls_writing_one_key(a):
    return writes_after_a_wait(1, 0.2) + writes_after_a_wait(2, 0.0)


def test_calls_of_one_statement_write_objects_in_program_order(engine):
    """The second call's write ran first (its task was quicker), so the first call's write
    was left in LOG: calls side by side in one expression touched objects in any order."""
    for _ in range(3):
        _same_with_log(plait.parallel(two_calls_writing_one_key), 0)


def fills_then_logs(x):
    n = nest(0)
    n[0] = [boom(0)]  # raises: sequentially the write below never happens
    LOG[0] = len(n[0])
    return 0


def two_failing_calls(x):
    return fills_then_logs(x) + fills_then_logs(x)


def failing_calls_in_a_helper(a):
    two_failing_calls(a)
    return a


def test_a_call_after_a_failing_one_is_undone_once_it_has_finished(engine):
    """The second call was undone while it still ran (the statement raised the first one's
    failure at once), and its write, made after that, stayed."""
    for _ in range(8):
        _same_with_log(plait.parallel(failing_calls_in_a_helper), 0)


# ------------------------------------------------ try statements and the runtime's signals
def bare_except_around_a_break(xs):
    out = []
    for x in xs:
        try:
            if inc(x) > 2:
                break
        except:  # noqa: E722 - catches everything the program raises, never a break
            out.append("caught")
    return out


def catch_all_around_a_return(xs):
    seen = []
    for x in xs:
        try:
            return inc(x)
        except BaseException:
            seen.append(x)
    return seen


def _fails(x):
    t = boom(x)
    return t - inc(t)


def inner_try_after_a_failing_call(xs):
    out = []
    d = {}
    try:
        _fails(0)  # raises: sequentially the inner try below never begins
        try:
            d[0] = 0
        except:  # noqa: E722
            out.append("inner")
        finally:
            d[1] = 0
            out.append("finally")
    except ValueError as err:
        out.append(str(err))
    return out, d


@pytest.mark.parametrize("program", [bare_except_around_a_break, catch_all_around_a_return, inner_try_after_a_failing_call])
def test_handlers_and_finally_blocks_see_only_what_the_program_raises(engine, program):
    """`except:` caught the runtime's own break and return, and a failure from before an
    inner try passed through its finally block (which ran, and wrote, though sequentially
    that try never began)."""
    for _ in range(4):
        assert outcome(plait.parallel(program), [1, 2, 3, 4]) == sequential_outcome(program, [1, 2, 3, 4])


@plait.parallel
def adds_to_each_result(n):
    spans = []
    for i in range(n):
        x = inc(i)  # a number a task made
        x += 1  # an in-place operator on it: an ordinary addition, waiting for nothing else
        spans.append(span(x))
    return spans


def test_an_in_place_operator_on_a_number_does_not_wait_for_earlier_calls():
    # computed as a change of the one object, it waited for every earlier call (the
    # spans ran one after another)
    with plait.init(engine="local", workers=4):
        plait.get([span(i, 0) for i in range(4)])
        spans = adds_to_each_result(4)
    assert _all_overlap(spans), spans


# --------------------------------------------------------------- task.map
@plait.parallel
def maps_in_a_program(n):
    firsts = inc.map(range(n))
    seconds = double.map(firsts)  # items pending: each call waits for its own
    total = 0
    for x in seconds:
        total += x
    return firsts, seconds, total


@plait.parallel
def two_maps_of_spans(n):
    a = span.map(range(n))
    b = span.map(range(n, 2 * n))
    return a + b


def test_task_map_in_a_program_gives_the_sequential_values(engine):
    _same_as_sequential(maps_in_a_program, 5)


def test_two_task_maps_run_side_by_side():
    with plait.init(engine="local", workers=4):
        plait.get([span(i, 0) for i in range(4)])
        spans = two_maps_of_spans(2)
    assert _all_overlap(spans), spans


# ------------------------------- a failing helper behind an earlier failing call
def writes_then_fails(x):
    LOG["helper"] = x  # sequentially never made: the call before the helper's raised first
    return boom(0)


@plait.parallel
def fails_before_a_failing_helper(a):
    a = boom(0)
    if writes_then_fails(a) > 0:
        a = 1
    return a


def test_a_helper_that_failed_is_undone_whole_when_an_earlier_call_failed(engine):
    """Found by the random programs: the helper's own failure undid only what it did after
    its failing call, and the earlier failure then found nothing left to undo."""
    _same_with_log(fails_before_a_failing_helper, 0)
