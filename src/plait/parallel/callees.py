"""What a call made inside a ``@parallel`` function is: a helper, a pure function, or an effect.

AutoGraph converts the functions a converted function calls; so does
``@parallel``. A plain function defined in the user's own code (not in the
standard library, an installed package or plait) is a *helper*: it is
compiled like the ``@parallel`` function itself, so its task calls return
futures, its effects keep program order, and a helper that performs no effect
does not wait for earlier tasks. A helper the compiler cannot take (a
generator, one with ``global`` or a nested ``def``, one whose source cannot be
read) runs as an ordinary call instead: an *effect*.

A *pure* function has no effects and reads nothing but its arguments, so it
never waits for earlier statements and is lifted over futures like ``+``. The
known ones are the pure builtins, the functions of ``math``, ``cmath`` and
``operator``, and whatever the user marks with ``@plait.pure``. Methods of
``str``, ``bytes``, numbers and tuples are pure too (the runtime knows them
by their receiver). Every other library function is an effect.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import types
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from plait.parallel.compiler import CompiledFunction

F = TypeVar("F", bound=Callable)

PURE_MODULES = frozenset({"math", "cmath", "operator", "_operator"})


def pure(fn: F) -> F:
    """Declare ``fn`` pure: no I/O, no writes to anything it did not create, a result that
    depends only on its arguments. Under ``@parallel`` a call of it never waits for
    earlier work and is lifted over futures. It is returned unchanged otherwise."""
    try:
        fn.__plait_pure__ = True  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        raise TypeError(f"@plait.pure needs a function it can mark, got {fn!r}") from None
    return fn


def is_pure(fn: Any) -> bool:
    if getattr(fn, "__plait_pure__", False) is True:
        return True
    if type(fn) is types.BuiltinFunctionType:
        return getattr(fn, "__module__", None) in PURE_MODULES
    return False


@functools.cache
def _library_roots() -> tuple[str, ...]:
    import sysconfig

    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    roots.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # plait itself
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        roots.add(os.path.join(prefix, "lib"))
    return tuple(sorted(os.path.join(os.path.realpath(r), "") for r in roots))


_user_files: dict[str, bool] = {}


def is_user_function(fn: Any) -> bool:
    """A plain ``def`` from the program's own files (not a lambda, not library code)."""
    if type(fn) is not types.FunctionType or fn.__name__ == "<lambda>":
        return False
    filename = fn.__code__.co_filename
    known = _user_files.get(filename)
    if known is None:
        if filename.startswith("<"):
            known = False  # typed at a prompt or made by exec: no source to compile
        else:
            path = os.path.join(os.path.realpath(filename), "")
            known = not any(path.startswith(root) for root in _library_roots())
        _user_files[filename] = known
    return known


_compiled: weakref.WeakKeyDictionary[Callable, CompiledFunction | None] = weakref.WeakKeyDictionary()
_compiling: set[int] = set()
_lock = threading.RLock()


def helper(fn: Any) -> CompiledFunction | None:
    """The compiled form of a user helper, or None where it runs as an ordinary call."""
    if not is_user_function(fn) or getattr(fn, "__plait_pure__", False):
        return None
    try:
        return _compiled[fn]
    except KeyError:
        pass
    from plait.parallel.compiler import ParallelSyntaxError, compile_function

    with _lock:
        if fn in _compiled:
            return _compiled[fn]
        if id(fn) in _compiling:
            return None  # recursion while compiling: the summary cannot be known yet
        _compiling.add(id(fn))
        try:
            compiled: CompiledFunction | None = compile_function(fn)
        except (ParallelSyntaxError, SyntaxError, OSError, TypeError):
            compiled = None  # runs as an ordinary call: an effect, waiting for what came before
        finally:
            _compiling.discard(id(fn))
        _compiled[fn] = compiled
        return compiled
