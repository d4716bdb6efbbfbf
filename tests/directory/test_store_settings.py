from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from mailyard.directory.errors import AlreadyExists, InvalidInput, NotFound
from mailyard.directory.model import Alias, DomainSettings, Vacation, maildir_for
from mailyard.directory.store import SCHEMA_VERSION, Directory
from mailyard.message.address import Address

# The schema of version 1, as mailyard before issue 5 created it.
_V1 = (
    "CREATE TABLE owners (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, "
    "created REAL NOT NULL)",
    "CREATE TABLE domains (name TEXT PRIMARY KEY, "
    "owner TEXT REFERENCES owners(name) ON DELETE RESTRICT, created REAL NOT NULL)",
    "CREATE INDEX domains_owner ON domains(owner)",
    "CREATE TABLE mailboxes (domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE, "
    "local_key TEXT NOT NULL, local TEXT NOT NULL, maildir TEXT NOT NULL UNIQUE, "
    "enabled INTEGER NOT NULL DEFAULT 1, password_hash TEXT NOT NULL, created REAL NOT NULL, "
    "PRIMARY KEY (domain, local_key))",
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "INSERT INTO schema_version (version) VALUES (1)",
    "INSERT INTO owners VALUES ('alice', 'oh', 1.0)",
    "INSERT INTO domains VALUES ('a.test', 'alice', 2.0)",
    "INSERT INTO domains VALUES ('b.test', NULL, 3.0)",
    "INSERT INTO mailboxes VALUES ('a.test', 'ann', 'Ann', 'a.test/ann', 0, 'hash', 4.0)",
)


def _add(d: Directory, text: str) -> Address:
    local, _, domain = text.rpartition("@")
    address = Address(local, domain)
    d.add_mailbox(address, maildir_for(address), "h")
    return address


def test_version_1_database_migrates_and_keeps_its_data(db_path: str) -> None:
    conn = sqlite3.connect(db_path)
    for statement in _V1:
        conn.execute(statement)
    conn.commit()
    conn.close()
    with Directory.open(db_path) as d:
        assert d.schema_version() == SCHEMA_VERSION == 2
        [ann] = d.list_mailboxes()
        assert (str(ann.address), ann.maildir, ann.enabled, ann.password_hash) == (
            "Ann@a.test",
            "a.test/ann",
            False,
            "hash",
        )
        # New settings take their defaults.
        assert ann.receive and ann.keep_copy and ann.forwards == () and ann.expires is None
        assert [(x.name, x.owner) for x in d.list_domains()] == [
            ("a.test", "alice"),
            ("b.test", None),
        ]
        assert d.get_domain("a.test").settings == DomainSettings()  # type: ignore[union-attr]
        assert d.get_owner("alice") is not None
        # And the new tables work.
        d.add_alias(Alias(Address("info", "a.test"), ("ann@a.test",)))
        d.set_vacation(Vacation(ann.address, "away", "back soon"))
        snap = d.snapshot()
        assert ("info", "a.test") in snap.aliases and ("ann", "a.test") in snap.vacations


def test_domain_settings_round_trip_and_snapshot(directory: Directory) -> None:
    directory.add_domain("a.test")
    settings = DomainSettings(
        catch_all=("ann@a.test", "x@remote.test"),
        extension_chars="+-",
        quota_bytes=1000,
        quota_messages=10,
        total_quota_bytes=0,
        max_message_size=500,
    )
    domain = directory.set_domain_settings("A.TEST", settings)
    assert domain.settings == settings
    assert directory.get_domain("a.test") == domain
    assert directory.list_domains()[0].settings == settings
    assert directory.snapshot().domains["a.test"].settings == settings
    with pytest.raises(NotFound):
        directory.set_domain_settings("nope.test", settings)
    with pytest.raises(InvalidInput):
        directory.set_domain_settings("a.test", DomainSettings(catch_all=("a\nb@x.test",)))


def test_domain_alias_rules(directory: Directory) -> None:
    for name in ("a.test", "b.test", "c.test", "d.test"):
        directory.add_domain(name)
    _add(directory, "ann@c.test")
    b = directory.set_domain_settings("b.test", DomainSettings(alias_of="a.test"))
    assert b.settings.alias_of == "a.test"
    with pytest.raises(InvalidInput, match="itself"):
        directory.set_domain_settings("a.test", DomainSettings(alias_of="a.test"))
    with pytest.raises(NotFound, match="hosted"):
        directory.set_domain_settings("d.test", DomainSettings(alias_of="zz.test"))
    with pytest.raises(InvalidInput, match=r"itself an alias of a.test"):
        directory.set_domain_settings("d.test", DomainSettings(alias_of="b.test"))
    with pytest.raises(InvalidInput, match="1 mailbox"):
        directory.set_domain_settings("c.test", DomainSettings(alias_of="a.test"))
    with pytest.raises(InvalidInput, match="target of domain alias"):
        directory.set_domain_settings("a.test", DomainSettings(alias_of="d.test"))
    # An alias domain has no addresses of its own ...
    with pytest.raises(InvalidInput, match=r"alias of a.test"):
        _add(directory, "bob@b.test")
    with pytest.raises(InvalidInput, match=r"alias of a.test"):
        directory.add_alias(Alias(Address("info", "b.test"), ("x@y.test",)))
    # ... and its target stays while it is pointed to.
    with pytest.raises(InvalidInput, match="target of domain alias"):
        directory.remove_domain("a.test", force=True)
    directory.set_domain_settings("b.test", DomainSettings())
    directory.remove_domain("a.test")


def test_mailbox_settings_round_trip(directory: Directory) -> None:
    directory.add_domain("a.test")
    address = _add(directory, "Ann@a.test")
    mailbox = directory.get_mailbox(address)
    assert mailbox is not None
    changed = dataclasses.replace(
        mailbox,
        enabled=False,
        receive=False,
        expires=1234.5,
        display_name="Ann Example",
        quota_bytes=0,
        quota_messages=100,
        max_message_size=2048,
        forwards=("x@remote.test", "bob@a.test"),
        keep_copy=False,
        password_hash="ignored",
        maildir="ignored",
    )
    saved = directory.save_mailbox_settings(changed)
    assert saved == dataclasses.replace(changed, maildir=mailbox.maildir)
    assert saved.password_hash == mailbox.password_hash  # not a setting
    assert directory.get_mailbox(Address("ann", "a.test")) == saved
    assert directory.snapshot().mailboxes[address.key] == saved
    with pytest.raises(NotFound):
        directory.save_mailbox_settings(
            dataclasses.replace(mailbox, address=Address("x", "a.test"))
        )


def test_mailbox_and_alias_addresses_never_collide(directory: Directory) -> None:
    directory.add_domain("a.test")
    _add(directory, "ann@a.test")
    with pytest.raises(AlreadyExists, match="is a mailbox"):
        directory.add_alias(Alias(Address("ANN", "a.test"), ("x@y.test",)))
    directory.add_alias(Alias(Address("info", "a.test"), ("ann@a.test",)))
    with pytest.raises(AlreadyExists, match="is an alias"):
        _add(directory, "Info@a.test")


def test_domain_with_aliases_needs_force(directory: Directory) -> None:
    directory.add_domain("a.test")
    directory.add_alias(Alias(Address("info", "a.test"), ("x@y.test",)))
    with pytest.raises(InvalidInput, match="0 mailbox\\(es\\) and 1 alias"):
        directory.remove_domain("a.test")
    assert directory.remove_domain("a.test", force=True) == []
    assert directory.list_aliases() == []
