"""How values cross process boundaries.

Values are pickled with protocol 5 through cloudpickle, so functions, lambdas
and classes defined in ``__main__`` or a notebook travel by value and
importable ones by reference. Large buffers (numpy arrays, bytes, Arrow
buffers) are collected *out of band* so an engine can place them in shared
memory and hand them to the receiver without copying.

Futures found anywhere inside a pickled value are not pickled: they are
recorded as references (``persistent_id``), so the runtime knows the value's
dependencies and the receiver can substitute each future's value
(``resolve``) or a live future for it. A future wrapped in ``Unresolved`` is no
dependency: it is recorded apart (``Refs.held``: the sender keeps its value
alive for the call) and the receiver gets a live future for it (``adopt``).

A ``numpy.memmap`` (or a view of one) travels as its file, not its bytes: the
receiver maps the same region of the same file, so a task's writes land in
the file, as with joblib. The file must be reachable where the task runs
(this machine, or a shared file system).
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from typing import Any

from plait.errors import PlaitError, ReleasedError, SerializationError
from plait.runtime.future import Future, Unresolved, released_error

_ATOMIC = frozenset({int, float, str, bytes, bool, type(None), complex})
EMPTY_ARGS = pickle.dumps(((), {}), protocol=5)
NONE = pickle.dumps(None, protocol=5)

_pickler_class: Any = None
_unpickler_class: Any = None


def _classes() -> tuple[Any, Any]:
    global _pickler_class, _unpickler_class
    if _pickler_class is None:
        import cloudpickle

        class RefPickler(cloudpickle.Pickler):
            refs: Refs

            def persistent_id(self, obj: Any) -> Any:
                t = type(obj)
                if t is Future:
                    if obj._released:
                        raise released_error(obj)
                    obj._seen = True  # a dependency: its failure reaches the dependent
                    self.refs.append(obj)
                    return obj._id
                if t is Unresolved:
                    future = obj.future
                    if future._released:
                        raise released_error(future)
                    self.refs.held.append(future)
                    return (HELD, future._id, future._name)
                return None

            def reducer_override(self, obj: Any) -> Any:
                if type(obj).__name__ == "memmap" and type(obj).__module__ == "numpy":
                    shared = _reduce_memmap(obj)
                    if shared is not None:
                        self.refs.shares_files = True
                        return shared
                return super().reducer_override(obj)

        class RefUnpickler(pickle.Unpickler):
            resolve: Callable[[int], Any]
            adopt: Callable[[int, str], Any]

            def persistent_load(self, pid: Any) -> Any:
                if type(pid) is tuple:  # (HELD, id, name): the future itself
                    return self.adopt(pid[1], pid[2])
                return self.resolve(pid)

        _pickler_class, _unpickler_class = RefPickler, RefUnpickler
    return _pickler_class, _unpickler_class


HELD = "held"


class Refs(list):
    """The futures found in a pickled value; ``held``: those passed as themselves
    (``Unresolved``); ``shares_files``: it maps files (memmaps), so it must be unpickled
    by plait, not copied by a framework's own pickler."""

    shares_files = False

    def __init__(self) -> None:
        super().__init__()
        self.held: list[Future] = []


NO_REFS = Refs()  # what atomic values hold: shared, never changed


def _reduce_memmap(obj: Any) -> Any:
    """(how to map the same bytes of the same file) for a memmap or a view of one."""
    import mmap

    import numpy as np

    root = obj
    while isinstance(root.base, np.ndarray):
        root = root.base
    filename = getattr(root, "filename", None)
    if not isinstance(root.base, mmap.mmap) or not filename:
        return None  # not backed by a file's map (an in-memory copy): pickled as an array
    mode = "r" if root.mode == "r" else "c" if root.mode == "c" else "r+"  # never w+ (truncates)
    start = obj.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    return (
        _map_region,
        (filename, root.offset, root.nbytes, mode, obj.dtype.str, obj.shape, obj.strides, start),
    )


def _map_region(
    filename: str, offset: int, nbytes: int, mode: str, dtype: str, shape: tuple, strides: tuple, start: int
) -> Any:
    import numpy as np

    region = np.memmap(filename, dtype=np.uint8, mode=mode, offset=offset, shape=(nbytes,))
    return np.ndarray(shape, dtype=np.dtype(dtype), buffer=region, offset=start, strides=strides)


def check_owner(refs: Refs, engine: Any) -> None:
    """Every future found in a value belongs to ``engine``. Futures name values by ids that
    each engine counts from 1, so one of another engine (or of one shut down since) would
    silently stand for a value of this engine's: refuse it."""
    for future in refs:
        if future._engine is not engine:
            raise foreign_future_error(future, engine)
    for future in refs.held:
        if future._engine is not engine:
            raise foreign_future_error(future, engine)


def foreign_future_error(future: Future, engine: Any) -> PlaitError:
    theirs = getattr(future._engine, "name", "?")
    if theirs == getattr(engine, "name", None):
        whose = f"another {theirs} engine (one shut down since, say)"
    else:
        whose = f"the {theirs} engine"
    return PlaitError(
        f"{future!r} belongs to {whose}, not to the {getattr(engine, 'name', '?')} engine this "
        "call goes to: a future is good only with the engine that made it. Pass its value "
        "(future.result(), read while its engine runs) instead"
    )


def is_atomic(value: Any) -> bool:
    return type(value) in _ATOMIC


def dumps(
    value: Any, *, out_of_band: bool = True, owner: Any = None
) -> tuple[bytes, list[pickle.PickleBuffer], Refs]:
    """Pickle ``value``: (data, out-of-band buffers, the futures found inside), which must
    belong to ``owner`` when one is given (``check_owner``)."""
    if type(value) in _ATOMIC:
        return pickle.dumps(value, protocol=5), [], NO_REFS
    pickler_cls, _ = _classes()
    buffers: list[pickle.PickleBuffer] = []
    stream = io.BytesIO()
    pickler = pickler_cls(stream, protocol=5, buffer_callback=buffers.append if out_of_band else None)
    pickler.refs = refs = Refs()
    pickler.dump(value)
    if owner is not None and (refs or refs.held):
        check_owner(refs, owner)
    return stream.getvalue(), buffers, refs


def loads(
    data: Any,
    buffers: Any = (),
    resolve: Callable[[int], Any] | None = None,
    adopt: Callable[[int, str], Any] | None = None,
) -> Any:
    """Unpickle; ``resolve(id)`` gives what stands for a future (its value, or a live
    future), ``adopt(id, name)`` a live future for one passed as itself (by default the
    current engine's)."""
    if resolve is None:
        return pickle.loads(data, buffers=buffers)
    _, unpickler_cls = _classes()
    unpickler = unpickler_cls(io.BytesIO(data), buffers=buffers)
    unpickler.resolve = resolve
    unpickler.adopt = adopt or _adopt_here
    return unpickler.load()


def _adopt_here(object_id: int, name: str) -> Future:
    from plait.runtime.context import current_engine

    return current_engine().adopt(object_id, name)


def dumps_put(value: Any, owner: Any) -> tuple[bytes, list[pickle.PickleBuffer], Refs]:
    """Pickle a value for ``put``; a failure says which type could not be pickled."""
    try:
        return dumps(value, owner=owner)
    except PlaitError:
        raise  # a future of another engine's, or a released one: said precisely already
    except Exception as exc:  # noqa: BLE001 - re-raised with what to do
        raise put_error(value, exc) from exc


def put_error(value: Any, exc: BaseException) -> SerializationError:
    return SerializationError(
        f"cannot put a value of type {describe_type(value)}: it cannot be pickled "
        f"({type(exc).__name__}: {exc}); put plain data, or create the object where it is used"
    )


def dumps_args(
    task_name: str, args: tuple, kwargs: dict, owner: Any = None
) -> tuple[bytes, list[pickle.PickleBuffer], Refs]:
    """Pickle a call's arguments; a failure names the argument and its type. The futures
    among them must belong to ``owner`` when one is given."""
    if not kwargs and all(type(a) in _ATOMIC for a in args):
        if not args:
            return EMPTY_ARGS, [], NO_REFS
        return pickle.dumps((args, kwargs), protocol=5), [], NO_REFS
    try:
        data, buffers, refs = dumps((args, kwargs))
    except ReleasedError:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised with a precise message
        raise argument_error(task_name, args, kwargs, exc) from exc
    if owner is not None and (refs or refs.held):
        check_owner(refs, owner)
    return data, buffers, refs


def argument_error(task_name: str, args: tuple, kwargs: dict, exc: BaseException) -> SerializationError:
    labelled = [(f"argument {i}", a) for i, a in enumerate(args)]
    labelled += [(f"argument {k!r}", v) for k, v in kwargs.items()]
    for label, value in labelled:
        try:
            dumps(value)
        except Exception as inner:  # noqa: BLE001
            return SerializationError(
                f"cannot send {label} of {task_name!r} to a worker: a value of type "
                f"{describe_type(value)} cannot be pickled ({type(inner).__name__}: {inner}). "
                "Pass something picklable (a path, plain data), or create the object inside the task."
            )
    return SerializationError(f"cannot pickle the arguments of {task_name!r}: {type(exc).__name__}: {exc}")


def result_error(task_name: str, value: Any, exc: BaseException) -> SerializationError:
    return SerializationError(
        f"task {task_name!r} returned a value of type {describe_type(value)} that cannot be pickled "
        f"({type(exc).__name__}: {exc}); return plain data, or write the object to a file and return its path"
    )


def describe_type(value: Any) -> str:
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def dumps_exception(exc: BaseException, task_name: str, tb: str) -> bytes:
    """Pickle a task's exception, falling back to a TaskError that keeps its text."""
    from plait.errors import TaskError

    try:
        data, _, _ = dumps((exc, tb), out_of_band=False)
        pickle.loads(data)  # an exception that pickles but cannot be rebuilt is no use
        return data
    except Exception:  # noqa: BLE001
        fallback = TaskError(task_name, type(exc).__qualname__, str(exc), tb)
        return pickle.dumps((fallback, tb), protocol=5)


def loads_exception(data: bytes) -> BaseException:
    from plait.errors import RemoteTraceback

    exc, tb = pickle.loads(data)
    if tb:
        exc.__cause__ = RemoteTraceback(tb)
    return exc
