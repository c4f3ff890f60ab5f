"""Task results as objects: one object per result, as in the sequential program.

Sequentially ``rows = load()`` is one object: ``rows.append(x)`` changes it for
every name that refers to it, and ``rows[0]`` *is* its first item, not a copy.
Here ``rows`` is a future whose value lives in a worker's store, and the driver
gets its own copy once it fetches it. Three rules keep the copies from ever
being told apart:

- **The driver's copy is the object.** A result whose mutable value the driver
  has fetched (*exposed*), or that a statement is about to change in place
  (*owned*: marked before that statement waits, so the statements after it see
  the mark), is read from the driver from then on, after the statements that
  may change it; a task is passed the driver's object, not the stored copy.
- **Operations that share parts of their inputs run in the driver.**
  ``rows[0]``, ``row.cells``, ``max(rows)`` or ``sorted(rows)`` over a pending
  result are computed in the driver once their inputs are there (a nested
  program, ordered like any statement that reads objects), never from a copy
  in a worker: the item they give is the item of the one object.
- Values that cannot share anything (numbers, strings, tuples of them) are
  values: any copy will do.
"""

from __future__ import annotations

import operator
from typing import Any

from plait.runtime.future import _NO_VALUE, Future

# operations whose result may be, or contain, objects of their inputs
ALIASING = frozenset(
    {operator.getitem, getattr, max, min, sorted, list, tuple, reversed, next, iter, dict, set, zip, enumerate}
)

# in-place operators: on a mutable object (a list, a set, an array) they change it, so every
# name that refers to it sees the change; computed in the driver, on that object
IN_PLACE = frozenset(
    {
        operator.iadd, operator.isub, operator.imul, operator.itruediv, operator.ifloordiv, operator.imod,
        operator.ipow, operator.ilshift, operator.irshift, operator.ior, operator.ixor, operator.iand,
        operator.imatmul,
    }
)  # fmt: skip

_ATOMS = frozenset({int, float, complex, str, bytes, bool, type(None), range})


def cannot_share(value: Any) -> bool:
    """Shares no mutable part with anything: an atom, or a tuple of atoms."""
    t = type(value)
    return t in _ATOMS or ((t is tuple or t is frozenset) and set(map(type, value)) <= _ATOMS)


def exposed(future: Future) -> bool:
    """The driver holds this result's mutable object, which the program may have changed."""
    value = future._value
    return value is not _NO_VALUE and not cannot_share(value)

