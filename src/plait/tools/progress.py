"""A dependency-free progress bar for ``get``/``wait`` over many futures, and for the
actions of ``plait.data`` (which also show the rows their sources have read)."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any


class ProgressBar:
    """Counts the futures as they finish. ``rows``: futures of ``[(rows, bytes), ...]``
    (the sizes of what source tasks made), summed by a thread of the bar's own as they
    finish: it is never done in an engine's callback, where getting a value could block
    the engine's own thread."""

    def __init__(
        self,
        futures: list[Any],
        stream: Any = None,
        min_interval: float = 0.1,
        label: str = "plait",
        rows: list[Any] | None = None,
    ) -> None:
        self.label = label
        self.total = len(futures)
        self.futures = futures
        self.stream = stream or sys.stderr
        self.min_interval = min_interval
        self.count = 0
        self.rows: int | None = None if rows is None else 0
        self._row_futures = list(rows or ())
        self._lock = threading.Lock()
        self._last = 0.0
        self._start = time.monotonic()
        self._stop = threading.Event()
        self._counter: threading.Thread | None = None

    def __enter__(self) -> ProgressBar:
        for f in self.futures:
            f.add_done_callback(self._tick)
        if self._row_futures:
            self._counter = threading.Thread(target=self._count_rows, name="plait-progress-rows", daemon=True)
            self._counter.start()
        self._draw(force=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._counter is not None:
            self._counter.join()
        self._add_done_rows()
        self._draw(force=True)
        self.stream.write("\n")
        self.stream.flush()

    def _tick(self, _future: Any) -> None:
        with self._lock:
            self.count += 1
        self._draw()

    def _count_rows(self) -> None:
        while not self._stop.wait(self.min_interval):
            if self._add_done_rows():
                self._draw()

    def _add_done_rows(self) -> bool:
        pending: list[Any] = []
        done: list[Any] = []
        for f in self._row_futures:
            (done if f.done() else pending).append(f)
        if not done:
            return False
        self._row_futures = pending
        added = 0
        for f in done:
            if f.exception() is None:
                value = f.result()
                if type(value) is list:  # a failed task gives no sizes
                    added += sum(r for r, _ in value)
        with self._lock:
            self.rows = (self.rows or 0) + added
        return True

    def _draw(self, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            if not force and now - self._last < self.min_interval and self.count < self.total:
                return
            self._last = now
            width = 30
            filled = int(width * self.count / max(1, self.total))
            elapsed = max(1e-9, now - self._start)
            text = (
                f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.count}/{self.total} "
                f"tasks  {self.count / elapsed:,.0f}/s"
            )
            if self.rows is not None:
                text += f"  {self.rows:,} rows read  {self.rows / elapsed:,.0f} rows/s"
            self.stream.write(text)
            self.stream.flush()
