"""Length-prefixed pickle frames over a Unix socket pair.

The driver and each worker share one ``socket.socketpair()``: nothing is
listening anywhere, so no other process can reach an unpickler. Each frame is
an 8-byte little-endian length and a pickled *list* of messages, so one
system call carries a whole batch.
"""

from __future__ import annotations

import contextlib
import pickle
import socket
import struct
from collections import deque
from typing import Any

_HEADER = struct.Struct("<Q")
_CHUNK = 1 << 18


def pack(messages: list[Any]) -> bytes:
    data = pickle.dumps(messages, protocol=5)
    return _HEADER.pack(len(data)) + data


class FrameReader:
    """Accumulates bytes and yields complete frames."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[list[Any]]:
        buf = self._buf
        buf += data
        frames = []
        pos = 0
        n = len(buf)
        while n - pos >= 8:
            (size,) = _HEADER.unpack_from(buf, pos)
            end = pos + 8 + size
            if end > n:
                break
            frames.append(pickle.loads(memoryview(buf)[pos + 8 : end]))
            pos = end
        if pos:
            del buf[:pos]
        return frames


class BlockingChannel:
    """The worker's end: blocking sends and receives."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = FrameReader()
        self.pending: deque[list[Any]] = deque()

    def send(self, messages: list[Any]) -> None:
        self.sock.sendall(pack(messages))

    def recv(self) -> list[Any] | None:
        """The next frame's messages, or None when the driver is gone."""
        while not self.pending:
            try:
                data = self.sock.recv(_CHUNK)
            except OSError:
                return None
            if not data:
                return None
            self.pending.extend(self.reader.feed(data))
        return self.pending.popleft()


class Connection:
    """The driver's end: non-blocking, with an output buffer the I/O thread drains."""

    __slots__ = ("sock", "reader", "out", "closed")

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.reader = FrameReader()
        self.out = bytearray()
        self.closed = False

    def write(self, data: bytes) -> bool:
        """Queue ``data``; True if it all went out at once (no write interest needed)."""
        if self.closed:
            return True
        if self.out:
            self.out += data
            return False
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            return True  # the reader sees the EOF and reports the death
        if sent < len(data):
            self.out += memoryview(data)[sent:]
            return False
        return True

    def flush(self) -> bool:
        """Send what is buffered; True when the buffer is empty."""
        if not self.out or self.closed:
            return True
        try:
            sent = self.sock.send(self.out)
        except BlockingIOError:
            return False
        except OSError:
            self.out.clear()
            return True
        del self.out[:sent]
        return not self.out

    def say_goodbye(self, data: bytes) -> None:
        """Send what is buffered, then ``data``, now, as far as the socket takes them (a worker
        too busy to read gets only the end of the stream)."""
        if self.closed or not self.flush():
            return
        with contextlib.suppress(OSError):
            self.sock.send(data)

    def read(self) -> list[list[Any]] | None:
        """All complete frames available now; None at end of stream."""
        frames: list[list[Any]] = []
        while True:
            try:
                data = self.sock.recv(_CHUNK)
            except BlockingIOError:
                return frames
            except OSError:
                return None if not frames else frames
            if not data:
                return None if not frames else frames
            frames.extend(self.reader.feed(data))
            if len(data) < _CHUNK:
                return frames

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
