"""Configuration of the SMTP client core and of one transaction: plain frozen values."""

from __future__ import annotations

from dataclasses import dataclass

from mailyard.proto.smtp.client_reply import MAX_REPLY_LINE, MAX_REPLY_LINES

__all__ = ["ClientConfig", "MailOptions"]


@dataclass(frozen=True, slots=True)
class ClientConfig:
    helo: str  # our name in EHLO/HELO (RFC 5321 §4.1.1.1: an FQDN or literal)
    max_reply_line: int = MAX_REPLY_LINE
    max_reply_lines: int = MAX_REPLY_LINES
    chunking: bool = False  # BDAT instead of DATA when CHUNKING and PIPELINING are offered

    def __post_init__(self) -> None:
        if not self.helo or not self.helo.isascii() or not self.helo.isprintable():
            raise ValueError("helo must be one printable ASCII token")
        if " " in self.helo:
            raise ValueError("helo must be one printable ASCII token")


@dataclass(frozen=True, slots=True)
class MailOptions:
    """What the MAIL command declares (each only if the server offers it)."""

    size: int | None = None  # RFC 1870 SIZE=
    eightbit: bool = False  # RFC 6152 BODY=8BITMIME
    smtputf8: bool = False  # RFC 6531 SMTPUTF8 (required for non-ASCII addresses)
