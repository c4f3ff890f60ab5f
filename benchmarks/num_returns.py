"""Calls with ``num_returns=2``: the local engine's items stored apart, against the
same calls lowered to one small task per item (the protocol's default), and Ray's
own ``num_returns``, in one run. Medians of ``--repeat`` runs of ``--calls`` calls,
every item gathered.

    .venv/bin/python benchmarks/num_returns.py --repeat 5
"""

from __future__ import annotations

import argparse

from timing import median_time


def pair(x):
    return x, x + 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    o = parser.parse_args()
    import plait
    from plait.runtime.context import current_engine
    from plait.runtime.task import lowered_returning

    task = plait.task(num_returns=2)(pair)
    rows = {}
    with plait.init(engine="local", workers=o.workers):
        engine = current_engine()

        def native() -> None:
            plait.get([f for i in range(o.calls) for f in task(i)])

        def lowered() -> None:
            calls = [lowered_returning(engine, task, (i,), {}, task.task_options) for i in range(o.calls)]
            plait.get([f for items in calls for f in items])

        rows["plait local, items stored apart"] = median_time(native, o.repeat)
        rows["plait local, one task per item (lowered)"] = median_time(lowered, o.repeat)
    import ray

    ray.init(num_cpus=o.workers, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(num_returns=2)(pair)
        rows["Ray, num_returns=2"] = median_time(
            lambda: ray.get([r for i in range(o.calls) for r in remote.remote(i)]), o.repeat
        )
    finally:
        ray.shutdown()
    base = rows["plait local, items stored apart"]
    print(f"| {o.calls:,} calls with num_returns=2 | median (s) | / items stored apart |")
    print("|---|---|---|")
    for name, t in rows.items():
        print(f"| {name} | {t:.3f} | {t / base:.2f}x |")


if __name__ == "__main__":
    main()
