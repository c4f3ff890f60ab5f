"""PageRank to convergence inside a loop: the ranks go round until they stop changing.

Ranks are rounded to 12 decimals, so the iteration reaches an exact fixed point;
``max_iterations`` bounds it anyway. Every node needs an out-edge (a dangling node's
rank would leak out of the total).

    python examples/stream/pagerank.py [--nodes 500] [--workers 2]
"""

from __future__ import annotations

import argparse
import random

from plait import stream

DAMPING = 0.85


def pagerank(nodes: list, edges: list, workers: int = 2, max_iterations: int = 500) -> dict:
    count = len(nodes)
    degree: dict = {}
    for source, _ in edges:
        degree[source] = degree.get(source, 0) + 1
    flow = stream.Dataflow(workers=workers)
    node_input, edge_input = flow.input("nodes"), flow.input("edges")

    def step(ranks: stream.Stream, scope: stream.Scope) -> stream.Stream:
        shares = ranks.join(scope.enter(edge_input), key=lambda r: r[0]).map(
            lambda k: (k[2][1], k[1][1] / degree[k[0]])
        )
        every_node = scope.enter(node_input).map(lambda n: (n, 0.0))  # one with no in-edges gets the base rank
        summed = shares.concat(every_node).reduce_by_key(lambda r: r[0], lambda a, b: (a[0], a[1] + b[1]))
        return summed.map(lambda r: (r[0], round((1 - DAMPING) / count + DAMPING * r[1], 12)))

    out = node_input.map(lambda n: (n, 1.0 / count)).iterate(step, max_iterations=max_iterations).capture()
    with flow:
        node_input.send(*nodes)
        edge_input.send(*edges)
    return dict(out.records())


def random_graph(nodes: int, seed: int = 0) -> tuple[list, list]:
    rng = random.Random(seed)
    edges = {(n, rng.randrange(nodes)) for n in range(nodes)}  # an out-edge for every node
    edges |= {(rng.randrange(nodes), rng.randrange(nodes)) for _ in range(2 * nodes)}
    return list(range(nodes)), sorted(edges)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    nodes, edges = random_graph(options.nodes)
    ranks = pagerank(nodes, edges, options.workers)
    top = sorted(ranks.items(), key=lambda kv: -kv[1])[:5]
    print("top ranks:", ", ".join(f"{n}: {r:.5f}" for n, r in top))


if __name__ == "__main__":
    main()
