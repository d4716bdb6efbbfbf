"""POP3 responses: the ``Response`` value, its wire form, and every response
the core chooses itself, named by status and meaning.

Wire form, RFC 1939 §3: ``+OK`` or ``-ERR``, optionally a space and text,
CRLF; at most 512 octets including CRLF. RFC 2449 §8: a response may carry
a response code in brackets right after the status (``[IN-USE]``,
``[LOGIN-DELAY]``, and RFC 3206's ``[SYS/TEMP]``, ``[SYS/PERM]``,
``[AUTH]``). A multi-line response is the status line, the lines
(dot-stuffed) and a line holding a single ".". A SASL challenge is
``"+" SP base64`` (RFC 5034 §4).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from mailyard.proto.buffer import Violation
from mailyard.proto.sasl import SaslProblem

__all__ = [
    "ERR_ALREADY_DELETED",
    "ERR_AUTH_CANCELLED",
    "ERR_BAD_BASE64",
    "ERR_BAD_CREDENTIALS",
    "ERR_INVALID_NUMBER",
    "ERR_IN_USE",
    "ERR_LINE_TOO_LONG",
    "ERR_MESSAGE_DELETED",
    "ERR_NOT_AVAILABLE",
    "ERR_NO_SUCH_MESSAGE",
    "ERR_NO_USER",
    "ERR_SYNTAX",
    "ERR_TLS_ACTIVE",
    "ERR_TOO_MANY_COMMANDS",
    "ERR_TOO_MANY_ERRORS",
    "ERR_UNKNOWN_COMMAND",
    "ERR_UNKNOWN_MECHANISM",
    "ERR_WRONG_STATE",
    "MAX_RESPONSE_LINE",
    "OK",
    "OK_CAPA",
    "OK_MECHANISMS",
    "OK_SEND_PASS",
    "OK_STLS",
    "OK_TOP",
    "OK_UIDL",
    "SASL_ERRORS",
    "VIOLATIONS",
    "Response",
    "messages_summary",
    "render",
    "render_challenge",
    "render_multiline",
]

MAX_RESPONSE_LINE: Final = 512  # RFC 1939 §3, CRLF included
# RFC 2449 §8: resp-code = "[" resp-level *("/" resp-level) "]".
_CODE_RE: Final = re.compile(r"[A-Za-z0-9-]+(?:/[A-Za-z0-9-]+)*")
_FORBIDDEN: Final = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Response:
    """One status line. Invalid values raise ``ValueError`` (API misuse):
    a control character (CR/LF would let the text inject extra lines), a
    malformed code, or a line over 512 octets."""

    ok: bool
    text: str = ""
    code: str | None = None

    def __post_init__(self) -> None:
        if _FORBIDDEN.search(self.text):
            raise ValueError(f"control character in response text {self.text!r}")
        if self.code is not None and not _CODE_RE.fullmatch(self.code):
            raise ValueError(f"invalid response code {self.code!r}")
        if len(render(self)) > MAX_RESPONSE_LINE:
            raise ValueError("response line longer than 512 octets")


def render(response: Response) -> bytes:
    parts = ["+OK" if response.ok else "-ERR"]
    if response.code is not None:
        parts.append(f"[{response.code}]")
    if response.text:
        parts.append(response.text)
    return " ".join(parts).encode("utf-8") + b"\r\n"


def render_multiline(first: Response, lines: Iterable[str]) -> bytes:
    """Status line, dot-stuffed lines, terminator (RFC 1939 §3)."""
    out = bytearray(render(first))
    for line in lines:
        if line.startswith("."):
            out += b"."
        out += line.encode("utf-8") + b"\r\n"
    out += b".\r\n"
    return bytes(out)


def messages_summary(count: int, octets: int) -> str:
    """``2 messages (320 octets)``: the drop summary of RFC 1939 §5's examples."""
    noun = "message" if count == 1 else "messages"
    return f"{count} {noun} ({octets} octets)"


def render_challenge(encoded: str) -> bytes:
    """RFC 5034 §4: a server challenge, ``"+" SP base64`` (empty for PLAIN)."""
    return b"+ " + encoded.encode("ascii") + b"\r\n"


OK: Final = Response(True)
OK_CAPA: Final = Response(True, "capability list follows")
OK_MECHANISMS: Final = Response(True, "SASL mechanisms follow")
OK_SEND_PASS: Final = Response(True, "send PASS")
OK_STLS: Final = Response(True, "begin TLS negotiation")
OK_TOP: Final = Response(True, "top of message follows")
OK_UIDL: Final = Response(True, "unique-id listing follows")

ERR_UNKNOWN_COMMAND: Final = Response(False, "unknown command")
ERR_WRONG_STATE: Final = Response(False, "command not valid in this state")
ERR_NOT_AVAILABLE: Final = Response(False, "command not available")
ERR_SYNTAX: Final = Response(False, "syntax error")
ERR_LINE_TOO_LONG: Final = Response(False, "line too long")
ERR_INVALID_NUMBER: Final = Response(False, "invalid message number")
ERR_NO_SUCH_MESSAGE: Final = Response(False, "no such message")
ERR_MESSAGE_DELETED: Final = Response(False, "message deleted")
ERR_ALREADY_DELETED: Final = Response(False, "message already deleted")
ERR_NO_USER: Final = Response(False, "send USER first")
ERR_TLS_ACTIVE: Final = Response(False, "TLS already active")
ERR_UNKNOWN_MECHANISM: Final = Response(False, "unsupported authentication mechanism")
ERR_AUTH_CANCELLED: Final = Response(False, "authentication cancelled")
ERR_BAD_BASE64: Final = Response(False, "invalid base64 data")
ERR_BAD_CREDENTIALS: Final = Response(False, "malformed credentials")
# RFC 2449 §8.1.1: IN-USE, the maildrop is locked by another session.
ERR_IN_USE: Final = Response(False, "maildrop already in use", "IN-USE")
ERR_TOO_MANY_ERRORS: Final = Response(False, "too many errors, closing connection")
ERR_TOO_MANY_COMMANDS: Final = Response(False, "too many commands, closing connection")

# The core-chosen responses that answer client abuse, and the kind each one
# is logged as (by the adapter, once per connection: buffer.Violations).
VIOLATIONS: Final[dict[Response, Violation]] = {
    ERR_LINE_TOO_LONG: Violation.LINE_TOO_LONG,
    ERR_UNKNOWN_COMMAND: Violation.UNKNOWN_COMMAND,
    ERR_TOO_MANY_COMMANDS: Violation.TOO_MANY_COMMANDS,
    ERR_TOO_MANY_ERRORS: Violation.TOO_MANY_ERRORS,
}

# RFC 5034 §4: a failed exchange gets -ERR; the text says why.
SASL_ERRORS: Final[dict[SaslProblem, Response]] = {
    SaslProblem.CANCELLED: ERR_AUTH_CANCELLED,
    SaslProblem.BAD_BASE64: ERR_BAD_BASE64,
    SaslProblem.MALFORMED: ERR_BAD_CREDENTIALS,
    SaslProblem.TOO_LONG: ERR_BAD_CREDENTIALS,
}
