"""Actor call chains: plait's local engine against Ray, in one run.

Two shapes, each timed on both systems (medians of ``--repeat`` runs):

- *chain*: ``x = counter.step(x)`` n times, each call waiting for the one
  before (one actor, calls back to back, the driver waits only at the end);
- *parameter server*: Ray's synchronous parameter-server example: per round,
  ``workers`` tasks compute a gradient from the current weights (a numpy
  array), then ``ps.apply_gradients(*grads)`` makes the next weights.

    .venv/bin/python benchmarks/actor_chains.py --repeat 5
"""

from __future__ import annotations

import argparse

import numpy as np

from timing import median_time


class Counter:
    def step(self, x):
        return x + 1


class ParameterServer:
    def __init__(self, size):
        self.weights = np.zeros(size)

    def apply_gradients(self, *gradients):
        self.weights -= 0.01 * np.mean(gradients, axis=0)
        return self.weights


def compute_gradient(weights):
    return np.sin(weights) + 1.0


def plait_side(n: int, rounds: int, workers: int, size: int, repeat: int) -> dict[str, float]:
    import plait

    counter_cls = plait.actor(Counter)
    ps_cls = plait.actor(ParameterServer)
    gradient = plait.task(compute_gradient)
    with plait.init(engine="local", workers=workers):
        counter = counter_cls()

        def chain() -> None:
            x = 0
            for _ in range(n):
                x = counter.step(x)
            assert x.result() == x.result() and x.result() > 0

        def server() -> None:
            ps = ps_cls(size)
            weights = ps.apply_gradients(np.zeros(size))
            for _ in range(rounds):
                weights = ps.apply_gradients(*[gradient(weights) for _ in range(workers)])
            weights.result()

        return {"chain": median_time(chain, repeat), "server": median_time(server, repeat)}


def ray_side(n: int, rounds: int, workers: int, size: int, repeat: int) -> dict[str, float]:
    import ray

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        counter_cls = ray.remote(Counter)
        ps_cls = ray.remote(ParameterServer)
        gradient = ray.remote(compute_gradient)
        counter = counter_cls.remote()

        def chain() -> None:
            x = 0
            for _ in range(n):
                x = counter.step.remote(x)
            assert ray.get(x) > 0

        def server() -> None:
            ps = ps_cls.remote(size)
            weights = ps.apply_gradients.remote(np.zeros(size))
            for _ in range(rounds):
                weights = ps.apply_gradients.remote(*[gradient.remote(weights) for _ in range(workers)])
            ray.get(weights)

        return {"chain": median_time(chain, repeat), "server": median_time(server, repeat)}
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=100_000)
    o = parser.parse_args()
    args = (o.calls, o.rounds, o.workers, o.size, o.repeat)
    plait_times = plait_side(*args)
    ray_times = ray_side(*args)
    print("| shape | plait local (s) | Ray (s) | plait / Ray |")
    print("|---|---|---|---|")
    labels = {
        "chain": f"chain of {o.calls:,} dependent calls on one actor",
        "server": f"parameter server: {o.rounds} rounds of {o.workers} gradient tasks, arrays of {o.size:,}",
    }
    for key, label in labels.items():
        p, r = plait_times[key], ray_times[key]
        print(f"| {label} | {p:.3f} | {r:.3f} | {p / r:.2f}x |")


if __name__ == "__main__":
    main()
