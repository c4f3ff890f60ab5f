"""Random imperative programs: @plait.parallel must give exactly the sequential result."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import itertools
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plait
from plait.parallel.check import sequential

VARS = ["a", "b", "c"]
_counter = itertools.count()


def expressions(depth: int = 0) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.integers(-3, 9).map(str), st.sampled_from(VARS))
    if depth >= 2:
        return leaf
    sub = expressions(depth + 1)
    return st.one_of(
        leaf,
        leaf,
        sub.map(lambda e: f"work({e})"),
        sub.map(lambda e: f"boom({e})"),
        st.tuples(sub, sub, st.sampled_from(["+", "-", "*"])).map(lambda t: f"({t[0]} {t[2]} {t[1]})"),
        sub.map(lambda e: f"len(acc) + {e}"),
    )


@st.composite
def blocks(draw, depth: int = 0, in_loop: bool = False) -> list[str]:
    n = draw(st.integers(1, 3))
    lines: list[str] = []
    for _ in range(n):
        lines.extend(draw(statements(depth, in_loop)))
    return lines


@st.composite
def statements(draw, depth: int, in_loop: bool) -> list[str]:
    expr = expressions()
    kinds = ["assign", "augassign", "append", "dict", "print"]
    if depth < 2:
        kinds += ["if", "for", "while", "try"]
    if in_loop:
        kinds += ["break", "continue"]
    kind = draw(st.sampled_from(kinds))
    var = draw(st.sampled_from(VARS))
    if kind == "assign":
        return [f"{var} = {draw(expr)}"]
    if kind == "augassign":
        return [f"{var} += {draw(expr)}"]
    if kind == "append":
        return [f"acc.append({draw(expr)})"]
    if kind == "dict":
        return [f"d[{draw(st.integers(0, 2))}] = {draw(expr)}"]
    if kind == "print":
        return [f"print('p', {draw(expr)})"]
    if kind in ("break", "continue"):
        return [f"if {draw(expr)} > {draw(st.integers(0, 6))}:", f"    {kind}"]
    body = [f"    {line}" for line in draw(blocks(depth + 1, in_loop or kind in ('for', 'while')))]
    if kind == "if":
        orelse = [f"    {line}" for line in draw(blocks(depth + 1, in_loop))]
        return [f"if {draw(expr)} > {draw(st.integers(0, 6))}:", *body, "else:", *orelse]
    if kind == "for":
        return [f"for i{depth} in range({draw(st.integers(0, 3))}):", *body]
    if kind == "while":
        counter = f"n{depth}_{next(_counter)}"
        return [
            f"{counter} = 0",
            f"while {counter} < {draw(st.integers(0, 3))} and {draw(expr)} > -100:",
            f"    {counter} += 1",
            *body,
        ]
    handler = [f"    {line}" for line in draw(blocks(depth + 1, in_loop))]
    return ["try:", *body, "except ValueError as err:", "    acc.append(str(err))", *handler]


@st.composite
def programs(draw) -> str:
    body = draw(blocks())
    lines = [
        "from tests.hypo_tasks import boom, work",
        "",
        "",
        "def program(a, b, c):",
        "    acc = []",
        "    d = {}",
        *[f"    {line}" for line in body],
        "    return a, b, c, acc, d",
    ]
    return "\n".join(lines) + "\n"


def _load(source: str, tmp_path) -> object:
    path = tmp_path / f"generated_{next(_counter)}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.program


def _outcome(fn, args):
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            value = fn(*args)
    except Exception as exc:  # noqa: BLE001 - compared below
        return ("raised", type(exc).__name__, str(exc)), out.getvalue()
    return ("returned", value), out.getvalue()


@pytest.fixture(scope="module")
def local_engine():
    with plait.init(engine="local", workers=2):
        yield


@pytest.mark.timeout(900)
@settings(max_examples=int(os.environ.get("PLAIT_HYPOTHESIS_EXAMPLES", "60")), deadline=None, suppress_health_check=list(HealthCheck))
@given(source=programs(), args=st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)))
def test_random_programs_match_sequential(local_engine, tmp_path_factory, source, args):
    fn = _load(source, tmp_path_factory.mktemp("gen"))
    ok, value, printed = sequential(fn, args, {})
    expected = (("returned", value) if ok else ("raised", type(value).__name__, str(value)), printed)
    assert _outcome(plait.parallel(fn), args) == expected, source
