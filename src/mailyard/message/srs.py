"""The Sender Rewriting Scheme (Shevek's SRS, as libsrs2 and postsrsd write it).

A forwarder that passes mail on to another host with the original envelope
sender fails the receiver's SPF check: the sender's domain never allowed the
forwarder to send for it. SRS rewrites the sender into an address at the
forwarder's own domain that encodes the original one, so bounces come back
to the forwarder, which reverses the rewriting and passes them on:

* ``SRS0=HHHH=TT=domain=local@forwarder`` for an ordinary sender;
* ``SRS1=HHHH=first-forwarder==HHHH=TT=domain=local@forwarder`` for a
  sender that some other forwarder already rewrote (the guarded scheme:
  the bounce goes straight back to the first forwarder, the chain stays
  short).

``HHHH`` is a keyed hash (the first four characters of the base64 HMAC-SHA1
over the other fields, computed on their lowercase form because MTAs on the
way may fold the case of a local part), so nobody without the secret can
make us forward a bounce anywhere (we would be an open relay for bounces);
``TT`` is the day the address was made (days since the epoch, mod 1024, in
two base32 characters), so an address stops working after ``max_age_days``.

Pure: no I/O; the secret and the time are passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

__all__ = [
    "DEFAULT_MAX_AGE_DAYS",
    "HASH_LENGTH",
    "SrsError",
    "forward",
    "is_srs",
    "reverse",
    "reverse_recipient",
    "timestamp",
]

HASH_LENGTH: Final = 4  # libsrs2's and Mail::SRS's default
DEFAULT_MAX_AGE_DAYS: Final = 21
_BASE32: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648 §6 alphabet
_TICK_SLOTS: Final = 1024  # 32 ** 2: what two base32 characters hold
_DAY: Final = 86400
_SEPARATORS: Final = "=+-"  # what may follow the SRS0/SRS1 tag (libsrs2 accepts all three)
_SRS0: Final = "srs0"
_SRS1: Final = "srs1"
_MAX_LOCAL: Final = 64  # RFC 5321 §4.5.3.1.1, octets


class SrsError(ValueError):
    """Not a valid SRS address of ours: bad form, bad hash or too old."""


@dataclass(frozen=True, slots=True)
class _Parsed:
    tag: str  # "srs0" or "srs1"
    hash: str
    rest: tuple[str, ...]  # SRS0: (timestamp, domain, local); SRS1: (host, srs0 tail)


def timestamp(now: float) -> str:
    """The two-character day stamp for ``now`` (epoch seconds)."""
    day = int(now // _DAY) % _TICK_SLOTS
    return _BASE32[day // 32] + _BASE32[day % 32]


def _day_of(stamp: str) -> int | None:
    if len(stamp) != 2:
        return None
    high = _BASE32.find(stamp[0].upper())
    low = _BASE32.find(stamp[1].upper())
    if high < 0 or low < 0:
        return None
    return high * 32 + low


def _hash(secret: bytes, *fields: str) -> str:
    mac = hmac.new(secret, digestmod=hashlib.sha1)
    for item in fields:
        mac.update(item.lower().encode("utf-8", "surrogatepass"))
    return base64.b64encode(mac.digest()).decode("ascii")[:HASH_LENGTH]


def _hash_ok(secret: bytes, given: str, *fields: str) -> bool:
    # Compared without case, as libsrs2 does: a hop that folds the local
    # part to lowercase must not break the bounce path. That leaves about
    # 20 bits instead of 24 to guess, which the age limit bounds further.
    expected = _hash(secret, *fields).lower()
    return hmac.compare_digest(expected.encode("ascii"), given.lower().encode("ascii", "replace"))


def _split(address: str) -> tuple[str, str]:
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise SrsError("not an address")
    return local, domain


def _parse(local: str) -> _Parsed | None:
    """The fields of an SRS local part, or None when it is not one."""
    tag = local[:4].lower()
    if tag not in (_SRS0, _SRS1) or len(local) < 5 or local[4] not in _SEPARATORS:
        return None
    body = local[5:]
    if tag == _SRS0:
        parts = body.split("=", 3)
        if len(parts) != 4 or not all(parts):
            return None
        return _Parsed(tag, parts[0], (parts[1], parts[2], parts[3]))
    hash_value, sep, tail = body.partition("=")
    host, sep2, srs0_tail = tail.partition("=")
    if not sep or not sep2 or not hash_value or not host or not srs0_tail:
        return None
    if srs0_tail[0] not in _SEPARATORS:
        return None
    # The tail keeps the first forwarder's separator: "=HHHH=TT=domain=local".
    return _Parsed(tag, hash_value, (host, srs0_tail))


def is_srs(address: str) -> bool:
    """True when the local part of ``address`` has the SRS0/SRS1 form (hash unchecked)."""
    local, _, _ = address.rpartition("@")
    return _parse(local) is not None


def _fits(local: str) -> bool:
    return len(local.encode("utf-8", "surrogatepass")) <= _MAX_LOCAL


def forward(sender: str, secret: bytes, now: float, our_domain: str) -> str:
    """The rewritten envelope sender for mail we forward from ``sender``.

    A sender already at ``our_domain`` stays as it is; an SRS0 address of
    another forwarder becomes SRS1; an SRS1 address gets our hash and
    domain, its first forwarder kept. SrsError when ``sender`` is not an
    address or the result would not fit a local part (64 octets, RFC 5321
    §4.5.3.1.1): the caller then keeps the original sender.
    """
    local, domain = _split(sender)
    if domain.lower() == our_domain.lower():
        return sender
    parsed = _parse(local)
    if parsed is None:
        stamp = timestamp(now)
        digest = _hash(secret, stamp, domain, local)
        new_local = f"SRS0={digest}={stamp}={domain}={local}"
    elif parsed.tag == _SRS0:
        # Guarded scheme: point back at the previous forwarder, keep its tail.
        tail = local[4:]
        digest = _hash(secret, domain, tail)
        new_local = f"SRS1={digest}={domain}={tail}"
    else:
        host, tail = parsed.rest
        digest = _hash(secret, host, tail)
        new_local = f"SRS1={digest}={host}={tail}"
    if not _fits(new_local):
        raise SrsError("the rewritten sender would be longer than a local part may be")
    return f"{new_local}@{our_domain}"


def reverse(address: str, secret: bytes, now: float,
            max_age_days: int = DEFAULT_MAX_AGE_DAYS) -> str:
    """Where a bounce to our SRS ``address`` goes; SrsError if it is not valid.

    SRS0 gives the original sender (hash and age checked); SRS1 gives the
    first forwarder's SRS0 address (hash checked: the age is that
    forwarder's to check).
    """
    local, _ = _split(address)
    parsed = _parse(local)
    if parsed is None:
        raise SrsError("not an SRS address")
    if parsed.tag == _SRS1:
        host, tail = parsed.rest
        if not _hash_ok(secret, parsed.hash, host, tail):
            raise SrsError("SRS1 hash does not match")
        return f"SRS0{tail}@{host}"
    stamp, domain, original_local = parsed.rest
    if not _hash_ok(secret, parsed.hash, stamp, domain, original_local):
        raise SrsError("SRS0 hash does not match")
    day = _day_of(stamp)
    if day is None:
        raise SrsError("SRS0 timestamp is not two base32 characters")
    today = int(now // _DAY) % _TICK_SLOTS
    # Modular age: an address made "tomorrow" reads as 1023 days old.
    if (today - day) % _TICK_SLOTS > max_age_days:
        raise SrsError("SRS0 address has expired")
    return f"{original_local}@{domain}"


def reverse_recipient(address: str, secret: bytes, now: float,
                      max_age_days: int = DEFAULT_MAX_AGE_DAYS) -> str | None:
    """The RCPT policy's form of ``reverse``: the original address, or None
    when ``address`` is not a valid SRS address of ours (forged, too old, or
    not SRS at all; ``is_srs`` tells the last apart)."""
    try:
        return reverse(address, secret, now, max_age_days)
    except SrsError:
        return None
