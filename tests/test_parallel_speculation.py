"""Speculation past a pending break/return: later iterations' task calls start early, unseen if unused."""

from __future__ import annotations

import contextlib
import io
import os
import time
import uuid

import plait
from plait.parallel.check import sequential


@plait.task
def probe(i, folder, delay=0.3):
    """Leaves one file per run, so a test can count how often each call really ran."""
    start = time.time()
    time.sleep(delay)
    with open(os.path.join(folder, f"{i}-{uuid.uuid4().hex}"), "w"):
        pass
    if i == 6:
        raise ValueError("the search never gets this far")
    return i, start, time.time()


@plait.parallel
def first_at_least(n, folder, goal):
    for i in range(n):
        hit = probe(i, folder)
        if hit[0] >= goal:
            print("found", i)
            return hit
    return None


@plait.parallel
def break_search(n, folder, goal):
    spans = []
    found = -1
    for i in range(n):
        r = probe(i, folder)
        spans.append(r)
        if r[0] >= goal:
            found = i
            break
    return found, spans


def _runs(folder):
    counts: dict[int, int] = {}
    for name in os.listdir(folder):
        i = int(name.split("-")[0])
        counts[i] = counts.get(i, 0) + 1
    return counts


def test_break_search_starts_later_iterations_early(tmp_path):
    with plait.init(engine="local", workers=4):
        plait.get([probe(100 + i, str(tmp_path), 0) for i in range(4)])  # every worker up
        for f in tmp_path.iterdir():
            f.unlink()
        found, spans = break_search(8, str(tmp_path), 3)
    assert found == 3 and [s[0] for s in spans] == [0, 1, 2, 3]
    starts, ends = [s[1] for s in spans], [s[2] for s in spans]
    assert max(starts) < min(ends), spans  # the four iterations' calls ran at the same time
    runs = _runs(str(tmp_path))
    assert all(runs.get(i) == 1 for i in range(4)), runs  # each was taken over, never run twice


def test_speculative_calls_are_never_observed(tmp_path):
    out = io.StringIO()
    with plait.init(engine="local", workers=8):
        plait.get([probe(100 + i, str(tmp_path), 0) for i in range(8)])
        with contextlib.redirect_stdout(out):
            hit = first_at_least(10, str(tmp_path), 2)  # probe(6) fails, speculatively: unseen
    assert hit[0] == 2
    assert out.getvalue() == "found 2\n"
    ok, value, printed = sequential(first_at_least.fn, (10, str(tmp_path), 2), {})
    assert ok and value[0] == hit[0] and printed == out.getvalue()


def test_without_a_break_every_call_is_made_once(tmp_path):
    with plait.init(engine="local", workers=4):
        found, spans = break_search(5, str(tmp_path), 99)  # never found: all five iterations run
    assert found == -1 and [s[0] for s in spans] == [0, 1, 2, 3, 4]
    assert _runs(str(tmp_path)) == {i: 1 for i in range(5)}


def test_a_speculative_call_that_failed_unused_is_not_reported(tmp_path, caplog):
    """Its failure is nobody's: the sequential program never made the call."""
    import gc
    import logging

    caplog.set_level(logging.WARNING, logger="plait")
    with plait.init(engine="local", workers=8):
        plait.get([probe(100 + i, str(tmp_path), 0) for i in range(8)])
        assert first_at_least(10, str(tmp_path), 2)[0] == 2  # probe(6) ran ahead, and failed
        deadline = time.monotonic() + 60
        while 6 not in _runs(str(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert 6 in _runs(str(tmp_path))
        gc.collect()
    gc.collect()
    assert not [r for r in caplog.records if "dropped without" in r.getMessage()]
