"""The IMAP core's two exception types.

``CommandError`` is how a parser refuses client input: it carries the
tagged status (BAD for syntax, NO for a well-formed but refused argument
such as a mailbox name that is not valid modified UTF-7), an optional
response code and a precise reason; the core turns it into exactly one
tagged response. It never escapes the core. ``ImapUsageError`` means the
adapter called the core at the wrong moment or with an impossible answer:
a bug in the adapter, raised before anything changed.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailyard.proto.imap.responses import ResponseCode

__all__ = ["CommandError", "ImapUsageError", "Status"]


class Status(enum.Enum):
    """Response conditions (RFC 9051 §7.1): the first three complete a
    command; PREAUTH and BYE are only ever untagged."""

    OK = "OK"
    NO = "NO"
    BAD = "BAD"
    PREAUTH = "PREAUTH"
    BYE = "BYE"


class ImapUsageError(RuntimeError):
    """The adapter misused the core (answering nothing, a forbidden response …)."""


class CommandError(Exception):
    """Client input refused with one tagged response (BAD unless said)."""

    def __init__(
        self, text: str, status: Status = Status.BAD, code: ResponseCode | None = None
    ) -> None:
        super().__init__(text)
        self.text = text
        self.status = status
        self.code = code
