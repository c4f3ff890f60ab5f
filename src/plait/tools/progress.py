"""A dependency-free progress bar for ``get``/``wait`` over many futures."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any


class ProgressBar:
    def __init__(self, futures: list[Any], stream: Any = None, min_interval: float = 0.1, label: str = "plait") -> None:
        self.label = label
        self.total = len(futures)
        self.futures = futures
        self.stream = stream or sys.stderr
        self.min_interval = min_interval
        self.count = 0
        self._lock = threading.Lock()
        self._last = 0.0
        self._start = time.monotonic()

    def __enter__(self) -> ProgressBar:
        for f in self.futures:
            f.add_done_callback(self._tick)
        self._draw(force=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._draw(force=True)
        self.stream.write("\n")
        self.stream.flush()

    def _tick(self, _future: Any) -> None:
        with self._lock:
            self.count += 1
        self._draw()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.min_interval and self.count < self.total:
            return
        self._last = now
        width = 30
        filled = int(width * self.count / max(1, self.total))
        rate = self.count / max(1e-9, now - self._start)
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.count}/{self.total} "
            f"tasks  {rate:,.0f}/s"
        )
        self.stream.flush()
