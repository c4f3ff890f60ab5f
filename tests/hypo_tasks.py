"""Tasks used by the generated programs of test_parallel_property.py."""

import plait


@plait.task
def work(x):
    return x + 1


@plait.task
def boom(x):
    if x % 5 == 0:
        raise ValueError(f"boom {x}")
    return x * 2


@plait.task
def pair(x):
    return x, x + 1


@plait.task
def total(xs):
    return sum(xs)


@plait.task
def rows(x):
    return [x, x + 1]


@plait.task
def nest(x):
    return [[x], [x + 1, x]]
