"""Progress tracking: which timestamps can still appear where (Naiad's pointstamp protocol).

A *pointstamp* is a location and a time: a batch of records waiting at an
operator's input, or a capability an operator (or an input handle) holds to
produce records at that time. The tracker keeps a count of each. A time ``t``
is *complete* at an operator when no pointstamp with a positive count could
result in it: no path from its location maps its time to one at or before
``t``. Notifications fire, probes report and captured epochs close on exactly
that test.

The tracker only ever sees whole batches of changes (one worker's step, one
input's sends and advances), each applied at once. A step that consumes a
message counts the messages it sends and the capabilities it asks for in the
same batch, so a count can never drop to zero while work derived from it is
still uncounted: that is the safety argument, and it holds however the
batches of different workers interleave.
"""

from __future__ import annotations

from collections.abc import Iterable

from plait.stream.plan import Location, Plan, reach
from plait.stream.timestamp import Time, less_equal

Pointstamp = tuple[Location, Time]


class Tracker:
    def __init__(self, plan: Plan) -> None:
        self.reach, self.cycles = reach(plan)
        self.counts: dict[Pointstamp, int] = {}

    def update(self, changes: Iterable[tuple[Pointstamp, int]]) -> None:
        counts = self.counts
        for pointstamp, delta in changes:
            count = counts.get(pointstamp, 0) + delta
            if count:
                counts[pointstamp] = count
            else:
                del counts[pointstamp]

    def could_result_in(self, op: int, time: Time) -> bool:
        """Could any counted pointstamp still result in a time at or before ``time`` at
        operator ``op``, other than through ``op`` itself?

        The operator's own capabilities (its other notification requests, on any worker)
        count only through the loops that lead back to it: its notifications are run in
        time order, so an earlier one runs first, and what it sends can come back to the
        operator only round a loop, at a later counter. So all of an operator's complete
        times are offered at once, not one per round."""
        own = ("op", op)
        for (location, at), count in self.counts.items():
            if count <= 0:
                continue
            summaries = self.cycles[op] if location == own else self.reach[location].get(op, ())
            for summary in summaries:
                if less_equal(summary.apply(at), time):
                    return True
        return False

    def frontier(self, op: int) -> list[Time]:
        """The minimal times that could still arrive at ``op``: the times it may yet see."""
        times: list[Time] = []
        for (location, at), count in self.counts.items():
            if count <= 0:
                continue
            for summary in self.reach[location].get(op, ()):
                t = summary.apply(at)
                if not any(less_equal(kept, t) for kept in times):
                    times = [kept for kept in times if not less_equal(t, kept)]
                    times.append(t)
        return sorted(times)

    def negative(self) -> list[Pointstamp]:
        return [p for p, c in self.counts.items() if c < 0]

    def idle(self) -> bool:
        return not self.counts
