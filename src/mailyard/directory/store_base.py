"""What every part of the directory store shares: transactions, rows and their values.

``Transactions`` holds the connection and its lock and opens read and
write transactions; ``Directory`` (store.py) and the method groups it is
made of (``store_owners``, ``store_aliases``, ``store_settings``) build on
it. The SELECT of every kind of row lives here next to the function that
turns such a row into its value, so the order of the columns is written
down once. Lists of addresses (a
mailbox's forwards, a domain's catch-all, an alias's targets) are stored
one per line in a TEXT column: an address never contains CR or LF (RFC
5321 §4.1.2: qtextSMTP and quoted-pairSMTP exclude them), and the stored
text stays readable with the sqlite3 shell.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from mailyard.directory.errors import InvalidInput, StorageError
from mailyard.directory.model import Alias, Domain, DomainSettings, Mailbox, Vacation
from mailyard.message.address import Address

__all__ = [
    "SELECT_ALIASES",
    "SELECT_DOMAINS",
    "SELECT_MAILBOXES",
    "SELECT_VACATIONS",
    "Transactions",
    "alias_row",
    "domain_row",
    "exists",
    "has_domain",
    "has_mailbox",
    "has_owner",
    "join_lines",
    "mailbox_row",
    "select_domain",
    "select_mailbox",
    "split_lines",
    "vacation_row",
]

# Each SELECT is written out whole (a constant, no string building); callers
# append only WHERE/ORDER BY clauses with "?" parameters.
SELECT_DOMAINS: Final = (
    "SELECT name, owner, created, alias_of, catch_all, extension_chars, quota_bytes, "
    "quota_messages, total_quota_bytes, max_message_size FROM domains"
)
SELECT_MAILBOXES: Final = (
    "SELECT domain, local, maildir, enabled, password_hash, created, receive, expires, "
    "display_name, quota_bytes, quota_messages, max_message_size, forwards, keep_copy "
    "FROM mailboxes"
)
SELECT_ALIASES: Final = "SELECT domain, local, targets, owner, created FROM aliases"
# The local part's display case is the mailbox's.
SELECT_VACATIONS: Final = (
    "SELECT v.domain, m.local, v.subject, v.body, v.start_at, v.end_at, v.interval_days, "
    "v.enabled FROM vacations v "
    "JOIN mailboxes m ON m.domain = v.domain AND m.local_key = v.local_key"
)


def join_lines(values: Iterable[str], what: str) -> str:
    """One value per line; a value with a line break is refused (see module doc)."""
    items = list(values)
    for value in items:
        if not value or "\n" in value or "\r" in value:
            raise InvalidInput(f"invalid {what} {value!r}")
    return "\n".join(items)


def split_lines(text: str) -> tuple[str, ...]:
    """The values of a one-per-line column (empty text: none)."""
    return tuple(text.split("\n")) if text else ()


def domain_row(row: tuple[Any, ...]) -> Domain:
    """A ``Domain`` from a row of SELECT_DOMAINS."""
    name, owner, created, alias_of, catch_all, extension_chars, *quotas = row
    quota_bytes, quota_messages, total_quota_bytes, max_message_size = quotas
    settings = DomainSettings(
        alias_of=alias_of,
        catch_all=split_lines(catch_all),
        extension_chars=extension_chars,
        quota_bytes=quota_bytes,
        quota_messages=quota_messages,
        total_quota_bytes=total_quota_bytes,
        max_message_size=max_message_size,
    )
    return Domain(name, owner, created, settings)


def mailbox_row(row: tuple[Any, ...]) -> Mailbox:
    """A ``Mailbox`` from a row of SELECT_MAILBOXES."""
    domain, local, maildir, enabled, password_hash, created, receive, expires, *rest = row
    display_name, quota_bytes, quota_messages, max_message_size, forwards, keep_copy = rest
    return Mailbox(
        Address(local, domain),
        maildir,
        bool(enabled),
        password_hash,
        created,
        receive=bool(receive),
        expires=expires,
        display_name=display_name,
        quota_bytes=quota_bytes,
        quota_messages=quota_messages,
        max_message_size=max_message_size,
        forwards=split_lines(forwards),
        keep_copy=bool(keep_copy),
    )


def alias_row(row: tuple[Any, ...]) -> Alias:
    """An ``Alias`` from a row of SELECT_ALIASES."""
    domain, local, targets, owner, created = row
    return Alias(Address(local, domain), split_lines(targets), owner, created)


def vacation_row(row: tuple[Any, ...]) -> Vacation:
    """A ``Vacation`` from a row of SELECT_VACATIONS."""
    domain, local, subject, body, start, end, interval_days, enabled = row
    return Vacation(
        Address(local, domain), subject, body, start, end, int(interval_days), bool(enabled)
    )


def exists(conn: sqlite3.Connection, sql: str, *params: object) -> bool:
    """Whether the query returns a row."""
    return conn.execute(sql, params).fetchone() is not None


def has_owner(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the owner exists."""
    return exists(conn, "SELECT 1 FROM owners WHERE name = ?", name)


def has_domain(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the domain (canonical name) is hosted."""
    return exists(conn, "SELECT 1 FROM domains WHERE name = ?", name)


def has_mailbox(conn: sqlite3.Connection, domain: str, local_key: str) -> bool:
    """Whether the mailbox with this key exists."""
    return exists(
        conn, "SELECT 1 FROM mailboxes WHERE domain = ? AND local_key = ?", domain, local_key
    )


def select_domain(conn: sqlite3.Connection, name: str) -> Domain | None:
    """The domain (canonical name), or None."""
    row = conn.execute(SELECT_DOMAINS + " WHERE name = ?", (name,)).fetchone()
    return None if row is None else domain_row(row)


def select_mailbox(conn: sqlite3.Connection, domain: str, local_key: str) -> Mailbox | None:
    """The mailbox with this key, or None."""
    row = conn.execute(
        SELECT_MAILBOXES + " WHERE domain = ? AND local_key = ?",
        (domain, local_key),
    ).fetchone()
    return None if row is None else mailbox_row(row)


class Transactions:
    """The connection, its lock, and read and write transactions over them.

    Threads: one connection shared by the event loop thread and worker
    threads, serialised by the lock. ``_writes`` counts our own write
    transactions, so snapshots see them at once.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.RLock()
        self._writes = 0

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise StorageError(f"directory database: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE so checks and changes see the same data."""
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageError(f"directory database: {exc}") from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.IntegrityError):
                    raise InvalidInput(f"refused by the database: {exc}") from exc
                if isinstance(exc, sqlite3.Error):
                    raise StorageError(f"directory database: {exc}") from exc
                raise
            finally:
                # Counted even after a rollback: a needless rebuild is cheap,
                # a missed one would serve stale data.
                self._writes += 1
