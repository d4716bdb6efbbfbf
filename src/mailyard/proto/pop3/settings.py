"""Configuration of one POP3 server core: limits and features (plain values).

The capability list (RFC 2449 §5) is derived from the features here, so what
CAPA announces and what the core accepts cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailyard.proto.sasl import MAX_RESPONSE_LINE, MECHANISMS

__all__ = ["Pop3Features", "Pop3Limits", "Pop3ServerConfig", "capabilities"]


@dataclass(frozen=True, slots=True)
class Pop3Limits:
    """A named limit on every read (MODELS §7.5 habit 3); octets unless said."""

    # RFC 2449 §4: command lines up to 255 octets; we allow more, but always
    # a bound, CRLF included.
    max_line_length: int = 512
    # RFC 5034 §4: SASL responses must be taken whatever the command-line
    # limit; this one fits the largest PLAIN message proto/sasl.py accepts.
    max_auth_line: int = MAX_RESPONSE_LINE
    max_commands: int = 100_000  # per connection, then -ERR and close
    max_bad_commands: int = 20  # errors per connection tolerated; one more closes

    def __post_init__(self) -> None:
        if self.max_line_length < 16 or self.max_auth_line < 16:
            raise ValueError("Pop3Limits line limits must be >= 16")
        if self.max_commands < 1 or self.max_bad_commands < 0:
            raise ValueError("Pop3Limits command limits must be positive")


@dataclass(frozen=True, slots=True)
class Pop3Features:
    """What this listener offers (and so what CAPA lists)."""

    stls: bool = False  # RFC 2595 §4; the adapter must be able to do TLS
    user_pass: bool = True  # RFC 1939 §7 USER/PASS
    sasl_mechanisms: tuple[str, ...] = ("PLAIN",)  # RFC 5034; subset of PLAIN, LOGIN
    implementation: str = "mailyard"  # RFC 2449 §6.9; "" to hide it

    def __post_init__(self) -> None:
        for mechanism in self.sasl_mechanisms:
            if mechanism not in MECHANISMS:
                raise ValueError(f"unsupported SASL mechanism {mechanism!r}")
        if self.implementation and not self.implementation.isprintable():
            raise ValueError("implementation must be printable text")


@dataclass(frozen=True, slots=True)
class Pop3ServerConfig:
    hostname: str
    limits: Pop3Limits = field(default_factory=Pop3Limits)
    features: Pop3Features = field(default_factory=Pop3Features)

    def __post_init__(self) -> None:
        # The host name goes into the greeting and the sign-off line.
        if not self.hostname or not self.hostname.isprintable() or " " in self.hostname:
            raise ValueError("hostname must be one printable token")


def capabilities(features: Pop3Features, *, authorized: bool, tls_active: bool) -> tuple[str, ...]:
    """CAPA lines (RFC 2449 §5-§6) for the session as it stands now.

    The login capabilities (USER, SASL, STLS) are listed only in the
    AUTHORIZATION state, where they can be used (RFC 2449 §5: the list may
    differ after login; RFC 2595 §4: STLS only before login), and STLS not
    once TLS is active (RFC 2595 §4: a second STLS is an error).
    """
    caps: list[str] = []
    if not authorized:
        if features.user_pass:
            caps.append("USER")  # RFC 2449 §6.2
        if features.sasl_mechanisms:
            caps.append("SASL " + " ".join(features.sasl_mechanisms))  # RFC 2449 §6.3
        if features.stls and not tls_active:
            caps.append("STLS")
    # RFC 2449 §6.1 TOP, §6.8 UIDL, §6.4 RESP-CODES, RFC 3206 §5
    # AUTH-RESP-CODE, RFC 2449 §6.6 PIPELINING.
    caps += ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
    if features.implementation:
        caps.append(f"IMPLEMENTATION {features.implementation}")  # RFC 2449 §6.9
    return tuple(caps)
