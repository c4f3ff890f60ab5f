"""A hash of record keys equal in every process: what routes a key to one partition or worker.

``hash()`` of a str is salted per process, so two senders would send one key to two
places; this one is not, and equal keys hash equal as they do in a dict.
"""

from __future__ import annotations

import decimal
import numbers
import pickle
import zlib
from typing import Any

_MASK = (1 << 64) - 1
_NUMBERS = (int, float, complex, decimal.Decimal)


def stable_hash(key: Any) -> int:
    """A hash equal in every process (``hash()`` of a str is salted per process, so two map
    tasks would send one key to two buckets); equal keys hash equal as in a dict."""
    if isinstance(key, str):
        return zlib.crc32(str.encode(key, "utf-8", "surrogatepass"))
    if isinstance(key, _NUMBERS):
        return hash(key) & _MASK  # numbers hash by value, the same everywhere: 1 == 1.0 == Decimal("1.00")
    if key is None:
        return 0  # hash(None) is its address before Python 3.12
    if isinstance(key, (bytes, bytearray)):
        return zlib.crc32(key)
    if isinstance(key, tuple):
        h = 0x345678
        for item in key:
            h = ((h * 1000003) ^ stable_hash(item)) & _MASK
        return h ^ len(key)
    if isinstance(key, frozenset):
        return sum(stable_hash(item) for item in key) & _MASK
    if isinstance(key, numbers.Number):  # Fraction, numpy's numbers: by value too (checked last: it is slow)
        return hash(key) & _MASK
    return zlib.crc32(pickle.dumps(key, protocol=5))
