"""The directory's SQLite store: every SQL statement of the package lives here.

One database file in the state folder (DESIGN §5), opened in WAL mode so
readers never wait for a writer, with foreign keys on and a busy timeout so
the CLI (another process) can write while the server runs. A PostgreSQL
backend will later offer the same methods.

Threads: one connection shared by the event loop thread (``snapshot()`` at
RCPT time) and worker threads (logins, deliveries), serialised by a lock.

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
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from mailyard import fsio
from mailyard.directory.errors import AlreadyExists, InvalidInput, NotFound, StorageError
from mailyard.directory.model import (
    Domain,
    Mailbox,
    Owner,
    Snapshot,
    canonical_owner_name,
    hosted_domain,
)
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
)
SCHEMA_VERSION: Final = len(MIGRATIONS)

# Every query selecting mailboxes returns these columns, in this order, for _mailbox().
_SELECT_MAILBOXES: Final = (
    "SELECT domain, local, maildir, enabled, password_hash, created FROM mailboxes"
)
_SELECT_MAILBOX: Final = (
    "SELECT domain, local, maildir, enabled, password_hash, created FROM mailboxes "
    "WHERE domain = ? AND local_key = ?"
)
_SELECT_DOMAIN_MAILBOXES: Final = (
    "SELECT domain, local, maildir, enabled, password_hash, created FROM mailboxes "
    "WHERE domain = ? ORDER BY local_key"
)


def _mailbox(row: tuple[str, str, str, int, str, float]) -> Mailbox:
    domain, local, maildir, enabled, password_hash, created = row
    return Mailbox(Address(local, domain), maildir, bool(enabled), password_hash, created)


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


class Directory:
    """Domains, owners and mailboxes in one SQLite database (see module doc)."""

    def __init__(self, conn: sqlite3.Connection, path: str, refresh_interval: float) -> None:
        self._conn = conn
        self.path = path
        self._refresh_interval = refresh_interval
        self._checked_at = -refresh_interval - 1.0
        self._checked_writes = -1
        self._lock = threading.RLock()
        self._writes = 0
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
            conn.execute("PRAGMA journal_mode = WAL")
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

    # -- plumbing --------------------------------------------------------------

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
        # One read transaction: domains and mailboxes from the same commit.
        conn.execute("BEGIN")
        try:
            domains = [
                Domain(name, owner, created)
                for name, owner, created in conn.execute("SELECT name, owner, created FROM domains")
            ]
            mailboxes = [_mailbox(row) for row in conn.execute(_SELECT_MAILBOXES)]
        finally:
            conn.execute("COMMIT")
        return Snapshot.build(domains, mailboxes)

    # -- owners ----------------------------------------------------------------

    def add_owner(self, name: str, password_hash: str) -> Owner:
        owner = Owner(canonical_owner_name(name), password_hash, time.time())
        with self._write() as conn:
            if _has_owner(conn, owner.name):
                raise AlreadyExists(f"owner {owner.name} already exists")
            conn.execute(
                "INSERT INTO owners (name, password_hash, created) VALUES (?, ?, ?)",
                (owner.name, owner.password_hash, owner.created),
            )
        return owner

    def get_owner(self, name: str) -> Owner | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT name, password_hash, created FROM owners WHERE name = ?",
                (name.strip().lower(),),
            ).fetchone()
        return None if row is None else Owner(*row)

    def list_owners(self) -> list[Owner]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT name, password_hash, created FROM owners ORDER BY name"
            ).fetchall()
        return [Owner(*row) for row in rows]

    def remove_owner(self, name: str) -> None:
        key = canonical_owner_name(name)
        with self._write() as conn:
            if not _has_owner(conn, key):
                raise NotFound(f"no such owner {key}")
            (count,) = conn.execute(
                "SELECT count(*) FROM domains WHERE owner = ?", (key,)
            ).fetchone()
            if count:
                raise InvalidInput(
                    f"owner {key} still owns {count} domain(s); remove them or give them "
                    "to another owner first"
                )
            conn.execute("DELETE FROM owners WHERE name = ?", (key,))

    def set_owner_password(self, name: str, password_hash: str) -> None:
        key = canonical_owner_name(name)
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE owners SET password_hash = ? WHERE name = ?", (password_hash, key)
            )
            if cur.rowcount == 0:
                raise NotFound(f"no such owner {key}")

    def upgrade_owner_password(self, name: str, old_hash: str, new_hash: str) -> bool:
        """Replace ``old_hash`` by ``new_hash`` unless it changed meanwhile."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE owners SET password_hash = ? WHERE name = ? AND password_hash = ?",
                (new_hash, name, old_hash),
            )
            return cur.rowcount == 1

    # -- domains ---------------------------------------------------------------

    def add_domain(self, name: str, owner: str | None = None) -> Domain:
        domain = Domain(
            hosted_domain(name), None if owner is None else canonical_owner_name(owner), time.time()
        )
        with self._write() as conn:
            if _has_domain(conn, domain.name):
                raise AlreadyExists(f"domain {domain.name} already exists")
            if domain.owner is not None and not _has_owner(conn, domain.owner):
                raise NotFound(f"no such owner {domain.owner}")
            conn.execute(
                "INSERT INTO domains (name, owner, created) VALUES (?, ?, ?)",
                (domain.name, domain.owner, domain.created),
            )
        return domain

    def get_domain(self, name: str) -> Domain | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT name, owner, created FROM domains WHERE name = ?", (hosted_domain(name),)
            ).fetchone()
        return None if row is None else Domain(*row)

    def list_domains(self, owner: str | None = None) -> list[Domain]:
        with self._read() as conn:
            if owner is None:
                rows = conn.execute(
                    "SELECT name, owner, created FROM domains ORDER BY name"
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT name, owner, created FROM domains WHERE owner = ? ORDER BY name",
                    (owner.strip().lower(),),
                ).fetchall()
        return [Domain(*row) for row in rows]

    def set_domain_owner(self, name: str, owner: str | None) -> Domain:
        key = hosted_domain(name)
        owner_key = None if owner is None else canonical_owner_name(owner)
        with self._write() as conn:
            if owner_key is not None and not _has_owner(conn, owner_key):
                raise NotFound(f"no such owner {owner_key}")
            cur = conn.execute("UPDATE domains SET owner = ? WHERE name = ?", (owner_key, key))
            if cur.rowcount == 0:
                raise NotFound(f"no such domain {key}")
            row = conn.execute(
                "SELECT name, owner, created FROM domains WHERE name = ?", (key,)
            ).fetchone()
        return Domain(*row)

    def remove_domain(self, name: str, *, force: bool = False) -> list[Mailbox]:
        """Remove a domain; with ``force`` its mailboxes too (returned, for their Maildirs).

        The emptiness check and the delete share one transaction, so a
        mailbox added meanwhile by another process is never removed unseen.
        """
        key = hosted_domain(name)
        with self._write() as conn:
            if not _has_domain(conn, key):
                raise NotFound(f"no such domain {key}")
            removed = [_mailbox(row) for row in conn.execute(_SELECT_DOMAIN_MAILBOXES, (key,))]
            if removed and not force:
                raise InvalidInput(
                    f"domain {key} still has {len(removed)} mailbox(es); "
                    "remove them first, or force the removal to take them along"
                )
            conn.execute("DELETE FROM mailboxes WHERE domain = ?", (key,))
            conn.execute("DELETE FROM domains WHERE name = ?", (key,))
        return removed

    # -- mailboxes -------------------------------------------------------------

    def add_mailbox(self, address: Address, maildir: str, password_hash: str) -> Mailbox:
        mailbox = Mailbox(address, maildir, True, password_hash, time.time())
        local_key, domain = address.key
        with self._write() as conn:
            if not _has_domain(conn, domain):
                raise NotFound(f"no such domain {domain}")
            if _exists(
                conn,
                "SELECT 1 FROM mailboxes WHERE domain = ? AND local_key = ?",
                domain,
                local_key,
            ):
                raise AlreadyExists(f"mailbox {address} already exists")
            if _exists(conn, "SELECT 1 FROM mailboxes WHERE maildir = ?", maildir):
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
            row = conn.execute(_SELECT_MAILBOX, (domain, local_key)).fetchone()
        return None if row is None else _mailbox(row)

    def list_mailboxes(self, domain: str | None = None) -> list[Mailbox]:
        with self._read() as conn:
            if domain is None:
                rows = conn.execute(
                    "SELECT domain, local, maildir, enabled, password_hash, created "
                    "FROM mailboxes ORDER BY domain, local_key"
                ).fetchall()
            else:
                rows = conn.execute(_SELECT_DOMAIN_MAILBOXES, (hosted_domain(domain),)).fetchall()
        return [_mailbox(row) for row in rows]

    def remove_mailbox(self, address: Address) -> Mailbox:
        """Delete the entry (not the Maildir: see admin.remove_user); return what it was."""
        local_key, domain = address.key
        with self._write() as conn:
            row = conn.execute(_SELECT_MAILBOX, (domain, local_key)).fetchone()
            if row is None:
                raise NotFound(f"no such mailbox {address}")
            conn.execute(
                "DELETE FROM mailboxes WHERE domain = ? AND local_key = ?", (domain, local_key)
            )
        return _mailbox(row)

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


def _exists(conn: sqlite3.Connection, sql: str, *params: object) -> bool:
    return conn.execute(sql, params).fetchone() is not None


def _has_owner(conn: sqlite3.Connection, name: str) -> bool:
    return _exists(conn, "SELECT 1 FROM owners WHERE name = ?", name)


def _has_domain(conn: sqlite3.Connection, name: str) -> bool:
    return _exists(conn, "SELECT 1 FROM domains WHERE name = ?", name)


def _current_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return 0 if row is None else int(row[0])


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
