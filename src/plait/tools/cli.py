"""The ``plait`` command line.

``plait run script.py [--engine E] [--workers N] [--trace out.json] [-- script args]``
runs a user's script as ``__main__`` with the engine configured, so the script
needs no ``plait.init`` of its own (one it has still wins).
``plait run graph.json [--trusted] [-- arguments as Python literals]`` runs a
saved graph and prints what it returns (``--trusted``: see ``plait.graph.load``).
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plait", description="plain Python, run in parallel")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a Python script on a plait engine")
    run.add_argument("script", help="path of the script to run")
    run.add_argument("--engine", choices=["local", "inline", "ray", "dask"], help="engine to use (default: local)")
    run.add_argument("--workers", type=int, help="worker processes for the local engine")
    run.add_argument("--trace", metavar="OUT.json", help="write a Chrome/Perfetto timeline at exit")
    run.add_argument("--progress", action="store_true", help="show progress bars for get/wait")
    run.add_argument(
        "--trusted", action="store_true", help="a graph file: load its pickles and any name it gives (your own files only)"
    )
    run.epilog = "arguments after -- go to the script: plait run sweep.py --workers 4 -- --size 10"
    graph = commands.add_parser("graph", help="capture a @parallel function's graph without running tasks")
    graph.add_argument("target", help="script.py:function")
    graph.add_argument("values", nargs="*", help="arguments, as Python literals (1, 'a', [1, 2])")
    graph.add_argument("-o", "--output", help="out.json, out.svg, out.html or out.dot (default: print it)")
    argv = list(sys.argv[1:] if argv is None else argv)
    script_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, script_args = argv[:cut], argv[cut + 1 :]
    options = parser.parse_args(argv)
    options.args = script_args

    if options.command == "run":
        return _run(options)
    if options.command == "graph":
        return _graph(options)
    return 2  # pragma: no cover - argparse rejects unknown commands


def _run(options: argparse.Namespace) -> int:
    script = options.script
    if not os.path.isfile(script):
        print(f"plait run: no such script: {script}", file=sys.stderr)
        return 2
    if options.trusted and not script.endswith(".json"):
        print("plait run: --trusted is for graph files (.json)", file=sys.stderr)
        return 2
    if options.engine:
        os.environ["PLAIT_ENGINE"] = options.engine
    if options.workers:
        os.environ["PLAIT_WORKERS"] = str(options.workers)
    if options.trace:
        os.environ["PLAIT_TRACE"] = os.path.abspath(options.trace)
    if options.progress:
        os.environ["PLAIT_PROGRESS"] = "1"
    sys.argv = [script, *options.args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    import plait

    if script.endswith(".json"):
        return _run_graph(script, options)
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        plait.shutdown()
    return 0


def _run_graph(path: str, options: argparse.Namespace) -> int:
    """A saved graph, on the arguments given after ``--`` (Python literals); prints its result."""
    import plait

    values = _literals("plait run", options.args)
    if values is None:
        return 2
    try:
        graph = plait.graph.load(path, trusted=options.trusted)
    except plait.graph.GraphFormatError as exc:
        print(f"plait run: {exc}", file=sys.stderr)
        return 2
    try:
        print(repr(plait.run(graph, *values)))
    finally:
        plait.shutdown()
    return 0


def _literals(command: str, texts: list[str]) -> list | None:
    import ast

    try:
        return [ast.literal_eval(v) for v in texts]
    except (ValueError, SyntaxError) as exc:
        print(f"{command}: arguments must be Python literals ({exc})", file=sys.stderr)
        return None


def _graph(options: argparse.Namespace) -> int:
    script, _, name = options.target.rpartition(":")
    if not script or not name:
        print("plait graph: give the function as script.py:function", file=sys.stderr)
        return 2
    if not os.path.isfile(script):
        print(f"plait graph: no such script: {script}", file=sys.stderr)
        return 2
    values = _literals("plait graph", options.values)
    if values is None:
        return 2
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    namespace = runpy.run_path(script, run_name="__plait_graph__")
    if name not in namespace:
        print(f"plait graph: {script} defines no {name!r}", file=sys.stderr)
        return 2
    import plait

    graph = plait.trace(namespace[name])(*values)
    out = options.output
    if not out:
        print(graph)
    elif out.endswith(".json"):
        graph.save(out)
    elif out.endswith(".svg"):
        with open(out, "w") as f:
            f.write(graph.to_svg())
    elif out.endswith(".html"):
        with open(out, "w") as f:
            f.write(graph.to_html())
    elif out.endswith(".dot"):
        with open(out, "w") as f:
            f.write(graph.to_dot())
    else:
        print("plait graph: -o must end in .json, .svg, .html or .dot", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
