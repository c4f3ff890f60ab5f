"""The shared-memory object store.

A large value is pickled with protocol 5; its out-of-band buffers and the
pickle stream are written to one file in a private (0700) directory on
``/dev/shm``, named by the object's id. A reader maps the file and hands
memoryviews of it to ``pickle.loads``: numpy arrays come back zero-copy
(read-only, as in Ray). Small values never touch the store: they travel inline
in the messages.

Payloads, as the rest of the engine passes them around:

- ``bytes``: an inline pickle;
- ``tuple[bytes, list[bytes]]``: an inline pickle with out-of-band buffers;
- ``int``: the id of the store file that holds the value.

Recycling: allocating fresh pages of a tmpfs file costs more than copying
into them, so the file of a freed object that no process has mapped is kept
in a small pool (``pool/``) and the next large write of a similar size
reuses it (claimed by an atomic rename). Every process counts its mappings
(``track``) and tells the driver; a file still mapped somewhere (a zero-copy
array a user holds) is only unlinked, never reused, so no live view changes.

Spilling: the driver keeps the bytes held in shared memory under
``object_store_memory``; above it, the oldest files move to a disk directory.
Readers look in shared memory first and then on disk, so a spilled value comes
back transparently (and a mapping already made stays valid).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import mmap
import os
import pickle
import shutil
import struct
import tempfile
import weakref
from collections.abc import Sequence
from typing import Any

from plait.errors import ObjectStoreFullError

log = logging.getLogger("plait")

INLINE_MAX = 256 * 1024  # bytes of buffers+pickle kept inline in messages
POOL_MIN = 1 << 20  # only files this large are worth recycling
POOL_FILES = 16
_ALIGN = 64


def _raw(buffer: Any) -> memoryview:
    if isinstance(buffer, pickle.PickleBuffer):
        return buffer.raw()
    return memoryview(buffer).cast("B")


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


class StoreDirs:
    """Where store files live: shared memory first, the spill directory second."""

    __slots__ = ("shm", "spill")

    def __init__(self, shm: str, spill: str) -> None:
        self.shm = shm
        self.spill = spill

    def shm_path(self, oid: int) -> str:
        return f"{self.shm}/{oid:x}"

    def spill_path(self, oid: int) -> str:
        return f"{self.spill}/{oid:x}"

    def __reduce__(self) -> Any:
        return (StoreDirs, (self.shm, self.spill))


def _write_all(fd: int, data: Any) -> None:
    view = memoryview(data).cast("B")
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_object(dirs: StoreDirs, oid: int, data: bytes, buffers: Sequence[Any]) -> int:
    """Write one object's file; returns its size. Falls back to disk if /dev/shm is full."""
    raws = [_raw(b) for b in buffers]
    header = struct.pack(f"<QQ{len(raws)}Q", len(data), len(raws), *(r.nbytes for r in raws))
    total = len(header) + len(data)
    for raw in raws:
        total = _aligned(total) + raw.nbytes
    for path in (dirs.shm_path(oid), dirs.spill_path(oid)):
        tmp = path + ".tmp"
        try:
            recycled = path == dirs.shm_path(oid) and total >= POOL_MIN and _claim(dirs, total, tmp)
            flags = os.O_WRONLY if recycled else os.O_CREAT | os.O_WRONLY | os.O_TRUNC
            fd = os.open(tmp, flags, 0o600)
            try:
                offset = len(header) + len(data)
                _write_all(fd, header)
                _write_all(fd, data)
                for raw in raws:
                    pad = _aligned(offset) - offset
                    if pad:
                        _write_all(fd, b"\0" * pad)
                    _write_all(fd, raw)
                    offset += pad + raw.nbytes
                if recycled:
                    os.ftruncate(fd, offset)
            finally:
                os.close(fd)
            os.rename(tmp, path)
            return offset
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if exc.errno not in _FULL:
                raise
            if path != dirs.shm_path(oid):
                raise store_full(total, dirs, exc) from None
    raise AssertionError("unreachable")


_FULL = (errno.ENOSPC, errno.EDQUOT)


def store_full(size: int, dirs: StoreDirs, exc: OSError) -> ObjectStoreFullError:
    return ObjectStoreFullError(
        f"cannot store a value of {size:,} bytes: shared memory ({os.path.dirname(dirs.shm)}) and the "
        f"spill directory ({os.path.dirname(dirs.spill)}) are both full ({exc.strerror}). Free values "
        "(drop futures, or Future.release() them), or give plait.init(spill_dir=...) a larger disk"
    )


def _pool_entries(dirs: StoreDirs) -> list[tuple[int, str]]:
    try:
        names = os.listdir(f"{dirs.shm}/pool")
    except FileNotFoundError:
        return []
    entries = []
    for name in names:
        size, _, _ = name.partition("-")
        if size.isdigit():
            entries.append((int(size), name))
    return sorted(entries)


def _claim(dirs: StoreDirs, size: int, tmp: str) -> bool:
    """Take a pooled file of about ``size`` bytes as ``tmp``; False if none fits."""
    for have, name in _pool_entries(dirs):
        if size <= have <= 2 * size + POOL_MIN:
            try:
                os.rename(f"{dirs.shm}/pool/{name}", tmp)
                return True
            except FileNotFoundError:
                continue  # another process took it first
    return False


def read_object(dirs: StoreDirs, oid: int, track: Any = None) -> tuple[memoryview, list[memoryview]]:
    """Map an object's file: its pickle stream and buffers, without copying.

    ``track(oid, +1)`` is called now and ``track(oid, -1)`` once nothing uses
    the mapping any more (from whatever thread collects it).
    """
    try:
        fd = os.open(dirs.shm_path(oid), os.O_RDONLY)
    except FileNotFoundError:
        try:
            fd = os.open(dirs.spill_path(oid), os.O_RDONLY)
        except FileNotFoundError:
            raise LookupError(
                f"object {oid:x} is not in the object store any more (it was freed); "
                "keep a reference to its future while you need the value"
            ) from None
    try:
        size = os.fstat(fd).st_size
        mapped = mmap.mmap(fd, size, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    if track is not None:
        track(oid, 1)
        weakref.finalize(mapped, track, oid, -1)
    view = memoryview(mapped)
    data_len, count = struct.unpack_from("<QQ", view, 0)
    sizes = struct.unpack_from(f"<{count}Q", view, 16)
    offset = 16 + 8 * count
    data = view[offset : offset + data_len]
    offset += data_len
    buffers = []
    for n in sizes:
        offset = _aligned(offset)
        buffers.append(view[offset : offset + n])
        offset += n
    return data, buffers


def delete_object(dirs: StoreDirs, oid: int) -> None:
    for path in (dirs.shm_path(oid), dirs.spill_path(oid)):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def encode(dirs: StoreDirs, oid: int, data: bytes, buffers: list[Any]) -> tuple[Any, int]:
    """A payload for a pickled value: inline when small, else a store file. Returns (payload, size)."""
    if not buffers:
        if len(data) <= INLINE_MAX:
            return data, 0
    else:
        raws = [_raw(b) for b in buffers]
        if len(data) + sum(r.nbytes for r in raws) <= INLINE_MAX:
            return (data, [r.tobytes() for r in raws]), 0
    return oid, write_object(dirs, oid, data, buffers)


def decode(dirs: StoreDirs, payload: Any, resolve: Any = None, track: Any = None) -> Any:
    from plait.runtime.serialization import loads

    if type(payload) is bytes:
        return loads(payload, (), resolve)
    if type(payload) is tuple:
        return loads(payload[0], payload[1], resolve)
    data, buffers = read_object(dirs, payload, track)
    return loads(data, buffers, resolve)


class ObjectStore:
    """The driver's view of the store: directories, sizes, and the spill policy."""

    def __init__(self, limit: int | None, spill_dir: str | None) -> None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        shm = tempfile.mkdtemp(prefix="plait-", dir=base)
        spill = tempfile.mkdtemp(prefix="plait-spill-", dir=spill_dir)
        os.chmod(shm, 0o700)
        os.chmod(spill, 0o700)
        os.mkdir(f"{shm}/workers", 0o700)  # each worker's running slot (see worker.running_slot)
        os.mkdir(f"{shm}/pool", 0o700)  # freed files kept for reuse
        self.dirs = StoreDirs(shm, spill)
        if limit is None:
            try:
                st = os.statvfs(base or shm)
                limit = int(st.f_bavail * st.f_frsize * 0.5)
            except OSError:  # pragma: no cover
                limit = 2 << 30
        self.limit = limit
        self.in_memory: dict[int, int] = {}  # oid -> size, oldest first
        self.spilled: dict[int, int] = {}
        self.bytes_in_memory = 0
        self.spill_count = 0
        self.spill_full = False  # the last spill failed for want of disk space

    def added(self, oid: int, size: int) -> None:
        self.in_memory[oid] = size
        self.bytes_in_memory += size
        if self.bytes_in_memory > self.limit:
            self._spill()

    def freed(self, oid: int, recyclable: bool = False) -> None:
        """``recyclable``: no process maps the file, so its pages may be reused."""
        size = self.in_memory.pop(oid, None)
        if size is not None:
            self.bytes_in_memory -= size
            if recyclable and size >= POOL_MIN and self._pool(oid, size):
                return
        else:
            self.spilled.pop(oid, None)
        delete_object(self.dirs, oid)

    def _pool(self, oid: int, size: int) -> bool:
        entries = _pool_entries(self.dirs)
        if len(entries) >= POOL_FILES or sum(s for s, _ in entries) + size > self.limit // 4:
            return False
        try:
            os.rename(self.dirs.shm_path(oid), f"{self.dirs.shm}/pool/{size:016d}-{oid:x}")
        except FileNotFoundError:
            return False
        return True

    def _spill(self) -> None:
        """Move the oldest values to disk until memory is under the limit again. A full
        disk stops it: the values stay in memory (over the limit, nothing lost), said once
        until a spill succeeds again."""
        target = self.limit * 0.8
        for oid in list(self.in_memory):
            if self.bytes_in_memory <= target:
                break
            src, dst = self.dirs.shm_path(oid), self.dirs.spill_path(oid)
            try:
                shutil.copyfile(src, dst + ".tmp")
                os.rename(dst + ".tmp", dst)
                os.unlink(src)
            except FileNotFoundError:
                pass  # written straight to disk already
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(dst + ".tmp")
                if not self.spill_full:
                    self.spill_full = True
                    log.warning(
                        "plait cannot spill to %s (%s): %s bytes stay in shared memory, over "
                        "object_store_memory=%s; give plait.init(spill_dir=...) a larger disk",
                        self.dirs.spill, exc.strerror, f"{self.bytes_in_memory:,}", f"{self.limit:,}",
                    )  # fmt: skip
                return
            self.spill_full = False
            size = self.in_memory.pop(oid)
            self.bytes_in_memory -= size
            self.spilled[oid] = size
            self.spill_count += 1

    def stats(self) -> dict[str, int]:
        return {
            "objects_in_memory": len(self.in_memory),
            "bytes_in_memory": self.bytes_in_memory,
            "objects_spilled": len(self.spilled),
            "bytes_spilled": sum(self.spilled.values()),
            "spills": self.spill_count,
            "limit": self.limit,
        }

    def destroy(self) -> None:
        shutil.rmtree(self.dirs.shm, ignore_errors=True)
        shutil.rmtree(self.dirs.spill, ignore_errors=True)
