"""Small importable functions for ``op`` and ``call`` nodes.

Most operations a front end lifts from user code are Python's own:
``operator.add``, ``operator.getitem``, ``getattr``, ``len``, ``list``/``tuple``/
``dict``/``set`` (``add_op(dict, [(k, v), ...])`` accepts node keys). The few
here fill the gaps; being module-level functions, they save by reference.
"""

from __future__ import annotations

from typing import Any


def call_method(obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """``obj.name(*args, **kwargs)``: a method call as one node (e.g. ``add_call(call_method, (xs, "append", x))``)."""
    return getattr(obj, name)(*args, **kwargs)


def apply(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` where ``fn`` itself is a computed value (a node)."""
    return fn(*args, **kwargs)


def unpack(value: Any, n: int) -> tuple:
    """``a, b = value`` with Python's checks: a tuple of exactly ``n`` items."""
    items = tuple(value)
    if len(items) != n:
        few = "not enough" if len(items) < n else "too many"
        raise ValueError(f"{few} values to unpack (expected {n}, got {len(items)})")
    return items
