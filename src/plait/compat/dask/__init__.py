"""``import plait.compat.dask as dask``: ``dask.delayed`` programs on plait.

``delayed`` (a decorator and a wrapper; ``pure=``, ``nout=``; attribute and item access,
calls and operators on Delayed objects record more calls), ``compute``, ``persist``,
``visualize`` (plait's pictures) and ``is_dask_collection``. ``compute`` lowers every
Delayed it is given into one graph of plait's IR and runs it on the current engine
(plait's local engine, started on first use). ``plait.compat.dask.distributed`` has
``Client`` and ``LocalCluster`` stand-ins. What plait cannot honour raises
``plait.NotSupported`` naming it.
"""

from __future__ import annotations

from plait.compat.dask.delayed import Delayed, compute, delayed, is_dask_collection, persist, visualize

__all__ = ["Delayed", "compute", "delayed", "is_dask_collection", "persist", "visualize"]
