"""plait.graph: building graphs, printing, copying, comparing, JSON, pictures."""

from __future__ import annotations

import collections
import json
import math
import operator
import shutil
import threading

import pytest

import plait
from plait.graph import Graph, GraphError, GraphFormatError, Node, load
from plait.graph.ops import call_method

# ----------------------------------------------------------------------------- module-level tasks


@plait.task
def load_data(path):
    return [len(path), 2, 3]


@plait.task
def scale(xs, factor=2):
    return [x * factor for x in xs]


@plait.task
def total(xs):
    return sum(xs)


@plait.task(num_cpus=0.5, retries=1)
def light(x):
    return x + 1


def helper(x, y=0):
    return x * 10 + y


Point = collections.namedtuple("Point", "x y")


def build_pipeline() -> Graph:
    """path -> load -> scale -> total, plus ops; the graph most tests start from."""
    g = Graph(name="pipeline")
    path = g.add_input("path")
    factor = g.add_input("factor", default=3)
    data = g.add_task(load_data, (path,), meta={"var": "data", "line": 10})
    scaled = g.add_task(scale, (data,), {"factor": factor}, meta={"var": "scaled", "line": 11})
    s = g.add_task(total, (scaled,), meta={"var": "s", "line": 12})
    first = g.add_op(operator.getitem, scaled, 0)
    both = g.add_op(operator.add, s, first)
    g.set_output({"sum": s, "both": both, "pair": (first, 7)})
    return g


# ----------------------------------------------------------------------------- building


def test_build_nodes_users_inputs():
    g = build_pipeline()
    g.lint()
    ops = [n.op for n in g.nodes]
    assert ops == ["input", "input", "task", "task", "task", "op", "op", "output"]
    assert [n.target for n in g.inputs] == ["path", "factor"]
    data, scaled = g.node("data"), g.node("scaled")
    assert data.users == [scaled]
    assert scaled.inputs == [data, g.node("factor")]
    assert set(scaled.users) == {g.node("s"), g.node("getitem")}
    assert g.output is g.nodes[-1]
    assert g.output_value["pair"][1] == 7
    assert scaled.options == scale.task_options
    assert g.find(op="task", target=total) == [g.node("s")]


def test_names_are_unique_and_readable():
    g = Graph()
    x = g.add_input("x")
    a = g.add_op(operator.add, x, 1)
    b = g.add_op(operator.add, a, 1)
    c = g.add_task(light, (b,))
    d = g.add_task(light, (c,))
    k = g.add_const([1, 2], meta={"var": "ks"})
    assert [a.name, b.name, c.name, d.name, k.name] == ["add", "add_1", "light", "light_1", "ks"]
    with pytest.raises(GraphError, match="already has an input"):
        g.add_input("x")
    with pytest.raises(GraphError, match="identifier"):
        g.add_input("not valid")
    g.rename(d, "result")
    assert g.node("result") is d
    with pytest.raises(GraphError):
        g.rename(c, "result")


def test_inputs_stay_first_and_output_last():
    g = Graph()
    a = g.add_input("a")
    n = g.add_op(operator.neg, a)
    g.set_output(n)
    b = g.add_input("b")  # added late: still among the inputs
    m = g.add_op(operator.add, n, b)  # added after set_output: before the output
    g.set_output(m)
    assert [x.op for x in g.nodes] == ["input", "input", "op", "op", "output"]
    assert g.inputs == [a, b]
    g.lint()


def test_add_task_options_and_task_call():
    g = Graph()
    x = g.add_input("x")
    a = g.add_task(light, (x,))
    b = g.add_task(light.options(num_cpus=2), (x,))
    c = g.add_task(light, (x,), options={"retries": 0})
    assert a.options.num_cpus == 0.5 and a.options.retries == 1
    assert b.options.num_cpus == 2 and b.target is light
    assert c.options.retries == 0 and c.options.num_cpus == 0.5
    with pytest.raises(TypeError, match="add_call"):
        g.add_task(helper, (x,))
    with pytest.raises(TypeError, match="add_task"):
        g.add_call(light, (x,))


def test_nodes_of_another_graph_are_rejected():
    outer = Graph(["x"])
    inner = Graph(["y"])
    with pytest.raises(GraphError, match="through its inputs"):
        inner.add_op(operator.neg, outer.inputs[0])


def test_if_and_while_check_their_subgraphs():
    g = Graph(["x"])
    then = Graph(["a"])
    then.set_output(then.inputs[0])
    with pytest.raises(GraphError, match="takes 1 inputs but 2"):
        g.add_if(g.inputs[0], then, then.copy(), [g.inputs[0], 1])
    no_output = Graph(["a"])
    with pytest.raises(GraphError, match="no output"):
        g.add_if(g.inputs[0], then, no_output, [g.inputs[0]])
    body = Graph(["i"])
    body.set_output(body.inputs[0])  # not a list of carried values
    cond = Graph(["i"])
    cond.set_output(cond.add_op(operator.lt, cond.inputs[0], 3))
    with pytest.raises(GraphError, match="list or tuple of 1"):
        g.add_while(cond, body, [0])


def test_erase_replace_and_insert():
    g = Graph(["x"])
    x = g.inputs[0]
    a = g.add_op(operator.neg, x)
    b = g.add_op(operator.abs, a)
    g.set_output(b)
    with pytest.raises(GraphError, match="still read it"):
        g.erase_node(a)
    with g.inserting_before(b):
        c = g.add_op(operator.pos, x)
    a.replace_all_uses_with(c)
    g.erase_node(a)
    assert [n.name for n in g.nodes] == ["x", "pos", "abs", "output"]
    assert b.inputs == [c] and x.users == [c]
    with g.inserting_after(x):
        d = g.add_const(5)
        e = g.add_op(operator.mul, x, d)
    assert g.nodes[1:3] == [d, e]
    g.lint()


def test_default_meta_and_unpack():
    g = Graph(["pair"])
    with g.default_meta(line=42, file="prog.py"):
        a, b = g.unpack(g.inputs[0], 2)
    assert a.meta == {"line": 42, "file": "prog.py"} and a.name == "pair_0"
    assert b.args == (g.inputs[0], 1)


def test_str_reads_like_code():
    g = build_pipeline()
    text = str(g)
    assert text.splitlines()[0] == "pipeline(path, factor=3):"
    assert "%data = task load_data(%path)  # line 10" in text
    assert "%scaled = task scale(%data, factor=%factor)" in text
    assert "%getitem = op getitem(%scaled, 0)" in text
    assert "output {'sum': %s, 'both': %add, 'pair': (%getitem, 7)}" in text
    h = Graph(["x"])
    h.add_task(light, (h.inputs[0],), effectful=True)
    h.add_call(print, (h.inputs[0],))
    h.add_call(abs, (h.inputs[0],), effectful=False)
    text = str(h)
    assert "task light(%x) [num_cpus=0.5, retries=1; effectful]" in text
    name = print.__name__  # a Ray session in the same process replaces print
    assert f"%{name} = call {name}(%x)\n" in text + "\n"
    assert "call abs(%x) [pure]" in text


def test_show_prints(capsys):
    g = build_pipeline()
    g.show()
    assert capsys.readouterr().out.strip() == str(g)


def test_copy_is_independent_and_equivalent():
    g = control_flow_graph()
    h = g.copy()
    assert g.equivalent(h, names=True, meta=True)
    assert all(a is not b for a, b in zip(g.nodes, h.nodes, strict=True))
    h.add_op(operator.neg, h.inputs[0])
    assert not g.equivalent(h)
    assert "nodes against" in g.difference(h)


def test_equivalent_spots_differences():
    g = build_pipeline()
    h = build_pipeline()
    assert g.equivalent(h)
    h.node("getitem").args = (h.node("scaled"), 1)
    assert g.difference(h) == "%getitem: arguments differ"
    h = build_pipeline()
    h.node("s").options = light.task_options
    assert "options" in g.difference(h)


def test_map_arg_and_namedtuples():
    g = Graph(["x"])
    x = g.inputs[0]
    p = g.add_op(tuple, Point(x, 2))
    assert p.inputs == [x]
    from plait.graph import map_arg

    assert map_arg(Point(x, [x, {"k": x}]), lambda n: 1) == Point(1, [1, {"k": 1}])
    value = [1, (2, 3)]
    assert map_arg(value, lambda n: 0) is value  # nothing to replace: the same object


# ----------------------------------------------------------------------------- control flow graphs


def control_flow_graph() -> Graph:
    """collatz-ish: while n != 1 (counting steps), with an if inside the body."""
    cond = Graph(["n", "steps"], name="cond")
    cond.set_output(cond.add_op(operator.ne, cond.inputs[0], 1))

    body = Graph(["n", "steps"], name="body")
    n, steps = body.inputs
    is_even = body.add_op(operator.eq, body.add_op(operator.mod, n, 2), 0)
    even = Graph(["n"], name="even")
    even.set_output(even.add_op(operator.floordiv, even.inputs[0], 2))
    odd = Graph(["n"], name="odd")
    odd.set_output(odd.add_task(light, (odd.add_op(operator.mul, odd.inputs[0], 3),)))
    nxt = body.add_if(is_even, even, odd, [n], meta={"var": "n", "line": 5})
    body.set_output((nxt, body.add_op(operator.add, steps, 1)))

    g = Graph(["start"], name="collatz")
    loop = g.add_while(cond, body, [g.inputs[0], 0], meta={"line": 3})
    final, count = g.unpack(loop, 2)
    g.set_output({"final": final, "steps": count})
    return g


def test_control_flow_prints_nested():
    text = str(control_flow_graph())
    assert "%loop = while with (%start, 0)  # line 3" in text
    assert "        cond(n, steps):" in text
    assert "            %n_1 = if %eq with (%n)  # line 5" in text
    assert "                then(n):" in text and "                orelse(n):" in text


# ----------------------------------------------------------------------------- JSON


def test_json_document_shape():
    g = build_pipeline()
    doc = json.loads(g.to_json())
    assert doc["format"] == "plait.graph" and doc["version"] == 1
    nodes = {n["name"]: n for n in doc["graph"]["nodes"]}
    assert nodes["data"]["target"] == {"ref": "tests.test_graph:load_data"}
    assert nodes["data"]["args"] == [{"node": "path"}]
    assert nodes["scaled"]["kwargs"] == {"factor": {"node": "factor"}}
    assert nodes["getitem"]["target"] == {"ref": "_operator:getitem"}
    assert nodes["factor"]["default"] == 3
    assert nodes["data"]["meta"] == {"var": "data", "line": 10}
    assert nodes["output"]["args"][0] == {
        "dict": [
            ["sum", {"node": "s"}],
            ["both", {"node": "add"}],
            ["pair", {"tuple": [{"node": "getitem"}, 7]}],
        ]
    }


def test_json_round_trip_by_reference(tmp_path):
    g = build_pipeline()
    path = tmp_path / "g.json"
    g.save(path)
    h = load(path)
    assert g.equivalent(h, names=True, meta=True), g.difference(h, names=True, meta=True)
    assert h.node("data").target is load_data  # imported: the very same task
    assert h.node("getitem").target is operator.getitem
    assert h.to_json() == g.to_json()


def test_json_round_trip_by_value_and_constants():
    factor = 4
    lock_free_state = {"offset": 1}

    @plait.task
    def closure_task(x):
        return x * factor + lock_free_state["offset"]

    g = Graph(["x"], name="values")
    x = g.inputs[0]
    consts = [
        None, True, 3, -2.5, "text", [1, [2, "a"]], (1, (2,)), {"a": 1, 2: "b", (3, 4): None},
        {1, 2}, b"\x00\xff", 3 + 4j, math.inf, -math.inf, Point(1, 2), slice(1, None, 2),
        frozenset({"z"}), bytearray(b"ab"),
    ]  # fmt: skip
    nodes = [g.add_const(c) for c in consts]
    nan = g.add_const(float("nan"))
    t = g.add_task(
        closure_task, (x,), options={"num_cpus": 0.25, "resources": {"db": 1}, "retry_exceptions": KeyError}
    )
    lam = g.add_op(lambda v, k: v + k, t, 1, name="plus")
    sliced = g.add_op(operator.getitem, nodes[5], slice(x, None))
    called = g.add_call(helper, (lam,), {"y": x}, effectful=False)
    g.set_output([t, lam, sliced, called, nodes, Point(t, {"deep": [lam, (x,)]}), g.add_op(math.isnan, nan)])

    text = g.to_json()
    doc = json.loads(text)
    by_name = {n["name"]: n for n in doc["graph"]["nodes"]}
    assert "pickle" in by_name["closure_task"]["target"]  # a closure travels by value
    assert "pickle" in by_name["plus"]["target"]
    assert by_name["helper"]["target"] == {"ref": "tests.test_graph:helper"}
    assert by_name["helper"]["effectful"] is False

    with pytest.raises(GraphFormatError, match="is a pickled object, and unpickling runs code"):
        Graph.from_json(text)  # by-value parts load only from a file the caller trusts
    h = Graph.from_json(text, trusted=True)
    assert g.equivalent(h, names=True, meta=True), g.difference(h, names=True, meta=True)
    loaded = [n.target for n in h.nodes if n.op == "const"]
    for a, b in zip(consts, loaded, strict=False):
        assert type(a) is type(b) and a == b
    assert math.isnan(h.node("const_17").target)
    assert h.node("closure_task").options == g.node("closure_task").options
    with plait.init(engine="inline", resources={"db": 1}):
        result = plait.run(h, 2)
        assert result == plait.run(g, 2)
        assert result[:4] == [9, 10, [], 102] and result[4] == consts
        assert result[5] == Point(9, {"deep": [10, (2,)]}) and result[6] is True


def test_json_round_trip_control_flow(tmp_path):
    g = control_flow_graph()
    g.save(tmp_path / "cf.json")
    h = load(tmp_path / "cf.json")
    assert g.equivalent(h, names=True, meta=True), g.difference(h, names=True, meta=True)
    with plait.init(engine="inline"):
        assert h.run(6) == g.run(6) == {"final": 1, "steps": 8}


def test_json_rejects_unknown_versions_and_garbage(tmp_path):
    doc = json.loads(build_pipeline().to_json())
    doc["version"] = 2
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(GraphFormatError, match="version 2 is not supported.*reads version 1"):
        load(path)
    with pytest.raises(GraphFormatError, match="not a plait graph"):
        Graph.from_json('{"format": "other", "version": 1}')
    with pytest.raises(GraphFormatError, match="not JSON"):
        Graph.from_json("{nope")
    doc["version"] = 1
    doc["graph"]["nodes"][2]["target"] = {"ref": "tests.no_such_module:f"}
    with pytest.raises(GraphFormatError, match="cannot import 'tests.no_such_module:f'"):
        Graph.from_json(doc)
    doc = json.loads(build_pipeline().to_json())
    doc["graph"]["nodes"][2]["args"] = [{"node": "later"}]
    with pytest.raises(GraphFormatError, match="not an earlier node"):
        Graph.from_json(doc)


def test_saving_an_unpicklable_constant_names_the_node():
    g = Graph()
    g.set_output(g.add_const(threading.Lock(), meta={"var": "lock"}))
    with pytest.raises(plait.SerializationError, match="node %lock"):
        g.to_json()


def test_meta_that_cannot_be_saved_is_left_out():
    g = Graph(["x"])
    g.set_output(g.add_op(operator.neg, g.inputs[0], meta={"line": 1, "lock": threading.Lock()}))
    h = Graph.from_json(g.to_json())
    assert h.node("neg").meta == {"line": 1}


# ----------------------------------------------------------------------------- pictures


def test_to_dot_has_nodes_edges_and_clusters():
    dot = build_pipeline().to_dot()
    assert dot.startswith('digraph "pipeline" {')
    assert '"data" [label="%data\\ntask load_data\\nline 10"' in dot
    assert '"path" -> "data";' in dot
    assert '"scaled" -> "getitem";' in dot
    assert '"add" -> "output";' in dot
    cf = control_flow_graph().to_dot()
    assert 'subgraph "cluster_loop.body" {' in cf
    assert 'subgraph "cluster_loop.body.n_1.then" {' in cf
    assert '"loop.body/n" -> "loop.body/n_1";' in cf  # the if reads the body's input
    assert '"loop.body/output" -> "loop" [style=dashed, label="body"];' in cf


def test_to_html_is_self_contained_and_names_nodes():
    page = control_flow_graph().to_html()
    assert page.startswith("<!DOCTYPE html>")
    assert "http" not in page and "<script" not in page and "<link" not in page
    for name in ("%start", "%loop", "%n_1", "%floordiv", "%light"):
        assert name in page
    assert page.count("<svg") == 5  # the graph, the cond and body of the loop, the two branches
    assert "task light" in page
    fragment = build_pipeline()._repr_html_()
    assert fragment.startswith('<div class="plait-graph">') and "%scaled" in fragment


def test_to_svg_needs_dot():
    g = build_pipeline()
    if shutil.which("dot") is None:
        with pytest.raises(RuntimeError, match="to_html"):
            g.to_svg()
        assert g._repr_svg_() is None
        pytest.skip("Graphviz's dot is not installed: the SVG itself is not checked")
    svg = g.to_svg()
    assert "<svg" in svg and "load_data" in svg


def test_node_repr_and_graph_repr():
    g = build_pipeline()
    assert repr(g.node("data")) == "%data"
    assert repr(g) == "<plait.graph.Graph 'pipeline': 8 nodes, 3 tasks>"
    assert isinstance(g.nodes[0], Node)


def test_call_method_helper_saves_by_reference():
    g = Graph(["xs"])
    g.add_call(call_method, (g.inputs[0], "append", 1))
    g.set_output(g.inputs[0])
    doc = json.loads(g.to_json())
    assert doc["graph"]["nodes"][1]["target"] == {"ref": "plait.graph.ops:call_method"}


def test_node_references_in_unsupported_containers_fail_clearly():
    g = Graph(["x"])
    g.set_output(g.add_op(len, {g.inputs[0]}))  # a set is not walked for node references
    with pytest.raises(plait.SerializationError, match="build other containers with an op"):
        g.to_json()


def test_plait_exports_graph_lazily():
    import subprocess
    import sys

    code = (
        "import sys, plait; assert 'plait.graph' not in sys.modules; "
        "import plait.graph; assert plait.Graph is plait.graph.Graph and plait.run is plait.graph.run; "
        "assert 'numpy' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
