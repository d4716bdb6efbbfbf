from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from mailyard.directory.errors import AlreadyExists, InvalidInput, NotFound, StorageError
from mailyard.directory.model import maildir_for
from mailyard.directory.store import MIGRATIONS, SCHEMA_VERSION, Directory
from mailyard.message.address import Address


def _mailbox(d: Directory, text: str, hashed: str = "h") -> None:
    local, _, domain = text.rpartition("@")
    address = Address(local, domain)
    d.add_mailbox(address, maildir_for(address), hashed)


# -- migrations ------------------------------------------------------------------


def test_fresh_open_is_migrated_private_and_wal(db_path: str) -> None:
    d = Directory.open(db_path)
    try:
        assert d.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    finally:
        d.close()
    assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1
    finally:
        conn.close()


def test_reopen_keeps_data_and_version(db_path: str) -> None:
    with Directory.open(db_path) as d:
        d.add_domain("example.test")
    with Directory.open(db_path) as d:
        assert d.schema_version() == SCHEMA_VERSION
        assert [x.name for x in d.list_domains()] == ["example.test"]


def test_pending_migrations_apply_in_one_transaction(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailyard.directory import store

    Directory.open(db_path).close()
    good = (*MIGRATIONS, ("CREATE TABLE extra (x INTEGER)",))
    broken = (*good, ("CREATE TABLE more (y INTEGER)", "THIS IS NOT SQL"))
    # A failing migration leaves the database exactly as it was: version and tables.
    monkeypatch.setattr(store, "MIGRATIONS", broken)
    monkeypatch.setattr(store, "SCHEMA_VERSION", len(broken))
    with pytest.raises(StorageError):
        Directory.open(db_path)
    conn = sqlite3.connect(db_path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    assert not {"extra", "more"} & tables
    monkeypatch.setattr(store, "MIGRATIONS", good)
    monkeypatch.setattr(store, "SCHEMA_VERSION", len(good))
    with Directory.open(db_path) as d:
        assert d.schema_version() == len(good)
        d._conn.execute("INSERT INTO extra (x) VALUES (1)")


def test_newer_schema_is_refused(db_path: str) -> None:
    Directory.open(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="newer"):
        Directory.open(db_path)


def test_open_in_missing_unwritable_place_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError):
        Directory.open(str(blocker / "directory.sqlite"))


def test_foreign_keys_are_on(directory: Directory) -> None:
    # A mailbox row pointing at no domain is refused by the schema itself.
    with pytest.raises(NotFound):
        _mailbox(directory, "a@nowhere.test")
    directory.add_domain("example.test")
    _mailbox(directory, "a@example.test")
    directory.remove_domain("example.test", force=True)
    assert directory.list_mailboxes() == []


# -- owners and domains ------------------------------------------------------------


def test_owner_crud(directory: Directory) -> None:
    owner = directory.add_owner("Alice", "hash-1")
    assert owner.name == "alice"
    assert "hash-1" not in repr(owner)
    with pytest.raises(AlreadyExists):
        directory.add_owner("alice", "x")
    with pytest.raises(InvalidInput):
        directory.add_owner("not valid!", "x")
    directory.set_owner_password("alice", "hash-2")
    got = directory.get_owner("ALICE")
    assert got is not None and got.password_hash == "hash-2"
    assert [o.name for o in directory.list_owners()] == ["alice"]
    with pytest.raises(NotFound):
        directory.set_owner_password("bob", "x")
    directory.remove_owner("alice")
    assert directory.get_owner("alice") is None
    with pytest.raises(NotFound):
        directory.remove_owner("alice")


def test_owner_with_domains_cannot_be_removed(directory: Directory) -> None:
    directory.add_owner("alice", "h")
    directory.add_domain("example.test", owner="alice")
    with pytest.raises(InvalidInput, match="still owns 1 domain"):
        directory.remove_owner("alice")
    directory.set_domain_owner("example.test", None)
    directory.remove_owner("alice")


def test_domain_crud_and_canonical_names(directory: Directory) -> None:
    domain = directory.add_domain("Bücher.Example")
    assert domain.name == "xn--bcher-kva.example"
    assert directory.get_domain("bücher.example") == domain
    with pytest.raises(AlreadyExists):
        directory.add_domain("XN--BCHER-KVA.example")
    for bad in ("[192.0.2.1]", "bad..name", "-x.test", "", "a b.test"):
        with pytest.raises(InvalidInput):
            directory.add_domain(bad)
    with pytest.raises(NotFound, match="owner"):
        directory.add_domain("other.test", owner="nobody")
    directory.add_owner("alice", "h")
    directory.add_domain("other.test", owner="alice")
    assert [d.name for d in directory.list_domains(owner="alice")] == ["other.test"]
    assert [d.name for d in directory.list_domains()] == ["other.test", "xn--bcher-kva.example"]
    directory.remove_domain("other.test")
    assert directory.get_domain("other.test") is None
    with pytest.raises(NotFound):
        directory.remove_domain("other.test")
    with pytest.raises(NotFound):
        directory.set_domain_owner("other.test", "alice")


def test_domain_with_mailboxes_needs_force(directory: Directory) -> None:
    directory.add_domain("example.test")
    _mailbox(directory, "a@example.test")
    _mailbox(directory, "b@example.test")
    with pytest.raises(InvalidInput, match="2 mailbox"):
        directory.remove_domain("example.test")
    removed = directory.remove_domain("example.test", force=True)
    assert [str(m.address) for m in removed] == ["a@example.test", "b@example.test"]
    assert directory.list_mailboxes() == []


# -- mailboxes ---------------------------------------------------------------------


def test_mailbox_crud(directory: Directory) -> None:
    directory.add_domain("example.test")
    address = Address("John.Doe", "example.test")
    mailbox = directory.add_mailbox(address, "example.test/john.doe", "secret-hash")
    assert mailbox.enabled and "secret-hash" not in repr(mailbox)
    # Case-insensitive key, case-preserving display.
    got = directory.get_mailbox(Address("JOHN.DOE", "example.test"))
    assert got == mailbox and got.address.local == "John.Doe"
    with pytest.raises(AlreadyExists):
        directory.add_mailbox(Address("john.doe", "example.test"), "example.test/other", "h")
    with pytest.raises(AlreadyExists, match="maildir"):
        directory.add_mailbox(Address("jane", "example.test"), "example.test/john.doe", "h")
    directory.set_enabled(address, False)
    directory.set_password(address, "new-hash")
    got = directory.get_mailbox(address)
    assert got is not None and not got.enabled and got.password_hash == "new-hash"
    assert directory.list_mailboxes("example.test") == [got]
    assert directory.remove_mailbox(address) == got
    assert directory.get_mailbox(address) is None
    for call in (
        lambda: directory.remove_mailbox(address),
        lambda: directory.set_enabled(address, True),
        lambda: directory.set_password(address, "x"),
    ):
        with pytest.raises(NotFound):
            call()


def test_upgrade_password_is_compare_and_set(directory: Directory) -> None:
    directory.add_domain("example.test")
    address = Address("a", "example.test")
    directory.add_mailbox(address, "example.test/a", "old")
    assert not directory.upgrade_password(address, "stale", "new")
    assert directory.upgrade_password(address, "old", "new")
    got = directory.get_mailbox(address)
    assert got is not None and got.password_hash == "new"
    directory.add_owner("o", "old")
    assert not directory.upgrade_owner_password("o", "stale", "new")
    assert directory.upgrade_owner_password("o", "old", "new")


def test_concurrent_writers_threads_and_connections(db_path: str) -> None:
    first = Directory.open(db_path)
    second = Directory.open(db_path)
    try:
        first.add_domain("example.test")
        errors: list[BaseException] = []

        def work(d: Directory, prefix: str) -> None:
            try:
                for i in range(20):
                    _mailbox(d, f"{prefix}{i}@example.test")
                    d.snapshot()
            except BaseException as exc:  # collected and re-raised below
                errors.append(exc)

        threads = [
            threading.Thread(target=work, args=(d, p))
            for d, p in ((first, "a"), (first, "b"), (second, "c"), (second, "d"))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(first.list_mailboxes()) == 80
        assert len(second.snapshot().mailboxes) == 80
    finally:
        first.close()
        second.close()
