"""``plait.stream``: timely dataflow, with epochs, structured loops and progress tracking.

Records carry logical timestamps (an input epoch, plus one counter per enclosing
loop); operators may ask to be notified when a timestamp is complete; the
driver tracks progress with pointstamp counts and the could-result-in relation
of the graph, so batch, streaming and iterative computation are one program:

    flow = stream.Dataflow(workers=4)
    lines = flow.input()
    counts = lines.flat_map(str.split).count_by_key().capture()
    with flow:
        lines.advance_to(0); lines.send("a b a"); lines.close()
    counts.by_epoch()   # {0: [("a", 2), ("b", 1)]}
"""

from plait.stream.dataflow import Capture, Dataflow, Input, Probe, Scope, Stream
from plait.stream.worker import Context, StreamError

__all__ = ["Capture", "Context", "Dataflow", "Input", "Probe", "Scope", "Stream", "StreamError"]
