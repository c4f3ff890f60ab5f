"""What the side-by-side benchmark scripts share: one way to time a run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_time(run: Callable[[], object], repeat: int) -> float:
    """Median seconds of ``repeat`` runs of ``run()``, after one untimed warm-up run."""
    run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
