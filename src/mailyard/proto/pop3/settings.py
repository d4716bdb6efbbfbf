"""Configuration of one POP3 server core: limits and features (plain values).

The capability list (RFC 2449 §5) is derived from the features here, so what
CAPA announces and what the core accepts cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Pop3Features", "Pop3Limits", "Pop3ServerConfig", "capabilities"]


@dataclass(frozen=True, slots=True)
class Pop3Limits:
    # RFC 2449 §4: command lines up to 255 octets; we allow more (AUTH PLAIN
    # initial responses) but always a bound, CRLF included.
    max_line_length: int = 512
    max_commands: int = 100_000  # per connection
    max_bad_commands: int = 20  # syntax and sequence errors before we hang up

    def __post_init__(self) -> None:
        if self.max_line_length < 16:
            raise ValueError("max_line_length must be >= 16")
        if self.max_commands < 1 or self.max_bad_commands < 0:
            raise ValueError("command limits must be positive")


@dataclass(frozen=True, slots=True)
class Pop3Features:
    stls: bool = False  # RFC 2595 §4; the adapter must be able to do TLS
    user_pass: bool = True  # RFC 1939 §7 USER/PASS
    sasl_plain: bool = True  # RFC 5034 AUTH PLAIN
    implementation: str = "mailyard"  # RFC 2449 §6.9; "" to hide it


@dataclass(frozen=True, slots=True)
class Pop3ServerConfig:
    hostname: str
    limits: Pop3Limits = field(default_factory=Pop3Limits)
    features: Pop3Features = field(default_factory=Pop3Features)


def capabilities(features: Pop3Features, *, tls_offer: bool) -> tuple[str, ...]:
    """CAPA lines (RFC 2449 §6); ``tls_offer`` is False once TLS is on or
    after login (RFC 2595 §4: STLS only in the AUTHORIZATION state)."""
    caps = ["TOP", "UIDL"]
    if features.user_pass:
        caps.append("USER")
    if features.sasl_plain:
        caps.append("SASL PLAIN")
    caps += ["RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
    if features.stls and tls_offer:
        caps.append("STLS")
    if features.implementation:
        caps.append(f"IMPLEMENTATION {features.implementation}")
    return tuple(caps)
