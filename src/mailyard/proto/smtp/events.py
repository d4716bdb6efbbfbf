"""Events the SMTP server core hands to its adapter, and the three sentinels.

Events are nouns (h11 style): frozen, slotted dataclasses. Some need an
answer through ``SmtpServer.send(reply)`` before the core reads on
(``NEEDS_REPLY``); the others are notifications.

Sentinels returned by ``SmtpServer.next_event()`` instead of an event:

* ``NEED_DATA`` — feed more bytes with ``receive_data`` (write
  ``data_to_send()`` first: RFC 2920 §3.1, flush before blocking on a read);
* ``AWAITING_REPLY`` — the last event still needs its ``send(reply)``, or a
  positive STARTTLS reply was sent and ``start_tls()`` has not been called;
* ``CLOSED`` — the session is over; write ``data_to_send()`` and close.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, TypeAlias

from mailyard.message.address import Address
from mailyard.proto.sentinels import AWAITING_REPLY, CLOSED, NEED_DATA, Sentinel

__all__ = [
    "AWAITING_REPLY",
    "CLOSED",
    "NEEDS_REPLY",
    "NEED_DATA",
    "Authenticate",
    "ConnectionClosed",
    "DataAborted",
    "DataChunk",
    "DataEnd",
    "DataStart",
    "Event",
    "Hello",
    "MailFrom",
    "RcptTo",
    "Reset",
    "Sentinel",
    "StartTls",
]


# The sentinels are shared by every core (proto/sentinels.py).


# -- events that need a reply ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """EHLO (``extended``) or HELO. A 2xx reply to EHLO gets the capability
    lines appended by the core (RFC 5321 §4.1.1.1)."""

    name: str
    extended: bool


@dataclass(frozen=True, slots=True)
class MailFrom:
    """MAIL FROM; ``sender`` is None for the null reverse-path ``<>``.

    ``params`` maps upper-cased ESMTP keywords to their value (None when the
    keyword has no ``=value``), RFC 5321 §4.1.2. SIZE and BODY are already
    checked by the core; SMTPUTF8 present means the transaction is UTF-8.
    """

    sender: Address | None
    params: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RcptTo:
    """RCPT TO; answer 250 to accept, 550 5.1.1 for an unknown user, …"""

    recipient: Address
    params: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DataStart:
    """DATA (reply 354) or the first BDAT chunk (reply any code < 400 to
    accept; the core itself answers the chunk once its bytes are read).
    A 4xx/5xx reply fails the transaction."""

    bdat: bool


@dataclass(frozen=True, slots=True)
class DataEnd:
    """The whole content arrived intact; reply 250 after the queue commit."""


@dataclass(frozen=True, slots=True)
class Authenticate:
    """A complete SASL PLAIN or LOGIN exchange (RFC 4954, RFC 4616).

    Reply 235 2.7.0 to accept, 535 5.7.8 to refuse. ``authzid`` is "" when
    the client asked for none (always "" for LOGIN)."""

    mechanism: str
    authzid: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class StartTls:
    """STARTTLS (RFC 3207). Reply 220 2.0.0, write ``data_to_send()``, do the
    handshake, then call ``start_tls()``; or reply 454 4.7.0 to refuse."""


# -- notifications ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataChunk:
    """Message content: un-dot-stuffed, line ends exactly as received."""

    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class DataAborted:
    """The content will be refused; the core answers at end of data.
    Discard whatever was spooled for this transaction."""

    reason: str


@dataclass(frozen=True, slots=True)
class Reset:
    """The transaction is gone (RSET, or EHLO/HELO inside a transaction)."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The client closed the connection (EOF) without QUIT."""


Event: TypeAlias = (
    Hello
    | MailFrom
    | RcptTo
    | DataStart
    | DataEnd
    | Authenticate
    | StartTls
    | DataChunk
    | DataAborted
    | Reset
    | ConnectionClosed
)

NEEDS_REPLY: Final[tuple[type, ...]] = (
    Hello,
    MailFrom,
    RcptTo,
    DataStart,
    DataEnd,
    Authenticate,
    StartTls,
)
