"""The SQL of aliases, vacations and the vacation reply record: ``Directory``'s methods.

Each method checks and changes in one transaction, so two processes
cannot both create one address. Values are checked by ``admin``; here only
what the tables themselves need (existence, collisions, no line breaks).
"""

from __future__ import annotations

import sqlite3

from mailyard.directory.errors import AlreadyExists, InvalidInput, NotFound
from mailyard.directory.model import Alias, Vacation, hosted_domain
from mailyard.directory.store_base import (
    SELECT_ALIASES,
    SELECT_VACATIONS,
    Transactions,
    alias_row,
    exists,
    has_mailbox,
    join_lines,
    select_domain,
    vacation_row,
)
from mailyard.message.address import Address

__all__ = ["AliasStore", "has_alias", "require_address_domain"]


def require_address_domain(conn: sqlite3.Connection, domain: str, what: str) -> None:
    """The domain must exist and not be a domain alias (which has no addresses of its own)."""
    found = select_domain(conn, domain)
    if found is None:
        raise NotFound(f"no such domain {domain}")
    if found.settings.alias_of is not None:
        raise InvalidInput(
            f"domain {domain} is an alias of {found.settings.alias_of}; "
            f"add the {what} there instead"
        )


def has_alias(conn: sqlite3.Connection, domain: str, local_key: str) -> bool:
    """Whether an alias has this key."""
    return exists(
        conn, "SELECT 1 FROM aliases WHERE domain = ? AND local_key = ?", domain, local_key
    )


def _get_alias(conn: sqlite3.Connection, address: Address) -> Alias | None:
    local_key, domain = address.key
    row = conn.execute(
        SELECT_ALIASES + " WHERE domain = ? AND local_key = ?", (domain, local_key)
    ).fetchone()
    return None if row is None else alias_row(row)


def _get_vacation(conn: sqlite3.Connection, address: Address) -> Vacation | None:
    local_key, domain = address.key
    row = conn.execute(
        SELECT_VACATIONS + " WHERE v.domain = ? AND v.local_key = ?", (domain, local_key)
    ).fetchone()
    return None if row is None else vacation_row(row)


def _require_mailbox(conn: sqlite3.Connection, address: Address) -> tuple[str, str]:
    local_key, domain = address.key
    if not has_mailbox(conn, domain, local_key):
        raise NotFound(f"no such mailbox {address}")
    return local_key, domain


class AliasStore(Transactions):
    """Aliases (addresses without a mailbox) and vacation autoresponders."""

    # -- aliases ---------------------------------------------------------------------

    def add_alias(self, alias: Alias) -> Alias:
        """Store a new alias; AlreadyExists if an alias or a mailbox has its address."""
        local_key, domain = alias.address.key
        targets = join_lines(alias.targets, "alias target")
        with self._write() as conn:
            require_address_domain(conn, domain, "alias")
            if has_alias(conn, domain, local_key):
                raise AlreadyExists(f"alias {alias.address} already exists")
            if has_mailbox(conn, domain, local_key):
                raise AlreadyExists(
                    f"{alias.address} is a mailbox; an alias cannot take its address"
                )
            conn.execute(
                "INSERT INTO aliases (domain, local_key, local, targets, owner, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (domain, local_key, alias.address.local, targets, alias.owner, alias.created),
            )
        return alias

    def get_alias(self, address: Address) -> Alias | None:
        """The alias with this address (case-insensitive local part), or None."""
        with self._read() as conn:
            return _get_alias(conn, address)

    def list_aliases(self, domain: str | None = None) -> list[Alias]:
        """Aliases of one domain, or all, ordered by domain and local part."""
        with self._read() as conn:
            if domain is None:
                rows = conn.execute(SELECT_ALIASES + " ORDER BY domain, local_key").fetchall()
            else:
                rows = conn.execute(
                    SELECT_ALIASES + " WHERE domain = ? ORDER BY local_key",
                    (hosted_domain(domain),),
                ).fetchall()
        return [alias_row(row) for row in rows]

    def update_alias(self, alias: Alias) -> Alias:
        """Replace targets and owner; the address's spelling and creation time stay."""
        local_key, domain = alias.address.key
        targets = join_lines(alias.targets, "alias target")
        with self._write() as conn:
            old = _get_alias(conn, alias.address)
            if old is None:
                raise NotFound(f"no such alias {alias.address}")
            conn.execute(
                "UPDATE aliases SET targets = ?, owner = ? WHERE domain = ? AND local_key = ?",
                (targets, alias.owner, domain, local_key),
            )
        return Alias(old.address, alias.targets, alias.owner, old.created)

    def remove_alias(self, address: Address) -> Alias:
        """Delete an alias; return what it was (NotFound if there is none)."""
        local_key, domain = address.key
        with self._write() as conn:
            old = _get_alias(conn, address)
            if old is None:
                raise NotFound(f"no such alias {address}")
            conn.execute(
                "DELETE FROM aliases WHERE domain = ? AND local_key = ?", (domain, local_key)
            )
        return old

    # -- vacations -------------------------------------------------------------------

    def set_vacation(self, vacation: Vacation) -> Vacation:
        """Create or replace a mailbox's autoresponder; its reply record is kept."""
        with self._write() as conn:
            local_key, domain = _require_mailbox(conn, vacation.address)
            conn.execute(
                "INSERT INTO vacations (domain, local_key, subject, body, start_at, end_at, "
                "interval_days, enabled) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (domain, local_key) DO UPDATE SET subject = excluded.subject, "
                "body = excluded.body, start_at = excluded.start_at, end_at = excluded.end_at, "
                "interval_days = excluded.interval_days, enabled = excluded.enabled",
                (
                    domain,
                    local_key,
                    vacation.subject,
                    vacation.body,
                    vacation.start,
                    vacation.end,
                    vacation.interval_days,
                    int(vacation.enabled),
                ),
            )
            found = _get_vacation(conn, vacation.address)
        assert found is not None  # written just above, in the same transaction
        return found

    def get_vacation(self, address: Address) -> Vacation | None:
        """The mailbox's autoresponder, or None."""
        with self._read() as conn:
            return _get_vacation(conn, address)

    def remove_vacation(self, address: Address) -> None:
        """Turn the autoresponder off; its reply record goes too, so a next one starts afresh."""
        local_key, domain = address.key
        with self._write() as conn:
            cur = conn.execute(
                "DELETE FROM vacations WHERE domain = ? AND local_key = ?", (domain, local_key)
            )
            if cur.rowcount == 0:
                raise NotFound(f"no vacation message for {address}")
            conn.execute(
                "DELETE FROM vacation_replies WHERE domain = ? AND local_key = ?",
                (domain, local_key),
            )

    def note_vacation_reply(
        self, address: Address, sender: str, now: float, interval: float, *, limit: int = 1000
    ) -> bool:
        """True when a reply to ``sender`` is due; then ``now`` is recorded for it.

        RFC 3834 §2: a responder replies at most once per sender within a
        period. Records older than the period are useless and dropped, and
        at most ``limit`` stay per mailbox (the oldest go first), so the
        record stays bounded however many senders write; it is a table, so
        it survives restarts. A record dated after ``now`` (the clock went
        back) does not hold a reply back. Senders compare case-insensitively.
        """
        sender_key = sender.lower()
        with self._write() as conn:
            local_key, domain = _require_mailbox(conn, address)
            mailbox = (domain, local_key)
            conn.execute(
                "DELETE FROM vacation_replies WHERE domain = ? AND local_key = ? AND sent <= ?",
                (*mailbox, now - interval),
            )
            row = conn.execute(
                "SELECT sent FROM vacation_replies "
                "WHERE domain = ? AND local_key = ? AND sender = ?",
                (*mailbox, sender_key),
            ).fetchone()
            if row is not None and now - interval < float(row[0]) <= now:
                return False
            conn.execute(
                "INSERT INTO vacation_replies (domain, local_key, sender, sent) "
                "VALUES (?, ?, ?, ?) "
                "ON CONFLICT (domain, local_key, sender) DO UPDATE SET sent = excluded.sent",
                (*mailbox, sender_key, now),
            )
            conn.execute(
                "DELETE FROM vacation_replies WHERE domain = ? AND local_key = ? AND sender IN ("
                "SELECT sender FROM vacation_replies WHERE domain = ? AND local_key = ? "
                "ORDER BY sent DESC, sender LIMIT -1 OFFSET ?)",
                (*mailbox, *mailbox, max(limit, 1)),
            )
        return True
