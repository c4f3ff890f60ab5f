"""The logical dataflow: operators, the channels between them, and what each path does to time.

Every worker runs an instance of every operator (each on its share of the data);
the plan is what they share. A channel's *pact* says which worker a record goes
to: the sender's own (``pipeline``), the one its key hashes to (``exchange``),
or every one (``broadcast``).

Progress tracking needs, for every place a pointstamp can be (an operator, or a
message waiting at one of its inputs), the minimal summaries of the paths from
there to every operator: ``reach``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from plait.stream.timestamp import Summary, insert_minimal


@dataclass(frozen=True)
class Pact:
    kind: str  # "pipeline", "exchange" or "broadcast"
    key: Callable[[Any], Any] | None = None


PIPELINE = Pact("pipeline")
BROADCAST = Pact("broadcast")


@dataclass
class OpSpec:
    id: int
    name: str
    depth: int  # loops around its inputs: its input timestamps have depth + 1 coordinates
    inputs: list[tuple[int, int, Pact]]  # (source operator, its output port, pact)
    outputs: int
    summary: Summary  # from its inputs and capabilities to its outputs
    logic: Callable[[], Any] | None  # one per worker; None for the driver's inputs
    scope: tuple[int, ...] = ()  # the loops it is in, outermost first (a loop's id)


@dataclass
class Plan:
    ops: list[OpSpec] = field(default_factory=list)

    def consumers(self) -> dict[tuple[int, int], list[tuple[int, int, Pact]]]:
        """(operator, output port) -> the (operator, input port, pact) it feeds."""
        out: dict[tuple[int, int], list[tuple[int, int, Pact]]] = {}
        for op in self.ops:
            for port, (source, source_port, pact) in enumerate(op.inputs):
                out.setdefault((source, source_port), []).append((op.id, port, pact))
        return out


Location = tuple  # ("op", id) or ("in", id, port)


def reach(plan: Plan) -> tuple[dict[Location, dict[int, list[Summary]]], dict[int, list[Summary]]]:
    """For every location, the minimal summaries of the paths from it to each operator
    (the operator itself included: a location reaches its own operator unchanged); and
    for each operator, those of the paths of at least one step from it back to itself
    (every such cycle goes round a loop, so each adds to a loop counter)."""
    consumers = plan.consumers()
    edges: dict[Location, list[tuple[Location, Summary]]] = {}
    for op in plan.ops:
        length = op.depth + 1
        for port in range(len(op.inputs)):
            edges[("in", op.id, port)] = [(("op", op.id), Summary.identity(length))]
        edges[("op", op.id)] = [
            (("in", target, port), op.summary)
            for out in range(op.outputs)
            for target, port, _ in consumers.get((op.id, out), ())
        ]
    lengths = {("op", op.id): op.depth + 1 for op in plan.ops}
    lengths.update({("in", op.id, p): op.depth + 1 for op in plan.ops for p in range(len(op.inputs))})

    def paths(start: Location, first: list[tuple[Location, Summary]]) -> dict[Location, list[Summary]]:
        best: dict[Location, list[Summary]] = {}
        work = []
        for there, summary in first:
            if insert_minimal(best.setdefault(there, []), summary):
                work.append((there, summary))
        while work:
            here, summary = work.pop()
            for there, step in edges[here]:
                reached = summary.then(step)
                if insert_minimal(best.setdefault(there, []), reached):
                    work.append((there, reached))
        return best

    result: dict[Location, dict[int, list[Summary]]] = {}
    for start in edges:
        best = paths(start, [(start, Summary.identity(lengths[start]))])
        result[start] = {loc[1]: summaries for loc, summaries in best.items() if loc[0] == "op"}
    cycles = {op.id: paths(("op", op.id), edges[("op", op.id)]).get(("op", op.id), []) for op in plan.ops}
    return result, cycles
