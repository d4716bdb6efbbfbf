"""SASL PLAIN (RFC 4616) and LOGIN exchanges as pure step objects, shared by
the SMTP (RFC 4954) and POP3 (RFC 5034) cores.

The protocols differ only in framing: SMTP sends a challenge as
``334 <base64>``, POP3 as ``+ <base64>``, and each has its own error replies.
What they share lives here: strict base64 decoding of a client response,
``"*"`` to cancel (RFC 4954 §4, RFC 5034 §4), ``"="`` for an empty initial
response, the PLAIN message ``[authzid] NUL authcid NUL passwd`` in UTF-8,
and the order of LOGIN's two prompts. A ``SaslExchange`` answers each step
with the next ``Challenge`` (raw bytes; the protocol encodes and frames
them) or, at the end, the ``Credentials``; any problem raises ``SaslError``,
which ends the exchange, and the protocol picks the reply from its
``problem``.
"""

from __future__ import annotations

import binascii
import enum
from base64 import b64decode, b64encode
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "MAX_FIELD_OCTETS",
    "MAX_RESPONSE_LINE",
    "MECHANISMS",
    "Challenge",
    "Credentials",
    "SaslError",
    "SaslExchange",
    "SaslProblem",
    "decode_plain",
    "decode_response",
]

MECHANISMS: Final = frozenset({"PLAIN", "LOGIN"})

# RFC 4616 §2: a server must take authcid and passwd of at least 255 octets;
# we take four times that (long passphrases) and no more, so a response can
# never make the core hold or hash an unbounded string.
MAX_FIELD_OCTETS: Final = 1024
# The longest useful response line: a PLAIN message with three maximal
# fields, base64-encoded, plus CRLF. RFC 5034 §4 wants SASL responses taken
# whatever the protocol's usual command-line limit; cores may use this.
MAX_RESPONSE_LINE: Final = 4 * -(-(3 * MAX_FIELD_OCTETS + 2) // 3) + 2

# LOGIN (draft-murchison-sasl-login): the server prompts for these in turn.
_LOGIN_PROMPTS: Final = (b"Username:", b"Password:")


class SaslProblem(enum.Enum):
    """Why an exchange failed; each protocol maps it to its own reply."""

    CANCELLED = "authentication cancelled"  # the client sent "*"
    BAD_BASE64 = "invalid base64 data"
    MALFORMED = "malformed credentials"  # structure, UTF-8, NUL, empty field
    TOO_LONG = "credentials too long"  # a field over MAX_FIELD_OCTETS


class SaslError(Exception):
    """The exchange is over and failed; ``problem`` says why."""

    def __init__(self, problem: SaslProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Challenge:
    """A server challenge, undecoded; ``encoded`` is its base64 form."""

    data: bytes

    @property
    def encoded(self) -> str:
        return b64encode(self.data).decode("ascii")


@dataclass(frozen=True, slots=True)
class Credentials:
    """A finished exchange. ``authzid`` is "" when the client asked for none
    (always "" for LOGIN); the password never appears in a repr."""

    mechanism: str
    authzid: str
    authcid: str
    password: str = field(repr=False)


def decode_response(text: bytes | str, *, initial: bool = False) -> bytes:
    """One client response (a line without its end, or an initial response).

    RFC 4954 §4 / RFC 5034 §4: "*" cancels the exchange; an initial response
    of "=" stands for an empty one. Otherwise the text must be canonical
    base64 (RFC 4648 §4 alphabet, padding present, RFC 4648 §3.5 zero pad
    bits): anything else is refused rather than guessed at. Surrounding
    spaces are tolerated.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise SaslError(SaslProblem.BAD_BASE64) from None
    text = text.strip(" ")
    if text == "*":
        raise SaslError(SaslProblem.CANCELLED)
    if initial and text == "=":
        return b""
    try:
        data = b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise SaslError(SaslProblem.BAD_BASE64) from None
    if b64encode(data).decode("ascii") != text:
        raise SaslError(SaslProblem.BAD_BASE64)
    return data


def _field(data: bytes, *, required: bool) -> str:
    """One UTF-8 field of a PLAIN or LOGIN message (RFC 4616 §2)."""
    if len(data) > MAX_FIELD_OCTETS:
        raise SaslError(SaslProblem.TOO_LONG)
    if required and not data:
        raise SaslError(SaslProblem.MALFORMED)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslError(SaslProblem.MALFORMED) from None
    if "\x00" in text:
        raise SaslError(SaslProblem.MALFORMED)
    return text


def decode_plain(message: bytes) -> Credentials:
    """RFC 4616 §2: ``[authzid] NUL authcid NUL passwd``; authcid and passwd
    are one or more octets, the authzid may be empty."""
    parts = message.split(b"\x00")
    if len(parts) != 3:
        raise SaslError(SaslProblem.MALFORMED)
    authzid = _field(parts[0], required=False)
    authcid = _field(parts[1], required=True)
    password = _field(parts[2], required=True)
    return Credentials("PLAIN", authzid, authcid, password)


class SaslExchange:
    """One exchange: ``start`` once, then ``respond`` to each challenge until
    it returns ``Credentials`` (or raises ``SaslError``)."""

    def __init__(self, mechanism: str) -> None:
        mechanism = mechanism.upper()
        if mechanism not in MECHANISMS:
            raise ValueError(f"unsupported SASL mechanism {mechanism!r}")
        self.mechanism = mechanism
        self._username: str | None = None
        self._started = False
        self._over = False

    def start(self, initial: bytes | str | None) -> Challenge | Credentials:
        """The command that opens the exchange, with its optional initial
        response (RFC 4954 §4, RFC 5034 §4). Without one, PLAIN sends an
        empty challenge and LOGIN asks for the user name."""
        if self._started:
            raise RuntimeError("start() called twice")
        self._started = True
        if initial is None:
            if self.mechanism == "PLAIN":
                return Challenge(b"")
            return Challenge(_LOGIN_PROMPTS[0])
        self._over = True  # until a step asks for more; an error ends it
        return self._step(decode_response(initial, initial=True))

    def respond(self, line: bytes | str) -> Challenge | Credentials:
        """The client's answer to the last challenge (the line, no line end)."""
        if not self._started or self._over:
            raise RuntimeError("respond() without a pending challenge")
        self._over = True
        return self._step(decode_response(line))

    def _step(self, data: bytes) -> Challenge | Credentials:
        # RFC 4954 §4: an error ends the exchange; only LOGIN's user name
        # step leaves it open for the password.
        if self.mechanism == "PLAIN":
            return decode_plain(data)
        if self._username is None:
            self._username = _field(data, required=True)
            self._over = False
            return Challenge(_LOGIN_PROMPTS[1])
        return Credentials("LOGIN", "", self._username, _field(data, required=True))
