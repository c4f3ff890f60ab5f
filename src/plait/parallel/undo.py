"""Undoing writes that the sequential program would never have made.

Statements run ahead of a task call that, it turns out, raised: sequentially
nothing after that call happened. Variables are versioned, so their later
versions are simply dropped; but a write into an object may be visible after
the call ends: an object from outside the function (a module-level dict, a
list passed in, an attribute of an argument), by whatever name the write goes
through, or a local object stored in one. Each write into an outside object's
own name, and each write made while a call before it may still fail, records
how to undo itself; when the call fails, the writes after the failing
statement are undone, last first, so the objects are left as the sequential
program left them.

Each function here is called just before the write and returns the undo (or
None where the object's kind is not known: such writes stay).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_MISSING = object()
Undo = Callable[[], None]


def setitem(obj: Any, key: Any) -> Undo | None:
    if type(obj) is dict:
        old = obj.get(key, _MISSING)
        if old is _MISSING:
            return lambda: obj.pop(key, None)
        return lambda: obj.__setitem__(key, old)
    if type(obj) in (list, bytearray):
        if type(key) is int and -len(obj) <= key < len(obj):
            item = obj[key]
            return lambda: obj.__setitem__(key, item)
        return _whole(obj)  # a slice: the list as it was
    return None


def delitem(obj: Any, key: Any) -> Undo | None:
    if type(obj) in (list, bytearray):
        if type(key) is int and -len(obj) <= key < len(obj):
            index = key % len(obj)
            item = obj[index]
            return lambda: obj.insert(index, item)
        return _whole(obj)
    return setitem(obj, key)


def _whole(obj: Any) -> Undo:
    whole = obj[:]

    def restore() -> None:
        obj[:] = whole

    return restore


def setattr_(obj: Any, name: str) -> Undo | None:
    values = getattr(obj, "__dict__", None)
    if not isinstance(values, dict):
        return None
    old = values.get(name, _MISSING)
    if old is _MISSING:
        return lambda: values.pop(name, None)
    return lambda: values.__setitem__(name, old)


def method(obj: Any, name: str, args: tuple, kwargs: dict) -> Undo | None:
    """For the mutators a @parallel function calls on lists, dicts, sets and bytearrays."""
    t = type(obj)
    if t in (list, bytearray):
        if name in ("append", "extend", "insert"):
            size = len(obj)
            if name == "insert":
                index = args[0] if args else kwargs.get("index", 0)
                index = max(0, min(size, index + size if index < 0 else index))
                return lambda: obj.__delitem__(index)
            return lambda: obj.__delitem__(slice(size, None))  # what it added, at the end
        return None
    if t is dict:
        if name == "setdefault":
            key = args[0] if args else kwargs.get("key")
            return None if key in obj else (lambda: obj.pop(key, None))
        if name == "update" and (not args or hasattr(args[0], "keys")):
            keys = [*(args[0].keys() if args else ()), *kwargs]
            return _restore_keys(obj, keys)
        copy = dict(obj)

        def restore_dict() -> None:
            obj.clear()
            obj.update(copy)

        return restore_dict
    if t is set:
        if name == "add":
            item = args[0]
            return None if item in obj else (lambda: obj.discard(item))
        members = set(obj)

        def restore_set() -> None:
            obj.clear()
            obj.update(members)

        return restore_set
    return None


def _restore_keys(obj: dict, keys: list) -> Undo:
    old = {k: obj.get(k, _MISSING) for k in keys}

    def restore() -> None:
        for k, v in old.items():
            if v is _MISSING:
                obj.pop(k, None)
            else:
                obj[k] = v

    return restore
