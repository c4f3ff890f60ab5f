"""Running one task call where it lands: retries on exceptions, remote tracebacks."""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from typing import Any

from plait.runtime.options import TaskOptions

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def call_with_retries(fn: Callable, args: tuple, kwargs: dict, options: TaskOptions) -> Any:
    """Call ``fn``; re-run it on an exception that ``retry_exceptions`` allows."""
    attempts_left = options.retries if options.retry_exceptions else 0
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if attempts_left > 0 and options.should_retry(exc):
                attempts_left -= 1
                continue
            raise


def format_remote(exc: BaseException, where: str) -> str:
    """The traceback a caller sees above its own: the task's frames only."""
    tb = exc.__traceback__
    # drop the runtime's own frames that precede the user's function
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb)
    return f"Traceback of {where}:\n" + "".join(lines[1:] if lines[0].startswith("Traceback") else lines)
