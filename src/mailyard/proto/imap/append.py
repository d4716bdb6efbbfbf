"""The APPEND message literal, streamed (RFC 9051 §6.3.12, RFC 3516 §4.4,
RFC 6855 §4).

After the adapter accepted the message, its octets are handed out in
chunks of at most ``append_chunk`` (never the whole message in memory),
then the rest of the command line is read: it must be empty, or ``)``
after RFC 6855's ``UTF8 (~{n}``. MULTIAPPEND is not offered, so another
literal there is an error. The adapter may refuse half-way (disk full):
the remaining octets are then read and dropped, and its answer is sent
once the command has ended, so the session stays in step.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mailyard.proto.buffer import TOO_LONG, LineBuffer
from mailyard.proto.imap.reader import Marker, split_marker
from mailyard.proto.imap.settings import ImapLimits

__all__ = ["AppendOutcome", "AppendStream", "Consumed"]


class Consumed(enum.Enum):
    """Octets of a refused message were dropped; nothing to report."""

    CONSUMED = "CONSUMED"


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    """The command ended. ``refusal``: the adapter's rendered answer to send now;
    ``error``: the line after the message was wrong (BAD); ``marker``: a
    literal announced on that line (to skip); ``too_long``: that line was
    over the limit (the session cannot continue)."""

    refusal: bytes | None = None
    error: str | None = None
    marker: Marker | None = None
    too_long: bool = False


class AppendStream:
    def __init__(self, buf: LineBuffer, marker: Marker, utf8: bool, limits: ImapLimits) -> None:
        self._buf = buf
        self.marker = marker
        self.waiting = True  # until accept_append()
        self._remaining = marker.size
        self._chunk = limits.append_chunk
        self._max_line = limits.max_line_length
        self._tail = b")" if utf8 else b""
        self._refusal: bytes | None = None

    def accept(self) -> None:
        self.waiting = False

    def refuse(self, rendered: bytes) -> None:
        """The adapter's tagged answer (already rendered), sent at the end."""
        self._refusal = rendered

    def step(self) -> bytes | Consumed | AppendOutcome | None:
        """A chunk of the message, ``CONSUMED``, the outcome, or None (need data)."""
        if self._remaining:
            available = len(self._buf)
            if not available:
                return None
            count = min(self._remaining, self._chunk, available)
            data = self._buf.take(count)
            self._remaining -= count
            return Consumed.CONSUMED if self._refusal is not None else data
        line = self._buf.next_line(self._max_line)
        if line is None:
            return None
        if line is TOO_LONG:
            return AppendOutcome(too_long=True)
        text, marker = split_marker(line)
        if marker is None and text == self._tail:
            return AppendOutcome(refusal=self._refusal)
        error = "MULTIAPPEND is not supported" if marker else "unexpected data after the message"
        return AppendOutcome(refusal=self._refusal, error=error, marker=marker)
