"""``@plait.parallel``: an imperative function run as a dataflow, sequential meaning kept."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from plait.parallel.compiler import CompiledFunction, compile_function


class ParallelFunction:
    """A function whose task calls run in parallel while it keeps its sequential meaning.

    Called from ordinary code it returns its value (every future inside
    resolved). Called from another ``@parallel`` function it returns at once
    and composes: its value is waited for only where it is needed.
    """

    def __init__(self, fn: Callable, check: bool | None = None) -> None:
        if not callable(fn) or not hasattr(fn, "__code__"):
            raise TypeError(f"@plait.parallel needs a plain function, got {fn!r}")
        self.fn = fn
        self.check = check
        functools.update_wrapper(self, fn)
        # compiled now, so unsupported constructs are refused at decoration time
        self._compiled: CompiledFunction | None = compile_function(fn)

    @property
    def compiled(self) -> CompiledFunction:
        if self._compiled is None:
            self._compiled = compile_function(self.fn)
        return self._compiled

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from plait.runtime.context import sequential_reference

        if sequential_reference.active:
            return self.fn(*args, **kwargs)
        check = self.check if self.check is not None else os.environ.get("PLAIT_CHECK", "") not in ("", "0")
        if check:
            from plait.parallel.check import run_checked

            return run_checked(self, args, kwargs)
        return self.call(args, kwargs)

    def call(self, args: tuple, kwargs: dict) -> Any:
        """Run one call from ordinary code, to its value (calls from @parallel code nest in the runtime)."""
        from plait.parallel import granularity
        from plait.parallel.runtime import Invocation, call_natively

        compiled = self.compiled
        arguments = compiled.bind(args, kwargs)
        twin = compiled.native
        if twin is not None and granularity.ENABLED and twin.ready():
            ran = call_natively(compiled, self.fn, arguments, _lookahead_allowed)
            if ran is not None:
                done, outcome = ran
                return outcome if done else outcome.value()
        invocation = Invocation(compiled, self.fn, arguments, _lookahead_allowed(), None)
        invocation.run()
        return invocation.value()

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return functools.partial(self, instance)

    def __repr__(self) -> str:
        return f"<plait.parallel {self.fn.__qualname__}>"

    def __reduce__(self) -> Any:
        return (ParallelFunction, (self.fn, self.check))


def _lookahead_allowed() -> bool:
    """Lookahead needs threads and an engine that takes calls from several of them."""
    from plait.runtime.context import current_engine

    engine = current_engine()
    return engine.concurrent_clients and os.environ.get("PLAIT_LOOKAHEAD", "1") != "0"


def parallel(fn: Callable | None = None, *, check: bool | None = None) -> Any:
    """Run an imperative function as a dataflow: ``@plait.parallel`` or ``@plait.parallel(check=True)``."""
    if fn is None:
        return lambda f: ParallelFunction(f, check=check)
    return ParallelFunction(fn, check=check)
