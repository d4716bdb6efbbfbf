"""The SQL of domain and mailbox settings (VMailMgr's vpwentry fields): ``Directory``'s methods.

The structural rules of domain aliases are enforced
here, in the transaction that changes them, so two concurrent changes
cannot together build a chain or strand an address:

* the target is a hosted domain that is not itself an alias (one level:
  resolving an address never loops);
* a domain that has mailboxes or aliases, or that other domains alias,
  cannot become an alias (its addresses would silently stop working).
"""

from __future__ import annotations

import sqlite3

from mailyard.directory.errors import InvalidInput, NotFound
from mailyard.directory.model import Domain, DomainSettings, Mailbox, hosted_domain
from mailyard.directory.store_base import (
    Transactions,
    has_domain,
    join_lines,
    select_domain,
    select_mailbox,
)

__all__ = ["SettingsStore", "aliased_by"]


def aliased_by(conn: sqlite3.Connection, name: str) -> list[str]:
    """The domains that are aliases of ``name``."""
    rows = conn.execute(
        "SELECT name FROM domains WHERE alias_of = ? ORDER BY name", (name,)
    ).fetchall()
    return [str(row[0]) for row in rows]


def _check_alias_domain(conn: sqlite3.Connection, name: str, target: str) -> None:
    if target == name:
        raise InvalidInput(f"domain {name} cannot be an alias of itself")
    found = select_domain(conn, target)
    if found is None:
        raise NotFound(f"no such domain {target}: a domain alias must point to a hosted domain")
    if found.settings.alias_of is not None:
        raise InvalidInput(
            f"domain {target} is itself an alias of {found.settings.alias_of}; point {name} there"
        )
    (mailboxes,) = conn.execute(
        "SELECT count(*) FROM mailboxes WHERE domain = ?", (name,)
    ).fetchone()
    (aliases,) = conn.execute("SELECT count(*) FROM aliases WHERE domain = ?", (name,)).fetchone()
    if mailboxes or aliases:
        raise InvalidInput(
            f"domain {name} has {mailboxes} mailbox(es) and {aliases} alias(es); "
            "a domain alias has no addresses of its own, remove them first"
        )
    others = aliased_by(conn, name)
    if others:
        raise InvalidInput(
            f"domain {name} is the target of domain alias(es) {', '.join(others)}; "
            "it cannot become an alias itself"
        )


class SettingsStore(Transactions):
    """Domain settings and mailbox settings."""

    def set_domain_settings(self, name: str, settings: DomainSettings) -> Domain:
        """Write every settings field of domain ``name``; return the domain as stored."""
        key = hosted_domain(name)
        catch_all = join_lines(settings.catch_all, "catch-all target")
        with self._write() as conn:
            if not has_domain(conn, key):
                raise NotFound(f"no such domain {key}")
            if settings.alias_of is not None:
                _check_alias_domain(conn, key, settings.alias_of)
            conn.execute(
                "UPDATE domains SET alias_of = ?, catch_all = ?, extension_chars = ?, "
                "quota_bytes = ?, quota_messages = ?, total_quota_bytes = ?, "
                "max_message_size = ? WHERE name = ?",
                (
                    settings.alias_of,
                    catch_all,
                    settings.extension_chars,
                    settings.quota_bytes,
                    settings.quota_messages,
                    settings.total_quota_bytes,
                    settings.max_message_size,
                    key,
                ),
            )
            found = select_domain(conn, key)
        assert found is not None  # checked above, in the same transaction
        return found

    def save_mailbox_settings(self, mailbox: Mailbox) -> Mailbox:
        """Write every settings field of the mailbox with that address key; return it as stored.

        The password hash, the Maildir and the creation time are not
        settings and stay as they are.
        """
        local_key, domain = mailbox.address.key
        forwards = join_lines(mailbox.forwards, "forward address")
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE mailboxes SET enabled = ?, receive = ?, expires = ?, display_name = ?, "
                "quota_bytes = ?, quota_messages = ?, max_message_size = ?, forwards = ?, "
                "keep_copy = ? WHERE domain = ? AND local_key = ?",
                (
                    int(mailbox.enabled),
                    int(mailbox.receive),
                    mailbox.expires,
                    mailbox.display_name,
                    mailbox.quota_bytes,
                    mailbox.quota_messages,
                    mailbox.max_message_size,
                    forwards,
                    int(mailbox.keep_copy),
                    domain,
                    local_key,
                ),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no such mailbox {mailbox.address}")
            found = select_mailbox(conn, domain, local_key)
        assert found is not None  # updated just above, in the same transaction
        return found
