"""plait.trace: capture a @parallel function's graph without running tasks; run it anywhere."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import plait
from tests import parallel_corpus as corpus


def test_trace_runs_no_task_and_records_nodes():
    with plait.init(engine="inline") as session:
        graph = plait.trace(corpus.accumulate)(4)
        assert session.engine.timeline_events() == []  # nothing ran
    ops = [n.op for n in graph.nodes]
    assert ops.count("task") == 4 and ops.count("op") == 4
    assert ops[0] == "input" and ops[-1] == "output"
    task = next(n for n in graph.nodes if n.op == "task")
    assert task.meta["line"] > 0 and task.meta["file"].endswith("parallel_corpus.py")
    text = str(graph)
    assert "task work(0)" in text and "output" in text


@pytest.mark.parametrize("engine_name", ["inline", "local"])
def test_traced_graph_runs_to_the_same_result(engine_name):
    for program, args in [(corpus.accumulate, (5,)), (corpus.append_then_sum, (4,)), (corpus.dict_updates, (["a", "bb"],))]:
        graph = plait.trace(program)(*args)
        with plait.init(engine="inline"):
            expected = program(*args)
        assert plait.run(graph, engine=engine_name) == expected


def test_graph_json_round_trip(tmp_path):
    graph = plait.trace(corpus.nested_loops)(2)
    path = tmp_path / "g.plait.json"
    graph.save(str(path))
    assert json.load(open(path))["format"] == "plait.graph"
    loaded = plait.graph.load(str(path))
    assert plait.run(loaded, engine="inline") == plait.run(graph, engine="inline")


def test_inputs_are_nodes_and_marked_when_specialized():
    graph = plait.trace(corpus.accumulate)(3)
    (n,) = [node for node in graph.nodes if node.op == "input"]
    assert n.target == "n" and n.meta.get("specialized")  # range(n) inspected it
    graph = plait.trace(corpus.passes_futures_to_tasks)(2)
    (x,) = [node for node in graph.nodes if node.op == "input"]
    assert not x.meta.get("specialized")
    assert plait.run(graph, 5, engine="inline") == plait.run(plait.trace(corpus.passes_futures_to_tasks)(5), engine="inline")


def test_control_flow_on_results_is_refused_with_the_line():
    with pytest.raises(plait.TraceError, match=r"parallel_corpus.py:\d+: this line needs the value"):
        plait.trace(corpus.if_then_independent)(2)


def test_plait_graph_command(tmp_path):
    script = tmp_path / "pipeline.py"
    script.write_text(
        textwrap.dedent(
            """
            import plait

            @plait.task
            def double(x):
                return 2 * x

            def pipeline(values):
                total = 0
                for v in values:
                    total += double(v)
                return total
            """
        )
    )
    out = tmp_path / "g.json"
    result = subprocess.run(
        [sys.executable, "-m", "plait", "graph", f"{script}:pipeline", "[1, 2, 3]", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    graph = plait.graph.load(str(out), trusted=True)  # the script's tasks travel by value
    assert sum(1 for n in graph.nodes if n.op == "task") == 3
    shown = subprocess.run(
        [sys.executable, "-m", "plait", "graph", f"{script}:pipeline", "[1]"], capture_output=True, text=True, timeout=120
    )
    assert "task double(1)" in shown.stdout


def test_capture_records_task_api_calls_as_a_graph():
    with plait.capture() as cap:
        a = corpus.work(1)
        b = corpus.work(a)
        both = corpus.record([a, b])
    graph = cap.graph({"both": both, "b": b})
    tasks = [n for n in graph.nodes if n.op == "task"]
    assert [n.target.name for n in tasks] == ["work", "work", "record"]
    assert tasks[1].args[0] is tasks[0]  # the future passed on became an edge
    assert tasks[0].meta["file"].endswith("test_trace.py")
    with plait.init(engine="inline"):
        expected = {"both": corpus.record([2, 4]).result(), "b": 4}
    assert plait.run(graph, engine="local") == expected


def test_capture_refuses_to_give_values():
    with pytest.raises(plait.TraceError, match="capture"):
        with plait.capture():
            corpus.work(1).result()
