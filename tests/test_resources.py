"""Resource requests: waiting for them, GPU ids, and requests no machine could meet."""

from __future__ import annotations

import os
import time

import pytest

import plait


def test_infeasible_request_fails_at_once(engine):
    @plait.task(num_cpus=64)
    def huge():
        return 1

    with pytest.raises(plait.InfeasibleResourcesError, match="CPU=64.*has CPU=2"):
        huge()

    @plait.task(resources={"tpu": 1})
    def custom():
        return 1

    with pytest.raises(plait.InfeasibleResourcesError, match="tpu"):
        custom()


def _span(delay):
    start = time.time()
    time.sleep(delay)
    return start, time.time()


def _overlap(a, b):
    return a[0] < b[1] and b[0] < a[1]


def test_custom_resource_limits_concurrency():
    @plait.task(resources={"db": 1})
    def query(delay):
        return _span(delay)

    with plait.init(workers=2, resources={"db": 1}):
        a, b = plait.get([query(0.3), query(0.3)])
        assert not _overlap(a, b)


def test_multi_cpu_task_holds_both_cpus():
    @plait.task(num_cpus=2)
    def wide(delay):
        return _span(delay)

    @plait.task
    def narrow(delay):
        return _span(delay)

    with plait.init(workers=2):
        w = wide(0.4)
        time.sleep(0.05)
        n = narrow(0.1)
        assert not _overlap(w.result(timeout=20), n.result(timeout=20))


def test_gpu_ids_through_cuda_visible_devices():
    @plait.task(num_gpus=1)
    def which_gpu(delay):
        time.sleep(delay)
        return os.environ.get("CUDA_VISIBLE_DEVICES")

    @plait.task(num_gpus=0.5)
    def half_gpu(delay):
        time.sleep(delay)
        return os.environ.get("CUDA_VISIBLE_DEVICES")

    @plait.task
    def no_gpu():
        return os.environ.get("CUDA_VISIBLE_DEVICES")

    with plait.init(workers=2, num_gpus=2):
        ids = plait.get([which_gpu(0.3), which_gpu(0.3)], timeout=30)
        assert sorted(ids) == ["0", "1"]
        assert set(plait.get([half_gpu(0.2) for _ in range(4)], timeout=30)) <= {"0", "1"}
        assert no_gpu().result() == os.environ.get("CUDA_VISIBLE_DEVICES")

    with pytest.raises(plait.InfeasibleResourcesError, match="GPU"):
        with plait.init(workers=2, num_gpus=1):
            which_gpu.options(num_gpus=2)(0)


def test_actor_resources_are_held_for_its_life():
    @plait.actor(resources={"slot": 1})
    class Holder:
        def ping(self):
            return "pong"

    @plait.task(resources={"slot": 1})
    def needs_slot():
        return "ran"

    with plait.init(workers=2, resources={"slot": 1}):
        holder = Holder()
        assert holder.ping().result(timeout=20) == "pong"
        waiting = needs_slot()
        with pytest.raises(TimeoutError):
            waiting.result(timeout=0.5)
        plait.kill(holder)
        assert waiting.result(timeout=20) == "ran"
