"""Sequence sets (RFC 9051 §9 ``sequence-set``, RFC 5182 ``$``) as a value.

A set is kept as the ranges the client wrote, with ``*`` unresolved (it
means "the largest number in use", known only to the adapter). Resolving
against that largest number merges and sorts the ranges, so even ``1:*``
over 100,000 messages is one pair, and membership, counting and iteration
work on ranges without ever building a list of numbers.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

__all__ = ["STAR", "SequenceSet"]

STAR: Final = 0  # stands for "*" inside a range; real numbers are >= 1
_MAX: Final = 0xFFFFFFFF  # RFC 9051 §9: nz-number is a 32-bit unsigned value
_RANGE: Final = re.compile(r"(\d+|\*)(?::(\d+|\*))?\Z")


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """Ranges ``(first, last)`` inclusive as written (``STAR`` for ``*``;
    ``first`` may exceed ``last``: RFC 9051 §9 ``seq-range`` is unordered).
    ``saved`` is RFC 5182's ``$``: the adapter substitutes the saved result."""

    items: tuple[tuple[int, int], ...] = ()
    saved: bool = False

    def __post_init__(self) -> None:
        if self.saved and self.items:
            raise ValueError("a saved-result set ($) has no ranges")
        for first, last in self.items:
            if not (0 <= first <= _MAX and 0 <= last <= _MAX):
                raise ValueError("sequence numbers are 32-bit")

    # -- construction ------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> SequenceSet:
        """``sequence-set`` or ``$``; ValueError when malformed."""
        if text == "$":
            return cls(saved=True)
        items: list[tuple[int, int]] = []
        for part in text.split(","):
            match = _RANGE.match(part)
            if match is None:
                raise ValueError(f"invalid sequence set {text!r}")
            first = _number(match.group(1))
            last = first if match.group(2) is None else _number(match.group(2))
            items.append((first, last))
        return cls(tuple(items))

    @classmethod
    def from_numbers(cls, numbers: Iterable[int]) -> SequenceSet:
        """Runs of consecutive numbers become ranges, in the order given
        (RFC 4315 COPYUID pairs source and destination sets by position)."""
        items: list[tuple[int, int]] = []
        first = last = -1
        for n in numbers:
            if n == last + 1 and last >= 1:
                last = n
                continue
            if last >= 1:
                items.append((first, last))
            first = last = n
        if last >= 1:
            items.append((first, last))
        return cls(tuple(items))

    @classmethod
    def of_range(cls, first: int, last: int) -> SequenceSet:
        return cls(((first, last),))

    # -- rendering ------------------------------------------------------------------

    def __str__(self) -> str:
        if self.saved:
            return "$"
        return ",".join(_render(first, last) for first, last in self.items)

    @property
    def uses_star(self) -> bool:
        return any(STAR in pair for pair in self.items)

    # -- evaluation against the mailbox (the adapter's side) ---------------------

    def ranges(self, largest: int) -> tuple[tuple[int, int], ...]:
        """Sorted, merged, inclusive ranges with ``*`` read as ``largest``.

        Numbers above ``largest`` are kept (for UIDs they simply match
        nothing; for sequence numbers the adapter decides to refuse them);
        use ``clipped`` to drop them.
        """
        if self.saved:
            raise ValueError("resolve a saved-result set ($) first")
        spans = sorted(_ordered(first, last, largest) for first, last in self.items)
        merged: list[tuple[int, int]] = []
        for first, last in spans:
            if last < 1:
                continue  # "*" on an empty mailbox: nothing
            first = max(first, 1)
            if merged and first <= merged[-1][1] + 1:
                if last > merged[-1][1]:
                    merged[-1] = (merged[-1][0], last)
            else:
                merged.append((first, last))
        return tuple(merged)

    def clipped(self, largest: int) -> tuple[tuple[int, int], ...]:
        """``ranges`` limited to ``1..largest``."""
        out = []
        for first, last in self.ranges(largest):
            if first > largest:
                break
            out.append((first, min(last, largest)))
        return tuple(out)

    def iter(self, largest: int) -> Iterator[int]:
        """The numbers, ascending, each once (lazily)."""
        for first, last in self.ranges(largest):
            yield from range(first, last + 1)

    def contains(self, number: int, largest: int) -> bool:
        spans = self.ranges(largest)
        index = bisect.bisect_right(spans, (number, _MAX + 1)) - 1
        return index >= 0 and spans[index][0] <= number <= spans[index][1]

    def count(self, largest: int) -> int:
        return sum(last - first + 1 for first, last in self.ranges(largest))

    def highest(self, largest: int) -> int:
        """The largest number named (0 if none)."""
        spans = self.ranges(largest)
        return spans[-1][1] if spans else 0


def _number(text: str) -> int:
    if text == "*":
        return STAR
    value = int(text)
    if not 1 <= value <= _MAX:
        raise ValueError(f"sequence number out of range: {text}")
    return value


def _ordered(first: int, last: int, largest: int) -> tuple[int, int]:
    first = largest if first == STAR else first
    last = largest if last == STAR else last
    return (first, last) if first <= last else (last, first)


def _render(first: int, last: int) -> str:
    a = "*" if first == STAR else str(first)
    if first == last:
        return a
    return a + ":" + ("*" if last == STAR else str(last))
