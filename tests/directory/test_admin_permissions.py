"""Who may change what: the site everything, an owner its own domains, a user its own mailbox."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mailyard.directory import admin
from mailyard.directory.admin import SITE_ADMIN, Actor, OwnerActor, UserActor
from mailyard.directory.errors import PermissionDenied
from mailyard.directory.model import Vacation
from mailyard.directory.store import Directory
from mailyard.message.address import Address

ALICE = OwnerActor("alice")
BOB = OwnerActor("bob")
ANN = Address("ann", "a.test")
BEN = Address("ben", "b.test")
ANNE_USER = UserActor(ANN)
VACATION = Vacation(ANN, "away", "back soon")


@pytest.fixture
def site(directory: Directory, mail_root: str) -> Directory:
    """alice owns a.test and a2.test, bob owns b.test; ann@a.test, amy@a.test, ben@b.test."""
    admin.add_owner(directory, "alice", "h")
    admin.add_owner(directory, "bob", "h")
    admin.add_domain(directory, "a.test", owner="alice")
    admin.add_domain(directory, "a2.test", owner="alice")
    admin.add_domain(directory, "b.test", owner="bob")
    for address in (ANN, Address("amy", "a.test"), BEN):
        admin.create_user(directory, mail_root, address, "h")
    admin.add_alias(directory, "info@b.test", ["ben@b.test"])
    admin.set_vacation(directory, BEN, VACATION)
    return directory


def _bob_things(mail_root: str) -> list[Callable[[Directory, Actor], object]]:
    """Every operation on bob's domain, its users, aliases and vacations."""
    return [
        lambda d, a: admin.get_domain(d, "b.test", actor=a),
        lambda d, a: admin.set_domain_settings(d, "b.test", quota_bytes=1, actor=a),
        lambda d, a: admin.list_users(d, "b.test", actor=a),
        lambda d, a: admin.get_user(d, BEN, actor=a),
        lambda d, a: admin.create_user(d, mail_root, Address("new", "b.test"), "h", actor=a),
        lambda d, a: admin.remove_user(d, mail_root, BEN, actor=a),
        lambda d, a: admin.set_user_password(d, BEN, "x", actor=a),
        lambda d, a: admin.set_user_enabled(d, BEN, False, actor=a),
        lambda d, a: admin.set_user_settings(d, BEN, forwards=["x@y.test"], actor=a),
        lambda d, a: admin.list_aliases(d, "b.test", actor=a),
        lambda d, a: admin.get_alias(d, "info@b.test", actor=a),
        lambda d, a: admin.add_alias(d, "new@b.test", ["x@y.test"], actor=a),
        lambda d, a: admin.update_alias(d, "info@b.test", ["x@y.test"], actor=a),
        lambda d, a: admin.remove_alias(d, "info@b.test", actor=a),
        lambda d, a: admin.get_vacation(d, BEN, actor=a),
        lambda d, a: admin.set_vacation(d, BEN, VACATION, actor=a),
        lambda d, a: admin.clear_vacation(d, BEN, actor=a),
    ]


def _state(d: Directory) -> tuple[object, ...]:
    return (
        d.list_domains(),
        d.list_mailboxes(),
        d.list_aliases(),
        d.get_vacation(BEN),
        [m.password_hash for m in d.list_mailboxes()],
    )


def test_an_owner_cannot_touch_another_owners_things(site: Directory, mail_root: str) -> None:
    before = _state(site)
    for operation in _bob_things(mail_root):
        with pytest.raises(PermissionDenied, match=r"owner alice does not manage domain b.test"):
            operation(site, ALICE)
    assert _state(site) == before
    # Not hosted at all: the same answer, so owners cannot probe.
    with pytest.raises(PermissionDenied, match=r"does not manage domain zz.test"):
        admin.add_alias(site, "x@zz.test", ["x@y.test"], actor=ALICE)


def test_a_user_cannot_touch_anything_of_others(site: Directory, mail_root: str) -> None:
    before = _state(site)
    for operation in _bob_things(mail_root):
        with pytest.raises(PermissionDenied, match=r"user ann@a.test may only manage its own"):
            operation(site, ANNE_USER)
    assert _state(site) == before


def test_the_site_and_the_owner_may(site: Directory, mail_root: str) -> None:
    for actor in (BOB, SITE_ADMIN):
        for operation in _bob_things(mail_root)[:4]:
            operation(site, actor)
    admin.add_alias(site, "new@b.test", ["x@y.test"], actor=BOB)
    admin.set_user_settings(site, BEN, quota_bytes=5, receive=False, actor=BOB)
    admin.clear_vacation(site, BEN, actor=BOB)


def test_an_owner_lists_only_its_own(site: Directory) -> None:
    admin.add_alias(site, "info@a.test", ["ann@a.test"], actor=ALICE)
    assert [str(a.address) for a in admin.list_aliases(site, actor=ALICE)] == ["info@a.test"]
    assert {str(m.address) for m in admin.list_users(site, actor=ALICE)} == {
        "ann@a.test",
        "amy@a.test",
    }
    assert len(admin.list_aliases(site)) == 2


def test_domain_alias_only_to_an_owned_domain(site: Directory) -> None:
    with pytest.raises(PermissionDenied, match=r"does not manage domain b.test"):
        admin.set_domain_settings(site, "a2.test", alias_of="b.test", actor=ALICE)
    domain = admin.set_domain_settings(site, "a2.test", alias_of="a.test", actor=ALICE)
    assert domain.settings.alias_of == "a.test"


def test_a_user_changes_only_its_own_password_forwards_and_vacation(site: Directory) -> None:
    admin.set_user_password(site, ANN, "new hash", actor=ANNE_USER)
    assert site.get_mailbox(ANN).password_hash == "new hash"  # type: ignore[union-attr]
    mailbox = admin.set_user_settings(
        site, "ANN@a.test", forwards=["x@remote.test"], keep_copy=False, actor=ANNE_USER
    )
    assert mailbox.forwards == ("x@remote.test",)
    assert admin.get_user(site, ANN, actor=ANNE_USER) == mailbox
    admin.set_vacation(site, ANN, VACATION, actor=ANNE_USER)
    assert admin.get_vacation(site, ANN, actor=ANNE_USER) is not None
    admin.clear_vacation(site, ANN, actor=ANNE_USER)
    for changes in ({"quota_bytes": 0}, {"receive": True}, {"enabled": True}, {"expires": None}):
        with pytest.raises(PermissionDenied, match="only its forwards and keep-copy"):
            admin.set_user_settings(site, ANN, actor=ANNE_USER, **changes)
    other = Address("amy", "a.test")
    with pytest.raises(PermissionDenied):
        admin.set_user_password(site, other, "x", actor=ANNE_USER)
    with pytest.raises(PermissionDenied):
        admin.set_vacation(site, other, VACATION, actor=ANNE_USER)


def test_a_user_manages_no_domain(site: Directory, mail_root: str) -> None:
    refused: list[Callable[[], object]] = [
        lambda: admin.list_domains(site, actor=ANNE_USER),
        lambda: admin.list_users(site, actor=ANNE_USER),
        lambda: admin.list_aliases(site, actor=ANNE_USER),
        lambda: admin.get_domain(site, "a.test", actor=ANNE_USER),
        lambda: admin.set_domain_settings(site, "a.test", quota_bytes=1, actor=ANNE_USER),
        lambda: admin.add_alias(site, "x@a.test", ["ann@a.test"], actor=ANNE_USER),
        lambda: admin.remove_user(site, mail_root, ANN, actor=ANNE_USER),
        lambda: admin.set_user_enabled(site, ANN, False, actor=ANNE_USER),
        lambda: admin.add_owner(site, "eve", "h", actor=ANNE_USER),
        lambda: admin.add_domain(site, "e.test", actor=ANNE_USER),
    ]
    for operation in refused:
        with pytest.raises(PermissionDenied):
            operation()
