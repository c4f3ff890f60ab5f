"""Bad input gets a clear error, promptly, and the engine keeps working (checked by a
task run afterwards): stale futures, bad options, hostile graph files."""

from __future__ import annotations

import pytest

import plait


@plait.task
def ident(x):
    return x


@pytest.mark.parametrize("name", ["inline", "local"])
def test_a_future_kept_from_an_engine_shut_down_is_refused_by_the_next(name):
    with plait.init(engine=name, workers=1):
        old = ident("the old engine's value")
        assert old.result() == "the old engine's value"
    with plait.init(engine=name, workers=1):
        new = ident("the new engine's value")  # the same id as the old one: ids restart at 1
        assert new.id == old.id
        for passed in (old, [old], {"k": old}):
            with pytest.raises(plait.PlaitError, match=f"belongs to another {name} engine .*shut down"):
                ident(passed)
        assert ident(new).result() == "the new engine's value"


@plait.actor
class Box:
    def __init__(self, label):
        self.label = label

    def get(self):
        return self.label


@pytest.mark.parametrize("name", ["inline", "local"])
def test_an_actor_handle_kept_from_an_engine_shut_down_is_refused_by_the_next(name):
    with plait.init(engine=name, workers=1):
        old = Box("the old engine's actor")
        assert old.get().result() == "the old engine's actor"
    with plait.init(engine=name, workers=1):
        new = Box("the new engine's actor")  # the same id as the old one
        assert new._actor_id == old._actor_id
        with pytest.raises(plait.PlaitError, match="belongs to another engine .*Create the actor again"):
            old.get()
        with pytest.raises(plait.PlaitError, match="belongs to another engine"):
            plait.kill(old)
        assert new.get().result() == "the new engine's actor"  # neither reached nor killed
