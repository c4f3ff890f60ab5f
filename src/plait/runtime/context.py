"""Which engine the code running here talks to.

In the driver that is the engine ``plait.init`` started (the default one on
first use). Inside a worker process it is the worker's client of the engine
that started it, so nested task calls, ``get`` and actor calls just work.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait.runtime.engine import Engine

_engine: Any = None
_lock = threading.RLock()


class _SequentialReference(threading.local):
    """While active in a thread, task calls run in place and return values:
    the plain sequential program that ``@parallel(check=True)`` compares against."""

    active = False


sequential_reference = _SequentialReference()


class _Override(threading.local):
    engine: Any = None


override = _Override()  # a per-thread engine (tracing uses it)


def current_engine() -> Engine:
    engine = override.engine or _engine
    if engine is not None:
        return engine
    with _lock:
        if _engine is None:
            from plait.runtime.api import init

            init(engine=os.environ.get("PLAIT_ENGINE") or None)
        return _engine


def set_engine(engine: Any) -> None:
    global _engine
    with _lock:
        _engine = engine


def engine_or_none() -> Any:
    return _engine
