"""How directory values look on the command line: JSON data and table cells.

JSON keeps the stored values (sizes in bytes; for a mailbox null = the
domain's default and 0 = no limit; times as UTC ``…Z`` stamps). Tables are
for people: sizes as ``500M``, limits as ``default`` or ``none``, times in
local time with the offset (as ``--expires`` reads them back).
"""

from __future__ import annotations

import time

import click

from mailyard.cli.output import print_table
from mailyard.cli.values import format_size, format_when
from mailyard.directory.model import Alias, Domain, Mailbox, Owner, Vacation

__all__ = [
    "alias_data",
    "cell",
    "domain_data",
    "domain_settings_fields",
    "echo_body",
    "mailbox_data",
    "mailbox_settings_fields",
    "owner_data",
    "print_fields",
    "print_mailboxes",
    "stamp",
    "vacation_data",
    "vacation_fields",
]


def stamp(seconds: float) -> str:
    """Epoch seconds as a UTC ISO 8601 stamp."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _stamp_or_none(seconds: float | None) -> str | None:
    return None if seconds is None else stamp(seconds)


def _when(seconds: float | None, missing: str) -> str:
    return missing if seconds is None else format_when(seconds)


def _limit(value: int | None, unset: str, size: bool = True) -> str:
    """A mailbox limit: None = ``unset`` (the domain's default), 0 = no limit."""
    if value is None:
        return unset
    if value == 0:
        return "none"
    return format_size(value) if size else str(value)


def owner_data(owner: Owner, domains: list[Domain]) -> dict[str, object]:
    """An owner as JSON data, with the domains it manages."""
    return {
        "name": owner.name,
        "domains": [d.name for d in domains if d.owner == owner.name],
        "created": stamp(owner.created),
    }


def domain_data(domain: Domain, mailboxes: int) -> dict[str, object]:
    """A domain and its settings as JSON data."""
    settings = domain.settings
    return {
        "name": domain.name,
        "owner": domain.owner,
        "mailboxes": mailboxes,
        "created": stamp(domain.created),
        "alias_of": settings.alias_of,
        "catch_all": list(settings.catch_all),
        "extension_chars": settings.extension_chars,
        "quota_bytes": settings.quota_bytes,
        "quota_messages": settings.quota_messages,
        "total_quota_bytes": settings.total_quota_bytes,
        "max_message_size": settings.max_message_size,
    }


def domain_settings_fields(domain: Domain) -> dict[str, object]:
    """The settings rows of ``domain show`` (a domain's None means no limit)."""
    s = domain.settings
    return {
        "alias of": s.alias_of,
        "catch-all": list(s.catch_all),
        "extension chars": s.extension_chars or "(none)",
        "mailbox quota": _limit(s.quota_bytes, "none"),
        "mailbox message quota": _limit(s.quota_messages, "none", size=False),
        "total quota": _limit(s.total_quota_bytes, "none"),
        "max message size": _limit(s.max_message_size, "none"),
    }


def mailbox_data(mailbox: Mailbox) -> dict[str, object]:
    """A mailbox and its settings as JSON data."""
    return {
        "address": str(mailbox.address),
        "domain": mailbox.address.domain,
        "local": mailbox.address.local,
        "enabled": mailbox.enabled,
        "maildir": mailbox.maildir,
        "created": stamp(mailbox.created),
        "receive": mailbox.receive,
        "expires": _stamp_or_none(mailbox.expires),
        "display_name": mailbox.display_name,
        "quota_bytes": mailbox.quota_bytes,
        "quota_messages": mailbox.quota_messages,
        "max_message_size": mailbox.max_message_size,
        "forwards": list(mailbox.forwards),
        "keep_copy": mailbox.keep_copy,
    }


def mailbox_settings_fields(mailbox: Mailbox) -> dict[str, object]:
    """The rows of ``user show``."""
    return {
        "address": str(mailbox.address),
        "display name": mailbox.display_name or None,
        "login": mailbox.enabled,
        "receive": mailbox.receive,
        "expires": _when(mailbox.expires, "never"),
        "quota": _limit(mailbox.quota_bytes, "default"),
        "message quota": _limit(mailbox.quota_messages, "default", size=False),
        "max message size": _limit(mailbox.max_message_size, "default"),
        "forwards": list(mailbox.forwards),
        "keep copy": mailbox.keep_copy,
        "maildir": mailbox.maildir,
        "created": stamp(mailbox.created),
    }


def alias_data(alias: Alias) -> dict[str, object]:
    """An alias as JSON data."""
    return {
        "address": str(alias.address),
        "targets": list(alias.targets),
        "owner": alias.owner,
        "created": stamp(alias.created),
    }


def vacation_data(vacation: Vacation, now: float) -> dict[str, object]:
    """A vacation message as JSON data."""
    return {
        "address": str(vacation.address),
        "subject": vacation.subject,
        "body": vacation.body,
        "start": _stamp_or_none(vacation.start),
        "end": _stamp_or_none(vacation.end),
        "interval_days": vacation.interval_days,
        "enabled": vacation.enabled,
        "active": vacation.active(now),
    }


def vacation_fields(vacation: Vacation, now: float) -> dict[str, object]:
    """The rows of ``vacation show`` (the body follows them)."""
    return {
        "address": str(vacation.address),
        "subject": vacation.subject,
        "start": _when(vacation.start, "now"),
        "end": _when(vacation.end, "never"),
        "reply interval": f"{vacation.interval_days} day(s)",
        "active now": vacation.active(now),
    }


def print_fields(data: dict[str, object]) -> None:
    """A FIELD/VALUE table."""
    print_table(["FIELD", "VALUE"], [[key, cell(value)] for key, value in data.items()])


def cell(value: object) -> object:
    """A value as a table cell: yes/no, comma-separated lists, '-' for none."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return "-" if value is None else value


def print_mailboxes(mailboxes: list[Mailbox]) -> None:
    """The mailbox table of ``user list`` and ``domain show``."""
    print_table(
        ["ADDRESS", "ENABLED", "MAILDIR", "CREATED"],
        [[str(m.address), cell(m.enabled), m.maildir, stamp(m.created)] for m in mailboxes],
    )


def echo_body(body: str) -> None:
    """A vacation body below its fields, set off by a blank line."""
    click.echo("")
    click.echo(body.rstrip("\n"))
