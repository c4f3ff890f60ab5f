"""``plait.graph``: the dataflow graph IR every plait front end lowers to.

A ``Graph`` is a list of ``Node`` objects in program (topological) order. Each
node has a unique ``name``, an ``op`` (opcode), a ``target``, ``args``/``kwargs``
that may reference earlier nodes (nested in lists, tuples, dicts and slices),
and a ``meta`` dict of descriptive facts (``line``, ``file``, ``var``,
``source``). ``node.inputs`` and ``node.users`` follow the references.

Opcodes
-------
==========  ===========================================================  ==========================
opcode      meaning                                                      where it runs
==========  ===========================================================  ==========================
``input``   a graph parameter; ``target`` is its name, ``default``       bound by ``run``
            optional
``const``   a constant; ``target`` is the value (anything picklable)     driver
``task``    a call of a ``@plait.task`` function (``target``) with       the engine (a worker)
            ``options`` (``TaskOptions``); arguments may be futures
``op``      a pure, cheap operation on values (``operator.add``,         driver, when its inputs
            ``getitem``, ``getattr``, ``len``, ``list``/``dict``...)     are ready
``call``    a plain function called on values; ``effectful`` (the        driver; effectful calls
            default) calls are kept and ordered                          in program order
``if``      ``args = (cond, *inputs)``; subgraphs ``then``/``orelse``    driver picks the branch
            take the inputs; value = the branch's output
``while``   ``args`` = loop-carried values; subgraphs ``cond`` and       driver loops
            ``body``; value = the final values (a tuple)
``output``  ``args = (value,)``: the graph's result, a node or a         returned by ``run``
            structure of nodes and literals; always the last node
==========  ===========================================================  ==========================

Building
--------
::

    from plait.graph import Graph

    g = Graph(name="pipeline")
    path = g.add_input("path")
    data = g.add_task(load, (path,), meta={"var": "data", "line": 3})
    n = g.add_op(len, data)
    g.set_output({"data": data, "n": n})
    print(g)              # reads like code
    g.run("in.csv")       # or plait.run(g, "in.csv", engine="local")
    g.save("g.json")      # plait.graph.load("g.json")

Passes live in ``plait.graph.passes`` (``cse``, ``dce``, ``fuse_chains``,
``check_serializable``, ``PassManager``); running in
``plait.graph.interpreter`` (``Interpreter``, ``run``); the JSON format in
``plait.graph.serialize``; pictures in ``plait.graph.draw``. ``docs/graph.md``
is the full reference.
"""

from __future__ import annotations

from plait.graph.draw import DotNotFoundError
from plait.graph.interpreter import Interpreter, run
from plait.graph.ir import NO_DEFAULT, OPCODES, Graph, GraphError, Node, iter_nodes, map_arg
from plait.graph.passes import (
    FusedTask,
    PassManager,
    PassReport,
    check_serializable,
    cse,
    dce,
    fuse_chains,
)
from plait.graph.serialize import FORMAT, VERSION, GraphFormatError, from_json, load

__all__ = [
    "FORMAT",
    "NO_DEFAULT",
    "OPCODES",
    "VERSION",
    "DotNotFoundError",
    "FusedTask",
    "Graph",
    "GraphError",
    "GraphFormatError",
    "Interpreter",
    "Node",
    "PassManager",
    "PassReport",
    "check_serializable",
    "cse",
    "dce",
    "from_json",
    "fuse_chains",
    "iter_nodes",
    "load",
    "map_arg",
    "run",
]
