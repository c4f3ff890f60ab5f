"""``ray.util``: the parts plait offers (``ActorPool``)."""

from plait.compat.ray.util.actor_pool import ActorPool

__all__ = ["ActorPool"]
