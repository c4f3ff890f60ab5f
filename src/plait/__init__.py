"""plait: plain Python, run in parallel.

``@plait.task`` functions return futures; ``plait.get``/``plait.wait`` collect
them; ``@plait.actor`` classes live in worker processes of their own. The
default engine runs one warm worker process per core; ``plait.init(engine=
"inline")`` runs everything in-process for debugging.
"""

from plait.errors import (
    ActorDiedError,
    CancelledError,
    EngineError,
    GetTimeoutError,
    InfeasibleResourcesError,
    NotSupported,
    ObjectStoreFullError,
    PlaitError,
    ReleasedError,
    RemoteTraceback,
    SerializationError,
    TaskError,
    TaskTimeoutError,
    WorkerCrashedError,
)
from plait.parallel import ParallelSyntaxError, TraceError, capture, parallel, pure, trace
from plait.runtime.actor import ActorHandle, actor
from plait.runtime.actor_pool import ActorPool
from plait.runtime.api import (
    as_completed,
    get,
    get_actor,
    init,
    is_initialized,
    kill,
    put,
    shutdown,
    status,
    timeline,
    unresolved,
    wait,
)
from plait.runtime.future import Future
from plait.runtime.task import task

__version__ = "0.1.0"

__all__ = [
    "ActorDiedError",
    "ActorHandle",
    "ActorPool",
    "CancelledError",
    "EngineError",
    "Future",
    "GetTimeoutError",
    "Graph",
    "InfeasibleResourcesError",
    "NotSupported",
    "ObjectStoreFullError",
    "ParallelSyntaxError",
    "PlaitError",
    "ReleasedError",
    "RemoteTraceback",
    "SerializationError",
    "TaskError",
    "TaskTimeoutError",
    "TraceError",
    "WorkerCrashedError",
    "actor",
    "as_completed",
    "get_actor",
    "capture",
    "get",
    "init",
    "is_initialized",
    "kill",
    "parallel",
    "pure",
    "put",
    "run",
    "shutdown",
    "status",
    "task",
    "timeline",
    "trace",
    "unresolved",
    "wait",
]


def __getattr__(name: str):
    # the graph IR loads on first use, keeping `import plait` light
    if name == "graph":
        import plait.graph

        return plait.graph
    if name in ("Graph", "run"):
        import plait.graph

        value = globals()[name] = getattr(plait.graph, name)
        return value
    raise AttributeError(f"module 'plait' has no attribute {name!r}")
