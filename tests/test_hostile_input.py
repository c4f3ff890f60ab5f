"""Bad input gets a clear error, promptly, and the engine keeps working (checked by a
task run afterwards): stale futures, bad options, hostile graph files."""

from __future__ import annotations

import json
import math
import operator
import os
import subprocess
import sys
import textwrap

import pytest

import plait
from plait.graph import Graph, GraphFormatError
from plait.runtime.context import current_engine


@plait.task
def ident(x):
    return x


@pytest.mark.parametrize("name", ["inline", "local"])
def test_a_future_kept_from_an_engine_shut_down_is_refused_by_the_next(name):
    with plait.init(engine=name, workers=1):
        old = ident("the old engine's value")
        assert old.result() == "the old engine's value"
    with plait.init(engine=name, workers=1):
        new = ident("the new engine's value")  # the same id as the old one: ids restart at 1
        assert new.id == old.id
        for passed in (old, [old], {"k": old}):
            with pytest.raises(plait.PlaitError, match=f"belongs to another {name} engine .*shut down"):
                ident(passed)
        assert ident(new).result() == "the new engine's value"


@plait.actor
class Box:
    def __init__(self, label):
        self.label = label

    def get(self):
        return self.label


@pytest.mark.parametrize("name", ["inline", "local"])
def test_an_actor_handle_kept_from_an_engine_shut_down_is_refused_by_the_next(name):
    with plait.init(engine=name, workers=1):
        old = Box("the old engine's actor")
        assert old.get().result() == "the old engine's actor"
    with plait.init(engine=name, workers=1):
        new = Box("the new engine's actor")  # the same id as the old one
        assert new._actor_id == old._actor_id
        with pytest.raises(plait.PlaitError, match="belongs to another engine .*Create the actor again"):
            old.get()
        with pytest.raises(plait.PlaitError, match="belongs to another engine"):
            plait.kill(old)
        assert new.get().result() == "the new engine's actor"  # neither reached nor killed


NAN, INF = math.nan, math.inf
BAD_TASK_OPTIONS = [
    {"num_cpus": NAN}, {"num_cpus": INF}, {"num_cpus": -1}, {"num_cpus": "2"}, {"num_cpus": True},
    {"num_gpus": NAN}, {"num_gpus": -0.5}, {"num_gpus": 1.5},
    {"memory": NAN}, {"memory": -1}, {"memory": "1G"},
    {"resources": {"db": NAN}}, {"resources": {"db": -1}}, {"resources": {1: 1}}, {"resources": [("db", 1)]},
    {"resources": {"CPU": 1}},
    {"timeout": 0}, {"timeout": NAN}, {"timeout": -1}, {"timeout": INF}, {"timeout": "5"},
    {"retries": True}, {"retries": -1}, {"retries": 1.5}, {"retries": NAN},
    {"num_returns": True}, {"num_returns": -1},
    {"retry_exceptions": "ValueError"}, {"retry_exceptions": [ValueError, "x"]},
    {"name": 3}, {"name": ""},
    {"runtime_env": {}},
]
BAD_ACTOR_OPTIONS = [
    {"num_cpus": NAN}, {"num_gpus": INF}, {"memory": -1}, {"resources": {"db": NAN}},
    {"max_restarts": True}, {"max_restarts": -1}, {"max_concurrency": 0}, {"max_concurrency": True},
    {"max_concurrency": 2.0}, {"name": 5}, {"get_if_exists": "yes"}, {"lifetime": "detached"},
]
BAD_INIT_OPTIONS = [
    {"workers": 0}, {"workers": True}, {"workers": 2.5}, {"workers": "4"},
    {"num_cpus": NAN}, {"num_cpus": 0}, {"num_cpus": -2}, {"num_cpus": INF},
    {"num_gpus": -1}, {"num_gpus": 1.5}, {"num_gpus": NAN},
    {"memory": NAN}, {"memory": 0}, {"object_store_memory": -1}, {"object_store_memory": INF},
    {"resources": {"db": NAN}}, {"resources": "db"}, {"spill_dir": 3},
    {"runtime_env": {}},
]


def _label(options):
    return repr(options)


@pytest.mark.parametrize("bad", BAD_TASK_OPTIONS, ids=_label)
def test_a_bad_task_option_is_refused_where_it_is_given(local, bad):
    with pytest.raises((TypeError, ValueError)) as info:
        ident.options(**bad)
    assert str(next(iter(bad))) in str(info.value)  # the message names the option
    with pytest.raises((TypeError, ValueError)):
        plait.task(**bad)(lambda x: x)
    assert ident(1).result() == 1  # the engine goes on


@pytest.mark.parametrize("bad", BAD_ACTOR_OPTIONS, ids=_label)
def test_a_bad_actor_option_is_refused_where_it_is_given(local, bad):
    with pytest.raises((TypeError, ValueError)) as info:
        Box.options(**bad)
    assert str(next(iter(bad))) in str(info.value)
    assert Box("fine").get().result() == "fine"


@pytest.mark.parametrize("bad", BAD_INIT_OPTIONS, ids=_label)
def test_a_bad_init_option_is_refused_before_an_engine_starts(bad):
    with pytest.raises((TypeError, ValueError)) as info:
        plait.init(engine="local", **bad)
    assert str(next(iter(bad))) in str(info.value)
    assert not plait.is_initialized()


@pytest.mark.parametrize("bad", [{"num_cpus": NAN}, {"timeout": 0}, {"retries": True}, {"resources": {"db": INF}}], ids=_label)
def test_a_graph_file_with_a_bad_option_is_refused_on_load(tmp_path, bad):
    import json

    from plait.graph.serialize import encode_value

    g = Graph(["x"])
    g.set_output(g.add_task(ident, (g.inputs[0],)))
    path = tmp_path / "g.json"
    g.save(path)
    data = json.loads(path.read_text())
    task = next(n for n in data["graph"]["nodes"] if n["op"] == "task")
    task["options"] = {key: encode_value(value, key) for key, value in bad.items()}
    path.write_text(json.dumps(data))
    with pytest.raises(GraphFormatError, match="bad task options"):
        plait.graph.load(path)


# ----------------------------------------------------------------------------- hostile graph files


def _document(nodes, meta=None):
    graph = {"name": "hostile", "nodes": nodes}
    if meta is not None:
        graph["meta"] = meta
    return {"format": "plait.graph", "version": 1, "python": "3.11", "graph": graph}


def _runs_system(marker):
    return {"namedtuple": {"ref": "os:system"}, "items": [f"touch {marker}"]}


@pytest.mark.parametrize("where", ["const", "meta", "graph meta", "argument"])
def test_a_graph_file_cannot_make_loading_call_a_function(tmp_path, where):
    marker = tmp_path / "ran"
    payload = _runs_system(marker)
    nodes = [{"name": "c", "op": "const", "target": payload if where == "const" else 1}]
    if where == "meta":
        nodes[0]["meta"] = {"line": payload}
    if where == "argument":
        nodes.append({"name": "t", "op": "task", "target": {"ref": "tests.test_hostile_input:ident"}, "args": [payload]})
    nodes.append({"name": "out", "op": "output", "args": [{"node": "c"}]})
    doc = _document(nodes, meta={"x": payload} if where == "graph meta" else None)
    for trusted in (False, True):  # even a trusted file builds only real named tuples
        with pytest.raises(plait.graph.GraphFormatError, match="os:system|not a named tuple type"):
            plait.graph.from_json(json.dumps(doc), trusted=trusted)
    assert not marker.exists()


@pytest.mark.parametrize(
    "op, target, args",
    [
        ("op", "builtins:eval", ["1 + 1"]),
        ("call", "builtins:open", ["/etc/passwd"]),
        ("call", "os:system", ["true"]),
        ("op", "operator:methodcaller", ["system"]),
        ("op", "operator:attrgetter", ["__class__"]),
        ("op", "subprocess:run", [["true"]]),
        ("task", "operator:add", [1, 2]),
        ("op", "os:path", []),
    ],
)
def test_a_graph_file_may_name_only_tasks_and_listed_functions(op, target, args):
    doc = _document([
        {"name": "x", "op": op, "target": {"ref": target}, "args": args},
        {"name": "out", "op": "output", "args": [{"node": "x"}]},
    ])
    with pytest.raises(plait.graph.GraphFormatError, match="trusted=True|must be a plait task"):
        plait.graph.from_json(json.dumps(doc))


@pytest.mark.parametrize("name", ["__class__", "_private", {"node": "s"}])
@pytest.mark.parametrize("target", ["builtins:getattr", "plait.graph.ops:call_method"])
def test_a_graph_file_reaches_only_public_attributes_named_by_constants(target, name):
    doc = _document([
        {"name": "s", "op": "const", "target": "text"},
        {"name": "a", "op": "op", "target": {"ref": target}, "args": [{"node": "s"}, name]},
        {"name": "out", "op": "output", "args": [{"node": "a"}]},
    ])
    with pytest.raises(plait.graph.GraphFormatError, match="must name a public attribute with a constant"):
        plait.graph.from_json(json.dumps(doc))


def test_a_pickle_in_a_graph_file_loads_only_when_the_caller_trusts_it(tmp_path):
    g = Graph(["x"])
    g.set_output(g.add_op(lambda v: v * 3, g.inputs[0]))  # a lambda travels pickled
    path = tmp_path / "g.json"
    g.save(path)
    with pytest.raises(plait.graph.GraphFormatError, match="pickled object, and unpickling runs code.*trusted=True"):
        plait.graph.load(path)
    with plait.init(engine="inline"):
        assert plait.run(plait.graph.load(path, trusted=True), 2) == 6


def test_a_graph_of_tasks_and_listed_functions_loads_and_runs_untrusted(tmp_path):
    g = Graph(["words"])
    lengths = g.add_op(list, g.add_op(map, len, g.inputs[0]))
    total = g.add_task(ident, (g.add_op(sum, lengths),))
    upper = g.add_call(call_method_ref(), (g.add_op(operator.getitem, g.inputs[0], 0), "upper"), effectful=False)
    g.set_output([total, upper, g.add_op(getattr, "abc", "upper")])
    path = tmp_path / "g.json"
    g.save(path)
    loaded = plait.graph.load(path)
    with plait.init(engine="inline"):
        total_value, upper_value, method = plait.run(loaded, ["ab", "cde"])
    assert (total_value, upper_value, method()) == (5, "AB", "ABC")


def call_method_ref():
    from plait.graph.ops import call_method

    return call_method


# ----------------------------------------------------------------------------- the working directory


def test_workers_do_not_import_what_is_planted_in_the_directory_a_script_runs_from(tmp_path):
    planted, app = tmp_path / "downloads", tmp_path / "app"
    planted.mkdir()
    app.mkdir()
    (planted / "socket.py").write_text(textwrap.dedent("""
        import os
        open(os.path.join(os.path.dirname(__file__), "RAN"), "w").write(str(os.getpid()))
        raise SystemExit("a planted socket.py ran")
    """))
    (app / "main.py").write_text(textwrap.dedent("""
        import plait

        @plait.task
        def inc(x):
            return x + 1

        with plait.init(engine="local", workers=2):
            print(plait.get([inc(i) for i in range(4)]))
    """))
    done = subprocess.run(
        [sys.executable, str(app / "main.py")], cwd=planted, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[1, 2, 3, 4]"
    assert not (planted / "RAN").exists()


# ----------------------------------------------------------------------------- full disks

FULL_STORE_DRIVER = """
import json, sys
import numpy as np
import plait
from plait.runtime.context import current_engine

@plait.task
def make(n):
    return np.ones(n)

@plait.task
def total(a):
    return float(a.sum())

out = {}
with plait.init(engine="local", workers=2, object_store_memory=2_000_000, spill_dir=sys.argv[1]):
    kept, failures = [], []
    for _ in range(12):  # 2.4 MB each: memory over its limit, then the spill disk, then /dev/shm
        try:
            kept.append(plait.put(np.ones(300_000)))
        except plait.ObjectStoreFullError as exc:
            failures.append(str(exc))
    out["stored"], out["put_error"] = len(kept), failures[:1]
    try:
        make(300_000).result(timeout=60)
        out["task_error"] = None
    except plait.ObjectStoreFullError as exc:
        out["task_error"] = str(exc)
    out["sums"] = [total(f).result(timeout=60) for f in kept[:2]]  # nothing stored was lost
    for f in kept:
        f.release()
    out["after"] = total(make(300_000)).result(timeout=60)  # the engine goes on
print(json.dumps(out))
"""


def test_full_shared_memory_and_spill_disk_fail_the_work_that_needs_them_and_nothing_else(tmp_path):
    import shutil

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to mount small file systems in a namespace of its own")
    spill = tmp_path / "spill"
    spill.mkdir()
    (tmp_path / "driver.py").write_text(FULL_STORE_DRIVER)
    # a mount namespace of this test's own: an 8 MB /dev/shm and a 4 MB spill disk
    script = (
        f"mount -t tmpfs -o size=8m tmpfs /dev/shm && mount -t tmpfs -o size=4m tmpfs {spill} && "
        f"exec {sys.executable} {tmp_path / 'driver.py'} {spill}"
    )
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["stored"] >= 3  # memory, then the spill disk, then what /dev/shm holds
    (put_error,) = out["put_error"]
    assert "cannot store a value of 2,400," in put_error and "are both full" in put_error
    assert "Future.release()" in put_error and "spill_dir" in put_error
    assert out["task_error"] is not None and "are both full" in out["task_error"]
    assert out["sums"] == [300_000.0, 300_000.0]
    assert out["after"] == 300_000.0
    assert "cannot spill to" in done.stderr  # said once when the spill disk filled


# ----------------------------------------------------------------------------- errors that say what happened


@plait.task
def big_value(n):
    return bytes(n)


def test_a_value_read_after_its_engine_shut_down_says_so():
    with plait.init(engine="local", workers=1):
        kept = big_value(1_000_000)  # a store file, not inline in the message
        plait.wait([kept])
    with pytest.raises(plait.PlaitError, match="its engine was shut down before the value was read"):
        kept.result()


@plait.task
def down(n):
    return 0 if n == 0 else plait.get(down(n - 1)) + 1


def test_a_chain_of_waits_too_deep_fails_with_a_short_error_naming_its_depth(local):
    assert down(20).result(timeout=120) == 20
    with pytest.raises(plait.PlaitError, match=r"would be call 101 of a chain of calls that each wait") as info:
        down(400).result(timeout=300)
    assert len(str(info.value)) < 2_000
    workers = current_engine().stats()["workers"]
    assert workers <= 2 + 16  # workers started for blocked ones are bounded
    assert down(5).result(timeout=60) == 5  # and the engine goes on


def ping(n):
    return pong(n + 1)


def pong(n):
    return ping(n + 1)  # two functions in turn: Python cannot fold the frames into one line


@plait.task
def recurse(n):
    return ping(n)


def test_a_remote_traceback_thousands_of_frames_long_is_cut_to_its_two_ends(local):
    with pytest.raises(RecursionError) as info:
        recurse(0).result(timeout=60)
    remote = str(info.value.__cause__)
    assert "lines left out" in remote and len(remote) < 25_000
    assert "in recurse" in remote and "maximum recursion depth exceeded" in remote  # both ends


def test_the_ray_span_directory_is_used_only_when_private_and_ours(tmp_path, monkeypatch):
    import tempfile

    from plait.engines import ray as ray_engine

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the predictable name, in a place of the test's
    base = ray_engine._span_dir()
    assert ray_engine._span_dir_is_ours() and os.stat(base).st_mode & 0o777 == 0o700
    os.chmod(base, 0o777)  # open to others: they could plant span files
    assert not ray_engine._span_dir_is_ours()
    os.chmod(base, 0o700)
    if os.geteuid() == 0:
        os.chown(base, 65534, 65534)  # made by another user first
        assert not ray_engine._span_dir_is_ours()
        os.chown(base, 0, 0)
    os.rmdir(base)
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    os.symlink(tmp_path / "elsewhere", base)  # a link planted under the name
    assert not ray_engine._span_dir_is_ours()
    assert ray_engine._read_spans("some-token", remove=False) == {}


def test_a_malformed_graph_file_is_refused_not_misread():
    def doc(nodes):
        return json.dumps(_document(nodes))

    with pytest.raises(GraphFormatError, match="args must be a list and kwargs an object, got dict"):
        plait.graph.from_json(doc([
            {"name": "x", "op": "op", "target": {"ref": "builtins:len"}, "args": {"a": 1}},
            {"name": "out", "op": "output", "args": [{"node": "x"}]},
        ]))
    with pytest.raises(GraphFormatError, match="the graph has no output node"):
        plait.graph.from_json(doc([{"name": "x", "op": "const", "target": 1}]))
    g = Graph()
    g.add_task(ident, (1,))
    with pytest.raises(plait.graph.GraphError, match="has no output node, so running it would give None"):
        plait.run(g, engine="inline")


def test_plait_run_runs_a_graph_file_and_prints_its_result(tmp_path):
    g = Graph(["x"])
    g.set_output(g.add_task(ident, (g.add_op(operator.mul, g.inputs[0], 3),)))
    g.save(tmp_path / "tasks.json")
    lam = Graph(["x"])
    lam.set_output(lam.add_op(lambda v: v + 1, lam.inputs[0]))
    lam.save(tmp_path / "lambda.json")

    def plait_run(*args):
        return subprocess.run(
            [sys.executable, "-m", "plait", "run", *args], capture_output=True, text=True, timeout=120,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )  # fmt: skip

    done = plait_run(str(tmp_path / "tasks.json"), "--engine", "inline", "--", "14")
    assert done.returncode == 0 and done.stdout.strip() == "42", done.stderr
    refused = plait_run(str(tmp_path / "lambda.json"), "--engine", "inline", "--", "1")
    assert refused.returncode == 2 and "unpickling runs code" in refused.stderr
    trusted = plait_run(str(tmp_path / "lambda.json"), "--trusted", "--engine", "inline", "--", "1")
    assert trusted.returncode == 0 and trusted.stdout.strip() == "2", trusted.stderr


@plait.task
def returns_a_lock():
    import threading

    return threading.Lock()


class PicklingRaises:
    def __reduce__(self):
        raise RuntimeError("this object refuses to be pickled")


@pytest.mark.parametrize("name", ["inline", "local"])
def test_unpicklable_arguments_and_results_get_clear_errors_and_the_engine_goes_on(name):
    import threading

    with plait.init(engine=name, workers=1):
        with pytest.raises(plait.SerializationError, match="cannot send argument 0 of 'ident'.*_thread.lock"):
            ident(threading.Lock())
        with pytest.raises(plait.SerializationError, match="argument 'x'.*refuses to be pickled"):
            ident(x=PicklingRaises())
        with pytest.raises(plait.SerializationError, match="cannot put a value|cannot be pickled"):
            plait.put([PicklingRaises()])
        with pytest.raises(plait.SerializationError, match="returned a value of type _thread.lock that cannot be pickled"):
            returns_a_lock().result(timeout=60)
        assert ident(41).result(timeout=60) == 41
