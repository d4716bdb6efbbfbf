"""SMTP AUTH exchanges (RFC 4954) over the shared SASL steps (proto/sasl.py).

An ``AuthExchange`` takes the client's lines and answers either with the
next 334 challenge or with the finished ``Authenticate`` event. Any error
raises ``SaslError`` carrying the 501 reply; the exchange is then over
(RFC 4954 §4). Only the SMTP framing and replies live here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeAlias

from mailyard.proto import sasl
from mailyard.proto.smtp.events import Authenticate
from mailyard.proto.smtp.replies import (
    R501_AUTH_CANCELLED,
    R501_BAD_BASE64,
    R501_BAD_CREDENTIALS_SYNTAX,
    R504_UNKNOWN_MECHANISM,
    Reply,
)

__all__ = ["MECHANISMS", "AuthExchange", "SaslError", "open_exchange"]

MECHANISMS: Final = sasl.MECHANISMS

_Step: TypeAlias = Callable[[], "sasl.Challenge | sasl.Credentials"]

# RFC 4954 §4: a failed exchange gets a 501; which one depends on the cause.
_REPLIES: Final[dict[sasl.SaslProblem, Reply]] = {
    sasl.SaslProblem.CANCELLED: R501_AUTH_CANCELLED,
    sasl.SaslProblem.BAD_BASE64: R501_BAD_BASE64,
    sasl.SaslProblem.MALFORMED: R501_BAD_CREDENTIALS_SYNTAX,
    sasl.SaslProblem.TOO_LONG: R501_BAD_CREDENTIALS_SYNTAX,
}


class SaslError(Exception):
    """The exchange failed; ``reply`` goes to the client."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.lines[0])
        self.reply = reply


class AuthExchange:
    """One AUTH command's exchange; ``mechanism`` is upper case."""

    def __init__(self, mechanism: str) -> None:
        self._sasl = sasl.SaslExchange(mechanism)
        self.mechanism = self._sasl.mechanism

    def start(self, initial: str | None) -> Reply | Authenticate:
        """The AUTH command itself, with its optional initial response."""
        return self._run(lambda: self._sasl.start(initial))

    def respond(self, line: bytes) -> Reply | Authenticate:
        """A raw response line (no line end) as read from the client."""
        return self._run(lambda: self._sasl.respond(line))

    @staticmethod
    def _run(step: _Step) -> Reply | Authenticate:
        try:
            result = step()
        except sasl.SaslError as exc:
            raise SaslError(_REPLIES[exc.problem]) from None
        if isinstance(result, sasl.Challenge):
            # RFC 4954 §4: "334" SP base64 challenge (empty for PLAIN).
            return Reply(334, None, result.encoded)
        return Authenticate(result.mechanism, result.authzid, result.authcid, result.password)


def open_exchange(arg: str, offered: tuple[str, ...]) -> tuple[AuthExchange, str | None]:
    """``AUTH mechanism [initial-response]`` (RFC 4954 §4) → the exchange and
    the initial response, if any; 504 for a mechanism not offered."""
    mechanism, _, initial = arg.strip(" ").partition(" ")
    mechanism = mechanism.upper()
    if mechanism not in offered:
        raise SaslError(R504_UNKNOWN_MECHANISM)
    return AuthExchange(mechanism), initial.strip(" ") or None
