"""Mail addresses: RFC 5321 paths and mailboxes, RFC 6531 UTF-8, IDNA domains.

Pure functions over strings; no I/O. One ``Address`` type is used everywhere
(SMTP envelope, directory keys, delivery), so canonical forms are decided
here once:

* the domain is stored lowercase in IDNA A-label form (``xn--...``), or as an
  address literal ``[192.0.2.1]`` / ``[IPv6:...]``;
* the local part keeps the case it was given (RFC 5321 §2.4: the receiving
  host decides); ``Address.key`` folds it to lowercase for lookups, which is
  how mailyard's own directory compares local parts.

IDNA uses Python's stdlib codec (IDNA 2003 mapping): it accepts every
ordinary internationalised name; a few IDNA 2008 corner cases (ß, final
sigma) are mapped the 2003 way.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

__all__ = [
    "Address",
    "AddressError",
    "canonical_domain",
    "parse_address",
    "parse_path",
    "quote_localpart",
    "validate_localpart",
]

MAX_LOCALPART: Final = 64  # RFC 5321 §4.5.3.1.1, octets
MAX_DOMAIN: Final = 255  # RFC 5321 §4.5.3.1.2, octets
MAX_PATH: Final = 256  # RFC 5321 §4.5.3.1.3, octets incl. brackets
MAX_LABEL: Final = 63

# RFC 5322 §3.2.3 atext (RFC 5321 uses the same set in Dot-string).
_ATEXT: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)
_LDH: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


class AddressError(ValueError):
    """The text is not a valid address; the message says why, for a 501 reply."""


@dataclass(frozen=True, slots=True)
class Address:
    """A mailbox ``local@domain`` in canonical form (see module doc)."""

    local: str
    domain: str

    def __str__(self) -> str:
        return f"{quote_localpart(self.local)}@{self.domain}"

    @property
    def key(self) -> tuple[str, str]:
        """Lookup key: local part folded to lowercase, canonical domain."""
        return (self.local.lower(), self.domain)

    @property
    def is_ascii(self) -> bool:
        return self.local.isascii() and self.domain.isascii()


def _is_atext(ch: str, utf8: bool) -> bool:
    return ch in _ATEXT or (utf8 and ord(ch) > 0x7F and ch.isprintable())


def _is_dot_string(local: str, utf8: bool) -> bool:
    if not local or local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    return all(ch == "." or _is_atext(ch, utf8) for ch in local)


def validate_localpart(local: str, *, utf8: bool = True) -> str:
    """Check an (unquoted) local part; return it unchanged or raise."""
    if not local:
        raise AddressError("empty local part")
    if len(local.encode("utf-8")) > MAX_LOCALPART:
        raise AddressError("local part longer than 64 octets")
    for ch in local:
        code = ord(ch)
        if code > 0x7F:
            if not utf8:
                raise AddressError("non-ASCII local part needs SMTPUTF8")
            if not ch.isprintable():
                raise AddressError("control character in local part")
        elif code < 0x20 or code == 0x7F:
            raise AddressError("control character in local part")
    return local


def quote_localpart(local: str) -> str:
    """Render a local part as a Dot-string, or as a Quoted-string if it must be."""
    if _is_dot_string(local, utf8=True):
        return local
    escaped = local.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def canonical_domain(name: str) -> str:
    """Lowercase A-label form of a domain or address literal; raise if invalid."""
    if not name:
        raise AddressError("empty domain")
    if name.startswith("["):
        return _canonical_literal(name)
    if name.endswith("."):
        raise AddressError("domain must not end with a dot")
    try:
        ascii_name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError as exc:
        raise AddressError("domain is not a valid IDNA name") from exc
    ascii_name = ascii_name.lower()
    if len(ascii_name) > MAX_DOMAIN:
        raise AddressError("domain longer than 255 octets")
    labels = ascii_name.split(".")
    for label in labels:
        if not label or len(label) > MAX_LABEL:
            raise AddressError("domain has an empty or over-long label")
        if label.startswith("-") or label.endswith("-") or not set(label) <= _LDH:
            raise AddressError(f"invalid domain label {label!r}")
    if labels[-1].isdigit():
        raise AddressError("top-level label must not be all digits")
    return ascii_name


def _canonical_literal(text: str) -> str:
    if not text.endswith("]"):
        raise AddressError("unterminated address literal")
    inner = text[1:-1]
    try:
        if inner[:5].lower() == "ipv6:":
            return f"[IPv6:{ipaddress.IPv6Address(inner[5:]).compressed}]"
        return f"[{ipaddress.IPv4Address(inner)}]"
    except ValueError as exc:
        raise AddressError("invalid address literal") from exc


def _split_localpart(text: str, utf8: bool) -> tuple[str, str]:
    """Split ``local@rest`` honouring a quoted local part; return (local, rest)."""
    if text.startswith('"'):
        out: list[str] = []
        i = 1
        while i < len(text):
            ch = text[i]
            if ch == "\\":
                if i + 1 >= len(text):
                    raise AddressError("dangling backslash in quoted local part")
                nxt = text[i + 1]
                if ord(nxt) < 0x20 and nxt != "\t":
                    raise AddressError("control character in quoted local part")
                out.append(nxt)
                i += 2
                continue
            if ch == '"':
                rest = text[i + 1 :]
                if not rest.startswith("@"):
                    raise AddressError("quoted local part must be followed by @")
                local = "".join(out)
                return validate_localpart(local, utf8=utf8), rest[1:]
            out.append(ch)
            i += 1
        raise AddressError("unterminated quoted local part")
    at = text.rfind("@")
    if at <= 0:
        raise AddressError("address needs local@domain")
    local = text[:at]
    if not _is_dot_string(local, utf8):
        raise AddressError("invalid characters in local part")
    return validate_localpart(local, utf8=utf8), text[at + 1 :]


def parse_address(text: str, *, utf8: bool = True) -> Address:
    """Parse a bare mailbox ``local@domain`` (no angle brackets)."""
    if not text:
        raise AddressError("empty address")
    if len(text.encode("utf-8")) > MAX_PATH - 2:
        raise AddressError("address longer than 254 octets")
    if not utf8 and not text.isascii():
        raise AddressError("non-ASCII address needs SMTPUTF8")
    local, domain = _split_localpart(text, utf8)
    if "@" in domain and not domain.startswith("["):
        raise AddressError("more than one @ in address")
    return Address(local, canonical_domain(domain))


def parse_path(text: str, *, utf8: bool = True) -> Address:
    """Parse an RFC 5321 path ``<...>``, dropping any source route.

    RFC 5321 §4.1.1.3 / appendix C: a source route (``<@a,@b:user@c>``) must
    be accepted and ignored; only the final mailbox counts, so relay checks
    see the real destination. The null path ``<>`` is not handled here.
    """
    if len(text.encode("utf-8")) > MAX_PATH:
        raise AddressError("path longer than 256 octets")
    if not (text.startswith("<") and text.endswith(">")):
        raise AddressError("path must be enclosed in <>")
    inner = text[1:-1]
    if inner.startswith("@"):
        colon = inner.find(":")
        if colon < 0:
            raise AddressError("malformed source route")
        for hop in inner[:colon].split(","):
            if not hop.startswith("@"):
                raise AddressError("malformed source route")
            canonical_domain(hop[1:])
        inner = inner[colon + 1 :]
    return parse_address(inner, utf8=utf8)
