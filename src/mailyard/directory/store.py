"""The directory's SQLite store: every SQL statement of the package lives here
and in its parts ``store_base``, ``store_aliases`` and ``store_settings``.

One database file in the state folder (DESIGN §5), opened in WAL mode so
readers never wait for a writer, with foreign keys on and a busy timeout so
the CLI (another process) can write while the server runs. A PostgreSQL
backend will later offer the same methods.

Threads: one connection shared by the event loop thread (``snapshot()`` at
RCPT time) and worker threads (logins, deliveries), serialised by a lock
(``store_base.Transactions``).

Snapshots: ``snapshot()`` returns the same immutable ``Snapshot`` object
until the database changes. Commits by other connections are seen through
``PRAGMA data_version`` (SQLite changes it only for *other* connections'
commits); our own commits bump ``self._writes``. Checking both costs a few
microseconds, but it is an SQLite call that releases the GIL, and on a busy
server's event loop getting the GIL back is what costs (measured with py-spy
under bench/smtp_ingest.py). So ``refresh_interval`` lets a caller accept
changes made by *other* processes that late: the server uses a quarter of a
second; our own writes are always seen at once.

Schema migrations are numbered: ``MIGRATIONS[n - 1]`` brings the schema
from version n - 1 to n, all pending ones in one transaction.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Final

from mailyard import fsio
from mailyard.directory.errors import AlreadyExists, InvalidInput, NotFound, StorageError
from mailyard.directory.model import (
    Domain,
    Mailbox,
    Snapshot,
    canonical_owner_name,
    hosted_domain,
)
from mailyard.directory.store_aliases import AliasStore, has_alias, require_address_domain
from mailyard.directory.store_base import (
    SELECT_ALIASES,
    SELECT_DOMAINS,
    SELECT_MAILBOXES,
    SELECT_VACATIONS,
    alias_row,
    domain_row,
    exists,
    has_domain,
    has_mailbox,
    has_owner,
    mailbox_row,
    select_domain,
    select_mailbox,
    vacation_row,
)
from mailyard.directory.store_owners import OwnerStore
from mailyard.directory.store_settings import SettingsStore, aliased_by
from mailyard.message.address import Address

__all__ = ["BUSY_TIMEOUT_MS", "MIGRATIONS", "SCHEMA_VERSION", "Directory", "Snapshot"]

BUSY_TIMEOUT_MS: Final = 5000

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    # 1: owners, domains, mailboxes.
    (
        """CREATE TABLE owners (
            name TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            created REAL NOT NULL
        )""",
        # An owner that still owns domains cannot be removed (RESTRICT).
        """CREATE TABLE domains (
            name TEXT PRIMARY KEY,
            owner TEXT REFERENCES owners(name) ON DELETE RESTRICT,
            created REAL NOT NULL
        )""",
        "CREATE INDEX domains_owner ON domains(owner)",
        # local_key is Address.key's folded local part; local keeps the case
        # the user was created with, for display. maildir is UNIQUE so two
        # mailboxes can never share a Maildir.
        """CREATE TABLE mailboxes (
            domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,
            local_key TEXT NOT NULL,
            local TEXT NOT NULL,
            maildir TEXT NOT NULL UNIQUE,
            enabled INTEGER NOT NULL DEFAULT 1,
            password_hash TEXT NOT NULL,
            created REAL NOT NULL,
            PRIMARY KEY (domain, local_key)
        )""",
    ),
    # 2: domain and mailbox settings (VMailMgr's vpwentry), aliases, vacations.
    (
        # A domain alias points to a hosted domain, which cannot go while it is pointed to.
        "ALTER TABLE domains ADD COLUMN alias_of TEXT REFERENCES domains(name) ON DELETE RESTRICT",
        # Address lists are stored one per line (store_base module doc).
        "ALTER TABLE domains ADD COLUMN catch_all TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE domains ADD COLUMN extension_chars TEXT NOT NULL DEFAULT '+'",
        "ALTER TABLE domains ADD COLUMN quota_bytes INTEGER",
        "ALTER TABLE domains ADD COLUMN quota_messages INTEGER",
        "ALTER TABLE domains ADD COLUMN total_quota_bytes INTEGER",
        "ALTER TABLE domains ADD COLUMN max_message_size INTEGER",
        "CREATE INDEX domains_alias_of ON domains(alias_of)",
        "ALTER TABLE mailboxes ADD COLUMN receive INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE mailboxes ADD COLUMN expires REAL",
        "ALTER TABLE mailboxes ADD COLUMN display_name TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE mailboxes ADD COLUMN quota_bytes INTEGER",
        "ALTER TABLE mailboxes ADD COLUMN quota_messages INTEGER",
        "ALTER TABLE mailboxes ADD COLUMN max_message_size INTEGER",
        "ALTER TABLE mailboxes ADD COLUMN forwards TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE mailboxes ADD COLUMN keep_copy INTEGER NOT NULL DEFAULT 1",
        # owner set = a mailing list (list-owner rewriting).
        """CREATE TABLE aliases (
            domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,
            local_key TEXT NOT NULL,
            local TEXT NOT NULL,
            targets TEXT NOT NULL,
            owner TEXT,
            created REAL NOT NULL,
            PRIMARY KEY (domain, local_key)
        )""",
        # A vacation and its reply record belong to a mailbox and go with it
        # (and, through the mailbox, with its domain).
        """CREATE TABLE vacations (
            domain TEXT NOT NULL,
            local_key TEXT NOT NULL,
            subject TEXT NOT NULL,
            body TEXT NOT NULL,
            start_at REAL,
            end_at REAL,
            interval_days INTEGER NOT NULL,
            enabled INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (domain, local_key),
            FOREIGN KEY (domain, local_key) REFERENCES mailboxes(domain, local_key)
                ON DELETE CASCADE
        )""",
        """CREATE TABLE vacation_replies (
            domain TEXT NOT NULL,
            local_key TEXT NOT NULL,
            sender TEXT NOT NULL,
            sent REAL NOT NULL,
            PRIMARY KEY (domain, local_key, sender),
            FOREIGN KEY (domain, local_key) REFERENCES mailboxes(domain, local_key)
                ON DELETE CASCADE
        )""",
        "CREATE INDEX vacation_replies_sent ON vacation_replies(domain, local_key, sent)",
    ),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)

_SELECT_DOMAIN_MAILBOXES: Final = SELECT_MAILBOXES + " WHERE domain = ? ORDER BY local_key"


def _create_private(path: str) -> None:
    """Create the database file with mode 0600 before SQLite opens it.

    SQLite gives its -wal and -shm files the mode of the database file, so
    all three stay private (they hold password hashes).
    """
    directory, name = os.path.split(os.path.abspath(path))
    fsio.ensure_dir(directory)
    try:
        fd = fsio.create_excl(directory, name, 0o600)
    except FileExistsError:
        return
    os.close(fd)
    fsio.fsync_dir(directory)


class Directory(OwnerStore, AliasStore, SettingsStore):
    """Owners, domains, mailboxes, aliases and vacations in one SQLite database (module doc)."""

    def __init__(self, conn: sqlite3.Connection, path: str, refresh_interval: float) -> None:
        super().__init__(conn)
        self.path = path
        self._refresh_interval = refresh_interval
        self._checked_at = -refresh_interval - 1.0
        self._checked_writes = -1
        self._snapshot_key: tuple[int, int] | None = None
        self._snapshot = Snapshot.build((), ())

    @classmethod
    def open(cls, path: str, *, refresh_interval: float = 0.0) -> Directory:
        """Open (creating and migrating if needed) the directory database."""
        try:
            _create_private(path)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so every
            # transaction boundary is visible here.
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open directory database {path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            _use_wal(conn)
            # FULL: a committed admin change survives a power loss (WAL's
            # NORMAL could lose the last commits).
            conn.execute("PRAGMA synchronous = FULL")
            _migrate(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise StorageError(f"cannot open directory database {path}: {exc}") from exc
        except StorageError:
            conn.close()
            raise
        directory = cls(conn, path, refresh_interval)
        # Built now, so snapshot() always has a real one to fall back on.
        directory.snapshot()
        return directory

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Directory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def schema_version(self) -> int:
        with self._read() as conn:
            return _current_version(conn)

    # -- snapshot --------------------------------------------------------------

    def snapshot(self, *, wait: bool = False) -> Snapshot:
        """The current immutable snapshot; rebuilt only after a change.

        By default (the event loop's RCPT checks) it never waits for the lock:
        while another thread holds it (a write may wait up to the busy timeout
        for another process), the last snapshot is returned. That is what a
        reader arriving a moment earlier would have seen; the next call
        catches up. ``wait=True`` (delivery, which must not bounce mail for a
        mailbox created a moment ago) waits for the lock and always checks.
        """
        now = time.monotonic()
        fresh = now - self._checked_at < self._refresh_interval
        if not wait and fresh and self._writes == self._checked_writes:
            return self._snapshot
        if not self._lock.acquire(blocking=wait):
            return self._snapshot
        try:
            (data_version,) = self._conn.execute("PRAGMA data_version").fetchone()
            key = (int(data_version), self._writes)
            if key != self._snapshot_key:
                self._snapshot = self._build_snapshot()
                self._snapshot_key = key
            self._checked_at, self._checked_writes = now, key[1]
            return self._snapshot
        except sqlite3.Error as exc:
            raise StorageError(f"directory database: {exc}") from exc
        finally:
            self._lock.release()

    def _build_snapshot(self) -> Snapshot:
        conn = self._conn
        # One read transaction: everything from the same commit.
        conn.execute("BEGIN")
        try:
            domains = [domain_row(row) for row in conn.execute(SELECT_DOMAINS)]
            mailboxes = [mailbox_row(row) for row in conn.execute(SELECT_MAILBOXES)]
            aliases = [alias_row(row) for row in conn.execute(SELECT_ALIASES)]
            vacations = [vacation_row(row) for row in conn.execute(SELECT_VACATIONS)]
        finally:
            conn.execute("COMMIT")
        return Snapshot.build(domains, mailboxes, aliases, vacations)

    # -- domains ---------------------------------------------------------------

    def add_domain(self, name: str, owner: str | None = None) -> Domain:
        domain = Domain(
            hosted_domain(name), None if owner is None else canonical_owner_name(owner), time.time()
        )
        with self._write() as conn:
            if has_domain(conn, domain.name):
                raise AlreadyExists(f"domain {domain.name} already exists")
            if domain.owner is not None and not has_owner(conn, domain.owner):
                raise NotFound(f"no such owner {domain.owner}")
            conn.execute(
                "INSERT INTO domains (name, owner, created) VALUES (?, ?, ?)",
                (domain.name, domain.owner, domain.created),
            )
        return domain

    def get_domain(self, name: str) -> Domain | None:
        with self._read() as conn:
            return select_domain(conn, hosted_domain(name))

    def list_domains(self, owner: str | None = None) -> list[Domain]:
        with self._read() as conn:
            if owner is None:
                rows = conn.execute(SELECT_DOMAINS + " ORDER BY name").fetchall()
            else:
                rows = conn.execute(
                    SELECT_DOMAINS + " WHERE owner = ? ORDER BY name", (owner.strip().lower(),)
                ).fetchall()
        return [domain_row(row) for row in rows]

    def set_domain_owner(self, name: str, owner: str | None) -> Domain:
        key = hosted_domain(name)
        owner_key = None if owner is None else canonical_owner_name(owner)
        with self._write() as conn:
            if owner_key is not None and not has_owner(conn, owner_key):
                raise NotFound(f"no such owner {owner_key}")
            cur = conn.execute("UPDATE domains SET owner = ? WHERE name = ?", (owner_key, key))
            if cur.rowcount == 0:
                raise NotFound(f"no such domain {key}")
            domain = select_domain(conn, key)
        assert domain is not None  # updated just above, in the same transaction
        return domain

    def remove_domain(self, name: str, *, force: bool = False) -> list[Mailbox]:
        """Remove a domain; with ``force`` its mailboxes too (returned, for their Maildirs).

        The emptiness check and the delete share one transaction, so a
        mailbox added meanwhile by another process is never removed unseen.
        Its aliases, vacations and reply records go with it; a domain that
        other domains alias stays until they are changed or removed.
        """
        key = hosted_domain(name)
        with self._write() as conn:
            if not has_domain(conn, key):
                raise NotFound(f"no such domain {key}")
            others = aliased_by(conn, key)
            if others:
                raise InvalidInput(
                    f"domain {key} is the target of domain alias(es) {', '.join(others)}; "
                    "remove them or make them ordinary domains first"
                )
            removed = [mailbox_row(row) for row in conn.execute(_SELECT_DOMAIN_MAILBOXES, (key,))]
            (aliases,) = conn.execute(
                "SELECT count(*) FROM aliases WHERE domain = ?", (key,)
            ).fetchone()
            if (removed or aliases) and not force:
                also = f" and {aliases} alias(es)" if aliases else ""
                raise InvalidInput(
                    f"domain {key} still has {len(removed)} mailbox(es){also}; "
                    "remove them first, or force the removal to take them along"
                )
            conn.execute("DELETE FROM mailboxes WHERE domain = ?", (key,))
            conn.execute("DELETE FROM domains WHERE name = ?", (key,))
        return removed

    # -- mailboxes -------------------------------------------------------------

    def add_mailbox(self, address: Address, maildir: str, password_hash: str) -> Mailbox:
        """Insert a mailbox with default settings (see ``save_mailbox_settings``).

        AlreadyExists if a mailbox or an alias has the address, or another
        mailbox the Maildir; InvalidInput in a domain alias.
        """
        mailbox = Mailbox(address, maildir, True, password_hash, time.time())
        local_key, domain = address.key
        with self._write() as conn:
            require_address_domain(conn, domain, "mailbox")
            if has_mailbox(conn, domain, local_key):
                raise AlreadyExists(f"mailbox {address} already exists")
            if has_alias(conn, domain, local_key):
                raise AlreadyExists(f"{address} is an alias; a mailbox cannot take its address")
            if exists(conn, "SELECT 1 FROM mailboxes WHERE maildir = ?", maildir):
                raise AlreadyExists(f"maildir {maildir} is used by another mailbox")
            conn.execute(
                "INSERT INTO mailboxes (local_key, domain, local, maildir, enabled, "
                "password_hash, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (local_key, domain, address.local, maildir, 1, password_hash, mailbox.created),
            )
        return mailbox

    def get_mailbox(self, address: Address) -> Mailbox | None:
        local_key, domain = address.key
        with self._read() as conn:
            return select_mailbox(conn, domain, local_key)

    def list_mailboxes(self, domain: str | None = None) -> list[Mailbox]:
        with self._read() as conn:
            if domain is None:
                rows = conn.execute(SELECT_MAILBOXES + " ORDER BY domain, local_key").fetchall()
            else:
                rows = conn.execute(_SELECT_DOMAIN_MAILBOXES, (hosted_domain(domain),)).fetchall()
        return [mailbox_row(row) for row in rows]

    def remove_mailbox(self, address: Address) -> Mailbox:
        """Delete the entry (not the Maildir: see admin.remove_user); return what it was.

        Its vacation and reply record go with it (ON DELETE CASCADE).
        """
        local_key, domain = address.key
        with self._write() as conn:
            mailbox = select_mailbox(conn, domain, local_key)
            if mailbox is None:
                raise NotFound(f"no such mailbox {address}")
            conn.execute(
                "DELETE FROM mailboxes WHERE domain = ? AND local_key = ?", (domain, local_key)
            )
        return mailbox

    def set_password(self, address: Address, password_hash: str) -> None:
        local_key, domain = address.key
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE mailboxes SET password_hash = ? WHERE domain = ? AND local_key = ?",
                (password_hash, domain, local_key),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no such mailbox {address}")

    def set_enabled(self, address: Address, enabled: bool) -> None:
        local_key, domain = address.key
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE mailboxes SET enabled = ? WHERE domain = ? AND local_key = ?",
                (int(enabled), domain, local_key),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no such mailbox {address}")

    def upgrade_password(self, address: Address, old_hash: str, new_hash: str) -> bool:
        """Replace ``old_hash`` by ``new_hash`` unless an admin changed it meanwhile."""
        local_key, domain = address.key
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE mailboxes SET password_hash = ? "
                "WHERE domain = ? AND local_key = ? AND password_hash = ?",
                (new_hash, domain, local_key, old_hash),
            )
            return cur.rowcount == 1


def _current_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return 0 if row is None else int(row[0])


def _use_wal(conn: sqlite3.Connection) -> None:
    """Put the database in WAL mode, waiting for other connections as BEGIN would.

    Switching a fresh database to WAL takes an exclusive lock without
    SQLite's busy handler: when several workers open a new database at
    once, the switch either fails with "database is locked" or leaves the
    old mode in place (and says so in its answer). Both are retried until
    the busy timeout, then reported.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if str(mode).lower() == "wal":
                return
            problem = f"journal mode stayed {mode!r}"
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            problem = str(exc)
        if time.monotonic() >= deadline:
            raise StorageError(f"cannot switch the directory database to WAL: {problem}")
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema to SCHEMA_VERSION; all pending migrations in one transaction.

    BEGIN IMMEDIATE first, then read the version: two processes opening a
    fresh database at once cannot both apply migration 1.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        current = _current_version(conn)
        if current > SCHEMA_VERSION:
            raise StorageError(
                f"directory schema version {current} is newer than this mailyard "
                f"understands ({SCHEMA_VERSION}); upgrade mailyard"
            )
        for statements in MIGRATIONS[current:]:
            for statement in statements:
                conn.execute(statement)
        if current == 0:
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        elif current < SCHEMA_VERSION:
            conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
