"""Task results are objects: changed in place, shared by every name and item that refers to them.

Sequentially a task's result is one object. Under @parallel it is a future whose
value lives in a worker's store, with a copy in the driver once fetched. Each
test guards a wrong answer the random programs found (the grammar's
``task_lists`` feature): a change made through one copy that another use did
not see. Every program runs on the inline and local engines, many times (the
bugs were races), and is compared with plain sequential Python.
"""

from __future__ import annotations

import pytest

import plait
from tests.hypo_tasks import boom, nest, rows, total, work
from tests.outcomes import outcome, sequential_outcome

RUNS = 6  # the wrong answers were races between a statement that waits and the ones after it


@plait.task
def load_dict(n):
    return {"items": list(range(n)), "name": "x"}


def _same_as_sequential(fn, *args):
    pf = plait.parallel(fn)
    want = sequential_outcome(fn, *args)
    for _ in range(RUNS):
        assert outcome(pf, *args) == want


# ------------------------------------------ a change the later statements must see
def append_to_a_pending_result(a):
    xs = sorted([work(a)])
    xs.append(1)
    return len(xs), sum(xs)


def test_a_read_after_an_append_to_a_pending_result_sees_it(engine):
    """`len(xs)` was 1: it read the result before the statement appending to it ran."""
    _same_as_sequential(append_to_a_pending_result, 3)


def change_a_result_then_pass_it(n):
    r = rows(n)
    r.append(10)
    r[0] = 5
    return total(r), r


def test_a_task_is_passed_the_result_as_the_program_changed_it(engine):
    """The task got the stored copy, without the append."""
    _same_as_sequential(change_a_result_then_pass_it, 2)


def change_a_driver_computed_value(n):
    m = max(nest(n))
    m[0] = 0
    return total(m)


def test_a_task_is_passed_a_driver_computed_value_after_its_change(engine):
    _same_as_sequential(change_a_driver_computed_value, 0)


# ------------------------------------------------- items are parts of the object
def change_an_item(n):
    r = nest(n)
    r[0].append(5)
    return r, total(r[0])


def change_an_item_through_a_name(n):
    d = load_dict(n)
    items = d["items"]
    items.append(99)
    d["extra"] = 1
    return d, total(d["items"])


def replace_an_item_after_reading_it(n):
    r = nest(n)
    first = r[0]
    r[0] = [9, 9]
    return first, r


def change_the_largest(n):
    r = nest(n)
    m = max(r)
    m.append(7)
    return r, m


def change_every_row(n):
    r = nest(n)
    first = r[0]
    for row in r:
        row.append(1)
    return first, total(first)


@pytest.mark.parametrize(
    "program",
    [change_an_item, change_an_item_through_a_name, replace_an_item_after_reading_it, change_the_largest, change_every_row],
)
def test_an_item_of_a_result_is_the_item_not_a_copy(engine, program):
    """`r[0]`, `d["items"]` and `max(r)` were computed from a copy in a worker: a change
    through them did not reach the result, nor a change of the result reach them."""
    _same_as_sequential(program, 3)


# ----------------------------------------- containers holding pending helper calls
def later(x):
    t = work(x)
    if t > 0:
        t = 2
    return t


def list_with_a_pending_helper_call(a):
    xs = [a]
    xs.append(later(a))
    return total(xs)


def test_a_list_holding_a_pending_helper_call_is_passed_its_value(engine):
    """It failed with a SerializationError: the list was checked for pending helper calls
    before the statement appending one had run."""
    _same_as_sequential(list_with_a_pending_helper_call, 3)


def item_given_a_pending_helper_call(n):
    r = nest(n)
    largest = max(r)
    r[1].append(later(n))
    return total(largest)


def test_a_value_whose_item_was_given_a_pending_helper_call_is_passed_its_value(engine):
    """`largest` is `r[1]`, which then holds a pending helper call: passing it to a task
    failed with a SerializationError."""
    _same_as_sequential(item_given_a_pending_helper_call, 6)


# ------------------------------------------ writes inside a loop whose header failed
GLOBAL_LOG: dict = {}


def header_call_fails_later(n):
    # the header waits (an `if` on a result), so the loop runs as a unit; boom(5)
    # raises: sequentially the loop never starts
    for x in [work(n) if work(n) > 0 else 0, boom(5)]:
        GLOBAL_LOG[0] = x
    return n


def test_outside_writes_in_a_loop_whose_header_call_failed_are_undone(engine):
    """The loop ran ahead of the failing call in its own header; its write to a global
    stayed (only writes of later statements were undone, not of statements inside it)."""
    for _ in range(RUNS):
        GLOBAL_LOG.clear()
        with pytest.raises(ValueError, match="boom 5"):
            plait.parallel(header_call_fails_later)(1)
        assert GLOBAL_LOG == {}


def loop_changes_a_result_after_its_header_waits(n):
    xs = rows(n)
    for k in range(len(xs)):  # len of a pending result: the loop waits, then runs later
        xs[k] = 0
    return sum(xs), xs


def test_a_read_after_a_waiting_loop_that_changes_a_result_sees_the_changes(engine):
    """`sum(xs)` ran ahead of the loop (which waited in its header) and summed the stored
    copy: the loop's writes had not marked the result as the driver's yet."""
    _same_as_sequential(loop_changes_a_result_after_its_header_waits, 3)


# --------------------------------------------- in-place operators on a pending result
@plait.task
def late_rows(x):
    import time

    time.sleep(0.1)
    return [x, x + 1]


def extend_a_shared_result(a):
    xs = rows(a)
    ys = xs
    xs += [5]  # the one list: ys sees it
    return ys, xs


def extend_a_result_in_a_dict(a):
    xs = rows(a)
    d = {"k": xs}
    xs += [work(a)]
    d["k"].append(1)
    return d, xs


def extend_results_kept_in_a_list(a):
    out = []
    for i in range(3):
        r = rows(i + a)
        out.append(r)
        r += [i]
    return out


def read_before_the_change(a):
    xs = late_rows(a)
    ys = xs
    print(work(a), ys)  # waits: prints the list as it is before the change
    n = len(ys)
    xs *= 2
    return ys, n, xs is ys


def extend_a_list_by_a_pending_result(a):
    xs = [1]
    ys = xs
    print(late_rows(a), ys)
    xs += rows(a)  # the list itself is extended, after the print
    return ys


def accumulate_then_share(a):
    s = 0
    for i in range(5):
        s += work(i + a)  # a number no other name has seen: computed as a new value
    t = s
    s += 1
    return s, t


@pytest.mark.parametrize(
    "program",
    [
        extend_a_shared_result,
        extend_a_result_in_a_dict,
        extend_results_kept_in_a_list,
        read_before_the_change,
        extend_a_list_by_a_pending_result,
        accumulate_then_share,
    ],
)
def test_an_in_place_operator_changes_the_object_every_name_refers_to(engine, program):
    """`xs += [5]` on a pending result made a new list: the names and objects sharing the
    result kept the old one."""
    _same_as_sequential(program, 2)


# ------------------------------- a task call waiting for its inputs, then a later write
@plait.task
def slowly(x):
    import time

    time.sleep(0.3)
    return x


@plait.parallel
def call_waits_for_a_branch_then_the_list_changes(a):
    ys = []
    if slowly(a) > 2:  # the branch runs when the condition comes back: ys is pending until then
        ys = list(range(1))
    c = total(ys)  # waits for ys; it must be passed ys as it is here
    ys.append(2)  # a later write: it waits for the call that reads ys before it
    return c, ys


def test_a_task_call_waiting_for_its_inputs_is_passed_them_before_a_later_write(engine):
    """Found by the random programs: the call pickled ys after the append had run."""
    got = outcome(call_waits_for_a_branch_then_the_list_changes, 7)
    assert got == sequential_outcome(call_waits_for_a_branch_then_the_list_changes.fn, 7)
    assert got[0] == ("returned", (0, [0, 2]))
