"""QMTP's two message encodings, and the conversion to CRLF mail.

QMTP §4 (cr.yp.to/proto/qmtp.txt): the encoded message starts with one
octet naming its end-of-line convention, then the lines joined by it:

* encoding #1: ``0x0d``, then lines separated by CR LF;
* encoding #2: ``0x0a``, then lines separated by LF.

QMQP's message has no marker and always uses LF. Our queue and Maildirs
hold CRLF mail (RFC 5322 §2.3), so the server converts as it streams,
keeping the rule QMTP §5 sets: a "safe" message (one whose lines contain no
LF) must be stored without corruption, i.e. exactly its lines, joined by
CRLF. Hence:

* LF convention: every LF is a line end and becomes CR LF; a CR inside a
  line is part of the line and stays (a line ``a<CR>`` is stored as
  ``a<CR><CR><LF>``, its faithful CRLF form). No state crosses chunks.
* CRLF convention: the bytes are already CRLF mail and are kept, with one
  exception: a bare LF (not preceded by CR) makes the message unsafe, which
  QMTP §5 lets a server change; it becomes CR LF, because a bare LF must
  never reach our queue (the SMTP side refuses it: smuggling). Whether an LF
  is bare depends on the octet before it, which may be the last octet of
  the previous chunk: that one flag is the converter's state.
"""

from __future__ import annotations

import enum
import re
from typing import Final

from mailyard.proto.qmtp.errors import QmtpProtocolError

__all__ = ["LineEndConverter", "LineEnding"]

_BARE_LF: Final = re.compile(rb"(?<!\r)\n")


class LineEnding(enum.Enum):
    CRLF = "CRLF"  # QMTP encoding #1 (marker 0x0d)
    LF = "LF"  # QMTP encoding #2 (marker 0x0a); QMQP always

    @classmethod
    def from_marker(cls, octet: int) -> LineEnding:
        if octet == 0x0D:
            return cls.CRLF
        if octet == 0x0A:
            return cls.LF
        raise QmtpProtocolError("message starts with neither CR nor LF")

    @property
    def marker(self) -> bytes:
        return b"\r" if self is LineEnding.CRLF else b"\n"


class LineEndConverter:
    """Turns one encoded message, fed in chunks of any size, into CRLF mail."""

    __slots__ = ("_after_cr", "_ending")

    def __init__(self, ending: LineEnding) -> None:
        self._ending = ending
        self._after_cr = False  # CRLF convention: the last octet seen was CR

    def feed(self, data: bytes) -> bytes:
        if self._ending is LineEnding.LF:
            return data.replace(b"\n", b"\r\n")
        if not data:
            return data
        after_cr, self._after_cr = self._after_cr, data.endswith(b"\r")
        if b"\n" not in data:
            return data
        if after_cr and data.startswith(b"\n"):
            # This LF ends the CR LF begun in the previous chunk.
            return b"\n" + _BARE_LF.sub(b"\r\n", data[1:])
        return _BARE_LF.sub(b"\r\n", data)
