"""plait.stream: timestamps and summaries, the progress protocol under random schedules,
every operator, loops (fixed point, bounded, pair form, nested, entered streams),
outputs, back-pressure and errors.

Results are compared with plain Python (collections.Counter, sequential loops) and
networkx. ``schedule=random.Random(seed)`` makes the driver deliver messages and
notifications to in-process workers in random order with random delays, which is how
the progress protocol is tested as the timely paper states it.
"""

from __future__ import annotations

import random
import threading
from collections import Counter

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait import stream
from plait.stream.timestamp import Summary, insert_minimal, less_equal

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def flows(workers_list=(1, 3)):
    """(workers, schedule) pairs: one worker, several in order, several at random."""
    out = []
    for w in workers_list:
        out.append((w, None))
        if w > 1:
            out.append((w, random.Random(w)))
    return out


def make(workers=1, schedule=None, **kw):
    return stream.Dataflow(workers=workers, processes=False, schedule=schedule, **kw)


def ordered(records):
    try:
        return sorted(records)
    except TypeError:
        return sorted(records, key=repr)


def sorted_by_epoch(capture):
    return {e: ordered(rs) for e, rs in capture.by_epoch().items()}


# ------------------------------------------------------------------ summaries
def summaries(length):
    """Summaries from timestamps of ``length`` coordinates."""

    @st.composite
    def build(draw):
        keep = draw(st.integers(1, length))
        add = tuple(draw(st.lists(st.integers(0, 2), min_size=keep, max_size=keep)))
        suffix = tuple(draw(st.lists(st.integers(0, 2), max_size=2)))
        return Summary(keep, add, suffix)

    return build()


@SETTINGS
@given(st.data())
def test_a_composed_summary_does_what_its_two_parts_do_in_turn(data):
    first = data.draw(summaries(3))
    second = data.draw(summaries(first.keep + len(first.suffix)))
    t = tuple(data.draw(st.lists(st.integers(0, 5), min_size=3, max_size=3)))
    assert first.then(second).apply(t) == second.apply(first.apply(t))


@SETTINGS
@given(summaries(2), summaries(2))
def test_at_most_holds_exactly_when_it_holds_for_every_timestamp(a, b):
    grid = [(x, y) for x in range(4) for y in range(4)]
    same_length = len(a.apply((0, 0))) == len(b.apply((0, 0)))
    everywhere = same_length and all(less_equal(a.apply(t), b.apply(t)) for t in grid)
    assert a.at_most(b) == everywhere


def test_a_minimal_set_keeps_only_incomparable_summaries():
    kept: list = []
    assert insert_minimal(kept, Summary(2, (0, 2)))
    assert insert_minimal(kept, Summary(2, (1, 0)))  # incomparable: both stay
    assert not insert_minimal(kept, Summary(2, (1, 3)))  # above one of them
    assert insert_minimal(kept, Summary(2, (0, 0)))  # below both: replaces them
    assert kept == [Summary(2, (0, 0))]


# ------------------------------------------------------------------ word count
def word_count(batches, workers, schedule):
    flow = make(workers, schedule)
    lines = flow.input()
    counts = lines.flat_map(str.split).count_by_key().capture()
    with flow:
        for epoch, batch in batches:
            lines.advance_to(epoch)
            lines.send(*batch)
    return {e: dict(rs) for e, rs in counts.by_epoch().items()}


def test_the_design_example_counts_words_by_epoch():
    flow = stream.Dataflow(workers=1)
    lines = flow.input()
    counts = lines.flat_map(str.split).count_by_key().capture()
    with flow:
        lines.advance_to(0)
        lines.send("a b a")
        lines.close()
    assert counts.by_epoch() == {0: [("a", 2), ("b", 1)]}


words = st.lists(st.sampled_from(["a", "b", "c", "dd", "e"]), max_size=6).map(" ".join)


@SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 3), st.lists(words, max_size=4)), max_size=5),
    st.integers(1, 4),
    st.integers(0, 2**16),
)
def test_word_count_by_epoch_equals_counter_under_random_schedules(steps, workers, seed):
    batches, epoch = [], 0
    for gap, lines in steps:
        epoch += gap
        batches.append((epoch, lines))
    want: dict = {}
    for epoch, lines in batches:
        counted = Counter(w for line in lines for w in line.split())
        if counted:
            want.setdefault(epoch, Counter()).update(counted)
    got = word_count(batches, workers, random.Random(seed))
    assert got == {e: dict(c) for e, c in want.items()}


# ------------------------------------------------------------------ progress safety
@SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 2), st.lists(st.integers(0, 30), max_size=6)), max_size=6),
    st.integers(1, 4),
    st.integers(0, 2**16),
    st.booleans(),
)
def test_no_notification_fires_while_a_record_at_or_before_its_time_can_still_arrive(steps, workers, seed, in_loop):
    """The paper's safety property, checked globally over all workers of an operator (the
    in-process workers share this test's lists), also for times inside a loop; and every
    requested notification fires (liveness)."""
    notified: list = []  # (worker, time)
    violations: list = []
    requested: set = set()
    lock = threading.Lock()

    def on_receive(ctx, time, records):
        with lock:
            for _, t in notified:
                if less_equal(time, t):
                    violations.append((time, t, records))
            requested.add((ctx.worker, time))
        ctx.notify_at(time)
        ctx.emit_many(records)

    def on_notify(ctx, time):
        with lock:
            notified.append((ctx.worker, time))

    flow = make(workers, random.Random(seed))
    inp = flow.input()
    keyed = inp.exchange(lambda r: r % 3)
    if in_loop:

        def body(x, scope):
            checked = x.unary(on_receive, on_notify, exchange=lambda r: r % 2)
            return checked.filter(lambda r: r > 0).map(lambda r: r // 2), checked.filter(lambda r: r == 0)

        out = keyed.iterate(body).capture()
    else:
        out = keyed.unary(on_receive, on_notify).capture()
    epoch = 0
    with flow:
        for gap, records in steps:
            epoch += gap
            inp.advance_to(epoch)
            inp.send(*records)
    assert violations == []
    assert sorted(notified) == sorted(requested)  # each worker's request fires, once
    want = Counter()
    epoch = 0
    for gap, records in steps:
        epoch += gap
        want[epoch] += len(records)
    assert Counter({e: len(rs) for e, rs in out.by_epoch().items()}) == +want


def test_an_epoch_is_output_as_soon_as_it_is_complete():
    flow = make(2)
    inp = flow.input()
    counts = inp.count_by_key().capture()
    probe = inp.probe()
    with flow:
        inp.send("x", "y", "x")
        assert not probe.done(0)
        inp.advance_to(1)
        assert probe.wait(0, timeout=60)
        assert sorted(counts.by_epoch()[0]) == [("x", 2), ("y", 1)]  # the input is still open
        assert counts.done(0) and not counts.done(1)
        assert probe.frontier() == [1]
        inp.send("z")
    assert counts.by_epoch()[1] == [("z", 1)]
    assert probe.frontier() == []


# ------------------------------------------------------------------ operators
@pytest.mark.parametrize(("workers", "schedule"), flows())
def test_record_operators(workers, schedule):
    flow = make(workers, schedule)
    inp = flow.input()
    seen: list = []
    mapped = inp.map(lambda x: x * 10).capture()
    flat = inp.flat_map(lambda x: [x] * (x % 3)).capture()
    kept = inp.filter(lambda x: x % 2).capture()
    inspected = inp.inspect(seen.append).capture()
    both = inp.concat(inp.map(lambda x: -x)).capture()
    parts = [p.capture() for p in inp.partition(3, lambda x: x % 3)]
    data = list(range(20))
    with flow:
        inp.send(*data)
    assert sorted(mapped.records()) == [x * 10 for x in data]
    assert sorted(flat.records()) == sorted(x for x in data for _ in range(x % 3))
    assert sorted(kept.records()) == [x for x in data if x % 2]
    assert sorted(inspected.records()) == data and sorted(seen) == data
    assert sorted(both.records()) == sorted(data + [-x for x in data])
    assert [sorted(p.records()) for p in parts] == [[x for x in data if x % 3 == i] for i in range(3)]


@pytest.mark.parametrize(("workers", "schedule"), flows((3,)))
def test_exchange_sends_a_key_to_one_worker_and_broadcast_to_all(workers, schedule):
    flow = make(workers, schedule)
    inp = flow.input()
    where = inp.exchange(lambda x: x % 4).unary(lambda ctx, t, rs: ctx.emit_many((x % 4, ctx.worker) for x in rs))
    placed = where.capture()
    everywhere = inp.broadcast().unary(lambda ctx, t, rs: ctx.emit_many((x, ctx.worker) for x in rs)).capture()
    with flow:
        inp.send(*range(40))
    owners: dict = {}
    for key, worker in placed.records():
        owners.setdefault(key, set()).add(worker)
    assert all(len(ws) == 1 for ws in owners.values()) and len(owners) == 4
    assert sorted(everywhere.records()) == sorted((x, w) for x in range(40) for w in range(workers))


@pytest.mark.parametrize(("workers", "schedule"), flows())
def test_per_timestamp_operators(workers, schedule):
    flow = make(workers, schedule)
    inp = flow.input()
    other = flow.input()
    counted = inp.count_by_key(lambda r: r[0]).capture()
    summed = inp.reduce_by_key(lambda r: r[0], lambda a, b: (a[0], a[1] + b[1])).capture()
    joined = inp.join(other, key=lambda r: r[0], other_key=lambda r: r[1]).capture()
    data = {0: [("a", 1), ("b", 2), ("a", 3)], 1: [("b", 5)], 4: [("c", 1), ("c", 1)]}
    right = {0: [(10, "a"), (11, "a"), (12, "z")], 1: [(13, "a")], 4: [(14, "c")]}
    with flow:
        for epoch in sorted(data):
            inp.advance_to(epoch)
            other.advance_to(epoch)
            inp.send(*data[epoch])
            other.send(*right[epoch])
    want_counts = {e: sorted(Counter(k for k, _ in rs).items()) for e, rs in data.items()}
    assert sorted_by_epoch(counted) == want_counts
    want_sums = {e: sorted({k: (k, sum(v for kk, v in rs if kk == k)) for k, _ in rs}.values()) for e, rs in data.items()}
    assert sorted_by_epoch(summed) == want_sums
    want_join = {}
    for e in data:
        pairs = [(a[0], a, b) for a in data[e] for b in right[e] if a[0] == b[1]]
        if pairs:
            want_join[e] = ordered(pairs)
    assert sorted_by_epoch(joined) == want_join


@pytest.mark.parametrize(("workers", "schedule"), flows())
def test_window_gathers_epochs_and_emits_at_the_last_one(workers, schedule):
    flow = make(workers, schedule)
    inp = flow.input()
    windows = inp.window(3).capture()
    with flow:
        for epoch in (0, 1, 2, 4, 6, 7):
            inp.advance_to(epoch)
            inp.send(epoch * 10, epoch * 10 + 1)
    got = {e: [(start, sorted(rs)) for start, rs in ws] for e, ws in windows.by_epoch().items()}
    assert got == {
        2: [(0, [0, 1, 10, 11, 20, 21])],
        5: [(3, [40, 41])],
        8: [(6, [60, 61, 70, 71])],
    }


@pytest.mark.parametrize(("workers", "schedule"), flows())
def test_generic_operators_with_state_and_notifications(workers, schedule):
    def on_receive(ctx, time, records):
        ctx.state.setdefault(time, []).extend(records)
        ctx.notify_at(time)

    def on_notify(ctx, time):
        ctx.emit(sum(ctx.state.pop(time)))

    def left(ctx, time, records):
        ctx.emit_many(("L", r) for r in records)

    def right(ctx, time, records):
        ctx.emit_many(("R", r) for r in records)

    flow = make(workers, schedule)
    inp, other = flow.input(), flow.input()
    sums = inp.unary(on_receive, on_notify, exchange=lambda r: 0).capture()
    tagged = inp.binary(other, left, right).capture()
    later = inp.unary(lambda ctx, t, rs: ctx.emit(len(rs), time=(t[0] + 5,))).count_by_key(lambda r: "n").capture()
    with flow:
        inp.send(1, 2, 3)
        other.send(9)
        inp.advance_to(2)
        inp.send(4)
    assert sums.by_epoch() == {0: [6], 2: [4]}
    assert sorted(tagged.records()) == [("L", 1), ("L", 2), ("L", 3), ("L", 4), ("R", 9)]
    assert set(later.by_epoch()) == {5, 7}


def test_from_iterable_feeds_epochs_and_closes_itself():
    flow = make(2, random.Random(0))
    items = [(0, "a b"), (0, "b"), (2, "c"), (5, "a a")]
    counts = flow.from_iterable(iter(items)).flat_map(str.split).count_by_key().capture()
    flow.run()
    assert sorted_by_epoch(counts) == {0: [("a", 1), ("b", 2)], 2: [("c", 1)], 5: [("a", 2)]}


def test_sink_calls_its_function_in_the_driver_for_each_record():
    got: list = []
    flow = make(3)
    inp = flow.input()
    inp.map(lambda x: x + 1).sink(lambda r: got.append((threading.current_thread().name, r)))
    inp.send(*range(10))
    inp.close()
    flow.run()
    assert sorted(r for _, r in got) == list(range(1, 11))
    assert {name for name, _ in got} == {"plait-stream-driver"}


# ------------------------------------------------------------------ loops
def components(nodes, edges, workers, schedule=None, processes=False):
    flow = stream.Dataflow(workers=workers, processes=processes, schedule=schedule)
    node_input, edge_input = flow.input(), flow.input()
    both_ways = edge_input.flat_map(lambda e: [e, (e[1], e[0])])

    def body(labels, scope):
        edges_inside = scope.enter(both_ways)
        offers = labels.join(edges_inside, key=lambda r: r[0]).map(lambda k: (k[2][1], k[1][1]))
        return labels.concat(offers).reduce_by_key(lambda r: r[0], lambda a, b: a if a[1] <= b[1] else b)

    out = node_input.map(lambda n: (n, n)).iterate(body).capture()
    with flow:
        node_input.send(*nodes)
        edge_input.send(*edges)
    return dict(out.records())


def networkx_components(graph):
    return {v: min(c) for c in nx.connected_components(graph) for v in c}


@pytest.mark.parametrize(("workers", "schedule"), flows())
@pytest.mark.parametrize("seed", range(4))
def test_connected_components_to_a_fixed_point_equal_networkx(workers, schedule, seed):
    rng = random.Random(seed)
    graph = nx.gnm_random_graph(rng.randint(1, 40), rng.randint(0, 45), seed=seed)
    assert components(list(graph.nodes), list(graph.edges), workers, schedule) == networkx_components(graph)


def pagerank(graph, workers, schedule, iterations):
    flow = make(workers, schedule)
    node_input, edge_input = flow.input(), flow.input()
    n = graph.number_of_nodes()
    degree = dict(graph.out_degree())

    def body(ranks, scope):
        shares = ranks.join(scope.enter(edge_input), key=lambda r: r[0]).map(lambda k: (k[2][1], k[1][1] / degree[k[0]]))
        every_node = scope.enter(node_input).map(lambda v: (v, 0.0))
        summed = shares.concat(every_node).reduce_by_key(lambda r: r[0], lambda a, b: (a[0], a[1] + b[1]))
        return summed.map(lambda r: (r[0], round(0.15 / n + 0.85 * r[1], 12)))

    out = node_input.map(lambda v: (v, 1.0 / n)).iterate(body, max_iterations=iterations).capture()
    with flow:
        node_input.send(*graph.nodes)
        edge_input.send(*graph.edges)
    return dict(out.records())


@pytest.mark.parametrize(("workers", "schedule"), flows())
def test_pagerank_to_convergence_equals_networkx(workers, schedule):
    for seed in range(2):
        rng = random.Random(seed)
        size = rng.randint(2, 25)
        graph = nx.gnm_random_graph(size, 3 * size, seed=seed, directed=True)
        for v in list(graph.nodes):  # no dangling nodes: networkx spreads their rank evenly
            if graph.out_degree(v) == 0:
                graph.add_edge(v, (v + 1) % size)
        want = nx.pagerank(graph, alpha=0.85, tol=1e-13, max_iter=1000)
        got = pagerank(graph, workers, schedule, iterations=500)
        assert set(got) == set(want)
        assert max(abs(got[v] - want[v]) for v in want) < 1e-6


def test_max_iterations_bounds_the_loop_and_outputs_the_last_collection():
    flow = make(2)
    inp = flow.input()
    out = inp.iterate(lambda x, scope: x.map(lambda v: v + 1), max_iterations=7).capture()
    with flow:
        inp.send(0, 100)
    assert sorted(out.records()) == [7, 107]


def test_a_loop_whose_collection_does_not_change_ends_at_once():
    calls: list = []
    flow = make(1)
    inp = flow.input()
    out = inp.iterate(lambda x, scope: x.inspect(calls.append)).capture()
    with flow:
        inp.send(1, 2)
    assert sorted(out.records()) == [1, 2] and sorted(calls) == [1, 2]


def collatz_steps(start):
    n, steps = start, 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


@pytest.mark.parametrize(("workers", "schedule"), flows())
def test_a_loop_with_feedback_and_exit_streams_runs_each_record_its_own_number_of_times(workers, schedule):
    flow = make(workers, schedule)
    inp = flow.input()

    def body(x, scope):
        step = x.filter(lambda r: r[1] != 1).map(lambda r: (r[0], r[1] // 2 if r[1] % 2 == 0 else 3 * r[1] + 1))
        return step, x.filter(lambda r: r[1] == 1).unary(lambda ctx, t, rs: ctx.emit_many((r[0], t[1]) for r in rs))

    out = inp.map(lambda s: (s, s)).iterate(body).capture()
    with flow:
        inp.send(*range(1, 40))
        inp.advance_to(3)
        inp.send(97)
    assert sorted_by_epoch(out) == {
        0: sorted((s, collatz_steps(s)) for s in range(1, 40)),
        3: [(97, collatz_steps(97))],
    }


def test_feedback_stops_at_max_iterations_in_the_pair_form():
    flow = make(2)
    inp = flow.input()
    def body(x, scope):
        return x.filter(lambda v: v < 5).map(lambda v: v + 1), x.filter(lambda v: v >= 5)

    out = inp.iterate(body, max_iterations=3).capture()
    with flow:
        inp.send(0, 4, 9)
    assert sorted(out.records()) == [5, 9]  # 0 gets to 2 in three rounds, then goes no further


@pytest.mark.parametrize(("workers", "schedule"), flows())
def test_nested_loops(workers, schedule):
    def sequential(x):
        while True:
            while x < 100:
                x = x * 2 + 1
            if x < 150:
                return x
            x -= 140

    def outer(x, scope):
        def inner(y, inner_scope):
            return y.filter(lambda v: v < 100).map(lambda v: v * 2 + 1), y.filter(lambda v: v >= 100)

        grown = x.iterate(inner)
        return grown.filter(lambda v: v >= 150).map(lambda v: v - 140), grown.filter(lambda v: v < 150)

    flow = make(workers, schedule)
    inp = flow.input()
    out = inp.iterate(outer).capture()
    data = list(range(0, 200, 7))
    with flow:
        inp.send(*data)
    assert sorted(out.records()) == sorted(map(sequential, data))


def adding(y, scope, extra):
    """One step of a loop: each value plus the entered increment; round again below 20."""
    added = y.join(scope.enter(extra), key=lambda v: 0, other_key=lambda inc: 0).map(lambda k: k[1] + k[2])
    return added.filter(lambda v: v < 20), added.filter(lambda v: v >= 20)


@pytest.mark.parametrize(("workers", "schedule"), flows())
def test_an_entered_stream_is_seen_by_every_iteration(workers, schedule):
    flow = make(workers, schedule)
    inp, extra = flow.input(), flow.input()
    out = inp.iterate(lambda x, scope: adding(x, scope, extra)).capture()
    with flow:
        inp.send(0, 5)
        extra.send(3)
    assert sorted(out.records()) == [20, 21]


@pytest.mark.parametrize(("workers", "schedule"), flows())
def test_a_stream_entered_two_loops_in(workers, schedule):
    def sequential(v, inc=3):
        while True:
            v += inc
            while v < 20:
                v += inc
            if v >= 50:
                return v
            v *= 2

    def outer(x, scope):
        grown = x.iterate(lambda y, inner: adding(y, inner, extra))  # extra comes from two scopes out
        return grown.filter(lambda v: v < 50).map(lambda v: v * 2), grown.filter(lambda v: v >= 50)

    flow = make(workers, schedule)
    inp, extra = flow.input(), flow.input()
    out = inp.iterate(outer).capture()
    data = [0, 1, 7, 30, 60]
    with flow:
        inp.send(*data)
        extra.send(3)
    assert sorted(out.records()) == sorted(map(sequential, data))


# ------------------------------------------------------------------ back-pressure
def test_a_fast_source_waits_instead_of_growing_the_queue():
    flow = make(1, max_pending=8)
    inp = flow.input()
    seen: list = []
    inp.map(lambda x: x).sink(lambda r: seen.append(flow.pending()))
    with flow:
        for i in range(2000):
            inp.send(i)
    assert len(seen) == 2000
    assert max(seen) <= 8


def test_max_pending_one_still_runs_everything():
    flow = make(2, max_pending=1)
    counts = flow.from_iterable((i // 10, "w") for i in range(100)).count_by_key().capture()
    flow.run()
    assert counts.by_epoch() == {e: [("w", 10)] for e in range(10)}


# ------------------------------------------------------------------ errors
def test_an_operator_error_ends_the_dataflow_with_the_operator_named():
    flow = make(2)
    inp = flow.input()
    inp.map(lambda x: 1 / x).capture()
    with pytest.raises(ZeroDivisionError) as info:
        with flow:
            inp.send(1, 0, 2)
    assert any("stream operator 'map'" in note for note in info.value.__notes__)
    with pytest.raises(stream.StreamError):
        inp.send(3)


def test_misuse_gets_clear_errors():
    flow = make(1)
    inp = flow.input("lines")
    inp.advance_to(3)
    with pytest.raises(stream.StreamError, match="go back from epoch 3"):
        inp.advance_to(2)
    with pytest.raises(stream.StreamError, match="still open"):
        flow.run()
    inp.close()
    with pytest.raises(stream.StreamError, match="send after close"):
        inp.send("x")
    with pytest.raises(stream.StreamError, match="different scopes"):
        inp.iterate(lambda x, scope: x.concat(inp))
    with pytest.raises(TypeError, match="must return a Stream"):
        inp.iterate(lambda x, scope: 3)
    with pytest.raises(ValueError, match="positive"):
        inp.partition(0, len)
    with pytest.raises(stream.StreamError, match="outside any loop"):
        inp.iterate(lambda x, scope: (x, x.probe()))
    other = stream.Dataflow()
    with pytest.raises(stream.StreamError, match="two different dataflows"):
        inp.concat(other.input())
    with pytest.raises(ValueError, match="at least one worker"):
        stream.Dataflow(workers=0)


def test_notify_in_the_past_and_bad_partition_index_are_reported():
    flow = make(1)
    inp = flow.input()
    inp.unary(lambda ctx, t, rs: ctx.notify_at((t[0] - 1,)), lambda ctx, t: None).capture()
    with pytest.raises(stream.StreamError, match="not at or after the time being worked on"):
        with flow:
            inp.advance_to(2)
            inp.send(1)
    flow = make(1)
    inp = flow.input()
    inp.partition(2, lambda r: 5)[0].capture()
    with pytest.raises(ValueError, match="must return an int from 0 to 1"):
        with flow:
            inp.send(1)


def test_a_dataflow_runs_once_and_does_not_grow_while_running():
    flow = make(1)
    inp = flow.input()
    with flow:
        with pytest.raises(stream.StreamError, match="cannot grow"):
            inp.map(str)
    with pytest.raises(stream.StreamError, match="has run already"):
        flow.run()


def test_a_bad_epoch_from_an_iterable_fails_the_run():
    flow = make(1)
    flow.from_iterable([(2, "a"), (1, "b")]).capture()
    with pytest.raises(stream.StreamError, match="go back"):
        flow.run()


# ------------------------------------------------------------------ worker processes
def test_word_count_and_components_on_worker_processes(engine):
    """Workers as actors of the current engine (inline, local; Ray and Dask in
    test_cluster_engines)."""
    flow = stream.Dataflow(workers=2)
    assert flow.processes
    lines = flow.input()
    counts = lines.flat_map(str.split).count_by_key().capture()
    with flow:
        lines.send("a b a", "c")
        lines.advance_to(1)
        lines.send("b b")
    assert sorted_by_epoch(counts) == {0: [("a", 2), ("b", 1), ("c", 1)], 1: [("b", 2)]}
    graph = nx.gnm_random_graph(30, 25, seed=1)
    got = components(list(graph.nodes), list(graph.edges), workers=2, processes=True)
    assert got == networkx_components(graph)


def test_an_operator_error_in_a_worker_process_ends_the_dataflow(local):
    flow = stream.Dataflow(workers=2)
    inp = flow.input()
    inp.map(lambda x: 1 / x).capture()
    with pytest.raises(ZeroDivisionError) as info:
        with flow:
            inp.send(1, 0)
    assert any("stream operator 'map'" in note for note in info.value.__notes__)
