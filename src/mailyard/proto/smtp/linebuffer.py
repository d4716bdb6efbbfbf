"""The core's receive buffer: a bytearray with a read offset (h11's
``ReceiveBuffer``), with a bounded command-line reader.

The core owns this buffer, so the STARTTLS rule (drop plaintext received
after the STARTTLS line, RFC 3207 §4.2) is one call: ``clear()``.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["TOO_LONG", "LineBuffer", "TooLong"]

_COMPACT_AT: Final = 65536


class TooLong(enum.Enum):
    """Returned by ``next_line`` once an over-long line has fully ended."""

    TOO_LONG = "TOO_LONG"


TOO_LONG: Final = TooLong.TOO_LONG


class LineBuffer:
    """Bytes received and not yet consumed."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._pos = 0
        self._discarding = False  # inside an over-long line, dropping it
        self._too_long_ended = False  # that line has ended: report it once

    def __len__(self) -> int:
        return len(self._data) - self._pos

    def append(self, data: bytes) -> None:
        if self._discarding:
            # Bounded memory: only the tail after the over-long line's LF matters.
            lf = data.find(b"\n")
            if lf < 0:
                return
            self._discarding = False
            self._too_long_ended = True
            data = data[lf + 1 :]
        self._data += data

    def clear(self) -> None:
        """Drop everything buffered (STARTTLS, QUIT, EOF)."""
        self._data = bytearray()
        self._pos = 0
        self._discarding = False
        self._too_long_ended = False

    def next_line(self, max_len: int) -> bytes | TooLong | None:
        """The next line without its CRLF or LF, ``TOO_LONG``, or None (need more).

        ``max_len`` counts the line end (RFC 5321 §4.5.3.1.4: 512 octets
        including CRLF for a command line; ours is configurable). Bare LF is
        accepted as a line end for commands (lenient); content is stricter.
        A longer line is dropped as it arrives, never buffered whole.
        """
        if self._too_long_ended:
            self._too_long_ended = False
            return TOO_LONG
        if self._discarding:
            return None
        start = self._pos
        lf = self._data.find(b"\n", start, start + max_len)
        if lf < 0:
            if len(self._data) - start >= max_len:
                return self._start_discarding(start)
            return None
        self._pos = lf + 1
        line = bytes(self._data[start:lf])
        self._compact()
        if line.endswith(b"\r"):
            line = line[:-1]
        return line

    def _start_discarding(self, start: int) -> TooLong | None:
        rest = self._data.find(b"\n", start)
        if rest >= 0:
            self._pos = rest + 1
            self._compact()
            return TOO_LONG
        self._data = bytearray()
        self._pos = 0
        self._discarding = True
        return None

    def peek(self) -> bytes:
        """All unconsumed bytes (copy), for the content readers."""
        return bytes(self._data[self._pos :])

    def advance(self, count: int) -> None:
        self._pos += count
        self._compact()

    def _compact(self) -> None:
        if self._pos >= _COMPACT_AT or self._pos == len(self._data):
            del self._data[: self._pos]
            self._pos = 0
