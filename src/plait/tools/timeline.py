"""Chrome/Perfetto trace files: one complete ("X") event per finished task.

Open the file at https://ui.perfetto.dev or chrome://tracing. Each worker is a
row (a thread id), so idle gaps and stragglers are visible at a glance.
"""

from __future__ import annotations

import json
import os
from typing import Any


def trace_events(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pid = os.getpid()
    events: list[dict[str, Any]] = []
    workers = sorted({s["worker"] for s in spans})
    for w in workers:
        label = "driver (inline)" if w == 0 else f"worker {w}"
        events.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": w, "args": {"name": label}})
    for s in spans:
        events.append(
            {
                "name": s["name"],
                "cat": "task",
                "ph": "X",
                "pid": pid,
                "tid": s["worker"],
                "ts": s["start"] * 1e6,
                "dur": max(0.0, (s["end"] - s["start"]) * 1e6),
                "args": {k: v for k, v in s.items() if k not in ("name", "worker", "start", "end")},
            }
        )
    return events


def write_trace(spans: list[dict[str, Any]], path: str) -> str:
    with open(path, "w") as f:
        json.dump({"traceEvents": trace_events(spans), "displayTimeUnit": "ms"}, f)
    return path
