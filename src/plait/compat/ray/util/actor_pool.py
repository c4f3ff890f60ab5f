"""``ray.util.ActorPool`` on plait's own pool: a failed call raises as ``ray.get`` would."""

from __future__ import annotations

from typing import Any

from plait.compat.ray.exceptions import raised_as_ray
from plait.runtime.actor_pool import ActorPool as _PlaitActorPool


class ActorPool(_PlaitActorPool):
    def get_next(self, timeout: float | None = None, ignore_if_timedout: bool = False) -> Any:
        with raised_as_ray():
            return super().get_next(timeout)

    def get_next_unordered(self, timeout: float | None = None, ignore_if_timedout: bool = False) -> Any:
        with raised_as_ray():
            return super().get_next_unordered(timeout)


__all__ = ["ActorPool"]
