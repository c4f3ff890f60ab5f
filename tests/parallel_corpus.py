"""Imperative programs for @plait.parallel, each compared with its sequential run."""

from __future__ import annotations

import contextlib
import time

import plait


@plait.task
def work(x, delay=0.0):
    if delay:
        time.sleep(delay)
    return x * 2


@plait.task
def fails(x):
    raise ValueError(f"bad input {x}")


@plait.task
def pair(x):
    return x, x + 1


@plait.task
def record(x):
    return {"value": x, "items": [x, x]}


class Box:
    def __init__(self):
        self.items = []


@plait.parallel
def accumulate(n):
    s = 0
    for i in range(n):
        s += work(i)
    return s


@plait.parallel
def append_then_sum(n):
    results = []
    for i in range(n):
        results.append(work(i))
    return sum(results), len(results)


@plait.parallel
def if_then_independent(n):
    first = work(1)
    if first > 1:
        label = "big"
        extra = work(10)
    else:
        label = "small"
        extra = 0
    rest = [work(i) for i in range(n)]
    return label, extra, rest


@plait.parallel
def helper(x):
    a = work(x)
    b = work(x + 1)
    return a + b


@plait.parallel
def uses_helper(n):
    parts = [helper(i) for i in range(n)]
    total = 0
    for p in parts:
        total += p
    return total, parts[0]


@plait.parallel
def tree_sum(lo, hi):
    if hi - lo <= 2:
        return sum(work(i) for i in range(lo, hi))
    mid = (lo + hi) // 2
    return tree_sum(lo, mid) + tree_sum(mid, hi)


@plait.parallel
def dict_updates(keys):
    out = {}
    for k in keys:
        out[k] = work(len(k))
    counts = {"a": 0}
    counts["a"] += work(3)
    return out, counts


@plait.parallel
def while_on_result(limit):
    value = 1
    steps = 0
    while value < limit:
        value = work(value)
        steps += 1
    return value, steps


@plait.parallel
def break_and_continue(n):
    kept = []
    for i in range(n):
        r = work(i)
        if r == 4:
            continue
        if r > 10:
            break
        kept.append(r)
    else:
        kept.append("no break")
    return kept


@plait.parallel
def catches_task_error(n):
    results = []
    for i in range(n):
        try:
            if i == 2:
                value = fails(i)
            else:
                value = work(i)
            results.append(value)
        except ValueError as exc:
            results.append(str(exc))
    return results


@plait.parallel
def uncaught_error(n):
    a = work(n)
    b = fails(a)
    c = work(b)
    return c


@plait.parallel
def printing(n):
    print("start")
    for i in range(n):
        r = work(i)
        if r > 2:
            print("big", i, r)
        else:
            print("small", i)
    print("end")
    return n


@plait.parallel
def comprehensions(n):
    squares = [work(i) for i in range(n)]
    as_dict = {i: work(i) for i in range(n)}
    as_set = {work(i) for i in range(n)}
    evens = [x for x in squares if x % 4 == 0]
    total = sum(work(i) for i in range(n))
    return squares, as_dict, as_set, evens, total


@plait.parallel
def unpacking(x):
    a, b = pair(x)
    first, *rest = [work(1), work(2), work(3)]
    (c, d), e = pair(a), b
    return a, b, first, rest, c, d, e


@plait.parallel
def captured_arguments(n):
    config = {"n": n}
    before = record(config)
    config["n"] = n + 100
    after = record(config)
    return before, after


@plait.parallel
def formatting(x):
    r = work(x)
    text = f"value={r} double={r * 2:>5} repr={r!r}"
    return text


@plait.parallel
def lifted_access(x):
    rec = record(x)
    value = rec["value"]
    items = rec["items"]
    n = len(items)
    neg = -value
    return value, items[0], n, neg, rec["items"][1] + 1


@plait.parallel
def early_return(n):
    for i in range(n):
        r = work(i)
        if r >= 6:
            return "found", i
    return "none", n


@plait.parallel
def loop_else(n):
    i = 0
    while i < n:
        i += 1
    else:
        done = work(i)
    for j in range(2):  # noqa: B007 - the loop variable is read after the loop
        pass
    else:
        j = work(j)
    return done, j


@contextlib.contextmanager
def tracing(log, name):
    log.append("enter " + name)
    try:
        yield name
    finally:
        log.append("exit " + name)


@plait.parallel
def with_statement(n):
    log = []
    with tracing(log, "outer") as name:
        value = work(n)
        log.append(name)
    log.append("after")
    return log, value


@plait.parallel
def augmented_subscripts(keys):
    counts = {k: 0 for k in keys}
    for k in keys:
        counts[k] += work(len(k))
    box = Box()
    box.items.append(work(1))
    box.total = work(2)
    return counts, box.items, box.total


@plait.parallel
def sorting_with_lambda(values):
    doubled = [work(v) for v in values]
    ordered = sorted(doubled, key=lambda v: -v)
    offset = 3
    shifted = list(map(lambda v: v + offset, ordered))
    return ordered, shifted


@plait.parallel
def deletes_and_walrus(n):
    tmp = work(n)
    keep = tmp + 1
    del tmp
    if (w := work(keep)) > 5:
        w += 1
    values = [y for x in range(3) if (y := x * 2) > 0]
    return keep, w, values


@plait.parallel
def comparisons_and_logic(x):
    a = work(x)
    b = work(x + 1)
    chained = 0 < a < b
    both = a and b
    either = 0 or work(5)
    neither = not a
    pick = a if a > b else b
    is_none = a is None
    inside = a in [0, 2, 4]
    return chained, both, either, neither, pick, is_none, inside


@plait.parallel
def mutation_order(n):
    log = []
    for i in range(n):
        r = work(i)
        if r % 4 == 0:
            log.append(("even", i))
        log.append(("seen", i))
    snapshot = list(log)
    log.append("end")
    return snapshot, len(log)


@plait.parallel
def default_and_keyword_args(a, b=3, *rest, scale=1, **extra):
    total = work(a) + work(b) * scale
    for r in rest:
        total += work(r)
    return total, sorted(extra)


@plait.parallel
def nested_loops(n):
    grid = []
    for i in range(n):
        row = []
        for j in range(n):
            row.append(work(i * n + j))
        grid.append(row)
    diag = [grid[i][i] for i in range(n)]
    return grid, diag


@plait.parallel
def reassigned_in_branches(n):
    x = 0
    for i in range(n):
        r = work(i)
        if r > 3:
            x = r
        elif r > 1:
            x = x + 100
    return x


@plait.parallel
def error_in_ordinary_code(n):
    r = work(n)
    values = [1, 2, 3]
    return values[r]


@plait.parallel
def raise_statement(n):
    r = work(n)
    if r > 2:
        raise KeyError(f"too big: {r}")
    return r


@plait.parallel
def try_finally_and_else(n):
    log = []
    try:
        v = work(n)
    except ValueError:
        log.append("except")
    else:
        log.append("else")
    finally:
        log.append("finally")
    try:
        w = fails(n)
        log.append("not reached")
    except ValueError as exc:
        log.append(str(exc))
        w = -1
    return log, v, w


@plait.parallel
def imports_inside(n):
    import math

    r = work(n)
    return math.sqrt(r)


@plait.parallel
def passes_futures_to_tasks(n):
    a = work(n)
    b = work(a)
    c = work([a, b])
    return c


def counting(n):
    for i in range(n):
        print("yield", i)
        yield i


@plait.parallel
def loop_over_generator(n):
    total = 0
    for x in counting(n):
        r = work(x)
        if r > 2:
            print("big", x)
        total += r
    return total


PROGRAMS = [
    (accumulate, (10,), {}),
    (append_then_sum, (8,), {}),
    (if_then_independent, (4,), {}),
    (uses_helper, (4,), {}),
    (tree_sum, (0, 9), {}),
    (dict_updates, (["a", "bb", "ccc"],), {}),
    (while_on_result, (50,), {}),
    (break_and_continue, (10,), {}),
    (break_and_continue, (3,), {}),
    (catches_task_error, (4,), {}),
    (uncaught_error, (1,), {}),
    (printing, (4,), {}),
    (comprehensions, (5,), {}),
    (unpacking, (3,), {}),
    (captured_arguments, (1,), {}),
    (formatting, (21,), {}),
    (lifted_access, (4,), {}),
    (early_return, (10,), {}),
    (early_return, (2,), {}),
    (loop_else, (3,), {}),
    (with_statement, (2,), {}),
    (augmented_subscripts, (["x", "yy"],), {}),
    (sorting_with_lambda, ([3, 1, 2],), {}),
    (deletes_and_walrus, (2,), {}),
    (comparisons_and_logic, (1,), {}),
    (comparisons_and_logic, (0,), {}),
    (mutation_order, (6,), {}),
    (default_and_keyword_args, (1, 2, 3, 4), {"scale": 2, "z": 1}),
    (nested_loops, (3,), {}),
    (reassigned_in_branches, (5,), {}),
    (error_in_ordinary_code, (4,), {}),
    (raise_statement, (1,), {}),
    (raise_statement, (2,), {}),
    (try_finally_and_else, (3,), {}),
    (imports_inside, (8,), {}),
    (passes_futures_to_tasks, (2,), {}),
    (loop_over_generator, (4,), {}),
]
