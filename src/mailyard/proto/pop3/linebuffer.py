"""The core's receive buffer: a bytearray with a read offset (h11's
``ReceiveBuffer``) and a bounded line reader.

An over-long line is dropped as it arrives, never buffered whole, and
reported once when its end is seen. STLS drops everything with ``clear()``.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["TOO_LONG", "LineBuffer", "TooLong"]

_COMPACT_AT: Final = 65536


class TooLong(enum.Enum):
    TOO_LONG = "TOO_LONG"


TOO_LONG: Final = TooLong.TOO_LONG


class LineBuffer:
    """Bytes received and not yet consumed."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._pos = 0
        self._discarding = False  # inside an over-long line
        self._too_long_ended = False  # that line ended: report it once

    def __len__(self) -> int:
        return len(self._data) - self._pos

    def append(self, data: bytes) -> None:
        if self._discarding:
            lf = data.find(b"\n")
            if lf < 0:
                return
            self._discarding = False
            self._too_long_ended = True
            data = data[lf + 1 :]
        self._data += data

    def clear(self) -> None:
        self._data = bytearray()
        self._pos = 0
        self._discarding = False
        self._too_long_ended = False

    def next_line(self, max_len: int) -> bytes | TooLong | None:
        """The next line without CRLF (or bare LF), ``TOO_LONG``, or None.

        ``max_len`` counts the line end: a 512-octet limit admits 510 octets
        of text plus CRLF (RFC 1939 §3 counts responses the same way).
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
        return line[:-1] if line.endswith(b"\r") else line

    def _start_discarding(self, start: int) -> TooLong | None:
        rest = self._data.find(b"\n", start)
        if rest >= 0:
            self._pos = rest + 1
            self._compact()
            return TOO_LONG
        self.clear()
        self._discarding = True
        return None

    def _compact(self) -> None:
        if self._pos >= _COMPACT_AT or self._pos == len(self._data):
            del self._data[: self._pos]
            self._pos = 0
