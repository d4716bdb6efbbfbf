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
core answers it in order with the commands around it. A line that goes on
more than ``RUNAWAY_SLACK`` octets past its limit without ending is
``runaway``: no client in step sends that, so the cores answer it at once
and close instead of reading on in silence.

Every core also keeps a ``Violations`` record from here: the kinds of abuse
(``Violation``) seen on the connection, each recorded once, for the adapter
to log (one line per kind and connection, however long the flood).
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["RUNAWAY_SLACK", "TOO_LONG", "LineBuffer", "TooLong", "Violation", "Violations"]

# Compacting costs a copy of what is left; doing it only past this many
# consumed octets keeps reading n lines O(total size), not O(n * size).
_COMPACT_AT: Final = 65536

# How far past its limit an unfinished line may run before the core gives up
# on the client: a mistaken long line (a pasted blob, a stray binary upload)
# ends within this and is answered in order; one that runs on is a flood, and
# a client waiting for an answer to it would wait for ever anyway. Dropping
# costs no memory, so the bound only caps the octets read in vain.
RUNAWAY_SLACK: Final = 1 << 20


class TooLong(enum.Enum):
    """Returned by ``next_line`` once an over-long line has fully ended."""

    TOO_LONG = "TOO_LONG"

    def __repr__(self) -> str:
        return self.value


TOO_LONG: Final = TooLong.TOO_LONG


class Violation(enum.Enum):
    """A kind of client abuse a core saw; the value is the logged name."""

    LINE_TOO_LONG = "line_too_long"  # a command (or content) line over its limit
    TOO_MANY_COMMANDS = "too_many_commands"  # the per-connection command limit
    TOO_MANY_ERRORS = "too_many_errors"  # the per-connection error limit
    UNKNOWN_COMMAND = "unknown_command"  # a line that is no command at all
    LITERAL_TOO_BIG = "literal_too_big"  # an IMAP literal over its limit
    NESTING_TOO_DEEP = "nesting_too_deep"  # IMAP parentheses nested too deep
    MESSAGE_TOO_BIG = "message_too_big"  # SIZE=, DATA, BDAT or APPEND over the limit


class Violations:
    """The kinds of abuse seen on one connection, each kept once.

    Cores call ``record`` where they answer the abuse; the adapter calls
    ``take`` after feeding input and logs what is new. Recording each kind
    once per connection keeps a flood of bad lines from flooding the log.
    """

    __slots__ = ("_new", "_seen")

    def __init__(self) -> None:
        self._seen: set[Violation] = set()
        self._new: list[Violation] = []

    def record(self, kind: Violation) -> None:
        """Note ``kind`` (ignored if this connection already had it)."""
        if kind not in self._seen:
            self._seen.add(kind)
            self._new.append(kind)

    def take(self) -> tuple[Violation, ...]:
        """The kinds recorded since the last call, in order of appearance."""
        new = tuple(self._new)
        self._new.clear()
        return new


class LineBuffer:
    """Bytes received and not yet consumed."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._pos = 0
        self._discarding = False  # inside an over-long line, dropping it
        self._too_long_ended = False  # that line has ended: report it once
        self._discarded = 0  # octets of that line dropped so far
        self._limit = 0  # the limit that line broke

    def __len__(self) -> int:
        """Unconsumed octets held (never counts a dropped over-long line)."""
        return len(self._data) - self._pos

    @property
    def discarded(self) -> int:
        """Octets of the over-long line being dropped so far (0 outside one)."""
        return self._discarded

    @property
    def runaway(self) -> bool:
        """The over-long line being dropped ran more than ``RUNAWAY_SLACK``
        octets past its limit without ending: the client is out of step."""
        return self._discarding and self._discarded > self._limit + RUNAWAY_SLACK

    def append(self, data: bytes) -> None:
        """Add received bytes at the end."""
        if self._discarding:
            # Bounded memory: only what follows the over-long line's LF is kept.
            lf = data.find(b"\n")
            if lf < 0:
                self._discarded += len(data)
                return
            self._discarding = False
            self._discarded = 0
            self._too_long_ended = True
            data = data[lf + 1 :]
        self._data += data

    def clear(self) -> None:
        """Drop everything buffered (TLS start, QUIT, EOF)."""
        self._data = bytearray()
        self._pos = 0
        self._discarding = False
        self._too_long_ended = False
        self._discarded = 0

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
                return self._start_discarding(start, max_len)
            return None
        self._pos = lf + 1
        end = lf - 1 if lf > start and self._data[lf - 1] == 0x0D else lf
        line = bytes(self._data[start:end])
        self._compact()
        return line

    def _start_discarding(self, start: int, max_len: int) -> TooLong | None:
        rest = self._data.find(b"\n", start)
        if rest >= 0:
            # The whole over-long line is already here: skip it at once.
            self._pos = rest + 1
            self._compact()
            return TOO_LONG
        self._discarded = len(self._data) - start
        self._limit = max_len
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
