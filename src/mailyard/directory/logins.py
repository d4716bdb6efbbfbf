"""Logins: the user name forms mail clients send, and password authentication.

Runs in worker threads (argon2 takes tens of milliseconds). Every failed
login costs one argon2 verification whatever the reason (unknown domain,
unknown user, wrong password, disabled mailbox), so the time an answer
takes does not tell an attacker which user names exist.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Final, TypeVar

from mailyard.directory.errors import DirectoryError
from mailyard.directory.model import Mailbox, Owner
from mailyard.directory.passwords import (
    dummy_verify,
    hash_password,
    is_argon2,
    verify_password,
)
from mailyard.directory.store import Directory
from mailyard.log import event
from mailyard.message.address import Address, AddressError, canonical_domain, validate_localpart

__all__ = ["LOGIN_SEPARATORS", "MAX_LOGIN", "authenticate", "authenticate_owner", "parse_login"]

# qmail/vpopmail/VMailMgr accept "user%domain" and "user:domain" besides
# "user@domain", for clients that cannot send "@" in a user name.
LOGIN_SEPARATORS: Final = ("@", "%", ":")
MAX_LOGIN: Final = 320  # 64-octet local part, separator, 255-octet domain

_K = TypeVar("_K")


def parse_login(login: str, default_domain: str | None) -> Address | None:
    """The address a login names, or None if it names none.

    Rule: the separators are tried in the order ``@``, ``%``, ``:``; the
    first one that occurs in the login is the separator, and its *last*
    occurrence splits local part from domain (a domain never contains any
    of them, a local part may: ``a%b@example.com`` is local ``a%b``). A
    login with none of them is a bare user in ``default_domain``; without a
    default domain it names nobody.
    """
    if not login or len(login) > MAX_LOGIN:
        return None
    local, domain = login, default_domain or ""
    for separator in LOGIN_SEPARATORS:
        if separator in login:
            local, _, domain = login.rpartition(separator)
            break
    if not domain:
        return None
    try:
        canonical = canonical_domain(domain)
        validate_localpart(local, utf8=True)
    except AddressError:
        return None
    if canonical.startswith("["):
        return None  # an address literal is never a hosted domain
    return Address(local, canonical)


def authenticate(
    directory: Directory, login: str, password: str, default_domain: str | None
) -> Mailbox | None:
    """The mailbox this login and password open, or None (see module doc).

    A legacy crypt hash (or an argon2 hash with weaker parameters than
    today's) that verifies is replaced by a fresh argon2id hash.
    """
    address = parse_login(login, default_domain)
    mailbox = None if address is None else _find_mailbox(directory, address)
    if mailbox is None:
        dummy_verify(password)
        return None
    check = verify_password(mailbox.password_hash, password)
    if not check.ok:
        if not is_argon2(mailbox.password_hash):
            dummy_verify(password)  # a legacy mismatch costs an argon2 verify too
        return None
    if not mailbox.can_login(time.time()):
        return None  # login disabled, or the account has expired
    if check.needs_upgrade:
        new_hash = hash_password(password)
        if _upgrade(directory.upgrade_password, mailbox.address, mailbox.password_hash, new_hash):
            mailbox = dataclasses.replace(mailbox, password_hash=new_hash)
            event("directory.password_upgraded", user=str(mailbox.address))
    return mailbox


def _find_mailbox(directory: Directory, address: Address) -> Mailbox | None:
    """The mailbox, also when the login names it through a domain alias."""
    mailbox = directory.get_mailbox(address)
    if mailbox is not None:
        return mailbox
    domain = directory.snapshot().domains.get(address.domain)
    if domain is None or domain.settings.alias_of is None:
        return None
    return directory.get_mailbox(Address(address.local, domain.settings.alias_of))


def authenticate_owner(directory: Directory, name: str, password: str) -> Owner | None:
    """The owner this name and password identify, or None (same cost rules)."""
    owner = directory.get_owner(name) if name and len(name) <= MAX_LOGIN else None
    if owner is None:
        dummy_verify(password)
        return None
    check = verify_password(owner.password_hash, password)
    if not check.ok:
        if not is_argon2(owner.password_hash):
            dummy_verify(password)
        return None
    if check.needs_upgrade:
        new_hash = hash_password(password)
        if _upgrade(directory.upgrade_owner_password, owner.name, owner.password_hash, new_hash):
            owner = dataclasses.replace(owner, password_hash=new_hash)
            event("directory.owner_password_upgraded", owner=owner.name)
    return owner


def _upgrade(
    store_upgrade: Callable[[_K, str, str], bool], key: _K, old_hash: str, new_hash: str
) -> bool:
    """Store the upgraded hash; a failure to write must not fail the login."""
    try:
        return store_upgrade(key, old_hash, new_hash)
    except DirectoryError as exc:
        event("directory.password_upgrade_failed", error=str(exc))
        return False
