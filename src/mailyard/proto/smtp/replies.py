"""SMTP replies: the ``Reply`` value, its wire form, and every reply the core
chooses itself, named by number and meaning.

Wire form, RFC 5321 §4.2: ``code SP text CRLF``, multi-line replies use
``code "-" text`` on every line but the last. Enhanced status codes
(RFC 3463, advertised with ENHANCEDSTATUSCODES, RFC 2034 §4) are put on
every line of a reply that has one; the greeting and the EHLO reply carry
none (RFC 2034 §4 exempts them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from mailyard.proto.buffer import Violation

__all__ = [
    "R214_HELP",
    "R221_BYE",
    "R250_OK",
    "R252_CANNOT_VRFY",
    "R334_LOGIN_PASSWORD",
    "R334_LOGIN_USERNAME",
    "R334_SASL_EMPTY",
    "R421_CHUNK_TOO_BIG",
    "R421_LINE_TOO_LONG",
    "R421_TOO_MANY_BAD_COMMANDS",
    "R421_TOO_MANY_COMMANDS",
    "R452_TOO_MANY_RECIPIENTS",
    "R500_LINE_TOO_LONG",
    "R500_UNKNOWN_COMMAND",
    "R501_AUTH_CANCELLED",
    "R501_BAD_BASE64",
    "R501_BAD_CREDENTIALS_SYNTAX",
    "R501_INVALID_UTF8",
    "R501_NO_ARGUMENTS_ALLOWED",
    "R501_SYNTAX_HELLO",
    "R501_SYNTAX_VRFY",
    "R502_NOT_IMPLEMENTED",
    "R503_ALREADY_AUTHENTICATED",
    "R503_BINARYMIME_NEEDS_BDAT",
    "R503_TLS_ALREADY_ACTIVE",
    "R504_UNKNOWN_MECHANISM",
    "R530_AUTH_REQUIRED",
    "R530_STARTTLS_FIRST",
    "R538_ENCRYPTION_REQUIRED",
    "R550_NO_SUCH_USER",
    "R552_SIZE_EXCEEDED",
    "R553_NON_ASCII_ADDRESS",
    "R554_BARE_LF",
    "R554_LINE_TOO_LONG",
    "R554_NO_VALID_RECIPIENTS",
    "VIOLATIONS",
    "Reply",
    "render",
]

_ENHANCED_RE: Final = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply. ``text`` is one line or a tuple of lines (multi-line).

    Invalid replies raise ``ValueError`` at construction (API misuse): a
    code outside 200–599, a malformed enhanced code or one of another class
    than the basic code (RFC 3463 §2), or a CR/LF inside a line, which would
    let the adapter inject extra reply lines.
    """

    code: int
    enhanced: str | None
    text: str | tuple[str, ...]

    def __post_init__(self) -> None:
        if not 200 <= self.code <= 599:
            raise ValueError(f"reply code {self.code} out of range")
        if self.enhanced is not None:
            if not _ENHANCED_RE.fullmatch(self.enhanced):
                raise ValueError(f"malformed enhanced status code {self.enhanced!r}")
            if self.enhanced[0] != str(self.code)[0]:
                raise ValueError("enhanced status class differs from the reply code")
        lines = self.lines
        if not lines:
            raise ValueError("a reply needs at least one line")
        for line in lines:
            if "\r" in line or "\n" in line:
                raise ValueError("CR or LF inside a reply line")

    @property
    def lines(self) -> tuple[str, ...]:
        return (self.text,) if isinstance(self.text, str) else self.text

    @property
    def positive(self) -> bool:
        """2xx or 3xx: the command was accepted (RFC 5321 §4.2.1)."""
        return self.code < 400


def render(reply: Reply, extra_lines: tuple[str, ...] = ()) -> bytes:
    """Wire form of ``reply``; ``extra_lines`` are appended (EHLO keywords)."""
    lines = reply.lines + extra_lines
    prefix = f"{reply.enhanced} " if reply.enhanced else ""
    out: list[str] = []
    last = len(lines) - 1
    for i, line in enumerate(lines):
        sep = " " if i == last else "-"
        out.append(f"{reply.code}{sep}{prefix}{line}\r\n")
    return "".join(out).encode("utf-8")


# -- replies chosen by the core (named by number and meaning) ---------------------

R214_HELP: Final = Reply(
    214, "2.0.0", "see RFC 5321; commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT"
)
R221_BYE: Final = Reply(221, "2.0.0", "closing connection")
R250_OK: Final = Reply(250, "2.0.0", "OK")
# RFC 5321 §3.5.3: 252 when the server will not verify but will try delivery.
R252_CANNOT_VRFY: Final = Reply(
    252, "2.5.0", "cannot VRFY user, but will accept message and attempt delivery"
)
# RFC 4954 §4: server challenges are base64; LOGIN asks "Username:"/"Password:".
R334_SASL_EMPTY: Final = Reply(334, None, "")
R334_LOGIN_USERNAME: Final = Reply(334, None, "VXNlcm5hbWU6")
R334_LOGIN_PASSWORD: Final = Reply(334, None, "UGFzc3dvcmQ6")
R421_TOO_MANY_COMMANDS: Final = Reply(421, "4.7.0", "too many commands, closing connection")
R421_TOO_MANY_BAD_COMMANDS: Final = Reply(421, "4.7.0", "too many errors, closing connection")
# RFC 5321 §3.8: a server that must close says 421 first. After a command line
# that never ends, and after a BDAT chunk too big to read through (RFC 3030
# §2 would have its octets consumed before the reply; that is no cheap skip).
R421_LINE_TOO_LONG: Final = Reply(421, "4.7.0", "line too long, closing connection")
R421_CHUNK_TOO_BIG: Final = Reply(421, "4.7.0", "chunk too big to skip, closing connection")
# RFC 5321 §4.5.3.1.8 (and §4.5.3.1.10): too many recipients is a temporary 452.
R452_TOO_MANY_RECIPIENTS: Final = Reply(452, "4.5.3", "too many recipients")
R500_UNKNOWN_COMMAND: Final = Reply(500, "5.5.1", "command unrecognized")
R500_LINE_TOO_LONG: Final = Reply(500, "5.5.2", "line too long")
R501_SYNTAX_HELLO: Final = Reply(501, "5.5.4", "syntax: EHLO domain")
R501_SYNTAX_VRFY: Final = Reply(501, "5.5.4", "syntax: VRFY string")
R501_NO_ARGUMENTS_ALLOWED: Final = Reply(501, "5.5.4", "no arguments allowed")
R501_INVALID_UTF8: Final = Reply(501, "5.5.2", "invalid UTF-8 in command")
R501_AUTH_CANCELLED: Final = Reply(501, "5.0.0", "authentication cancelled")
R501_BAD_BASE64: Final = Reply(501, "5.5.2", "invalid base64 data")
R501_BAD_CREDENTIALS_SYNTAX: Final = Reply(501, "5.5.2", "malformed credentials")
R502_NOT_IMPLEMENTED: Final = Reply(502, "5.5.1", "command not implemented")
R503_ALREADY_AUTHENTICATED: Final = Reply(503, "5.5.1", "already authenticated")
R503_TLS_ALREADY_ACTIVE: Final = Reply(503, "5.5.1", "TLS already active")
# RFC 3030 §3: a BODY=BINARYMIME message must be sent with BDAT.
R503_BINARYMIME_NEEDS_BDAT: Final = Reply(503, "5.5.1", "BODY=BINARYMIME requires BDAT")
R504_UNKNOWN_MECHANISM: Final = Reply(504, "5.5.4", "unrecognized authentication mechanism")
# RFC 4954 §6: 530 when the server requires AUTH before MAIL.
R530_AUTH_REQUIRED: Final = Reply(530, "5.7.0", "authentication required")
R530_STARTTLS_FIRST: Final = Reply(530, "5.7.0", "must issue a STARTTLS command first")
# RFC 4954 §6: the mechanism may only be used over an encrypted channel.
R538_ENCRYPTION_REQUIRED: Final = Reply(
    538, "5.7.11", "encryption required for requested authentication mechanism"
)
R550_NO_SUCH_USER: Final = Reply(550, "5.1.1", "no such user here")
# RFC 1870 §6.1: message size exceeds fixed maximum message size.
R552_SIZE_EXCEEDED: Final = Reply(552, "5.3.4", "message size exceeds fixed maximum message size")
# RFC 6531 §3.7.4.1: non-ASCII address without SMTPUTF8.
R553_NON_ASCII_ADDRESS: Final = Reply(553, "5.6.7", "non-ASCII address requires SMTPUTF8")
# RFC 2920 §3.1: DATA after every RCPT failed.
R554_NO_VALID_RECIPIENTS: Final = Reply(554, "5.5.1", "no valid recipients")
# Our DATA content policy (dataread.py): bare LF or an over-long line.
R554_BARE_LF: Final = Reply(554, "5.6.0", "bare LF in message content is not allowed")
R554_LINE_TOO_LONG: Final = Reply(554, "5.6.0", "line too long in message content")

# The core-chosen replies that answer client abuse, and the kind each one is
# logged as (by the adapter, once per connection: buffer.Violations).
VIOLATIONS: Final[dict[Reply, Violation]] = {
    R500_LINE_TOO_LONG: Violation.LINE_TOO_LONG,
    R554_LINE_TOO_LONG: Violation.LINE_TOO_LONG,
    R421_LINE_TOO_LONG: Violation.LINE_TOO_LONG,
    R500_UNKNOWN_COMMAND: Violation.UNKNOWN_COMMAND,
    R421_TOO_MANY_COMMANDS: Violation.TOO_MANY_COMMANDS,
    R421_TOO_MANY_BAD_COMMANDS: Violation.TOO_MANY_ERRORS,
    R552_SIZE_EXCEEDED: Violation.MESSAGE_TOO_BIG,
    R421_CHUNK_TOO_BIG: Violation.MESSAGE_TOO_BIG,
}
