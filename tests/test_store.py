"""The shared-memory object store: zero-copy reads, freeing, spilling."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import plait
from plait.runtime.context import current_engine


@plait.task
def checksum(arr):
    return float(arr.sum()), arr.flags.writeable, arr.shape


@plait.task
def make(n, value):
    return np.full(n, value, dtype=np.float64)


@plait.task
def scale(arr, k):
    return arr * k


def test_large_array_round_trip(engine):
    arr = np.arange(2_000_000, dtype=np.float64)
    ref = plait.put(arr)
    total, writeable, shape = checksum(ref).result()
    assert total == float(arr.sum()) and shape == arr.shape
    back = scale(ref, 2).result()
    assert np.array_equal(back, arr * 2)
    direct = checksum(arr).result()  # passed directly, not through put
    assert direct[0] == total


def test_large_values_are_zero_copy_in_tasks(local):
    ref = plait.put(np.ones(1_000_000))
    total, writeable, _ = checksum(ref).result()
    assert total == 1_000_000
    assert writeable is False  # a read-only view of shared memory, as in Ray
    assert current_engine().stats()["objects_in_memory"] >= 1


def test_store_files_are_freed_when_futures_go(local):
    engine = current_engine()
    shm_dir = engine.store.dirs.shm
    for _ in range(5):
        big = make(500_000, 1.0)
        assert big.result().sum() == 500_000
        del big
    def objects():
        return [name for name in os.listdir(shm_dir) if name not in ("workers", "pool")]

    deadline = time.monotonic() + 5
    while objects() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert objects() == []
    assert engine.stats()["bytes_in_memory"] == 0


def test_a_released_future_frees_its_file_while_the_object_lives_on(local):
    engine = current_engine()
    shm_dir = engine.store.dirs.shm
    big = make(500_000, 1.0)
    copy = plait.put([big])  # a value holding it keeps it alive
    assert big.result().sum() == 500_000
    kept = [big]  # a cache, a traceback: the object stays
    big.release()
    assert checksum(copy.result()[0]).result()[0] == 500_000
    copy.release()

    def objects():
        return [name for name in os.listdir(shm_dir) if name not in ("workers", "pool")]

    assert _wait_for(lambda: objects() == [])
    assert engine.stats()["bytes_in_memory"] == 0
    assert kept[0] is big


def _pool(engine):
    return os.listdir(os.path.join(engine.store.dirs.shm, "pool"))


def _wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def test_freed_files_are_recycled_for_the_next_large_value(local):
    engine = current_engine()
    ref = plait.put(np.ones(1_000_000))
    assert checksum(ref).result()[0] == 1_000_000
    del ref  # nobody maps it any more: its file goes to the pool
    assert _wait_for(lambda: len(_pool(engine)) == 1)
    again = plait.put(np.full(1_000_000, 2.0))  # same size: takes the pooled file
    assert _pool(engine) == []
    assert checksum(again).result()[0] == 2_000_000


def test_a_value_still_mapped_is_never_overwritten(local):
    engine = current_engine()
    held = make(1_000_000, 1.0).result()  # a zero-copy view of the store file
    assert _wait_for(lambda: engine.stats()["results"] == 0)  # its future is gone, the value freed
    for i in range(4):
        produced = make(1_000_000, float(i + 10))
        assert produced.result()[0] == i + 10
        del produced
    assert float(held.sum()) == 1_000_000  # untouched: the mapped file was unlinked, not reused
    assert all(int(name.split("-")[0]) >= 8_000_000 for name in _pool(engine))


def test_spill_to_disk_and_back():
    limit = 20 * 1024 * 1024  # 20 MB of shared memory; 8 x 8 MB arrays must spill
    with plait.init(workers=2, object_store_memory=limit) as session:
        engine = session.engine
        refs = [plait.put(np.full(1_000_000, float(i))) for i in range(8)]
        stats = engine.stats()
        assert stats["bytes_in_memory"] <= limit
        assert stats["objects_spilled"] >= 4
        assert os.listdir(engine.store.dirs.spill)
        sums = plait.get([checksum(r) for r in refs])
        assert [s[0] for s in sums] == [1_000_000.0 * i for i in range(8)]
        assert [r.result()[0] for r in refs] == [float(i) for i in range(8)]
        produced = [make(1_000_000, float(i)) for i in range(6)]
        assert [p.result()[-1] for p in produced] == [float(i) for i in range(6)]


def test_store_directory_is_private_and_removed(local):
    engine = current_engine()
    shm_dir = engine.store.dirs.shm
    assert os.stat(shm_dir).st_mode & 0o777 == 0o700
    plait.shutdown()
    assert not os.path.exists(shm_dir)


@pytest.mark.parametrize("size", [10, 100_000, 3_000_000])
def test_bytes_values_of_any_size(engine, size):
    data = os.urandom(size)

    @plait.task
    def reverse(b):
        return b[::-1]

    assert reverse(data).result() == data[::-1]


def test_calls_submitted_together_leave_no_file_when_one_of_them_cannot_be_sent(local):
    import threading

    from plait.runtime.calls import Call

    engine = current_engine()
    shm_dir = engine.store.dirs.shm
    big = np.ones(500_000)  # its own store file when encoded
    with pytest.raises(plait.SerializationError):
        engine.submit_many(checksum, [((big,), {}), ((threading.Lock(),), {})], checksum.task_options)
    with pytest.raises(plait.SerializationError):
        engine.submit_graph([
            Call(checksum, (big,), {}, checksum.task_options),
            Call(checksum, (threading.Lock(),), {}, checksum.task_options),
        ])
    objects = [name for name in os.listdir(shm_dir) if name not in ("workers", "pool")]
    assert objects == []  # the first call's argument file went with the refused batch
    assert checksum(big).result()[0] == 500_000
