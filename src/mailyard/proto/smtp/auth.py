"""SMTP AUTH exchanges (RFC 4954) for SASL PLAIN (RFC 4616) and LOGIN.

Pure step functions: an ``AuthExchange`` takes the client's lines and answers
either with the next 334 challenge or with the finished ``Authenticate``
event. Any error raises ``SaslError`` carrying the 501 reply; the exchange is
then over (RFC 4954 §4).
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from typing import Final

from mailyard.proto.smtp.events import Authenticate
from mailyard.proto.smtp.replies import (
    R334_LOGIN_PASSWORD,
    R334_LOGIN_USERNAME,
    R334_SASL_EMPTY,
    R501_AUTH_CANCELLED,
    R501_BAD_BASE64,
    R501_BAD_CREDENTIALS_SYNTAX,
    R504_UNKNOWN_MECHANISM,
    Reply,
)

__all__ = [
    "MECHANISMS",
    "AuthExchange",
    "SaslError",
    "decode_base64",
    "decode_plain",
    "open_exchange",
]

MECHANISMS: Final = frozenset({"PLAIN", "LOGIN"})


class SaslError(Exception):
    """The exchange failed; ``reply`` goes to the client."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.lines[0])
        self.reply = reply


def decode_base64(text: str) -> bytes:
    """Strict base64 (RFC 4954 §4); "*" cancels; "=" is an empty response."""
    text = text.strip(" ")
    if text == "*":
        raise SaslError(R501_AUTH_CANCELLED)
    if text == "=":
        return b""
    try:
        return b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise SaslError(R501_BAD_BASE64) from None


def _utf8(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslError(R501_BAD_CREDENTIALS_SYNTAX) from None
    if "\x00" in text:
        raise SaslError(R501_BAD_CREDENTIALS_SYNTAX)
    return text


def decode_plain(data: bytes) -> tuple[str, str, str]:
    """RFC 4616 §2: ``[authzid] NUL authcid NUL passwd`` → the three strings."""
    parts = data.split(b"\x00")
    if len(parts) != 3 or not parts[1]:
        raise SaslError(R501_BAD_CREDENTIALS_SYNTAX)
    authzid, authcid, passwd = (_utf8(p) for p in parts)
    return authzid, authcid, passwd


class AuthExchange:
    """One AUTH command's exchange; ``mechanism`` is upper case."""

    def __init__(self, mechanism: str) -> None:
        if mechanism not in MECHANISMS:
            raise ValueError(f"unsupported mechanism {mechanism!r}")
        self.mechanism = mechanism
        self._username: str | None = None

    def start(self, initial: str | None) -> Reply | Authenticate:
        """The AUTH command itself, with its optional initial response."""
        if initial is None:
            return R334_SASL_EMPTY if self.mechanism == "PLAIN" else R334_LOGIN_USERNAME
        return self.step(initial)

    def respond(self, line: bytes) -> Reply | Authenticate:
        """A raw response line (no line end) as read from the client."""
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            raise SaslError(R501_BAD_BASE64) from None
        return self.step(text)

    def step(self, line: str) -> Reply | Authenticate:
        """One client response line."""
        data = decode_base64(line)
        if self.mechanism == "PLAIN":
            authzid, username, password = decode_plain(data)
            return Authenticate("PLAIN", authzid, username, password)
        if self._username is None:
            self._username = _utf8(data)
            if not self._username:
                raise SaslError(R501_BAD_CREDENTIALS_SYNTAX)
            return R334_LOGIN_PASSWORD
        return Authenticate("LOGIN", "", self._username, _utf8(data))


def open_exchange(arg: str, offered: tuple[str, ...]) -> tuple[AuthExchange, str | None]:
    """``AUTH mechanism [initial-response]`` (RFC 4954 §4) → the exchange and
    the initial response, if any; 504 for a mechanism not offered."""
    mechanism, _, initial = arg.strip(" ").partition(" ")
    mechanism = mechanism.upper()
    if mechanism not in offered:
        raise SaslError(R504_UNKNOWN_MECHANISM)
    return AuthExchange(mechanism), initial.strip(" ") or None
