"""The imperative front end: ``@plait.parallel`` turns a plain function into a dataflow."""

from plait.parallel.callees import pure
from plait.parallel.compiler import ParallelSyntaxError
from plait.parallel.function import ParallelFunction, parallel
from plait.parallel.tracing import TraceError, capture, trace

__all__ = ["ParallelFunction", "ParallelSyntaxError", "TraceError", "capture", "parallel", "pure", "trace"]
