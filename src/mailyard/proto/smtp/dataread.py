"""Message content readers: DATA (dot-terminated) and BDAT (counted chunks).

Policy for DATA content (RFC 5321 §4.1.1.4, §4.5.2), decided once here:

* The only line terminator is CRLF. Content ends at CRLF "." CRLF, where the
  first CRLF is part of the content (the message ends with a line end). The
  very first line counts as following a CRLF, so ``DATA`` + ``.\\r\\n`` is an
  empty message.
* A bare LF (LF not preceded by CR) anywhere in the content makes the message
  refused at end of data with ``554 5.6.0``. Since a bare LF never ends a
  line, ``\\n.\\n``, ``\\n.\\r\\n`` and ``\\r.\\r\\n`` never end DATA: this is
  what defeats SMTP smuggling (a relay that reads them differently from us
  cannot make us see a second message).
* A bare CR (CR not followed by LF) is passed through unchanged.
* Dot-unstuffing (RFC 5321 §4.5.2): a line starting with "." loses that one
  dot. It happens only at a real line start (after CRLF).
* A line longer than ``max_line_length`` octets including CRLF (counted after
  unstuffing; RFC 5321 §4.5.3.1.6) makes the message refused with
  ``554 5.6.0``.
* Content over ``max_message_size`` octets (after unstuffing, RFC 1870) is
  refused with ``552 5.3.4``.

On the first problem the reader stops producing content, records the problem
(the server emits ``DataAborted`` once) and keeps consuming up to the real end
of data, so the client and server stay in step; the reply waits for the end.
Memory stays bounded: nothing is buffered beyond the piece being handed out,
and at most two held octets ("." and CR at a line start) carry across feeds.

BDAT content (RFC 3030) is taken verbatim: no dot or line-end rules, only the
size limit, which is checked as soon as a chunk's size is announced.
"""

from __future__ import annotations

import enum
from typing import Final

from mailyard.proto.smtp.replies import (
    R552_SIZE_EXCEEDED,
    R554_BARE_LF,
    R554_LINE_TOO_LONG,
    Reply,
)

__all__ = ["BdatReader", "ContentProblem", "DotReader"]

_CR: Final = 0x0D
_LF: Final = 0x0A
_DOT: Final = 0x2E


class ContentProblem(enum.Enum):
    """Why content is refused; ``value`` is the DataAborted reason."""

    TOO_BIG = "message too big"
    BARE_LF = "bare LF in content"
    LINE_TOO_LONG = "line too long"

    @property
    def reply(self) -> Reply:
        return _PROBLEM_REPLY[self]


_PROBLEM_REPLY: Final = {
    ContentProblem.TOO_BIG: R552_SIZE_EXCEEDED,
    ContentProblem.BARE_LF: R554_BARE_LF,
    ContentProblem.LINE_TOO_LONG: R554_LINE_TOO_LONG,
}


class _At(enum.Enum):
    LINE_START = 0  # just after CRLF (or at the start of the content)
    DOT = 1  # line start, "." seen and held
    DOT_CR = 2  # line start, ".\r" seen and held
    MID = 3  # inside a line


class _Sink:
    """Content output with size accounting shared by both readers."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.size = 0
        self.problem: ContentProblem | None = None
        self._pieces: list[bytes] = []

    def flag(self, problem: ContentProblem) -> None:
        # The first problem decides the reply; later ones change nothing.
        if self.problem is None:
            self.problem = problem
            self._pieces.clear()

    def emit(self, buf: bytes, start: int, end: int) -> None:
        if end <= start:
            return
        self.size += end - start
        if self.size > self.max_size:
            self.flag(ContentProblem.TOO_BIG)
        if self.problem is None:
            self._pieces.append(buf[start:end])

    def take(self) -> list[bytes]:
        pieces, self._pieces = self._pieces, []
        return pieces


class DotReader(_Sink):
    """DATA content reader; see the module doc for the policy."""

    def __init__(self, max_size: int, max_line: int) -> None:
        super().__init__(max_size)
        self.max_line = max_line
        self._at = _At.LINE_START
        self._line = 0  # octets of the current content line so far
        self._prev_cr = False  # last octet of the previous feed was CR (in MID)

    def feed(self, buf: bytes, pos: int) -> tuple[int, bool]:
        """Consume ``buf[pos:]``; return (new position, end of data seen).

        Content produced is collected with ``take()``.
        """
        n = len(buf)
        if pos < n and self._at is _At.DOT_CR:
            if buf[pos] == _LF:
                return pos + 1, True
            # ".\r" + other: the dot was stuffing, the held CR is content.
            self.emit(b"\r", 0, 1)
            self._enter_mid(1, prev_cr=True)
        run = pos  # start of content not yet emitted
        i = pos
        while i < n:
            at = self._at
            if at is _At.MID or (at is _At.LINE_START and buf[i] != _DOT):
                i = self._scan_run(buf, i)
                continue
            if at is _At.LINE_START:
                self.emit(buf, run, i)
                run = i + 1  # the dot is never content as such
                self._at = _At.DOT
                i += 1
            elif at is _At.DOT:
                if buf[i] == _CR:
                    self._at = _At.DOT_CR
                    i += 1
                else:
                    # RFC 5321 §4.5.2: a leading dot is removed; this one was.
                    self._enter_mid(0, prev_cr=False)
            elif buf[i] == _LF:  # DOT_CR inside this feed: CRLF "." CRLF
                return i + 1, True
            else:
                self._enter_mid(1, prev_cr=True)  # the CR at ``run`` is content
        # Hold back a CR that may belong to a terminating ".\r\n".
        self.emit(buf, run, n - 1 if self._at is _At.DOT_CR and run < n else n)
        return n, False

    def _enter_mid(self, line: int, *, prev_cr: bool) -> None:
        self._at = _At.MID
        self._line = line
        self._prev_cr = prev_cr

    def _scan_run(self, buf: bytes, i: int) -> int:
        """From a line start without a dot, or in MID: advance to just before
        the next line-start dot (``"\n."``), or to the end of ``buf``.

        The whole run is content. It is checked in bulk (C-speed ``count``
        and ``rfind``); only a run that breaks a rule is walked line by line,
        so the problem is found and recorded exactly where it always was.
        """
        if self._at is _At.LINE_START:
            self._enter_mid(0, prev_cr=False)
        j = buf.find(b"\n.", i)
        end = len(buf) if j < 0 else j + 1
        if self.problem is None and not self._run_is_clean(buf, i, end):
            while i < end:
                if self._at is _At.LINE_START:
                    self._enter_mid(0, prev_cr=False)  # no dot before ``end``
                i = self._scan_line(buf, i)
            return end
        if buf[end - 1] != _LF:
            # The run stops at the end of buf inside a line.
            last_lf = buf.rfind(b"\n", i, end)
            self._line = end - last_lf - 1 if last_lf >= 0 else self._line + end - i
            self._prev_cr = buf[end - 1] == _CR
            return end
        # After a problem bare LFs are possible: only CRLF starts a line.
        cr_before = buf[end - 2] == _CR if end - 1 > i else self._prev_cr
        if self.problem is None or cr_before:
            self._at = _At.LINE_START
            self._line = 0
        self._prev_cr = False
        return end

    def _run_is_clean(self, buf: bytes, i: int, end: int) -> bool:
        """No bare LF and no line over ``max_line`` in ``buf[i:end]`` (in MID)."""
        crlf = buf.count(b"\r\n", i, end)
        if self._prev_cr and buf[i] == _LF:
            crlf += 1  # the CR was the previous octet
        if buf.count(b"\n", i, end) != crlf:
            return False
        # Jump from line start to line start by max_line octets at a time:
        # the last LF within reach of the current line start ends a line
        # that is short enough, and so are all lines before it.
        start = i - self._line  # where the current line began
        limit = self.max_line
        while start + limit < end:
            k = buf.rfind(b"\n", i, start + limit)
            if k < 0:
                return False
            start = i = k + 1
        return True

    def _scan_line(self, buf: bytes, i: int) -> int:
        """In MID: advance to just after the next LF, or to the end of buf."""
        j = buf.find(b"\n", i)
        if j < 0:
            n = len(buf)
            self._line += n - i
            self._prev_cr = buf[n - 1] == _CR
            self._check_line()
            return n
        self._line += j + 1 - i
        self._check_line()
        cr_before = buf[j - 1] == _CR if j > i else self._prev_cr
        if cr_before:
            self._at = _At.LINE_START
            self._line = 0
        else:
            # A bare LF is not a line end, so no "." after it can end DATA.
            self.flag(ContentProblem.BARE_LF)
        self._prev_cr = False
        return j + 1

    def _check_line(self) -> None:
        if self._line > self.max_line:
            self.flag(ContentProblem.LINE_TOO_LONG)


class BdatReader(_Sink):
    """BDAT chunk reader (RFC 3030 §2): exactly ``size`` octets per chunk."""

    def __init__(self, max_size: int) -> None:
        super().__init__(max_size)
        self.remaining = 0

    def start_chunk(self, size: int) -> None:
        self.remaining = size
        # RFC 3030 §2 / RFC 1870: refuse as soon as the announced total is too
        # big; the chunk's octets are still read and thrown away.
        if self.size + size > self.max_size:
            self.flag(ContentProblem.TOO_BIG)

    def feed(self, buf: bytes, pos: int) -> tuple[int, bool]:
        """Consume up to the end of the chunk; return (new position, chunk done)."""
        take = min(self.remaining, len(buf) - pos)
        if self.problem is None:
            self.emit(buf, pos, pos + take)
        else:
            self.size += take
        self.remaining -= take
        return pos + take, self.remaining == 0
