"""Checked settings operations: domain settings, mailbox settings (vpwentry), vacations.

Changes are given as keyword arguments named like the fields of
``DomainSettings`` and ``Mailbox``; a name that is not a setting, or a value
that does not fit, is refused with one line before anything is written.
A user (``UserActor``) may change only its own forwards and keep_copy, and
its own vacation message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from mailyard.directory.access import (
    SITE_ADMIN,
    Actor,
    OwnerActor,
    UserActor,
    checked_address,
    require_domain,
    require_mailbox,
)
from mailyard.directory.checks import (
    MAX_DISPLAY_NAME,
    checked_bool,
    checked_count,
    checked_extension_chars,
    checked_targets,
    checked_text,
    checked_time,
)
from mailyard.directory.errors import InvalidInput, NotFound, PermissionDenied
from mailyard.directory.model import Domain, DomainSettings, Mailbox, Vacation, hosted_domain
from mailyard.directory.store import Directory
from mailyard.message.address import Address

__all__ = [
    "DOMAIN_SETTINGS",
    "MAILBOX_SETTINGS",
    "MAX_INTERVAL_DAYS",
    "MAX_VACATION_BODY",
    "MAX_VACATION_SUBJECT",
    "USER_SETTINGS",
    "clear_vacation",
    "get_vacation",
    "set_domain_settings",
    "set_user_settings",
    "set_vacation",
]

DOMAIN_SETTINGS: Final = frozenset(f.name for f in dataclasses.fields(DomainSettings))
MAILBOX_SETTINGS: Final = frozenset(
    {
        "enabled",
        "receive",
        "expires",
        "display_name",
        "quota_bytes",
        "quota_messages",
        "max_message_size",
        "forwards",
        "keep_copy",
    }
)
# What a user may change about its own mailbox besides password and vacation.
USER_SETTINGS: Final = frozenset({"forwards", "keep_copy"})

MAX_VACATION_SUBJECT: Final = 256
MAX_VACATION_BODY: Final = 64 * 1024
# RFC 3834 §2 recommends 7 days between replies to one sender; a year is
# plenty as the upper end, and at least one day keeps the record meaningful.
MAX_INTERVAL_DAYS: Final = 365


def _addresses(value: object, what: str, itself: Address | None) -> tuple[str, ...]:
    # A plain string is iterable too, character by character: refuse it.
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidInput(f"{what}s must be a list of addresses")
    return checked_targets([str(v) for v in value], what, itself=itself)


def _unknown(changes: Mapping[str, object], known: frozenset[str], what: str) -> None:
    unknown = sorted(set(changes) - known)
    if unknown:
        raise InvalidInput(
            f"unknown {what} setting {unknown[0]} (known: {', '.join(sorted(known))})"
        )


# -- domains ---------------------------------------------------------------------


def _checked_domain_changes(
    directory: Directory, actor: Actor, domain: Domain, changes: Mapping[str, object]
) -> dict[str, Any]:
    # Any: each value was checked to fit its field, which dataclasses.replace cannot see.
    checked: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "alias_of":
            target = None if value is None else hosted_domain(str(value))
            if target == domain.name:
                raise InvalidInput(f"domain {target} cannot be an alias of itself")
            if target is not None and isinstance(actor, OwnerActor):
                # An owner may point its domain only at another domain it manages.
                require_domain(directory, actor, target)
            elif target is not None and directory.get_domain(target) is None:
                raise NotFound(f"no such domain {target}: a domain alias must point to one")
            checked[key] = target
        elif key == "catch_all":
            checked[key] = _addresses(value, "catch-all target", None)
        elif key == "extension_chars":
            checked[key] = checked_extension_chars(value)
        else:
            checked[key] = checked_count(value, key.replace("_", " "))
    return checked


def set_domain_settings(
    directory: Directory, name: str, *, actor: Actor = SITE_ADMIN, **changes: object
) -> Domain:
    """Change some of a domain's settings (keys: ``DomainSettings`` field names).

    ``alias_of`` must name a hosted domain that is not an alias itself (an
    owner: one it manages), and the domain must have no mailboxes or
    aliases of its own; the store checks the latter in its transaction.
    """
    domain = require_domain(directory, actor, name)
    _unknown(changes, DOMAIN_SETTINGS, "domain")
    settings = dataclasses.replace(
        domain.settings, **_checked_domain_changes(directory, actor, domain, changes)
    )
    if settings.alias_of is not None and settings.catch_all:
        raise InvalidInput(
            f"domain {domain.name} is an alias of {settings.alias_of}; "
            "the catch-all of that domain applies, it cannot have its own"
        )
    return directory.set_domain_settings(domain.name, settings)


# -- mailboxes -------------------------------------------------------------------


def _mailbox_checks(address: Address) -> dict[str, Callable[[object], object]]:
    def text(value: object) -> object:
        return checked_text(value, "display name", MAX_DISPLAY_NAME)

    return {
        "enabled": lambda v: checked_bool(v, "enabled"),
        "receive": lambda v: checked_bool(v, "receive"),
        "keep_copy": lambda v: checked_bool(v, "keep copy"),
        "expires": lambda v: checked_time(v, "expiry"),
        "display_name": text,
        "quota_bytes": lambda v: checked_count(v, "quota"),
        "quota_messages": lambda v: checked_count(v, "message quota"),
        "max_message_size": lambda v: checked_count(v, "maximum message size"),
        "forwards": lambda v: _addresses(v, "forward address", address),
    }


def set_user_settings(
    directory: Directory, address: Address | str, *, actor: Actor = SITE_ADMIN, **changes: object
) -> Mailbox:
    """Change some of a mailbox's settings (keys: see MAILBOX_SETTINGS); return it as stored.

    None for a quota or size means the domain's default, 0 no limit. A
    user may change only USER_SETTINGS of its own mailbox.
    """
    parsed = checked_address(address)
    require_mailbox(directory, actor, parsed)
    _unknown(changes, MAILBOX_SETTINGS, "mailbox")
    if isinstance(actor, UserActor) and not set(changes) <= USER_SETTINGS:
        raise PermissionDenied(
            f"a user may change only its forwards and keep-copy, not "
            f"{', '.join(sorted(set(changes) - USER_SETTINGS))}"
        )
    checks = _mailbox_checks(parsed)
    checked: dict[str, Any] = {key: checks[key](value) for key, value in changes.items()}
    mailbox = directory.get_mailbox(parsed)
    if mailbox is None:
        raise NotFound(f"no such mailbox {parsed}")
    return directory.save_mailbox_settings(dataclasses.replace(mailbox, **checked))


# -- vacations -------------------------------------------------------------------


def _checked_vacation(address: Address, vacation: Vacation) -> Vacation:
    subject = checked_text(vacation.subject, "vacation subject", MAX_VACATION_SUBJECT, empty=False)
    body = checked_text(
        vacation.body, "vacation body", MAX_VACATION_BODY, single_line=False, empty=False
    )
    start = checked_time(vacation.start, "vacation start")
    end = checked_time(vacation.end, "vacation end")
    if start is not None and end is not None and end <= start:
        raise InvalidInput("the vacation must end after it starts")
    days = vacation.interval_days
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_INTERVAL_DAYS:
        raise InvalidInput(
            f"the reply interval must be 1 to {MAX_INTERVAL_DAYS} days, got {days!r}"
        )
    enabled = checked_bool(vacation.enabled, "vacation enabled")
    return Vacation(address, subject, body, start, end, days, enabled)


def set_vacation(
    directory: Directory,
    address: Address | str,
    vacation: Vacation,
    *,
    actor: Actor = SITE_ADMIN,
) -> Vacation:
    """Set (create or replace) the autoresponder of mailbox ``address``.

    ``vacation.address`` is ignored: the message belongs to ``address``.
    """
    parsed = checked_address(address)
    require_mailbox(directory, actor, parsed)
    return directory.set_vacation(_checked_vacation(parsed, vacation))


def get_vacation(
    directory: Directory, address: Address | str, *, actor: Actor = SITE_ADMIN
) -> Vacation | None:
    """The mailbox's autoresponder, or None; NotFound if there is no such mailbox."""
    parsed = checked_address(address)
    require_mailbox(directory, actor, parsed)
    if directory.get_mailbox(parsed) is None:
        raise NotFound(f"no such mailbox {parsed}")
    return directory.get_vacation(parsed)


def clear_vacation(
    directory: Directory, address: Address | str, *, actor: Actor = SITE_ADMIN
) -> None:
    """Turn the autoresponder off (NotFound if it has none)."""
    parsed = checked_address(address)
    require_mailbox(directory, actor, parsed)
    directory.remove_vacation(parsed)
