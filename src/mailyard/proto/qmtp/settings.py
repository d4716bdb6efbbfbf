"""Limits of the QMTP and QMQP cores, given by the adapter from configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "QmtpLimits"]

DEFAULT_MAX_MESSAGE_SIZE: Final = 50 * 1024 * 1024
# Room an envelope netstring needs besides its address: length digits, colon, comma.
_PER_ADDRESS: Final = 24


@dataclass(frozen=True, slots=True)
class QmtpLimits:
    """Every declared length is checked against these before it is read.

    * ``max_message_size``: an encoded message up to this long is streamed
      to the adapter; a longer one is read, thrown away and refused with D
      (``#5.3.4``), as qmail-qmtpd does with its databytes.
    * ``max_discard_size``: the ceiling for any netstring length. A client
      declaring more than this is not answered but disconnected: reading it
      to its end would be a gift of bandwidth.
    * ``max_address_length``: the sender and each recipient (qmail uses 1000);
      a longer one is skipped and refused with D.
    * ``max_recipients``: QMTP answers the ones beyond it with Z (come back
      later, like SMTP's 452); QMQP, with a single answer, refuses the request.
    """

    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_discard_size: int = 2 * DEFAULT_MAX_MESSAGE_SIZE
    max_address_length: int = 1000
    max_recipients: int = 1000

    def __post_init__(self) -> None:
        if min(self.max_message_size, self.max_address_length, self.max_recipients) < 1:
            raise ValueError("QMTP limits must be at least 1")
        if self.max_discard_size < self.max_message_size:
            raise ValueError("max_discard_size must be at least max_message_size")

    @property
    def request_ceiling(self) -> int:
        """QMQP: the most the one netstring around a request may declare."""
        envelope = (self.max_recipients + 1) * (self.max_address_length + _PER_ADDRESS)
        return self.max_discard_size + _PER_ADDRESS + envelope
