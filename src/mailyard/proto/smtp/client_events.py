"""What the SMTP client core tells its adapter: one event per reply it read
(or made up), and the server's extensions as EHLO announced them.

Events are frozen, slotted dataclasses (h11 style), each carrying the
``ServerReply`` it reports. The adapter drives a session by calling a core
method (``ehlo``, ``mail_transaction``, ...) and then pulling events until
the one that closes that step (``HelloReply``, ``EnvelopeDone``, ...).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TypeAlias

from mailyard.proto.smtp.client_reply import ServerReply

__all__ = [
    "AuthReply",
    "ClientEvent",
    "DataReply",
    "EnvelopeDone",
    "Extensions",
    "Greeting",
    "HelloReply",
    "MailReply",
    "MessageReply",
    "QuitReply",
    "RcptReply",
    "ResetReply",
    "ServerClosing",
    "StartTlsReply",
    "Waiting",
    "parse_extensions",
]


class Waiting(enum.Enum):
    """Which reply the core waits for: the adapter picks its timeout from it
    (RFC 5321 §4.5.3.2 gives one per command)."""

    GREETING = "GREETING"
    COMMAND = "COMMAND"  # EHLO, HELO, STARTTLS, AUTH, RSET, QUIT
    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA = "DATA"  # the 354 ("DATA initiation")
    MESSAGE = "MESSAGE"  # the reply after the final dot or BDAT LAST


@dataclass(frozen=True, slots=True)
class Extensions:
    """EHLO keywords (upper case) and the parameters the client uses.

    ``size`` is None without SIZE, 0 for SIZE without a fixed limit
    (RFC 1870 §4), else the limit in octets.
    """

    keywords: frozenset[str] = frozenset()
    size: int | None = None
    auth: frozenset[str] = frozenset()

    @property
    def pipelining(self) -> bool:
        return "PIPELINING" in self.keywords  # RFC 2920

    @property
    def eightbitmime(self) -> bool:
        return "8BITMIME" in self.keywords  # RFC 6152

    @property
    def smtputf8(self) -> bool:
        return "SMTPUTF8" in self.keywords  # RFC 6531

    @property
    def starttls(self) -> bool:
        return "STARTTLS" in self.keywords  # RFC 3207

    @property
    def enhancedstatuscodes(self) -> bool:
        return "ENHANCEDSTATUSCODES" in self.keywords  # RFC 2034

    @property
    def chunking(self) -> bool:
        return "CHUNKING" in self.keywords  # RFC 3030


def parse_extensions(reply: ServerReply) -> Extensions:
    """The keywords of a 250 EHLO reply (RFC 5321 §4.1.1.1: the first line
    greets, each further line is ``keyword [params]``). Never raises: a line
    that is no keyword is ignored, a SIZE that is no number counts as none."""
    keywords: set[str] = set()
    size: int | None = None
    auth: set[str] = set()
    for line in reply.lines[1:]:
        words = line.split()
        if not words:
            continue
        head, _, inline = words[0].upper().partition("=")
        if not head.isascii() or not head.replace("-", "").isalnum():
            continue
        params = [inline, *words[1:]] if inline else words[1:]
        keywords.add(head)
        if head == "SIZE":
            size = _size(params)
        elif head == "AUTH":
            # Old servers say "AUTH=LOGIN PLAIN"; both spellings name mechanisms.
            auth.update(p.upper() for p in params if p.isascii())
    return Extensions(frozenset(keywords), size, frozenset(auth))


def _size(params: list[str]) -> int | None:
    if not params:
        return 0
    text = params[0]
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        return None
    return int(text)


@dataclass(frozen=True, slots=True)
class Greeting:
    """The server's opening reply (220 to go on; 554 means no service)."""

    reply: ServerReply


@dataclass(frozen=True, slots=True)
class HelloReply:
    """The final EHLO reply, or HELO's after an EHLO the server refused.
    ``extended`` is True when EHLO succeeded (then ``extensions`` is what
    it offered; after HELO it is empty)."""

    reply: ServerReply
    extended: bool
    extensions: Extensions = field(default_factory=Extensions)


@dataclass(frozen=True, slots=True)
class StartTlsReply:
    """220: do the TLS handshake now, then call ``tls_started()``."""

    reply: ServerReply


@dataclass(frozen=True, slots=True)
class AuthReply:
    """The outcome of AUTH (235 is success, RFC 4954 §6)."""

    reply: ServerReply


@dataclass(frozen=True, slots=True)
class MailReply:
    reply: ServerReply


@dataclass(frozen=True, slots=True)
class RcptReply:
    """The reply to the RCPT of ``recipients[index]``."""

    index: int
    reply: ServerReply


@dataclass(frozen=True, slots=True)
class DataReply:
    """The reply to DATA (354 to go on)."""

    reply: ServerReply


@dataclass(frozen=True, slots=True)
class EnvelopeDone:
    """MAIL, every RCPT and DATA are answered. ``accepted`` are the indices
    the server took; only when ``body_expected`` does the adapter send the
    content (``send_body`` ... ``end_body``)."""

    accepted: tuple[int, ...]
    body_expected: bool


@dataclass(frozen=True, slots=True)
class MessageReply:
    """The reply to the whole content: it applies to every accepted recipient."""

    reply: ServerReply


@dataclass(frozen=True, slots=True)
class ResetReply:
    reply: ServerReply


@dataclass(frozen=True, slots=True)
class QuitReply:
    reply: ServerReply


@dataclass(frozen=True, slots=True)
class ServerClosing:
    """An unsolicited 421 (RFC 5321 §3.8): the server is going away."""

    reply: ServerReply


ClientEvent: TypeAlias = (
    Greeting
    | HelloReply
    | StartTlsReply
    | AuthReply
    | MailReply
    | RcptReply
    | DataReply
    | EnvelopeDone
    | MessageReply
    | ResetReply
    | QuitReply
    | ServerClosing
)
