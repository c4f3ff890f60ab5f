"""Ray's documentation examples, import lines changed only, run on plait.compat.ray."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent / "compat_examples" / "ray"

# the lines a program prints, as Ray's documentation states them (in order); programs not
# listed check themselves with asserts, or print what varies from run to run
PRINTS = {
    "actor-pool.py": ["[2, 4, 6, 8]"],
    "actor-repr.py": ["hello there", "hello there"],
    "actor-sync.py": ["ready...", "set..", "go!", "go!", "go!", "go!"],
    "actor_pool_has_free.py": ["False", "2", "True"],
    "actor_pool_has_next.py": ["True", "2", "False"],
    "actor_pool_submit.py": ["2 4"],
    "anti_pattern_nested_ray_get.py": ["3", "3"],
    "anti_pattern_ray_get_ray_wait_async_anti_pattern.py": ["o1 is 1", "o2 is 2", "o3 is ready"],
    "fault_tolerance_tips.py": ["1", "1", "1", "1"],
    "gotchas_env_var.py": ["myenv is None"],
    "pattern_pipelining.py": [str(i) for i in range(10)] * 2,
    "task-orders_async_actor.py": ["3", "2"],  # the call whose input came late ran last
    "task-orders_different_submitters.py": ["3", "2"],
    "task-orders_same_submitter.py": ["1", "3"],
    "task_exceptions.py": [
        "the real error",
        "the real error",
        "a user exception",
        "a *final* user exception",
        "<class '__main__.MyFinalException'>",
        "a *final* user exception",
    ],
}
FIRST_LINES = {  # programs whose later lines vary: what they print first
    "pattern_async_actor.py": ["get_num_executed_tasks didn't finish in 5 seconds"],
}

PROGRAMS = sorted(p.name for p in EXAMPLES.glob("*.py"))


def test_the_corpus_is_what_the_issue_asks_for():
    assert len(PROGRAMS) >= 20
    for name in PROGRAMS:
        head = (EXAMPLES / name).read_text().splitlines()[:3]
        assert head[0].startswith("# Source: https://github.com/ray-project/ray/blob/"), name
        assert head[2].startswith("# Changed: the import lines only"), name
    assert set(PRINTS) | set(FIRST_LINES) <= set(PROGRAMS)


@pytest.mark.parametrize("name", PROGRAMS)
def test_ray_example_runs_unchanged(name, tmp_path):
    # as a user's shell has it: stdout a pipe, block-buffered (PYTHONUNBUFFERED unset)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLAIT_", "RAY_", "PYTHONUNBUFFERED"))}
    env.pop("FOO", None)  # gotchas_env_var reads it, unset as the docs assume
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{name} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if name in PRINTS:
        assert lines == PRINTS[name], done.stdout
    if name in FIRST_LINES:
        expected = FIRST_LINES[name]
        assert lines[: len(expected)] == expected, done.stdout
