"""Replies as an SMTP client reads them: the ``ServerReply`` value and the
bounded reader that cuts them out of the received bytes.

RFC 5321 §4.2: a reply is one or more lines ``code "-" text`` ending with one
``code SP text`` (or the bare code) line, every line carrying the same code.
The first digit is 2–5 (§4.2.1: 1yz is never used by SMTP), the second 0–5.
What a remote server sends is hostile input, so the reader has a named limit
on the length of a line and on the lines of one reply; anything it cannot
read raises ``ReplySyntaxError`` and nothing else (hypothesis checks that).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from mailyard.proto.buffer import TOO_LONG, LineBuffer

__all__ = [
    "MAX_REPLY_LINE",
    "MAX_REPLY_LINES",
    "ReplyReader",
    "ReplySyntaxError",
    "ServerReply",
]

# RFC 5321 §4.5.3.1.5 says a reply line is at most 512 octets; real servers
# exceed it (long EHLO keyword lists, verbose rejections), so allow four times
# that. A reply of more lines than this is no SMTP server we want to talk to.
MAX_REPLY_LINE: Final = 2048
MAX_REPLY_LINES: Final = 100

_LINE: Final = re.compile(rb"([2-5][0-5][0-9])([ -]?)(.*)", re.DOTALL)
# RFC 3463 §2 status-code at the start of the text (RFC 2034 §4).
_ENHANCED: Final = re.compile(r"([245])\.([0-9]{1,3})\.([0-9]{1,3})(?: |$)")


class ReplySyntaxError(ValueError):
    """The server sent something that is not an SMTP reply."""


@dataclass(frozen=True, slots=True)
class ServerReply:
    """One reply. ``synthetic`` marks a reply made up by the client core for
    a failure of the connection (RFC 5321 §3.8: treat it as a 451), so a
    report never blames the remote server for words it did not say."""

    code: int
    lines: tuple[str, ...]
    synthetic: bool = False

    @property
    def positive(self) -> bool:
        """2xx or 3xx (RFC 5321 §4.2.1)."""
        return self.code < 400

    @property
    def permanent(self) -> bool:
        """5xx: do not repeat the same thing (RFC 5321 §4.2.1)."""
        return self.code >= 500

    @property
    def enhanced(self) -> str | None:
        """The RFC 3463 status code of the first line, if it has one of the
        same class as the reply code (RFC 3463 §2: they must agree)."""
        match = _ENHANCED.match(self.lines[0]) if self.lines else None
        if match is None or match.group(1) != str(self.code)[0]:
            return None
        return match.group(0).strip()

    @property
    def text(self) -> str:
        """All lines joined with spaces, each without its enhanced code."""
        parts = []
        cls = str(self.code)[0]
        for line in self.lines:
            match = _ENHANCED.match(line)
            parts.append(line[match.end() :] if match and match.group(1) == cls else line)
        return " ".join(part.strip() for part in parts if part.strip())

    def describe(self) -> str:
        """One line for logs, queue records and bounces: ``550 5.1.1 text``."""
        head = f"{self.code} {self.enhanced}" if self.enhanced else str(self.code)
        return f"{head} {self.text}".rstrip()


class ReplyReader:
    """Cuts complete replies out of the bytes received so far."""

    def __init__(self, max_line: int = MAX_REPLY_LINE, max_lines: int = MAX_REPLY_LINES) -> None:
        if max_line < 8 or max_lines < 1:
            raise ValueError("reply limits are too small")
        self._buf = LineBuffer()
        self._max_line = max_line
        self._max_lines = max_lines
        self._code: int | None = None  # of the reply being read
        self._lines: list[str] = []

    def __len__(self) -> int:
        """Octets held that belong to no complete reply yet."""
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf.append(data)

    def clear(self) -> None:
        """Forget everything (RFC 3207 §4.2: nothing read before TLS counts)."""
        self._buf.clear()
        self._code = None
        self._lines = []

    @property
    def partial(self) -> bool:
        """True while a reply has started and not yet ended, or bytes wait."""
        return self._code is not None or len(self._buf) > 0

    def next_reply(self) -> ServerReply | None:
        """The next complete reply, or None until more bytes arrive."""
        while True:
            line = self._buf.next_line(self._max_line)
            if line is None:
                return None
            if line is TOO_LONG:
                raise ReplySyntaxError(f"reply line longer than {self._max_line} octets")
            reply = self._take(line)
            if reply is not None:
                return reply

    def _take(self, line: bytes) -> ServerReply | None:
        match = _LINE.fullmatch(line)
        if match is None:
            raise ReplySyntaxError(f"not an SMTP reply line: {line[:40]!r}")
        code = int(match.group(1))
        more = match.group(2) == b"-"
        if match.group(2) == b"" and match.group(3):
            # "250x": the code must be followed by SP, "-" or the line end.
            raise ReplySyntaxError(f"not an SMTP reply line: {line[:40]!r}")
        if self._code is not None and code != self._code:
            # RFC 5321 §4.2.1: every line of a multi-line reply has the same code.
            raise ReplySyntaxError("multi-line reply changes its code")
        self._code = code
        self._lines.append(match.group(3).decode("utf-8", "replace"))
        if len(self._lines) > self._max_lines:
            raise ReplySyntaxError(f"reply of more than {self._max_lines} lines")
        if more:
            return None
        reply = ServerReply(code, tuple(self._lines))
        self._code = None
        self._lines = []
        return reply
