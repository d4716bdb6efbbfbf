"""Whose addresses a submission user may send as, with aliases in the directory."""

from __future__ import annotations

from mailyard.directory.model import Alias, Domain, DomainSettings, Mailbox, Snapshot, maildir_for
from mailyard.message.address import Address, parse_address
from mailyard.server.submission import owns

D = "example.test"


def _box(local: str) -> Mailbox:
    address = Address(local, D)
    return Mailbox(address, maildir_for(address), True, "h", 0.0)


ALICE, BOB = _box("alice"), _box("bob")
SNAP = Snapshot.build(
    [Domain(D, None, 0.0), Domain("alias.test", None, 0.0, DomainSettings(alias_of=D))],
    [ALICE, BOB],
    [
        Alias(Address("sales", D), ("alice@example.test", "x@remote.test")),
        Alias(Address("all", D), ("sales@example.test", "bob@example.test")),
        Alias(Address("list", D), ("alice@example.test", "bob@example.test"), owner="bob@example.test"),
    ],
)


def test_own_address_extension_and_domain_alias() -> None:
    assert owns(ALICE, parse_address("alice@example.test"), SNAP)
    assert owns(ALICE, parse_address("Alice+news@example.test"), SNAP)
    assert owns(ALICE, parse_address("alice@alias.test"), SNAP)
    assert not owns(ALICE, parse_address("bob@alias.test"), SNAP)
    assert not owns(ALICE, parse_address("bob+x@example.test"), SNAP)


def test_aliases_reaching_the_mailbox_nested_too() -> None:
    assert owns(ALICE, parse_address("sales@example.test"), SNAP)
    assert owns(ALICE, parse_address("all@example.test"), SNAP)
    assert not owns(BOB, parse_address("sales@example.test"), SNAP)
    assert owns(BOB, parse_address("all@example.test"), SNAP)


def test_a_list_belongs_to_its_owner_only() -> None:
    assert owns(BOB, parse_address("list@example.test"), SNAP)
    assert not owns(ALICE, parse_address("list@example.test"), SNAP)


def test_without_a_snapshot_only_the_own_address() -> None:
    assert owns(ALICE, parse_address("alice@example.test"))
    assert not owns(ALICE, parse_address("sales@example.test"))
    assert not owns(ALICE, None, SNAP)
    assert not owns(ALICE, parse_address("nobody@remote.test"), SNAP)
