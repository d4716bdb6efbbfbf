"""Assembling one command from lines and literals, before any parsing.

RFC 9051 §4.3: a line ending in ``{n}`` (synchronising), ``{n+}``
(non-synchronising, RFC 7888) or ``~{n}`` (literal8, RFC 3516) is followed
by ``n`` octets and then the rest of the command on the next line. The
reader keeps the line texts (without their markers) and the literals in a
``Pending`` command and stops at every marker with ``Announced``: the core
checks its limits *before* a single literal octet is read, then either
lets the reader collect it (``read_literal``), hands it to the adapter
(APPEND's message), or refuses it (``discard``: a non-synchronising
literal is coming anyway, so its octets and the rest of the command are
read and dropped to stay in step with the client).

Bounded memory: a literal is collected only up to the configured size, a
discarded one is never stored, and the line reader drops over-long lines
as they arrive (``LineBuffer``).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Final

from mailyard.proto.buffer import TOO_LONG, LineBuffer

__all__ = [
    "Announced",
    "BadHead",
    "CommandReader",
    "Complete",
    "LineTooLong",
    "Marker",
    "Pending",
    "Progress",
    "split_marker",
]

# RFC 9051 §9: literal = "{" number64 ["+"] "}" CRLF; literal8 = "~{" ….
_MARKER: Final = re.compile(rb"(~?)\{([0-9]{1,20})(\+?)\}\Z")
# RFC 9051 §9 tag: 1*<any ASTRING-CHAR except "+">.
_TAG: Final = rb"[^(){ \x00-\x1f\x7f%*\"\\+\x80-\xff]+"
_VERB: Final = rb"[^(){ \x00-\x1f\x7f%*\"\\\]\x80-\xff]+"
_HEAD: Final = re.compile(rb"(" + _TAG + rb") (" + _VERB + rb")")
_TAG_ONLY: Final = re.compile(_TAG)
_UID_VERB: Final = re.compile(rb" (" + _VERB + rb")")


@dataclass(frozen=True, slots=True)
class Marker:
    size: int
    sync: bool
    binary: bool  # literal8


def split_marker(line: bytes) -> tuple[bytes, Marker | None]:
    """The line without a trailing literal marker, and the marker."""
    if not line.endswith(b"}"):
        return line, None
    match = _MARKER.search(line)
    if match is None:
        return line, None
    marker = Marker(int(match.group(2)), sync=not match.group(3), binary=bool(match.group(1)))
    return line[: match.start()], marker


@dataclass(slots=True)
class Pending:
    """A command being assembled: ``texts[i]`` is followed by ``literals[i]``.
    ``start`` is where the arguments begin in ``texts[0]`` (after the verb)."""

    tag: str
    verb: str
    start: int
    texts: list[bytes] = field(default_factory=list)
    literals: list[bytes] = field(default_factory=list)
    size: int = 0


@dataclass(frozen=True, slots=True)
class Complete:
    """The command's last line arrived (no marker at its end)."""

    pending: Pending


@dataclass(frozen=True, slots=True)
class Announced:
    """A literal was announced; the core must decide before anything is read."""

    pending: Pending
    marker: Marker


@dataclass(frozen=True, slots=True)
class BadHead:
    """No tag or command could be read; ``marker`` is a literal announced anyway."""

    tag: str | None
    reason: str
    marker: Marker | None


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A line over the limit was dropped whole: the client is out of step."""


class Progress(enum.Enum):
    """Octets were consumed (a literal or discarded data) and nothing is due."""

    PROGRESS = "PROGRESS"


class _Mode(enum.Enum):
    LINE = "LINE"
    LITERAL = "LITERAL"
    DISCARD = "DISCARD"  # dropping a refused non-synchronising literal
    DISCARD_LINES = "DISCARD_LINES"  # then the rest of that command


Result = Complete | Announced | BadHead | LineTooLong | Progress


class CommandReader:
    """Reads commands out of ``buf``; see the module doc."""

    def __init__(self, buf: LineBuffer, max_line: int, max_discard: int) -> None:
        self._buf = buf
        self._max_line = max_line
        self._max_discard = max_discard
        self._mode = _Mode.LINE
        self._pending: Pending | None = None
        self._remaining = 0
        self._literal = bytearray()
        self.gave_up = False  # a refused literal was too large to skip: close

    @property
    def idle(self) -> bool:
        """Between commands: nothing half-read."""
        return self._mode is _Mode.LINE and self._pending is None

    def reset(self) -> None:
        self._mode = _Mode.LINE
        self._pending = None
        self._remaining = 0
        self._literal = bytearray()

    def step(self) -> Result | None:
        """One unit of work; None when more input is needed."""
        if self._mode is _Mode.LITERAL:
            return self._read_literal()
        if self._mode is _Mode.DISCARD:
            return self._discard_octets()
        line = self._buf.next_line(self._max_line)
        if line is None:
            return None
        if line is TOO_LONG:
            self.reset()
            return LineTooLong()
        if self._mode is _Mode.DISCARD_LINES:
            self._discard_line(line)
            return Progress.PROGRESS
        return self._line(line)

    def _line(self, line: bytes) -> Result:
        text, marker = split_marker(line)
        pending = self._pending
        if pending is None:
            head = _HEAD.match(text)
            if head is None:
                return self._bad_head(text, marker)
            verb = head.group(2).upper()
            start = head.end()
            if verb == b"UID":
                sub = _UID_VERB.match(text, start)
                if sub is None:
                    return BadHead(head.group(1).decode("ascii"), "missing UID command", marker)
                verb += b" " + sub.group(1).upper()
                start = sub.end()
            pending = Pending(head.group(1).decode("ascii"), verb.decode("ascii"), start)
            self._pending = pending
        pending.texts.append(text)
        pending.size += len(line) + 2
        if marker is None:
            self._pending = None
            return Complete(pending)
        return Announced(pending, marker)

    @staticmethod
    def _bad_head(text: bytes, marker: Marker | None) -> BadHead:
        tag = _TAG_ONLY.match(text)
        if tag is None:
            return BadHead(None, "missing tag" if text.strip() else "empty command line", marker)
        reason = "invalid command name" if text[tag.end() :].strip() else "missing command"
        return BadHead(tag.group().decode("ascii"), reason, marker)

    # -- literals -----------------------------------------------------------------------

    def read_literal(self, marker: Marker) -> None:
        """Collect the announced literal into the pending command (limits checked)."""
        if self._pending is None:
            raise RuntimeError("no command is waiting for a literal")
        self._mode = _Mode.LITERAL
        self._remaining = marker.size
        self._literal = bytearray()

    def _read_literal(self) -> Result | None:
        if self._remaining:
            available = len(self._buf)
            if not available:
                return None
            data = self._buf.take(self._remaining)
            self._literal += data
            self._remaining -= len(data)
            if self._remaining:
                return None
        pending = self._pending
        assert pending is not None
        pending.literals.append(bytes(self._literal))
        pending.size += len(self._literal)
        self._literal = bytearray()
        self._mode = _Mode.LINE
        return Progress.PROGRESS

    def discard(self, marker: Marker | None) -> None:
        """The command is refused. A synchronising literal will not come (the
        client waits for "+"); a non-synchronising one is skipped, then the
        rest of the command."""
        self._pending = None
        if marker is None or marker.sync:
            self._mode = _Mode.LINE
            return
        self._start_discard(marker.size)

    def _start_discard(self, size: int) -> None:
        if size > self._max_discard:
            self.gave_up = True
            self.reset()
            return
        self._mode = _Mode.DISCARD
        self._remaining = size

    def _discard_octets(self) -> Result | None:
        if self._remaining:
            count = min(len(self._buf), self._remaining)
            if not count:
                return None
            self._buf.advance(count)
            self._remaining -= count
            if self._remaining:
                return None
        self._mode = _Mode.DISCARD_LINES
        return Progress.PROGRESS

    def _discard_line(self, line: bytes) -> None:
        _, marker = split_marker(line)
        if marker is None or marker.sync:
            self._mode = _Mode.LINE  # the refused command has ended
        else:
            self._start_discard(marker.size)

    def release(self) -> None:
        """The core took over the announced literal (APPEND's message)."""
        self._pending = None

    def skip_octets(self, size: int) -> None:
        """Discard ``size`` octets, then the rest of the command (APPEND refused)."""
        self._pending = None
        self._start_discard(size)
