"""Message sets resolved against a session's numbering (pure).

A session numbers its messages by the uids its view knows: sequence number
n is ``uids[n - 1]`` (RFC 9051 §2.3.1.2). A set from the client becomes
*spans*: half-open index ranges ``[start, stop)`` into that array, sorted
and merged, so ``1:*`` over 100,000 messages is one pair and nothing is
built per message until a handler walks the spans.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence

from mailyard.proto.imap.sequence import SequenceSet

__all__ = [
    "OutOfRange",
    "Spans",
    "index_spans",
    "member",
    "pick",
    "positions",
    "span_count",
    "uid_set",
]

Spans = tuple[tuple[int, int], ...]


class OutOfRange(ValueError):
    """A message sequence number above the number of messages (BAD)."""


def index_spans(uids: Sequence[int], numbers: SequenceSet, *, uid: bool,
                saved: Sequence[int] | None = None) -> Spans:
    """The index spans of ``numbers`` (sequence numbers, or uids if ``uid``).

    ``$`` (RFC 5182 §2.1) is the saved result: uids, whatever the command
    (no saved result is the empty set). Sequence numbers beyond the count
    are refused unless the set uses ``*`` (RFC 9051 §9: ``*`` is the
    largest number in use, so ``5:*`` with 3 messages means ``3:5``, and
    is clipped). For uids, RFC 9051 §6.4.8: ``n:*`` always includes the
    last message, however large ``n``, and absent uids are simply ignored.
    """
    if numbers.saved:
        return _uid_spans(uids, uid_set(saved or ()))
    if uid:
        return _uid_spans(uids, numbers)
    count = len(uids)
    if numbers.uses_star:
        ranges = numbers.clipped(count)
    else:
        ranges = numbers.ranges(count)
        if ranges and ranges[-1][1] > count:
            raise OutOfRange(f"no message {ranges[-1][1]} (the mailbox has {count})")
    return tuple((first - 1, last) for first, last in ranges)


def _uid_spans(uids: Sequence[int], numbers: SequenceSet) -> Spans:
    if not uids or not numbers.items:
        return ()
    spans: list[tuple[int, int]] = []
    for first, last in numbers.ranges(uids[-1]):
        start = bisect_left(uids, first)
        stop = bisect_right(uids, last, lo=start)
        if start < stop:
            if spans and spans[-1][1] == start:
                spans[-1] = (spans[-1][0], stop)
            else:
                spans.append((start, stop))
    return tuple(spans)


def uid_set(uids: Sequence[int]) -> SequenceSet:
    """A uid list as a set (ascending order assumed; empty for none)."""
    return SequenceSet.from_numbers(uids)


def member(numbers: SequenceSet, largest: int) -> Callable[[int], bool]:
    """A membership test for ``numbers`` (``*`` read as ``largest``), by bisection."""
    spans = numbers.ranges(largest)
    firsts = [first for first, _ in spans]

    def inside(number: int) -> bool:
        index = bisect_right(firsts, number) - 1
        return index >= 0 and number <= spans[index][1]

    return inside


def span_count(spans: Spans) -> int:
    return sum(stop - start for start, stop in spans)


def positions(spans: Spans) -> Iterator[int]:
    for start, stop in spans:
        yield from range(start, stop)


def pick(values: array[int], spans: Spans) -> array[int]:
    """The values at the spans' positions (the uids of a set, say); the
    array itself when the spans cover all of it (arrays are never changed
    in place here, so sharing is safe)."""
    if spans == ((0, len(values)),):
        return values
    out = array("I")
    for start, stop in spans:
        out.extend(values[start:stop])
    return out
