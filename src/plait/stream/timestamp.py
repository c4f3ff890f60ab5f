"""Logical timestamps and path summaries: the order that progress tracking reasons in.

A timestamp is a tuple of ints: the input epoch, then one iteration counter per
enclosing loop, outermost first. Timestamps of one scope are partially ordered
by the product order (every coordinate less or equal).

A *summary* says what happens to a timestamp along a path of the dataflow
graph: some leading coordinates are kept, each plus a fixed increment (a loop's
feedback edge adds one to its counter), and constants are appended (entering a
loop appends a counter starting at 0); leaving a loop drops its counter. That
family is closed under composition, so the summaries of every path between two
places fit it, and "could a pointstamp at one place result in a time at
another" is a question about the minimal summaries between the two.
"""

from __future__ import annotations

Time = tuple[int, ...]


def less_equal(a: Time, b: Time) -> bool:
    """The product order: ``a`` is at or before ``b`` in every coordinate."""
    for x, y in zip(a, b, strict=True):
        if x > y:
            return False
    return True


class Summary:
    """``t -> (t[0] + add[0], ..., t[keep-1] + add[keep-1]) + suffix``."""

    __slots__ = ("keep", "add", "suffix")

    def __init__(self, keep: int, add: tuple[int, ...], suffix: tuple[int, ...] = ()) -> None:
        if len(add) != keep:
            raise ValueError("a summary adds one increment per kept coordinate")
        self.keep = keep
        self.add = add
        self.suffix = suffix

    @classmethod
    def identity(cls, length: int) -> Summary:
        return cls(length, (0,) * length)

    @classmethod
    def enter(cls, length: int) -> Summary:
        """Into a loop: a new counter, starting at 0."""
        return cls(length, (0,) * length, (0,))

    @classmethod
    def leave(cls, length: int) -> Summary:
        """Out of a loop: its counter dropped."""
        return cls(length - 1, (0,) * (length - 1))

    @classmethod
    def feedback(cls, length: int) -> Summary:
        """Around a loop: its counter plus one."""
        return cls(length, (0,) * (length - 1) + (1,))

    def apply(self, t: Time) -> Time:
        add = self.add
        return tuple(t[i] + add[i] for i in range(self.keep)) + self.suffix

    def then(self, after: Summary) -> Summary:
        """This path followed by ``after``."""
        if after.keep <= self.keep:
            return Summary(after.keep, tuple(self.add[i] + after.add[i] for i in range(after.keep)), after.suffix)
        extra = after.keep - self.keep  # coordinates ``after`` keeps that are this path's constants
        kept = tuple(self.add[i] + after.add[i] for i in range(self.keep))
        constants = tuple(self.suffix[j] + after.add[self.keep + j] for j in range(extra))
        return Summary(self.keep, kept, constants + after.suffix)

    def at_most(self, other: Summary) -> bool:
        """For every timestamp ``t``: ``self.apply(t) <= other.apply(t)`` (coordinates are
        never negative, so a constant is below a kept coordinate plus at least as much)."""
        length = self.keep + len(self.suffix)
        if length != other.keep + len(other.suffix):
            return False
        for i in range(length):
            mine_kept, theirs_kept = i < self.keep, i < other.keep
            mine = self.add[i] if mine_kept else self.suffix[i - self.keep]
            theirs = other.add[i] if theirs_kept else other.suffix[i - other.keep]
            if mine_kept and not theirs_kept:  # t + a <= c cannot hold for every t
                return False
            if mine > theirs:
                return False
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Summary) and (self.keep, self.add, self.suffix) == (
            other.keep,
            other.add,
            other.suffix,
        )

    def __hash__(self) -> int:
        return hash((self.keep, self.add, self.suffix))

    def __repr__(self) -> str:
        kept = ", ".join(f"t{i}+{a}" if a else f"t{i}" for i, a in enumerate(self.add))
        extra = ", ".join(str(c) for c in self.suffix)
        return f"Summary({', '.join(p for p in (kept, extra) if p)})"


def insert_minimal(antichain: list[Summary], summary: Summary) -> bool:
    """Add ``summary`` to a list of mutually incomparable summaries unless one of them is
    at most it; drop those it is at most. True if it was added."""
    for kept in antichain:
        if kept.at_most(summary):
            return False
    antichain[:] = [kept for kept in antichain if not summary.at_most(kept)]
    antichain.append(summary)
    return True
