"""``@parallel(check=True)``: run the function both ways and report any difference."""

from __future__ import annotations

import contextlib
import copy
import io
from typing import Any

from plait.errors import PlaitError
from plait.runtime.context import sequential_reference


class ParallelCheckError(PlaitError, AssertionError):
    """The parallel run and the sequential run of a function disagreed."""


def _run(fn: Any, args: tuple, kwargs: dict) -> tuple[bool, Any, str]:
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            value = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - compared, then re-raised
        return False, exc, out.getvalue()
    return True, value, out.getvalue()


def sequential(fn: Any, args: tuple, kwargs: dict) -> tuple[bool, Any, str]:
    """The plain program: task calls run in place, in order, in this thread."""
    sequential_reference.active = True
    try:
        return _run(fn, args, kwargs)
    finally:
        sequential_reference.active = False


def run_checked(pf: Any, args: tuple, kwargs: dict) -> Any:
    ref_args, ref_kwargs = copy.deepcopy((args, kwargs))
    ok, value, printed = _run(lambda *a, **k: pf.call(a, k), args, kwargs)
    ref_ok, ref_value, ref_printed = sequential(pf.fn, ref_args, ref_kwargs)
    problems = []
    if ok != ref_ok:
        got = f"returned {value!r}" if ok else f"raised {type(value).__name__}: {value}"
        want = f"returned {ref_value!r}" if ref_ok else f"raised {type(ref_value).__name__}: {ref_value}"
        problems.append(f"the parallel run {got}, the sequential run {want}")
    elif ok and value != ref_value:
        problems.append(f"the parallel run returned {value!r}, the sequential run {ref_value!r}")
    elif not ok and (type(value) is not type(ref_value) or str(value) != str(ref_value)):
        problems.append(f"the parallel run raised {value!r}, the sequential run {ref_value!r}")
    if printed != ref_printed:
        problems.append(f"printed output differs:\n--- parallel\n{printed}--- sequential\n{ref_printed}")
    print(printed, end="")
    if problems:
        raise ParallelCheckError(
            f"@parallel {pf.fn.__qualname__}: " + "; ".join(problems) + " (please report this with the function)"
        )
    if not ok:
        raise value
    return value
