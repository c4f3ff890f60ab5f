"""The dataflow examples, importable from the benchmarks (``examples`` is no package)."""

from __future__ import annotations

import importlib
import os
import sys

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "stream")


def components_module():
    if EXAMPLES not in sys.path:
        sys.path.insert(0, EXAMPLES)
    import cloudpickle

    module = importlib.import_module("components")
    cloudpickle.register_pickle_by_value(module)
    return module
