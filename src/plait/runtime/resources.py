"""The machine's resources and their accounting: CPUs, GPUs (by id), memory, custom.

A *shape* is the sorted tuple of (resource, amount) one task or actor holds
while it runs (see ``TaskOptions.shape``). The pool grants a shape only when
all of it is free, and refuses at once a shape larger than the whole machine,
since such a task would wait forever.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from plait.errors import InfeasibleResourcesError

Shape = tuple[tuple[str, float], ...]


def detect_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def detect_gpu_ids() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    try:
        return [str(i) for i in range(len(os.listdir("/proc/driver/nvidia/gpus")))]
    except OSError:
        return []


def detect_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):  # pragma: no cover
        return 0


@dataclass(slots=True)
class Grant:
    """What one lease holds: its shape and the GPU ids it was given."""

    shape: Shape
    gpu_ids: tuple[str, ...] = ()
    gpu_share: float = 0.0


class ResourcePool:
    def __init__(
        self,
        num_cpus: float,
        gpu_ids: list[str],
        memory: int,
        custom: dict[str, float] | None = None,
    ) -> None:
        self.total: dict[str, float] = {"CPU": num_cpus, "GPU": float(len(gpu_ids)), "memory": memory}
        self.total.update(custom or {})
        self.free = dict(self.total)
        self.gpu_ids = list(gpu_ids)
        self.gpu_free = {g: 1.0 for g in gpu_ids}

    def check_feasible(self, shape: Shape, what: str) -> None:
        for key, amount in shape:
            have = self.total.get(key, 0)
            if amount > have + 1e-9:
                hint = {
                    "CPU": "plait.init(num_cpus=...) declares more",
                    "GPU": "plait.init(num_gpus=...) or CUDA_VISIBLE_DEVICES declares GPUs",
                    "memory": "plait.init(memory=...) declares more",
                }.get(key, f"plait.init(resources={{{key!r}: ...}}) declares it")
                raise InfeasibleResourcesError(
                    f"{what} asks for {key}={amount:g} but this engine has {key}={have:g} in all, "
                    f"so it could never run; lower the request, or {hint}"
                )

    def try_acquire(self, shape: Shape) -> Grant | None:
        free = self.free
        for key, amount in shape:
            if free.get(key, 0) < amount - 1e-9:
                return None
        gpus = dict(shape).get("GPU", 0)
        gpu_ids: tuple[str, ...] = ()
        share = 0.0
        if gpus:
            picked = self._pick_gpus(gpus)
            if picked is None:
                return None
            gpu_ids, share = picked
        for key, amount in shape:
            free[key] -= amount
        return Grant(shape, gpu_ids, share)

    def force_acquire(self, grant: Grant) -> None:
        """Take a grant back after a lend-out, even if that oversubscribes for a while."""
        for key, amount in grant.shape:
            self.free[key] -= amount
        for g in grant.gpu_ids:
            self.gpu_free[g] -= grant.gpu_share

    def release(self, grant: Grant) -> None:
        for key, amount in grant.shape:
            self.free[key] += amount
        for g in grant.gpu_ids:
            self.gpu_free[g] += grant.gpu_share

    def release_cpu_only(self, grant: Grant) -> None:
        """Lend out what a worker blocked in ``get`` holds (all but its GPUs)."""
        for key, amount in grant.shape:
            if key != "GPU":
                self.free[key] += amount

    def reacquire_cpu_only(self, grant: Grant) -> None:
        for key, amount in grant.shape:
            if key != "GPU":
                self.free[key] -= amount

    def _pick_gpus(self, amount: float) -> tuple[tuple[str, ...], float] | None:
        if amount < 1:
            for g in self.gpu_ids:
                if self.gpu_free[g] >= amount - 1e-9:
                    self.gpu_free[g] -= amount
                    return (g,), amount
            return None
        whole = [g for g in self.gpu_ids if self.gpu_free[g] >= 1 - 1e-9][: int(amount)]
        if len(whole) < int(amount):
            return None
        for g in whole:
            self.gpu_free[g] -= 1.0
        return tuple(whole), 1.0
