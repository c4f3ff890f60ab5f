"""Generator expressions, comprehensions and builtins over futures keep their sequential meaning."""

from __future__ import annotations

import time

import pytest

import plait
from tests.hypo_tasks import boom, work
from tests.outcomes import outcome, sequential_outcome


def short_circuit(xs):
    # sequentially any() stops at the first true element: boom(5) later must not raise
    return any(boom(x) > 3 for x in xs), all(boom(x) < 5 for x in xs)


def consumed_whole(xs):
    return (
        sum(work(x) for x in xs),
        max(work(x) for x in xs),
        sorted((work(x) for x in xs if x % 2), reverse=True),
        ", ".join(str(work(x)) for x in xs),
        set(work(x) % 3 for x in xs),
        {x: work(x) for x in xs},
    )


def consumed_in_part(xs):
    out = []
    for i, v in enumerate(work(x) for x in xs):
        out.append(v)
        if i > 1:
            break
    first = next(work(x) for x in xs)
    found = 3 in (work(x) for x in xs)
    return out, first, found, list(zip((work(x) for x in xs), xs, strict=False))


def printed_as_asked(xs):
    def_order = []
    for v in (work(x) for x in xs):
        print("got", v)
        def_order.append(v)
    return any(print("check", x) or x > 2 for x in xs), def_order


def native_when_concrete(xs):
    ys = [x * 2 for x in xs if x > 1]
    futures = [work(x) for x in xs]
    mixed = [f + 1 for f in futures]
    words = {str(x): x for x in ys}
    return ys, mixed, words, any(1 / (x - 4) > 0 for x in xs), [p + [0] for p in [[x] for x in ys]]


def concatenated(xs):
    fs = [work(x) for x in xs]
    big = list(range(100_000))
    joined = fs + [work(0)] + big
    return joined[: len(xs) + 1], len(joined)


def doubled(x):
    return work(x) * 2


def mapped(xs):
    # map and filter are lazy and call tasks and helpers through @parallel's hooks
    return (
        work(sum(map(work, xs))),
        list(map(doubled, xs)),
        list(filter(lambda v: v > 1, xs)),
        any(map(boom, [1, 2, 5])),
        sorted(map(lambda v, w: v + w, xs, xs)),
        list(filter(None, [0, *xs])),
    )


PROGRAMS = [mapped, short_circuit, consumed_whole, consumed_in_part, printed_as_asked, native_when_concrete, concatenated]
INPUTS = [[1, 2, 3, 5, 6], [5, 1], [6, 7, 8, 9, 10], []]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
@pytest.mark.parametrize("xs", INPUTS, ids=str)
def test_iteration_matches_sequential(engine, program, xs):
    assert outcome(plait.parallel(program), xs) == sequential_outcome(program, xs)


def late_bound_generator(xs):
    k = 1
    k = 2
    g = (x + k for x in xs)
    return list(g)


def test_a_generator_that_would_see_a_later_value_is_refused():
    with pytest.raises(plait.ParallelSyntaxError, match="generator expression reads 'k'"):
        plait.parallel(late_bound_generator)


@plait.task
def late_list(x):
    time.sleep(0.2)
    return [x]


def effects_after_a_failing_header(xs):
    first = late_list(0)
    first.append(1)
    print("first", first)  # waits for late_list: the loop after it waits in its header
    for _x in list(map(boom, xs)):  # boom(0) raises here, sequentially before any print below
        print("never")  # reads no result: only the barrier stops it
    return first


def test_an_effect_in_a_loop_waits_for_the_calls_of_its_header(engine):
    # the loop's rest ran as a unit, and its print did not count the header's calls as
    # earlier (they were made by the statement holding it): it printed before boom raised
    assert outcome(plait.parallel(effects_after_a_failing_header), [0, 1, 2]) == sequential_outcome(
        effects_after_a_failing_header, [0, 1, 2]
    )


def writes_the_list_it_walks(xs):
    out = []
    for x in xs:
        out.append(late_list(x))
        print("p", out)  # waits for late_list: the statements after it run later
        if len(xs) > 1:
            xs[-1] = x  # sequentially, the loop's next item is read after this write
    return xs, out


def test_a_loop_reads_its_next_item_after_the_body_writes_the_list(engine):
    # the issuer took the next item of the live list at once, before the write of the
    # iteration before it (which waited behind the print) had run
    assert outcome(plait.parallel(writes_the_list_it_walks), [1, 5, 7]) == sequential_outcome(
        writes_the_list_it_walks, [1, 5, 7]
    )
