"""@plait.parallel against the ideal: makespan of imperative programs with known task durations.

Each program's tasks sleep for known durations, so cores do not limit
parallelism (run with enough workers). For each program the ideal makespan is
the critical path of its true dependency graph (control dependences
included), worked out by hand next to it; the sequential time is the sum of
all task durations. Also measures the overhead of a task call under
@parallel against the direct task API on 2,000 tiny tasks.

    python benchmarks/parallel_corpus.py [--repeat 5] [--workers 12]
"""

from __future__ import annotations

import argparse
import contextlib
import io
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
    (p13_early_exit, N, 3 * D / 2, 3 * D / 2),  # control-dependent: the exit test orders the calls
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=12)
    options = parser.parse_args()
    with plait.init(workers=options.workers):
        plait.get([work(i, 0.05) for i in range(options.workers * 2)])  # every worker warm
        print(
            "| program | ideal (s) | sequential (s) | plait median (s) | plait / ideal | within 1.3x ideal + 0.25 s |"
        )
        print("|---|---|---|---|---|---|")
        met = 0
        for program, arg, ideal, seq in CORPUS:
            times = []
            for _ in range(options.repeat):
                start = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):  # p09 prints in its loop
                    program(arg)
                times.append(time.perf_counter() - start)
            med = statistics.median(times)
            ok = med <= 1.3 * ideal + 0.25
            met += ok
            print(
                f"| {program.__name__} | {ideal:.2f} | {seq:.2f} | {med:.3f} | {med / ideal:.2f} | {'yes' if ok else 'NO'} |"
            )
        print(f"\n{met} of {len(CORPUS)} programs within the target")

        @plait.parallel
        def under_parallel(n):
            out = []
            for i in range(n):
                out.append(noop(i))
            return out

        def direct(n):
            return plait.get([noop(i) for i in range(n)])

        rows = {}
        for name, fn in (("direct task API", direct), ("@parallel", under_parallel)):
            fn(200)
            times = []
            for _ in range(options.repeat):
                start = time.perf_counter()
                fn(2000)
                times.append(time.perf_counter() - start)
            rows[name] = statistics.median(times)
        ratio = rows["@parallel"] / rows["direct task API"]
        print("\n| 2,000 tiny tasks | median (s) | per call (us) |")
        print("|---|---|---|")
        for name, t in rows.items():
            print(f"| {name} | {t:.3f} | {t / 2000 * 1e6:.0f} |")
        print(f"\n@parallel / direct = {ratio:.2f}x (target: at most 2x)")


if __name__ == "__main__":
    main()
