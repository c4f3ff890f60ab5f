"""What a run of a program amounts to, for comparing @parallel with plain sequential Python."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

from plait.parallel.check import sequential


def outcome(fn: Callable, *args: Any, **kwargs: Any) -> tuple:
    """(("returned", value) or ("raised", type name, message), printed output)."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            value = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - compared
        return ("raised", type(exc).__name__, str(exc)), out.getvalue()
    return ("returned", value), out.getvalue()


def sequential_outcome(fn: Callable, *args: Any, **kwargs: Any) -> tuple:
    """The same for the plain program: task calls run in place, in order."""
    ok, value, printed = sequential(fn, args, kwargs)
    return (("returned", value) if ok else ("raised", type(value).__name__, str(value))), printed
