"""Incremental dot-stuffing of a multi-line response or DATA body.

RFC 1939 §3 (POP3 multi-line responses) and RFC 5321 §4.5.2 (SMTP DATA)
share one rule: a line that begins with "." is sent with one more "." in
front, and the body ends with CRLF "." CRLF. ``DotStuffer`` applies it to a
byte stream that arrives in chunks of any size, so a line start that falls
on a chunk boundary is still seen; memory stays bounded whatever the size of
the message.

The input is expected to be CRLF mail already (the store and the queue keep
it that way); nothing is converted. A line start is any position after LF,
so a stray bare LF is stuffed too and no client can be made to see an early
terminator. If the content does not end with CRLF, ``finish`` adds one
before the terminator (RFC 1939 §3: the terminator is a line of its own);
empty content gives the terminator alone.

``top_lines`` implements POP3 TOP (RFC 1939 §7): the header section, the
blank line that ends it, then at most ``top_lines`` lines of the body;
everything after that is dropped. Content with no blank line is all header.
"""

from __future__ import annotations

from typing import Final

__all__ = ["TERMINATOR", "DotStuffer"]

TERMINATOR: Final = b".\r\n"
_CRLF: Final = b"\r\n"
_DOT: Final = 0x2E


class DotStuffer:
    """Dot-stuff a stream: ``feed`` each chunk, then ``finish`` once."""

    def __init__(self, top_lines: int | None = None) -> None:
        if top_lines is not None and top_lines < 0:
            raise ValueError("top_lines must be >= 0")
        self._top = top_lines
        self._at_line_start = True
        self._tail = b""  # last two content bytes emitted (before stuffing)
        self._finished = False
        self._done = False  # TOP's line budget is used up
        self._in_header = True
        self._line_head = b""  # first two bytes of the current line (TOP)
        self._body_lines = 0

    @property
    def done(self) -> bool:
        """True once TOP's lines are out: later input is dropped, so the
        caller may stop reading the message."""
        return self._done

    def feed(self, data: bytes) -> bytes:
        """The stuffed form of ``data`` (possibly empty)."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        if not data or self._done:
            return b""
        if self._top is None:
            return self._feed_all(bytes(data))
        return self._feed_limited(bytes(data))

    def finish(self) -> bytes:
        """The final CRLF if the content lacked one, then the terminator."""
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        if self._tail and self._tail != _CRLF:
            return _CRLF + TERMINATOR
        return TERMINATOR

    def _feed_all(self, data: bytes) -> bytes:
        out = data.replace(b"\n.", b"\n..")
        if self._at_line_start and data[0] == _DOT:
            out = b"." + out
        self._at_line_start = data.endswith(b"\n")
        self._tail = (self._tail + data[-2:])[-2:]
        return out

    def _feed_limited(self, data: bytes) -> bytes:
        # One line (or the tail of one) at a time: only the header and at
        # most top_lines body lines ever pass through this loop.
        out = bytearray()
        pos = 0
        while pos < len(data) and not self._done:
            lf = data.find(b"\n", pos)
            end = len(data) if lf < 0 else lf + 1
            segment = data[pos:end]
            pos = end
            if self._at_line_start and segment[0] == _DOT:
                out += b"."
            out += segment
            self._tail = (self._tail + segment[-2:])[-2:]
            self._line_head = (self._line_head + segment[:2])[:2]
            self._at_line_start = lf >= 0
            if lf >= 0:
                self._end_line()
        return bytes(out)

    def _end_line(self) -> None:
        head, self._line_head = self._line_head, b""
        if self._in_header:
            # RFC 5322 §2.1: the first empty line ends the header section.
            if head in (b"\n", b"\r\n"):
                self._in_header = False
                self._done = self._top == 0
            return
        self._body_lines += 1
        self._done = self._top is not None and self._body_lines >= self._top
