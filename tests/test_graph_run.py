"""Running graphs: plait.run / Graph.run / Interpreter, on the inline and local engines."""

from __future__ import annotations

import operator
import os
import time

import pytest

import plait
from plait.graph import Graph, GraphError, Interpreter
from plait.graph.ops import call_method
from tests.test_graph import build_pipeline, control_flow_graph


@plait.task
def span(label, seconds):
    """Sleep; return (label, start, end) as wall-clock timestamps."""
    start = time.time()
    time.sleep(seconds)
    return (label, start, time.time())


@plait.task
def inc(x):
    return x + 1


@plait.task
def boom(message):
    raise KeyError(message)


@plait.task
def write(path, text):
    time.sleep(0.05)
    with open(path, "w") as f:
        f.write(text)
    return len(text)


ORDER: list = []


def note(tag, value=None):
    ORDER.append(tag)
    return value


def overlap(a, b) -> bool:
    return a[1] < b[2] and b[1] < a[2]


# ----------------------------------------------------------------------------- same results everywhere


def mixed_graph() -> Graph:
    """Tasks, ops building containers, a pure call, if inside a while, effect-free."""
    g = Graph(["n", "words"], name="mixed")
    n, words = g.inputs
    lengths = g.add_op(list, g.add_op(map, len, words))
    first = g.add_task(inc, (g.add_op(operator.getitem, lengths, 0),))
    table = g.add_op(dict, [("n", n), ("first", first)])
    joined = g.add_call("-".join, (words,), effectful=False)
    big = g.add_op(operator.gt, n, 2)
    then = Graph(["t"])
    then.set_output(then.add_op(operator.getitem, then.inputs[0], "first"))
    orelse = Graph(["t"])
    orelse.set_output(orelse.add_const("small"))
    choice = g.add_if(big, then, orelse, [table])
    g.set_output({"table": table, "joined": joined, "choice": choice, "lengths": lengths})
    return g


def test_same_results_on_inline_and_local():
    graphs = [(build_pipeline(), ("abcd",)), (control_flow_graph(), (27,)), (mixed_graph(), (3, ["ab", "c"]))]
    results = {}
    for name in ("inline", "local"):
        with plait.init(engine=name, workers=2):
            results[name] = [plait.run(g, *args) for g, args in graphs]
    assert results["inline"] == results["local"]
    pipeline, collatz, mixed = results["local"]
    assert pipeline == {"sum": 27, "both": 39, "pair": (12, 7)}
    assert collatz == {"final": 1, "steps": 111}
    assert mixed == {
        "table": {"n": 3, "first": 3},
        "joined": "ab-c",
        "choice": 3,
        "lengths": [2, 1],
    }


def test_graph_run_method_binds_like_python(engine):
    g = build_pipeline()
    assert g.run("ab", 1) == g.run(path="ab", factor=1) == {"sum": 7, "both": 9, "pair": (2, 7)}
    assert g.run("ab")["sum"] == 21  # factor defaults to 3
    with pytest.raises(TypeError, match="missing argument"):
        g.run()
    with pytest.raises(TypeError, match="takes 2 arguments but 3"):
        g.run(1, 2, 3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        g.run("a", nope=1)
    with pytest.raises(TypeError, match="multiple values"):
        g.run("a", path="b")


def test_futures_as_inputs_and_unresolved_output(engine):
    g = Graph(["x"])
    g.set_output([g.add_task(inc, (g.inputs[0],)), g.add_op(operator.neg, g.inputs[0])])
    assert plait.run(g, plait.put(4)) == [5, -4]
    raw = Interpreter(g, resolve=False).run(inc(1))
    assert isinstance(raw[0], plait.Future) and raw[0].result() == 3 and raw[1] == -2


# ----------------------------------------------------------------------------- parallelism on local


@plait.task
def meet(marker_dir, label, other, patience=60):
    """Say this call started, then wait (up to ``patience`` s) until ``other`` has: calls that
    run side by side both return at once, calls run one after the other wait it out.
    Returns (label, start, end)."""
    start = time.time()
    open(os.path.join(marker_dir, label), "w").close()
    deadline = time.monotonic() + patience
    while not os.path.exists(os.path.join(marker_dir, other)) and time.monotonic() < deadline:
        time.sleep(0.01)
    return (label, start, time.time())


def test_independent_tasks_run_in_parallel_on_local(local, tmp_path):
    g = Graph(["where"])
    where = g.inputs[0]
    a = g.add_task(meet, (where, "a", "b"))
    # an op waiting for a sits between the two calls in program order: it must not hold b back
    label = g.add_op(operator.getitem, a, 0)
    b = g.add_task(meet, (where, "b", "a"))
    g.set_output([a, b, label])
    a_span, b_span, label_value = plait.run(g, str(tmp_path))
    assert label_value == "a"
    assert overlap(a_span, b_span), (a_span, b_span)


def test_tasks_get_futures_without_waiting(local):
    submitted = {}

    class Recording(Interpreter):
        def task(self, node, args, kwargs):
            submitted[node.name] = time.time()
            return super().task(node, args, kwargs)

    g = Graph()
    first = g.add_task(span, ("first", 0.3))
    second = g.add_task(operator_free_getitem, (first, 2))
    g.set_output([first, second])
    first_span, second_value = Recording(g).run()
    assert second_value == first_span[2]
    assert submitted["operator_free_getitem"] < first_span[2]  # queued before its input finished


@plait.task
def operator_free_getitem(seq, i):
    return seq[i]


def test_task_nodes_ready_together_go_to_the_engine_as_one_graph(local, monkeypatch):
    engine = plait.runtime.context.current_engine()
    graphs = []
    real = engine.submit_graph

    def recording(calls):
        graphs.append(len(calls))
        return real(calls)

    monkeypatch.setattr(engine, "submit_graph", recording)
    g = Graph(["n"])
    leaves = [g.add_task(inc, (i,)) for i in range(20)]
    chained = g.add_task(inc, (g.add_task(inc, (leaves[0],)),))
    later = g.add_task(inc, (g.add_op(operator.add, chained, g.inputs[0]),))  # after an op: a graph of its own
    g.set_output([leaves, chained, later])
    assert plait.run(g, 100) == [list(range(1, 21)), 3, 104]
    assert graphs == [22, 1]


def test_a_task_node_the_engine_refuses_is_named(local):
    import threading

    g = Graph()
    fine = g.add_task(inc, (1,))
    refused = g.add_task(operator_free_getitem, ([threading.Lock()], 0), meta={"line": 12})
    g.set_output([fine, refused])
    with pytest.raises(plait.errors.SerializationError, match="cannot send argument 0 of .operator_free_getitem.") as info:
        Interpreter(g, check=False).run()
    assert info.value.__notes__ == ["while running graph node %operator_free_getitem (line 12)"]


# ----------------------------------------------------------------------------- control flow and effects


def test_while_and_if_on_both_engines(engine):
    assert control_flow_graph().run(6) == {"final": 1, "steps": 8}
    assert control_flow_graph().run(1) == {"final": 1, "steps": 0}


def test_effectful_calls_run_in_program_order(engine):
    ORDER.clear()
    g = Graph()
    slow = g.add_task(span, ("slow", 0.3))
    fast = g.add_task(span, ("fast", 0.0))
    g.add_call(note, ("after slow", slow))  # waits for the slow task ...
    g.add_call(note, ("after fast", fast))  # ... and this one waits for it
    then = Graph(["v"])
    then.add_call(note, ("in branch", then.inputs[0]))
    then.set_output(None)
    orelse = Graph(["v"])
    orelse.set_output(None)
    g.add_if(True, then, orelse, [fast])
    g.add_call(note, ("last",))
    g.set_output(None)
    plait.run(g)
    assert ORDER == ["after slow", "after fast", "in branch", "last"]


def test_driver_values_are_shared_like_python(engine):
    g = Graph(["x"])
    xs = g.add_op(list, [g.inputs[0]])
    g.add_call(call_method, (xs, "append", g.add_task(inc, (g.inputs[0],))))
    g.add_call(call_method, (xs, "extend", [7, 8]))
    g.set_output(xs)
    assert plait.run(g, 1) == [1, 2, 7, 8]


def test_effectful_tasks_finish_before_run_returns(engine, tmp_path):
    g = Graph(["path"])
    g.add_task(write, (g.inputs[0], "hello"), effectful=True)
    g.set_output("done")
    path = tmp_path / "out.txt"
    assert plait.run(g, str(path)) == "done"
    assert path.read_text() == "hello"


# ----------------------------------------------------------------------------- errors


def test_task_errors_propagate_with_their_type(engine):
    g = Graph(["m"])
    failed = g.add_task(boom, (g.inputs[0],), meta={"line": 8})
    g.set_output(g.add_op(operator.getitem, failed, 0, meta={"line": 9}))
    with pytest.raises(KeyError, match="bad") as info:
        plait.run(g, "bad")
    assert any("while running graph node %" in n for n in getattr(info.value, "__notes__", []))


def test_an_unread_failing_task_still_fails_the_run(engine):
    g = Graph()
    g.add_task(boom, ("unread",), effectful=True)
    g.set_output(1)
    with pytest.raises(KeyError, match="unread"):
        plait.run(g)


def test_op_errors_name_the_node(engine):
    g = Graph(["x"])
    g.set_output(g.add_op(operator.truediv, g.inputs[0], 0, meta={"line": 31, "file": "prog.py"}))
    with pytest.raises(ZeroDivisionError) as info:
        plait.run(g, 1)
    assert info.value.__notes__ == ["while running graph node %truediv (line 31 of prog.py)"]


def test_while_body_must_output_the_carried_values(engine):
    g = control_flow_graph()
    body = g.node("loop").subgraphs["body"]
    body.output.args = ([body.inputs[0]],)  # one value for two carried: wrong at run time
    with pytest.raises(GraphError, match="must output 2 values"):
        plait.run(g, 6, engine=None)


# ----------------------------------------------------------------------------- engines


def test_temporary_engines():
    assert not plait.is_initialized()
    g = build_pipeline()
    assert plait.run(g, "abc", engine="inline")["sum"] == 24
    assert not plait.is_initialized()  # started and stopped around the run
    with plait.init(engine="local", workers=2) as session:
        assert plait.run(g, "abc", engine="local")["sum"] == 24  # the current engine
        assert plait.run(g, "abc", engine="inline")["sum"] == 24  # a temporary one ...
        from plait.runtime import context

        assert context.engine_or_none() is session.engine  # ... and the current one is back
        assert plait.run(g, "abc", engine=session)["sum"] == 24


def test_no_engine_starts_a_temporary_default(monkeypatch):
    monkeypatch.setenv("PLAIT_ENGINE", "inline")
    assert not plait.is_initialized()
    assert plait.run(control_flow_graph(), 3) == {"final": 1, "steps": 7}
    assert not plait.is_initialized()


def test_interpreter_methods_can_be_overridden(engine):
    class Doubling(Interpreter):
        def op(self, node, args, kwargs):
            value = super().op(node, args, kwargs)
            return value * 2 if node.target is operator.add else value

        def truth(self, node, value):
            return not value

    g = Graph(["x"])
    s = g.add_op(operator.add, g.inputs[0], 1)
    then = Graph(["v"])
    then.set_output("then")
    orelse = Graph(["v"])
    orelse.set_output("orelse")
    g.set_output([s, g.add_if(True, then, orelse, [s])])
    assert Doubling(g).run(1) == [4, "orelse"]
    assert plait.run(g, 1) == [2, "then"]


def test_a_task_node_with_several_outputs_gives_one_future_each(engine):
    """``num_returns=3``: the node's items are its outputs' own futures, each a dependency
    of the node that takes it, on every engine."""
    from tests.test_tasks import three_values

    g = Graph()
    x = g.add_input("x")
    parts = g.unpack(g.add_task(three_values, (x,)), 3)
    doubled = [g.add_task(inc, (p,)) for p in parts]
    g.set_output((doubled, parts[2]))
    assert plait.run(g, 5) == ([6, 7, 8], 7)
