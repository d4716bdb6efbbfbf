"""The receive buffer every sans-I/O core reads from: a bytearray with a read
offset (h11's ``ReceiveBuffer`` idea) and a bounded line reader.

Why one shared class: SMTP, POP3 (and later IMAP) all read CRLF-terminated
command lines under a length limit, and all must be able to forget what was
received in plaintext when TLS starts (RFC 3207 §4.2, RFC 2595 §4): with the
core owning this buffer that rule is one call, ``clear()``.

Memory stays bounded whatever the client sends: consumed bytes are dropped
from the front once enough of them pile up (or all are consumed), and an
over-long line is thrown away as it arrives instead of being kept until its
end shows up; ``next_line`` reports it once, when that end is seen, so the
core answers it in order with the commands around it.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["TOO_LONG", "LineBuffer", "TooLong"]

# Compacting costs a copy of what is left; doing it only past this many
# consumed octets keeps reading n lines O(total size), not O(n * size).
_COMPACT_AT: Final = 65536


class TooLong(enum.Enum):
    """Returned by ``next_line`` once an over-long line has fully ended."""

    TOO_LONG = "TOO_LONG"

    def __repr__(self) -> str:
        return self.value


TOO_LONG: Final = TooLong.TOO_LONG


class LineBuffer:
    """Bytes received and not yet consumed."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._pos = 0
        self._discarding = False  # inside an over-long line, dropping it
        self._too_long_ended = False  # that line has ended: report it once

    def __len__(self) -> int:
        """Unconsumed octets held (never counts a dropped over-long line)."""
        return len(self._data) - self._pos

    def append(self, data: bytes) -> None:
        """Add received bytes at the end."""
        if self._discarding:
            # Bounded memory: only what follows the over-long line's LF is kept.
            lf = data.find(b"\n")
            if lf < 0:
                return
            self._discarding = False
            self._too_long_ended = True
            data = data[lf + 1 :]
        self._data += data

    def clear(self) -> None:
        """Drop everything buffered (TLS start, QUIT, EOF)."""
        self._data = bytearray()
        self._pos = 0
        self._discarding = False
        self._too_long_ended = False

    def next_line(self, max_len: int) -> bytes | TooLong | None:
        """The next line without its CRLF or LF, ``TOO_LONG``, or None (need more).

        ``max_len`` counts the line end, as the RFCs do (RFC 5321 §4.5.3.1.4:
        512 octets including CRLF; RFC 2449 §4: 255 for POP3 commands). A
        bare LF also ends a line: command readers are lenient there, content
        readers (which use ``peek``/``advance``) are not.
        """
        if max_len < 2:
            raise ValueError("max_len must leave room for a line end")
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
        end = lf - 1 if lf > start and self._data[lf - 1] == 0x0D else lf
        line = bytes(self._data[start:end])
        self._compact()
        return line

    def _start_discarding(self, start: int) -> TooLong | None:
        rest = self._data.find(b"\n", start)
        if rest >= 0:
            # The whole over-long line is already here: skip it at once.
            self._pos = rest + 1
            self._compact()
            return TOO_LONG
        self._data = bytearray()
        self._pos = 0
        self._discarding = True
        return None

    def peek(self) -> bytes:
        """All unconsumed bytes (a copy), for readers of message content."""
        return bytes(self._data[self._pos :])

    def take(self, max_count: int) -> bytes:
        """Up to ``max_count`` unconsumed bytes, consumed (a literal's octets:
        copies only what is taken, unlike ``peek``)."""
        start = self._pos
        data = bytes(self._data[start : start + max_count])
        self.advance(len(data))
        return data

    def advance(self, count: int) -> None:
        """Consume ``count`` octets that ``peek`` showed."""
        if not 0 <= count <= len(self):
            raise ValueError("advance() past the buffered data")
        self._pos += count
        self._compact()

    def _compact(self) -> None:
        if self._pos >= _COMPACT_AT or self._pos == len(self._data):
            del self._data[: self._pos]
            self._pos = 0
