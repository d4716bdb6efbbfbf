from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.directory import admin
from mailyard.directory.checks import (
    EXTENSION_CHARS,
    checked_extension_chars,
    checked_targets,
    checked_text,
)
from mailyard.directory.errors import AlreadyExists, InvalidInput, NotFound
from mailyard.directory.model import MAX_ALIAS_TARGETS, Vacation
from mailyard.directory.store import Directory
from mailyard.message.address import Address


@pytest.fixture
def site(directory: Directory, mail_root: str) -> Directory:
    admin.add_domain(directory, "a.test")
    admin.add_domain(directory, "b.test")
    admin.create_user(directory, mail_root, Address("ann", "a.test"), "h")
    return directory


ANN = Address("ann", "a.test")


def test_add_alias_canonicalises_and_dedupes(site: Directory) -> None:
    alias = admin.add_alias(
        site,
        "Info@A.TEST",
        [" ann@a.test", "ANN@a.test", "x@Bücher.Example", "ann@a.test"],
        owner="Owner@Remote.Test",
    )
    assert alias.address == Address("Info", "a.test")
    assert alias.targets == ("ann@a.test", "x@xn--bcher-kva.example")
    assert alias.owner == "Owner@remote.test"
    assert alias.created > 0
    assert admin.get_alias(site, "info@a.test") == alias
    assert admin.list_aliases(site) == [alias]
    assert (
        admin.list_aliases(site, "a.test") == [alias] and admin.list_aliases(site, "b.test") == []
    )


def test_alias_value_checks(site: Directory) -> None:
    cases: list[tuple[str, list[str], str | None, type[Exception], str]] = [
        ("not an address", ["ann@a.test"], None, InvalidInput, "invalid address"),
        ("x@nope.test", ["ann@a.test"], None, NotFound, "no such domain"),
        ("x@a.test", [], None, InvalidInput, "at least 1"),
        ("x@a.test", ["bad target"], None, InvalidInput, "invalid alias target"),
        ("x@a.test", ["X@a.test"], None, InvalidInput, "itself"),
        ("x@a.test", ["ann@a.test"], "no owner", InvalidInput, "invalid list owner"),
        ("x@a.test", ["ann@a.test"], "x@A.test", InvalidInput, "the list itself"),
        ("Ann@a.test", ["x@y.test"], None, AlreadyExists, "is a mailbox"),
    ]
    for address, targets, owner, error, message in cases:
        with pytest.raises(error, match=message):
            admin.add_alias(site, address, targets, owner=owner)
    assert admin.list_aliases(site) == []


def test_too_many_targets(site: Directory) -> None:
    targets = [f"u{i}@remote.test" for i in range(MAX_ALIAS_TARGETS + 1)]
    with pytest.raises(InvalidInput, match=f"at most {MAX_ALIAS_TARGETS}"):
        admin.add_alias(site, "big@a.test", targets)
    assert len(admin.add_alias(site, "big@a.test", targets[:-1]).targets) == MAX_ALIAS_TARGETS


def test_update_and_remove_alias(site: Directory) -> None:
    admin.add_alias(site, "info@a.test", ["ann@a.test"])
    with pytest.raises(AlreadyExists):
        admin.add_alias(site, "info@a.test", ["x@y.test"])
    updated = admin.update_alias(site, "INFO@a.test", ["x@y.test"], owner="ann@a.test")
    assert updated.targets == ("x@y.test",) and updated.owner == "ann@a.test"
    with pytest.raises(NotFound):
        admin.update_alias(site, "nobody@a.test", ["x@y.test"])
    assert admin.remove_alias(site, "info@a.test") == updated
    with pytest.raises(NotFound, match="no such alias"):
        admin.get_alias(site, "info@a.test")


def test_create_user_refuses_an_alias_address(site: Directory, mail_root: str) -> None:
    admin.add_alias(site, "info@a.test", ["ann@a.test"])
    with pytest.raises(AlreadyExists, match="is an alias"):
        admin.create_user(site, mail_root, Address("INFO", "a.test"), "h")
    admin.set_domain_settings(site, "b.test", alias_of="a.test")
    with pytest.raises(InvalidInput, match=r"alias of a.test"):
        admin.create_user(site, mail_root, Address("bob", "b.test"), "h")
    # Nothing was left on disk by the refusals.
    assert sorted(os.listdir(mail_root)) == ["a.test"]
    assert sorted(os.listdir(os.path.join(mail_root, "a.test"))) == ["ann"]


def test_domain_settings_checks(site: Directory) -> None:
    domain = admin.set_domain_settings(
        site,
        "a.test",
        catch_all=["Ann@a.test"],
        extension_chars="-++",
        quota_bytes=100,
        total_quota_bytes=None,
    )
    assert domain.settings.catch_all == ("Ann@a.test",)
    assert domain.settings.extension_chars == "-+"
    assert domain.settings.quota_bytes == 100
    cases: list[tuple[dict[str, object], str]] = [
        ({"extension_chars": "+@"}, "extension characters"),
        ({"quota_bytes": -1}, "negative"),
        ({"quota_messages": 1.5}, "whole number"),
        ({"max_message_size": True}, "whole number"),
        ({"catch_all": "ann@a.test"}, "list of addresses"),
        ({"catch_all": ["nope"]}, "invalid catch-all target"),
        ({"colour": "red"}, "unknown domain setting colour"),
        ({"alias_of": "nope.test"}, "no such domain"),
        ({"alias_of": "a.test"}, "itself"),
    ]
    for changes, message in cases:
        with pytest.raises((InvalidInput, NotFound), match=message):
            admin.set_domain_settings(site, "a.test", **changes)
    with pytest.raises(InvalidInput, match="catch-all"):
        admin.set_domain_settings(site, "b.test", alias_of="a.test", catch_all=["x@y.test"])
    assert admin.get_domain(site, "a.test") == domain


def test_user_settings_checks(site: Directory) -> None:
    mailbox = admin.set_user_settings(
        site,
        "ann@a.test",
        forwards=["x@remote.test", "X@remote.test"],
        keep_copy=False,
        quota_bytes=0,
        expires=2_000_000_000,
        display_name="Ann",
        receive=False,
    )
    assert mailbox.forwards == ("x@remote.test",) and not mailbox.keep_copy
    assert mailbox.expires == 2_000_000_000.0 and mailbox.quota_bytes == 0
    cases: list[tuple[dict[str, object], str]] = [
        ({"forwards": ["ANN@a.test"]}, "itself"),
        ({"forwards": ["x"]}, "invalid forward address"),
        ({"keep_copy": "yes"}, "yes or no"),
        ({"expires": float("nan")}, "time"),
        ({"expires": "tomorrow"}, "time"),
        ({"display_name": "a\nb"}, "control character"),
        ({"display_name": "x" * 300}, "longer"),
        ({"quota_messages": -5}, "negative"),
        ({"password_hash": "x"}, "unknown mailbox setting"),
    ]
    for changes, message in cases:
        with pytest.raises(InvalidInput, match=message):
            admin.set_user_settings(site, "ann@a.test", **changes)
    with pytest.raises(NotFound):
        admin.set_user_settings(site, "nobody@a.test", keep_copy=True)
    assert admin.get_user(site, ANN) == mailbox


def test_vacation_checks(site: Directory) -> None:
    good = Vacation(Address("ignored", "x.test"), "Away", "Back soon.\r\n\tBye", 10.0, 20.0, 7)
    stored = admin.set_vacation(site, "ann@a.test", good)
    assert stored.address == ANN and stored.subject == "Away"
    assert admin.get_vacation(site, "Ann@a.test") == stored
    for bad, message in [
        (Vacation(ANN, "", "b"), "subject cannot be empty"),
        (Vacation(ANN, "a\nb", "b"), "control character"),
        (Vacation(ANN, "s", " "), "body cannot be empty"),
        (Vacation(ANN, "s", "b", 20.0, 10.0), "end after"),
        (Vacation(ANN, "s", "b", interval_days=0), "1 to 365"),
        (Vacation(ANN, "s", "b", start=-1.0), "time"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            admin.set_vacation(site, "ann@a.test", bad)
    with pytest.raises(NotFound):
        admin.get_vacation(site, "nobody@a.test")
    with pytest.raises(NotFound):
        admin.set_vacation(site, "nobody@a.test", good)
    admin.clear_vacation(site, "ann@a.test")
    assert admin.get_vacation(site, "ann@a.test") is None
    with pytest.raises(NotFound):
        admin.clear_vacation(site, "ann@a.test")


# -- the value checks never fail any other way ------------------------------------


@given(st.lists(st.text(max_size=30), max_size=5))
def test_checked_targets_never_crash(texts: list[str]) -> None:
    try:
        out = checked_targets(texts, "target")
    except InvalidInput as exc:
        assert "\n" not in str(exc)
        return
    # Canonical output is a fixed point.
    assert checked_targets(out, "target") == out


@given(st.text(max_size=10))
def test_checked_extension_chars(text: str) -> None:
    try:
        out = checked_extension_chars(text)
    except InvalidInput:
        assert not set(text) <= set(EXTENSION_CHARS)
        return
    assert set(out) == set(text) and len(out) == len(set(out))


@given(st.text(max_size=40), st.booleans())
def test_checked_text_never_crashes(text: str, single_line: bool) -> None:
    try:
        assert checked_text(text, "t", 30, single_line=single_line) == text
    except InvalidInput as exc:
        assert "\n" not in str(exc)
