"""@plait.parallel against the ideal: makespan of imperative programs with known task durations.

Each program's tasks sleep for known durations, so cores do not limit
parallelism (run with enough workers). For each program the ideal makespan is
the critical path of its true dependency graph (control dependences
included), worked out by hand next to it; the sequential time is the sum of
all task durations. Also measures the overhead of a task call under
@parallel against the direct task API on 2,000 tiny tasks.

    python benchmarks/parallel_corpus.py [--repeat 5] [--workers 12] [--engine local|ray|dask]

Also: a loop of 2,000 tiny tasks against the plain Python loop, with and
without granularity control. With ``--engine all`` the corpus runs on the
local, Ray and Dask engines in one process, one after the other, and the
makespan ratios are compared with the local engine's.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import time

import plait

D = 0.2  # the unit task duration


@plait.task
def work(x, d=D):
    time.sleep(d)
    return x + 1


@plait.task
def noop(x):
    return x


@plait.task
def work_named(name, d=D):
    time.sleep(d)
    return name


@plait.task
def add(a, b, d=D):
    time.sleep(d)
    return a + b


def _is_even(x):  # plain helpers: compiled with the @parallel function that calls them
    return not x % 2


def _label(i):
    return f"item-{i}"


def _score(i):
    return work(i) + work(i + 100)


@plait.parallel
def p01_accumulate(n):
    s = 0
    for i in range(n):
        s += work(i)
    return s


@plait.parallel
def p02_if_then_independent(n):
    first = work(0, 1.5 * D)
    if first > 0:
        extra = work(1)
    else:
        extra = 0
    rest = [work(i, 1.5 * D) for i in range(n)]
    return extra, sum(rest)


@plait.parallel
def p03_filter_in_loop(n):
    hits = []
    for i in range(n):
        r = work(i)
        if r % 2 == 0:
            hits.append(r)
    return hits


@plait.parallel
def _chain2(x):
    a = work(x)
    return work(a)


@plait.parallel
def p04_nested_helpers(n):
    return [_chain2(i) for i in range(n)]


@plait.parallel
def _tree(lo, hi):
    if hi - lo == 1:
        return work(lo)
    mid = (lo + hi) // 2
    return _tree(lo, mid) + _tree(mid, hi)


@plait.parallel
def p05_recursion(n):
    return _tree(0, n)


@plait.parallel
def p06_while_on_result(n):
    value = 0
    while value < n:
        value = work(value, D / 2)
    return value


@plait.parallel
def p07_map_reduce(n):
    mapped = [work(i) for i in range(n)]
    return work(sum(mapped), D / 2)


@plait.parallel
def p08_pipeline(n):
    out = []
    for i in range(n):
        a = work(i, D / 2)
        b = work(a)
        out.append(b)
    return out


@plait.parallel
def p09_print_in_loop(n):
    for i in range(n):
        r = work(i)
        print("result", r)
    return n


@plait.parallel
def p10_try_per_item(n):
    out = []
    for i in range(n):
        try:
            r = work(i)
            out.append(r)
        except ValueError:
            out.append(None)
    return out


@plait.parallel
def p11_two_phases(n):
    first = [work(i) for i in range(n)]
    second = [work(f) for f in first]
    return sum(second)


@plait.parallel
def p12_dict_then_branch(n):
    scores = {}
    for i in range(n):
        scores[i] = work(i)
    best = max(scores.values())
    if best > 3:
        bonus = work(best)
    else:
        bonus = 0
    return best, bonus


@plait.parallel
def p13_early_exit(n):
    for i in range(n):
        r = work(i, D / 2)
        if r >= 3:
            return i
    return -1


@plait.parallel
def p14_helper_condition_sum(n):
    results = []
    for x in range(n):
        if _is_even(x):
            y = work(x)
        else:
            y = work(x, D / 2)
        results.append(y)
    return sum(results)


@plait.parallel
def p15_pure_helper_in_loop(n):
    out = {}
    for i in range(n):
        name = _label(i)
        out[name] = work_named(name)
    return out


@plait.parallel
def p16_helper_calling_tasks(n):
    total = 0
    for i in range(n):
        total += _score(i)
    return total


@plait.parallel
def p17_break_search(n):
    found = -1
    for i in range(n):
        if work(i) >= 4:
            found = i
            break
    return found


@plait.parallel
def p18_tree_sum_while(n):
    xs = [work(i) for i in range(n)]
    while len(xs) > 1:
        pairs = [add(xs[i], xs[i + 1]) for i in range(0, len(xs) - 1, 2)]
        xs = pairs + xs[len(xs) - len(xs) % 2 :]
    return xs[0]


N = 8
# program, argument, ideal makespan (critical path, s), sequential time (s)
CORPUS = [
    (p01_accumulate, N, D, N * D),
    (p02_if_then_independent, 6, 1.5 * D + D, 1.5 * D + D + 6 * 1.5 * D),
    (p03_filter_in_loop, N, D, N * D),
    (p04_nested_helpers, 6, 2 * D, 12 * D),
    (p05_recursion, N, D, N * D),
    (p06_while_on_result, 4, 4 * D / 2, 4 * D / 2),
    (p07_map_reduce, N, D + D / 2, N * D + D / 2),
    (p08_pipeline, 6, D / 2 + D, 6 * (D / 2 + D)),
    (p09_print_in_loop, N, D, N * D),
    (p10_try_per_item, 6, D, 6 * D),
    (p11_two_phases, 6, 2 * D, 12 * D),
    (p12_dict_then_branch, 6, 2 * D, 7 * D),
    (p13_early_exit, N, D / 2, 3 * D / 2),  # speculation: the calls after the exit test start at once
    (p14_helper_condition_sum, N, D, N * 3 * D / 4),
    (p15_pure_helper_in_loop, N, D, N * D),
    (p16_helper_calling_tasks, 6, D, 12 * D),
    (p17_break_search, N, D, 4 * D),  # speculation: work(3) triggers the break
    (p18_tree_sum_while, N, 4 * D, N * D + (N - 1) * D),  # one level of work, three of add
]


def run_corpus(repeat: int) -> dict[str, float]:
    """Median makespan of every program, printed as a table; returns plait / ideal per program."""
    print("| program | ideal (s) | sequential (s) | plait median (s) | plait / ideal | within 1.3x ideal + 0.25 s |")
    print("|---|---|---|---|---|---|")
    met = 0
    ratios = {}
    for program, arg, ideal, seq in CORPUS:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # p09 prints in its loop
                program(arg)
            times.append(time.perf_counter() - start)
        med = statistics.median(times)
        ok = med <= 1.3 * ideal + 0.25
        met += ok
        ratios[program.__name__] = med / ideal
        print(f"| {program.__name__} | {ideal:.2f} | {seq:.2f} | {med:.3f} | {med / ideal:.2f} | {'yes' if ok else 'NO'} |")
    print(f"\n{met} of {len(CORPUS)} programs within the target")
    return ratios


@plait.parallel
def tiny_loop(n):
    out = []
    for i in range(n):
        out.append(noop(i))
    return out


def plain_loop(n):
    """The same program as plain Python: the task's function called directly."""
    out = []
    for i in range(n):
        out.append(noop.fn(i))
    return out


def direct(n):
    return plait.get([noop(i) for i in range(n)])


def run_tiny(repeat: int) -> None:
    from plait.parallel import granularity

    def timed(fn) -> float:
        fn(200)
        times = []
        for _ in range(max(repeat, 31)):  # the fast rows take well under a millisecond
            start = time.perf_counter()
            fn(2000)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    rows = {"plain Python loop": timed(plain_loop), "direct task API": timed(direct)}
    granularity.ENABLED = False
    rows["@parallel, every task dispatched"] = timed(tiny_loop)
    granularity.ENABLED = True
    rows["@parallel, granularity control"] = timed(tiny_loop)
    print("\n| 2,000 tiny tasks | median (ms) | per call (us) |")
    print("|---|---|---|")
    for name, t in rows.items():
        print(f"| {name} | {t * 1e3:.3f} | {t / 2000 * 1e6:.2f} |")
    dispatched = rows["@parallel, every task dispatched"] / rows["direct task API"]
    print(f"\n@parallel (every task dispatched) / direct = {dispatched:.2f}x (target: at most 1.5x)")
    plain = rows["@parallel, granularity control"] / rows["plain Python loop"]
    print(f"@parallel (granularity control) / plain loop = {plain:.1f}x (target: at most 2x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--engine", default="local", choices=["local", "ray", "dask", "all"])
    options = parser.parse_args()
    engines = ["local", "ray", "dask"] if options.engine == "all" else [options.engine]
    results = {}
    for engine in engines:
        print(f"\n## engine: {engine}\n")
        with plait.init(engine=engine, workers=options.workers):
            plait.get([work(i, 0.05) for i in range(options.workers * 2)])  # every worker warm
            results[engine] = run_corpus(options.repeat)
        if engine == "local":
            # driver overhead: one worker per core, so the workers do not crowd the driver out
            with plait.init(engine="local", workers=os.cpu_count()):
                plait.get([noop(i) for i in range(100)])
                run_tiny(options.repeat)
    if "local" in results and len(results) > 1:
        print("\n| program | " + " | ".join(f"{e} / local (makespan ratio)" for e in results if e != "local") + " |")
        print("|---|" + "---|" * (len(results) - 1))
        for name, local in results["local"].items():
            cells = [f"{results[e][name] / local:.2f}" for e in results if e != "local"]
            print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
