"""What the QMTP and QMQP cores hand their adapter, and what it answers.

Events are frozen, slotted dataclasses (h11 style). A package (QMTP) or
request (QMQP) arrives as: ``MessageStart``, ``MessageChunk``…, ``Sender``,
``Recipient``…, then ``PackageEnd``, which needs the adapter's answer
(``answer()``: one ``Response`` per ``Recipient`` for QMTP, one for QMQP).
When the core refuses a package itself (message over the size limit,
over-long sender, …) it answers the client alone and says so with
``PackageRefused``: the adapter drops whatever it kept of that package.
``ConnectionClosed`` is the client's end of file.

The sentinels (``NEED_DATA``, ``AWAITING_REPLY``, ``CLOSED``) are the ones
every core shares (proto/sentinels.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from mailyard.proto.qmtp.lineends import LineEnding
from mailyard.proto.qmtp.netstring import encode_netstring
from mailyard.proto.sentinels import AWAITING_REPLY, CLOSED, NEED_DATA, Sentinel

__all__ = [
    "AWAITING_REPLY",
    "CLOSED",
    "NEED_DATA",
    "ConnectionClosed",
    "Event",
    "MessageChunk",
    "MessageStart",
    "PackageEnd",
    "PackageRefused",
    "Recipient",
    "Refusal",
    "Response",
    "Sender",
    "Sentinel",
    "Status",
]


class Status(enum.Enum):
    """QMTP §5 / QMQP: the first octet of a response."""

    ACCEPTED = "K"  # "morally equivalent to the 250 response to DATA"
    TEMPORARY = "Z"  # try again later
    PERMANENT = "D"


@dataclass(frozen=True, slots=True)
class Response:
    """One K/Z/D answer; ``text`` describes what happened.

    QMTP §5: the text should be readable and should not repeat the
    recipient; a text starting with a space is reserved for extensions, and
    "#" may appear only in an enhanced status code like ``(#5.1.1)``. We
    refuse what would break the one-netstring framing or those rules in
    our own constants: control characters and a leading space.
    """

    status: Status
    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.status, Status):
            raise TypeError("status must be a Status")
        if self.text.startswith(" ") or not self.text.isprintable():
            raise ValueError(f"unusable response text {self.text!r}")

    def render(self) -> bytes:
        return encode_netstring(self.status.value.encode("ascii") + self.text.encode("utf-8"))


class Refusal(enum.Enum):
    """Why the core refused a package (or, in QMTP, one recipient) itself."""

    # qmail-qmtpd's databytes answer; RFC 3463 X.3.4 "message too big for system".
    MESSAGE_TOO_LARGE = "message too large (#5.3.4)"
    # RFC 3463 X.1.7 "bad sender's mailbox address syntax".
    SENDER_TOO_LONG = "sender address too long (#5.1.7)"
    # RFC 3463 X.1.3 "bad destination mailbox address syntax".
    RECIPIENT_TOO_LONG = "recipient address too long (#5.1.3)"
    # QMQP: one answer for all recipients; RFC 3463 X.5.3 "too many recipients".
    TOO_MANY_RECIPIENTS = "too many recipients (#5.5.3)"
    # QMQP wants "one or more" recipients; RFC 3463 X.5.1 "invalid command".
    NO_RECIPIENTS = "no recipients (#5.5.1)"

    @property
    def response(self) -> Response:
        return Response(Status.PERMANENT, self.value)


@dataclass(frozen=True, slots=True)
class MessageStart:
    """A package begins; ``size`` is the declared length of the encoded message."""

    size: int
    line_ending: LineEnding


@dataclass(frozen=True, slots=True)
class MessageChunk:
    """Message content, already CRLF mail (lineends.py), in bounded pieces."""

    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Sender:
    """The envelope sender as sent (empty: the null sender); no reply."""

    address: bytes


@dataclass(frozen=True, slots=True)
class Recipient:
    """One envelope recipient as sent; the adapter decides its response."""

    address: bytes


@dataclass(frozen=True, slots=True)
class PackageEnd:
    """The package's last octet arrived: call ``answer()`` now.

    ``recipients`` is the number of ``Recipient`` events of this package
    (recipients the core answered itself are not counted).
    """

    recipients: int


@dataclass(frozen=True, slots=True)
class PackageRefused:
    """The core answered the whole package itself; drop what was kept of it."""

    reason: Refusal
    size: int  # declared message length
    recipients: int  # how many recipients were refused with it


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """End of file from the client; ``mid_package``: a package was cut short
    (QMTP §2: it must be thrown away; earlier packages stand)."""

    mid_package: bool


Event: TypeAlias = (
    MessageStart | MessageChunk | Sender | Recipient | PackageEnd | PackageRefused
    | ConnectionClosed
)

# QMTP: a recipient beyond the limit is told to come back, as SMTP's 452
# does (RFC 5321 §4.5.3.1.10); RFC 3463 X.5.3 "too many recipients".
TOO_MANY_RECIPIENTS_LATER: Final = Response(
    Status.TEMPORARY, "too many recipients; send the rest later (#4.5.3)"
)
