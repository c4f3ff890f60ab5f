"""Connected components by label propagation, inside a loop, to its fixed point.

Every node starts labelled with itself; each iteration, every node takes the smallest
label among its own and its neighbours'. The loop ends when no label changes. The
edges are brought into the loop with ``scope.enter``, so every iteration sees them.

    python examples/stream/components.py [--nodes 2000] [--edges 3000] [--workers 2]
"""

from __future__ import annotations

import argparse
import random

from plait import stream


def smaller_label(a: tuple, b: tuple) -> tuple:
    return a if a[1] <= b[1] else b


def propagate(labels: stream.Stream, scope: stream.Scope, edges: stream.Stream) -> stream.Stream:
    """One iteration: each node's label, or a smaller one a neighbour offers."""
    both_ways = scope.enter(edges).flat_map(lambda e: [e, (e[1], e[0])])
    offers = labels.join(both_ways, key=lambda r: r[0]).map(lambda k: (k[2][1], k[1][1]))
    return labels.concat(offers).reduce_by_key(lambda r: r[0], smaller_label)


def components(nodes: list, edges: list, workers: int = 2) -> dict:
    """``{node: the smallest node of its component}``."""
    flow = stream.Dataflow(workers=workers)
    node_input, edge_input = flow.input("nodes"), flow.input("edges")
    labels = node_input.map(lambda n: (n, n)).iterate(lambda x, scope: propagate(x, scope, edge_input))
    out = labels.capture()
    with flow:
        node_input.send(*nodes)
        edge_input.send(*edges)
    return dict(out.records())


def random_graph(nodes: int, edges: int, seed: int = 0) -> tuple[list, list]:
    rng = random.Random(seed)
    return list(range(nodes)), [(rng.randrange(nodes), rng.randrange(nodes)) for _ in range(edges)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--edges", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    nodes, edges = random_graph(options.nodes, options.edges)
    labels = components(nodes, edges, options.workers)
    print(f"{len(set(labels.values()))} components among {len(nodes)} nodes")


if __name__ == "__main__":
    main()
