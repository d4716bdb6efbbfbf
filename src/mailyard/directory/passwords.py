"""Password hashes: argon2id for everything new, legacy crypt for migration.

New hashes are argon2id with argon2-cffi's ``PasswordHasher`` defaults (RFC
9106's recommended second option). Hashes carried over from qmail,
vpopmail or VMailMgr setups (``$1$`` md5-crypt, ``$5$``/``$6$`` sha-crypt,
``$2a$``/``$2b$``/``$2y$`` bcrypt, 13-character DES crypt) are verified
with libpass (module ``passlib``) and reported as needing an upgrade, so
the login that proves the password replaces them with argon2id.

Nothing here raises on a malformed stored hash: it simply does not match.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from passlib.context import CryptContext
from passlib.exc import MissingBackendError

__all__ = [
    "ARGON2_PREFIX",
    "PasswordCheck",
    "dummy_verify",
    "hash_password",
    "is_argon2",
    "verify_password",
]

ARGON2_PREFIX: Final = "$argon2"
_HASHER: Final = PasswordHasher()
_LEGACY: Final = CryptContext(
    schemes=["md5_crypt", "sha256_crypt", "sha512_crypt", "bcrypt", "des_crypt"]
)
# bcrypt looks only at the first 72 password octets; the `bcrypt` package
# (5.x) raises instead of truncating, so we truncate as crypt_blowfish does.
_BCRYPT_MAX: Final = 72
_BCRYPT_PREFIXES: Final = ("$2a$", "$2b$", "$2y$")

_dummy_lock = threading.Lock()
_dummy_hash: str | None = None


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """``ok``: the password matches; ``needs_upgrade``: store a fresh argon2id hash."""

    ok: bool
    needs_upgrade: bool


_NO: Final = PasswordCheck(ok=False, needs_upgrade=False)


def hash_password(password: str) -> str:
    """A new argon2id hash (random salt) of ``password``."""
    return _HASHER.hash(password)


def is_argon2(stored: str) -> bool:
    return stored.startswith(ARGON2_PREFIX)


def verify_password(stored: str, password: str) -> PasswordCheck:
    """Check ``password`` against a stored argon2 or legacy crypt hash."""
    if is_argon2(stored):
        return _verify_argon2(stored, password)
    return _verify_legacy(stored, password)


def _verify_argon2(stored: str, password: str) -> PasswordCheck:
    try:
        _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError, ValueError):
        # ValueError: argon2-cffi's parameter errors for hashes it cannot use.
        return _NO
    try:
        # Older or weaker parameters than today's defaults: rehash on login.
        stale = _HASHER.check_needs_rehash(stored)
    except (InvalidHashError, ValueError):
        stale = True
    return PasswordCheck(ok=True, needs_upgrade=stale)


def _verify_legacy(stored: str, password: str) -> PasswordCheck:
    secret: str | bytes = password
    if stored.startswith(_BCRYPT_PREFIXES):
        secret = password.encode("utf-8")[:_BCRYPT_MAX]
    try:
        ok = bool(_LEGACY.verify(secret, stored))
    except (ValueError, TypeError, MissingBackendError):
        # Unknown scheme or malformed hash (passlib raises ValueError
        # subclasses for both), or no bcrypt backend installed: it matches
        # nothing, and the login fails like any wrong password.
        return _NO
    return PasswordCheck(ok=True, needs_upgrade=True) if ok else _NO


def _dummy() -> str:
    global _dummy_hash
    with _dummy_lock:
        if _dummy_hash is None:
            _dummy_hash = hash_password(secrets.token_urlsafe(24))
        return _dummy_hash


def dummy_verify(password: str) -> None:
    """Spend what a real argon2 verification costs, to answer unknown users as slowly."""
    try:
        _HASHER.verify(_dummy(), password)
    except VerificationError:
        return
