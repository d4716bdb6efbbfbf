"""Configuration of the SMTP server core: plain frozen values (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailyard.proto.smtp.auth import MECHANISMS

__all__ = ["Features", "SmtpLimits", "SmtpServerConfig", "ehlo_keywords"]


@dataclass(frozen=True, slots=True)
class SmtpLimits:
    """A named limit on every read (MODELS §7.5 habit 3); octets unless said."""

    max_message_size: int = 50 * 1024 * 1024  # RFC 1870 SIZE, content after unstuffing
    max_recipients: int = 1000  # RFC 5321 §4.5.3.1.8: at least 100
    max_line_length: int = 1000  # content line incl. CRLF, RFC 5321 §4.5.3.1.6
    max_command_line: int = 1000  # incl. CRLF; RFC 5321 §4.5.3.1.4 says ≥ 512
    max_commands: int = 10000  # per connection, then 421
    max_bad_commands: int = 20  # syntax/sequence errors per connection, then 421

    def __post_init__(self) -> None:
        for name in self.__slots__:
            if getattr(self, name) < 1:
                raise ValueError(f"SmtpLimits.{name} must be positive")
        if self.max_command_line < 16 or self.max_line_length < 3:
            raise ValueError("SmtpLimits line limits are too small")


@dataclass(frozen=True, slots=True)
class Features:
    """Which extensions this listener offers (advertised in EHLO)."""

    starttls: bool = False  # RFC 3207
    auth_mechanisms: tuple[str, ...] = ()  # RFC 4954; subset of PLAIN, LOGIN
    auth_required: bool = False  # RFC 4954 §6: 530 before MAIL until AUTH
    # RFC 4954 §4: plaintext mechanisms only once TLS is on. AUTH is then not
    # advertised before STARTTLS and is refused with 538 5.7.11.
    auth_requires_tls: bool = False
    smtputf8: bool = True  # RFC 6531
    chunking: bool = True  # RFC 3030 CHUNKING and BINARYMIME

    def __post_init__(self) -> None:
        for mech in self.auth_mechanisms:
            if mech not in MECHANISMS:
                raise ValueError(f"unsupported AUTH mechanism {mech!r}")
        if self.auth_required and not self.auth_mechanisms:
            raise ValueError("auth_required needs at least one AUTH mechanism")


@dataclass(frozen=True, slots=True)
class SmtpServerConfig:
    hostname: str
    limits: SmtpLimits = field(default_factory=SmtpLimits)
    features: Features = field(default_factory=Features)

    def __post_init__(self) -> None:
        if not self.hostname or not self.hostname.isprintable() or " " in self.hostname:
            raise ValueError("hostname must be one printable token")


def ehlo_keywords(
    config: SmtpServerConfig, *, tls_active: bool, authenticated: bool
) -> tuple[str, ...]:
    """EHLO keyword lines (RFC 5321 §4.1.1.1) for what this listener offers."""
    features = config.features
    keys = ["PIPELINING", "8BITMIME", f"SIZE {config.limits.max_message_size}"]
    keys.append("ENHANCEDSTATUSCODES")  # RFC 2034
    if features.smtputf8:
        keys.append("SMTPUTF8")  # RFC 6531
    if features.chunking:
        keys += ["CHUNKING", "BINARYMIME"]  # RFC 3030
    if features.starttls and not tls_active:
        keys.append("STARTTLS")  # RFC 3207 §4.2: not offered again after TLS
    auth_usable = tls_active or not features.auth_requires_tls
    if features.auth_mechanisms and auth_usable and not authenticated:
        keys.append("AUTH " + " ".join(features.auth_mechanisms))  # RFC 4954 §3
    return tuple(keys)
