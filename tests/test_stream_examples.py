"""The dataflow examples in ``examples/stream``: run as scripts, and their functions
checked against plain Python and networkx on random inputs, on worker processes."""

from __future__ import annotations

import importlib
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import networkx as nx
import pytest

EXAMPLES = Path(__file__).parent.parent / "examples" / "stream"


def load(name: str):
    """The example as a module; its functions travel to the workers by value (the
    workers cannot import it by name: ``examples`` is no package)."""
    import cloudpickle

    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))  # incremental_components imports components, as its script does
    module = importlib.import_module(name)
    for loaded in (module, sys.modules.get("components")):
        if loaded is not None:
            cloudpickle.register_pickle_by_value(loaded)
    return module


@pytest.mark.parametrize("name", ["wordcount", "components", "pagerank", "incremental_components"])
def test_the_example_runs_as_a_script(name):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--workers", "2"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_word_counts_by_epoch_equal_counter(local):
    rng = random.Random(0)
    vocabulary = ["a", "bb", "c", "dd", "e", "f"]
    epochs = [[" ".join(rng.choices(vocabulary, k=rng.randint(0, 8))) for _ in range(rng.randint(0, 5))] for _ in range(6)]
    got = load("wordcount").word_counts(epochs, workers=2)
    want = {e: dict(Counter(w for line in lines for w in line.split())) for e, lines in enumerate(epochs)}
    assert got == {e: c for e, c in want.items() if c}


def smallest_of_component(graph):
    return {v: min(c) for c in nx.connected_components(graph) for v in c}


@pytest.mark.parametrize("seed", range(3))
def test_components_equal_networkx(local, seed):
    example = load("components")
    rng = random.Random(seed)
    nodes, edges = example.random_graph(rng.randint(1, 300), rng.randint(0, 400), seed=seed)
    graph = nx.Graph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    assert example.components(nodes, edges, workers=2) == smallest_of_component(graph)


def test_pagerank_equals_networkx(local):
    example = load("pagerank")
    nodes, edges = example.random_graph(120, seed=3)
    want = nx.pagerank(nx.DiGraph(edges), alpha=example.DAMPING, tol=1e-13, max_iter=1000)
    got = example.pagerank(nodes, edges, workers=2)
    assert set(got) == set(want)
    assert max(abs(got[n] - want[n]) for n in want) < 1e-6


def test_incremental_components_follow_the_growing_graph(local):
    rng = random.Random(5)
    batches = [[(rng.randrange(40), rng.randrange(40)) for _ in range(rng.randint(1, 8))] for _ in range(6)]
    got = load("incremental_components").growing_components(batches, workers=2)
    graph = nx.Graph()
    for epoch, batch in enumerate(batches):
        graph.add_edges_from(batch)
        assert got[epoch] == smallest_of_component(graph), epoch
