"""plait.stream: word count by epoch against Bytewax and a single-threaded Counter (the
COST baseline), per-epoch latency, and connected components against networkx and a
plain-Python union-find, in one run.

Word count: ``--words`` words in lines of 10 from a Zipf-like vocabulary of 50,000,
split over ``--epochs`` epochs; every system gives the same counts per epoch, checked.
Bytewax runs in its own process per run (``bytewax.testing.run_main``, one worker);
plait with 1 worker (in this process) and 2 workers (actor processes).

Latency: epochs of 10 records on one worker, the time from ``advance_to(e + 1)`` to
``probe.done(e)``.

Components: a random graph of ``--nodes`` nodes and ``--edges`` edges.

    .venv/bin/python benchmarks/stream_wordcount.py --words 2000000 --repeat 3
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import plait
from plait import stream

CHUNK = 1000  # lines per send


def generate(words: int, epochs: int) -> list[list[str]]:
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(50_000)]
    weights = [1 / (i + 1) for i in range(len(vocabulary))]
    drawn = rng.choices(vocabulary, weights, k=words)
    lines = [" ".join(drawn[i : i + 10]) for i in range(0, len(drawn), 10)]
    per = -(-len(lines) // epochs)
    return [lines[i : i + per] for i in range(0, len(lines), per)]


def counter(epochs: list[list[str]]) -> dict:
    out = {}
    for epoch, lines in enumerate(epochs):
        counts: collections.Counter = collections.Counter()
        for line in lines:
            counts.update(line.split())
        out[epoch] = dict(counts)
    return out


def plait_stream(epochs: list[list[str]], workers: int) -> dict:
    flow = stream.Dataflow(workers=workers)
    lines = flow.input()
    counts = lines.flat_map(str.split).count_by_key().capture()
    with flow:
        for epoch, batch in enumerate(epochs):
            lines.advance_to(epoch)
            for i in range(0, len(batch), CHUNK):
                lines.send_many(batch[i : i + CHUNK])
    return {e: dict(pairs) for e, pairs in counts.by_epoch().items()}


BYTEWAX_RUN = """
import json, pickle, sys, time
import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main

epochs = pickle.load(open(sys.argv[1], "rb"))
out = []
flow = Dataflow("wordcount")
items = [(e, line) for e, lines in enumerate(epochs) for line in lines]
s = op.input("in", flow, TestingSource(items, batch_size=1000))
words = op.flat_map("split", s, lambda el: [(el[0], w) for w in el[1].split()])
counts = op.count_final("count", words, lambda ew: f"{ew[0]}|{ew[1]}")
op.output("out", counts, TestingSink(out))
start = time.perf_counter()
run_main(flow)
elapsed = time.perf_counter() - start
result = {}
for key, n in out:
    e, w = key.split("|", 1)
    result.setdefault(int(e), {})[w] = n
pickle.dump((elapsed, result), open(sys.argv[2], "wb"))
"""


def bytewax(epochs: list[list[str]]) -> tuple[float, dict]:
    """Bytewax's own count_final per (epoch, word) key, timed inside its process."""
    import pickle

    with tempfile.TemporaryDirectory() as tmp:
        source, result = os.path.join(tmp, "in.pkl"), os.path.join(tmp, "out.pkl")
        with open(source, "wb") as f:
            pickle.dump(epochs, f)
        subprocess.run([sys.executable, "-c", BYTEWAX_RUN, source, result], check=True)
        with open(result, "rb") as f:
            return pickle.load(f)


def timed(fn, *args) -> tuple[float, dict]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def epoch_latency(samples: int) -> float:
    flow = stream.Dataflow(workers=1)
    lines = flow.input()
    probe = lines.flat_map(str.split).count_by_key().probe()
    times = []
    with flow:
        for epoch in range(samples):
            lines.send(*["a b c"] * 10)
            start = time.perf_counter()
            lines.advance_to(epoch + 1)
            probe.wait(epoch)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def union_find(nodes: list, edges: list) -> dict:
    parent = {n: n for n in nodes}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {n: find(n) for n in nodes}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--words", type=int, default=2_000_000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=1_000_000)
    options = parser.parse_args()
    epochs = generate(options.words, options.epochs)
    words = options.words
    rows: dict[str, list[float]] = collections.defaultdict(list)
    plait.init(engine="local")
    want = counter(epochs)
    for _ in range(options.repeat):
        t, _ = timed(counter, epochs)
        rows["collections.Counter, 1 thread"].append(t)
        t, got = bytewax(epochs)
        assert got == want, "Bytewax's counts differ"
        rows["Bytewax, 1 worker"].append(t)
        for workers in (1, 2):
            t, got = timed(plait_stream, epochs, workers)
            assert got == want, f"plait's counts with {workers} workers differ"
            rows[f"plait.stream, {workers} worker{'s' if workers > 1 else ''}"].append(t)
    print(f"\nword count, {words:,} words in {options.epochs} epochs, medians of {options.repeat}\n")
    print("| system | median (s) | words/s | / Bytewax |")
    print("|---|---|---|---|")
    bw = statistics.median(rows["Bytewax, 1 worker"])
    for name, ts in rows.items():
        m = statistics.median(ts)
        print(f"| {name} | {m:.3f} | {words / m / 1e6:.2f}M | {bw / m:.2f}x |")
    one, two = statistics.median(rows["plait.stream, 1 worker"]), statistics.median(rows["plait.stream, 2 workers"])
    print(f"\n2 workers / 1 worker speedup: {one / two:.2f}x")
    print(f"per-epoch latency, 1 worker, epochs of 10 records: {epoch_latency(200) * 1e3:.3f} ms (median of 200)")

    import networkx as nx

    from examples_path import components_module

    rng = random.Random(1)
    nodes = list(range(options.nodes))
    edges = [(rng.randrange(options.nodes), rng.randrange(options.nodes)) for _ in range(options.edges)]
    timings: dict[str, list[float]] = collections.defaultdict(list)
    for _ in range(options.repeat):
        graph = nx.Graph()
        start = time.perf_counter()
        graph.add_nodes_from(nodes)
        graph.add_edges_from(edges)
        oracle = {v: min(c) for c in nx.connected_components(graph) for v in c}
        timings["networkx (build + components)"].append(time.perf_counter() - start)
        t, uf = timed(union_find, nodes, edges)
        timings["union-find, plain Python"].append(t)
        assert uf == oracle
        for workers in (1, 2):
            t, got = timed(components_module().components, nodes, edges, workers)
            assert got == oracle, "plait's components differ"
            timings[f"plait.stream, {workers} worker{'s' if workers > 1 else ''}"].append(t)
    print(f"\nconnected components, {options.nodes:,} nodes, {options.edges:,} edges, medians of {options.repeat}\n")
    print("| system | median (s) | / networkx | / union-find |")
    print("|---|---|---|---|")
    nxm = statistics.median(timings["networkx (build + components)"])
    ufm = statistics.median(timings["union-find, plain Python"])
    for name, ts in timings.items():
        m = statistics.median(ts)
        print(f"| {name} | {m:.3f} | {m / nxm:.2f}x | {m / ufm:.2f}x |")
    plait.shutdown()


if __name__ == "__main__":
    main()
