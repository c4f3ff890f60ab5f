"""plait.graph passes: CSE, DCE, chain fusion, the serializability check, PassManager."""

from __future__ import annotations

import functools
import json
import operator
import threading

import pytest

import plait
from plait.graph import (
    FusedTask,
    Graph,
    PassManager,
    PassReport,
    check_serializable,
    cse,
    dce,
    fuse_chains,
)


@plait.task
def inc(x):
    return x + 1


@plait.task
def dbl(x):
    return x * 2


@plait.task
def add(a, b):
    return a + b


@plait.task(num_cpus=0.5)
def half_cpu(x):
    return x - 1


@plait.task
def record(log_path, value):
    with open(log_path, "a") as f:
        f.write(f"{value}\n")
    return value


LOG: list = []


def log_value(value):
    LOG.append(value)
    return value


def n_tasks(g: Graph) -> int:
    return sum(1 for node, _ in g.walk() if node.op == "task")


# ----------------------------------------------------------------------------- CSE


def duplicated_graph() -> Graph:
    g = Graph(["x"], name="dups")
    x = g.inputs[0]
    a1 = g.add_task(inc, (x,))
    a2 = g.add_task(inc, (x,))  # same call: merged
    b1 = g.add_task(add, (a1, 10))
    b2 = g.add_task(add, (a2, 10))  # same once a2 is a1
    c = g.add_task(add, (a1, 11))  # different literal: kept
    d = g.add_task(inc.options(num_cpus=0.5), (x,))  # different options: kept
    o1 = g.add_op(operator.mul, b1, 2)
    o2 = g.add_op(operator.mul, b2, 2)
    k1 = g.add_const((1, 2.0))
    k2 = g.add_const((1, 2.0))
    k3 = g.add_const((1, 2))  # 2 == 2.0 but of another type: kept
    g.set_output([o1, o2, c, d, k1, k2, k3])
    return g


def test_cse_merges_duplicates_and_keeps_results():
    g = duplicated_graph()
    with plait.init(engine="inline"):
        before = plait.run(g, 1)
        report = cse(g)
        g.lint()
        after = plait.run(g, 1)
    assert after == before == [24, 24, 13, 2, (1, 2.0), (1, 2.0), (1, 2)]
    assert report.changed and "%inc_1 merged into %inc" in report.changes
    assert n_tasks(g) == 4  # inc, add(.., 10), add(.., 11), inc with options
    assert len(g.find(op="op")) == 1
    assert len(g.find(op="const")) == 2
    assert str(g).count("op mul") == 1
    assert cse(g).changes == []  # nothing left to merge


def test_cse_leaves_effectful_and_mutable_driver_values_alone():
    g = Graph(["x"])
    x = g.inputs[0]
    t1 = g.add_task(inc, (x,), effectful=True)
    t2 = g.add_task(inc, (x,), effectful=True)
    c1 = g.add_call(log_value, (x,))
    c2 = g.add_call(log_value, (x,))
    p1 = g.add_call(abs, (x,), effectful=False)
    p2 = g.add_call(abs, (x,), effectful=False)
    # two lists built alike, one of them mutated by an effectful call: must stay two lists
    l1 = g.add_op(list, [x])
    l2 = g.add_op(list, [x])
    g.add_call(operator.iadd, (l1, [5]))
    g.set_output([t1, t2, c1, c2, p1, p2, l1, l2])
    report = cse(g)
    assert report.changes == ["%abs_1 merged into %abs"]
    assert g.node("list").name != g.node("list_1").name
    with plait.init(engine="inline"):
        out = plait.run(g, -3)
    assert out == [-2, -2, -3, -3, 3, 3, [-3, 5], [-3]]


def test_cse_skips_unhashable_literals():
    g = Graph(["x"])
    x = g.inputs[0]
    a = g.add_task(add, (x, [1]))
    b = g.add_task(add, (x, [1]))  # lists hash structurally: merged
    c = g.add_op(operator.getitem, {"k": bytearray(b"a")}, "k")
    d = g.add_op(operator.getitem, {"k": bytearray(b"a")}, "k")  # bytearray is unhashable: kept
    g.set_output([a, b, c, d])
    cse(g)
    assert n_tasks(g) == 1 and len(g.find(op="op")) == 2


def test_cse_inside_subgraphs():
    then = Graph(["v"])
    v = then.inputs[0]
    then.set_output(then.add_op(operator.add, then.add_task(inc, (v,)), then.add_task(inc, (v,))))
    orelse = Graph(["v"])
    orelse.set_output(orelse.inputs[0])
    g = Graph(["x"])
    g.set_output(g.add_if(g.inputs[0], then, orelse, [g.inputs[0]]))
    assert n_tasks(g) == 2
    cse(g)
    assert n_tasks(g) == 1
    with plait.init(engine="inline"):
        assert plait.run(g, 3) == 8


# ----------------------------------------------------------------------------- DCE


def test_dce_removes_unreachable_nodes_but_keeps_effects(tmp_path):
    log = str(tmp_path / "log.txt")
    LOG.clear()
    g = Graph(["x"])
    x = g.inputs[0]
    unused_task = g.add_task(inc, (x,))
    g.add_task(dbl, (unused_task,))  # unused chain: both go
    g.add_op(operator.neg, x)
    g.add_const("unused")
    kept_call = g.add_call(log_value, (g.add_op(operator.mul, x, 100),))  # effectful: kept, with its input
    g.add_task(record, (log, x), effectful=True)
    g.add_call(abs, (x,), effectful=False)  # declared pure and unused: removed
    y = g.add_input("y")  # inputs stay even when unused
    g.set_output(g.add_task(dbl, (x,)))
    report = dce(g)
    g.lint()
    names = [n.name for n in g.nodes]
    assert names == ["x", "y", "mul", "log_value", "record", "dbl_1", "output"]
    assert {c.split()[-1] for c in report.changes} == {"%inc", "%dbl", "%neg", "%const", "%abs"}
    assert kept_call in g.nodes and y in g.inputs
    with plait.init(engine="inline"):
        assert plait.run(g, 4, 0) == 8
    assert LOG == [400]
    assert open(log).read() == "4\n"


def test_dce_keeps_control_flow_holding_effects():
    then = Graph(["v"])
    then.add_call(log_value, (then.inputs[0],))
    then.add_op(operator.neg, then.inputs[0])  # dead inside the branch
    then.set_output(None)
    orelse = Graph(["v"])
    orelse.set_output(None)
    pure_then = Graph(["v"])
    pure_then.set_output(pure_then.add_task(inc, (pure_then.inputs[0],)))
    g = Graph(["x"])
    x = g.inputs[0]
    g.add_if(x, then, orelse, [x], name="effects")
    g.add_if(x, pure_then, orelse.copy(), [x], name="pure")
    g.set_output(x)
    dce(g)
    assert [n.name for n in g.nodes] == ["x", "effects", "output"]
    assert [n.op for n in then.nodes] == ["input", "call", "output"]
    LOG.clear()
    with plait.init(engine="inline"):
        assert plait.run(g, 5) == 5
    assert LOG == [5]


# ----------------------------------------------------------------------------- fusion


def chain_graph(length: int = 4) -> Graph:
    g = Graph(["x"], name="chain")
    v = g.inputs[0]
    for i in range(length):
        v = g.add_task(inc if i % 2 == 0 else dbl, (v,), meta={"line": i + 1})
    g.set_output(v)
    return g


def test_fusion_reduces_task_count_and_keeps_results():
    g = chain_graph(4)  # ((x + 1) * 2 + 1) * 2: 18 for x = 3
    out = g.output_value
    with plait.init(engine="local", workers=2):
        before = plait.run(g, 3)
        report = fuse_chains(g)
        g.lint()
        after = plait.run(g, 3)
    assert before == after == 18
    assert n_tasks(g) == 1
    fused = g.output_value
    assert fused.name == out.name and fused.meta["fused"] == ["inc", "dbl", "inc_1", "dbl_1"]
    assert isinstance(fused.target.fn, FusedTask)
    assert fused.target.name == "inc+dbl+inc+dbl"
    assert report.changes == ["fused %inc, %dbl, %inc_1, %dbl_1 into %dbl_1"]
    assert "task inc+dbl+inc+dbl(%x)" in str(g)


def test_fusion_max_length_and_predicate():
    g = chain_graph(5)
    fuse_chains(g, max_length=2)
    assert n_tasks(g) == 3  # [inc, dbl] [inc, dbl] [inc]
    g = chain_graph(4)
    g.node("inc_1").meta["fuse"] = False  # the third call stays alone
    fuse_chains(g)
    assert [n.target.name for n in g.find(op="task")] == ["inc+dbl", "inc", "dbl"]
    g = chain_graph(4)
    fuse_chains(g, predicate=lambda n: n.meta.get("line", 0) >= 3)
    assert n_tasks(g) == 3
    with plait.init(engine="inline"):
        assert plait.run(g, 3) == 18
    with pytest.raises(ValueError):
        fuse_chains(chain_graph(), max_length=1)


def test_fusion_respects_options_fanout_and_side_inputs():
    g = Graph(["x", "y"])
    x, y = g.inputs
    a = g.add_task(inc, (x,))
    b = g.add_task(half_cpu, (a,))  # other options: not fused with a
    c = g.add_task(inc, (b,))
    d = g.add_task(dbl, (c,))  # c has two users: not fused
    e = g.add_task(add, (c, d))
    f = g.add_task(inc, (y,))
    h = g.add_task(add, (f, e))  # e is a side input f's chain did not wait for: not fused
    k = g.add_task(add, (h, g.add_const(5)))  # a constant side input: fused
    g.set_output(k)
    with plait.init(engine="inline"):
        before = plait.run(g, 1, 2)
    fuse_chains(g)
    g.lint()
    assert [n.target.name for n in g.find(op="task")] == [
        "inc",
        "half_cpu",
        "inc",
        "dbl+add",
        "inc",
        "add+add",
    ]
    with plait.init(engine="inline"):
        assert plait.run(g, 1, 2) == before


def test_fused_graph_round_trips_through_json():
    g = chain_graph(3)
    fuse_chains(g)
    h = Graph.from_json(g.to_json(), trusted=True)  # a fused chain travels by value
    assert g.equivalent(h)
    assert "pickle" in json.loads(g.to_json())["graph"]["nodes"][1]["target"]
    with plait.init(engine="inline"):
        assert plait.run(h, 1) == plait.run(g, 1) == 5


def test_fusion_inside_a_while_body():
    cond = Graph(["i", "acc"])
    cond.set_output(cond.add_op(operator.lt, cond.inputs[0], 3))
    body = Graph(["i", "acc"])
    i, acc = body.inputs
    body.set_output((body.add_op(operator.add, i, 1), body.add_task(dbl, (body.add_task(inc, (acc,)),))))
    g = Graph(["start"])
    g.set_output(g.add_while(cond, body, [0, g.inputs[0]]))
    with plait.init(engine="inline"):
        before = plait.run(g, 1)
        fuse_chains(g)
        assert plait.run(g, 1) == before == (3, 22)
    assert n_tasks(g) == 1


# ----------------------------------------------------------------------------- serializability


def test_check_serializable_names_node_variable_and_line():
    lock = threading.Lock()

    @plait.task
    def uses_lock(x):
        with lock:
            return x

    g = Graph(["x"])
    g.add_task(uses_lock, (g.inputs[0],), meta={"var": "guarded", "line": 17, "file": "prog.py"})
    with pytest.raises(plait.SerializationError) as info:
        check_serializable(g)
    message = str(info.value)
    assert "graph node %guarded" in message
    assert "variable 'guarded'" in message and "line 17 of prog.py" in message
    assert "task function" in message and "uses_lock" in message


def test_check_serializable_arguments_and_constants():
    g = Graph(["x"])
    g.add_task(add, (g.inputs[0], [1, threading.Lock()]), meta={"var": "z", "line": 4})
    with pytest.raises(plait.SerializationError, match=r"graph node %z \(variable 'z', line 4\): argument 1"):
        check_serializable(g)
    g = Graph(["x"])
    lock = g.add_const(threading.Lock(), meta={"var": "lock", "line": 2})
    g.add_call(print, (lock,))
    check_serializable(g, remote_only=True)  # the driver keeps it: fine for running
    with pytest.raises(plait.SerializationError, match="%lock.*the constant"):
        check_serializable(g)  # ... not for saving
    g.add_task(add, (lock, 1))
    with pytest.raises(plait.SerializationError, match="line 2"):
        check_serializable(g, remote_only=True)


def test_check_serializable_in_subgraphs_and_before_run():
    then = Graph(["v"])
    then.set_output(then.add_task(add, (then.inputs[0], threading.Lock()), meta={"var": "bad", "line": 9}))
    orelse = Graph(["v"])
    orelse.set_output(orelse.inputs[0])
    g = Graph(["x"])
    first = g.add_task(inc, (g.inputs[0],))
    g.set_output([first, g.add_if(g.inputs[0], then, orelse, [g.inputs[0]], name="branch")])
    with pytest.raises(plait.SerializationError, match=r"%branch\.then/%bad .*line 9"):
        check_serializable(g)
    with plait.init(engine="inline") as session:
        with pytest.raises(plait.SerializationError, match="line 9"):
            plait.run(g, 0)  # the branch is never taken: the check runs first all the same
        assert session.engine.timeline_events() == []  # nothing was submitted


# ----------------------------------------------------------------------------- PassManager


def test_pass_manager_runs_passes_in_order():
    g = duplicated_graph()
    g.add_task(dbl, (g.inputs[0],), name="dead")
    pm = PassManager([cse, dce, functools.partial(fuse_chains, max_length=2), check_serializable])
    with plait.init(engine="inline"):
        expected = plait.run(g, 1)
        out = pm.run(g)
        assert plait.run(out, 1) == expected
    assert out is g
    assert [r.name for r in pm.reports] == ["cse", "dce", "fuse_chains", "check_serializable"]
    assert pm.reports[1].changes == ["removed %dead"]
    assert pm.reports[2].changes == []  # no task feeds only one other task here
    assert "PassManager([cse, dce, fuse_chains, check_serializable])" == repr(pm)


def test_pass_manager_accepts_passes_returning_graphs_and_lints():
    def rebuild(graph):
        return graph.copy()

    def breaks_it(graph):
        graph._nodes.reverse()
        return PassReport("breaks_it", ["reversed"])

    g = chain_graph(2)
    pm = PassManager([rebuild])
    out = pm(g)
    assert out is not g and out.equivalent(g)
    assert pm.reports[0].changes == ["returned a new graph"]
    with pytest.raises(plait.graph.GraphError):
        PassManager([breaks_it]).run(chain_graph(2))
