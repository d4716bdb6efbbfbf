from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from hypothesis import given
from hypothesis import strategies as st
from passlib import hash as legacy

from mailyard.directory.logins import authenticate, authenticate_owner, parse_login
from mailyard.directory.model import maildir_for
from mailyard.directory.passwords import dummy_verify, is_argon2
from mailyard.directory.store import Directory
from mailyard.message.address import Address
from tests.directory.conftest import PASSWORD
from tests.directory.strategies import domains, locals_

# -- parse_login -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("login", "default", "expected"),
    [
        ("joe@example.com", None, Address("joe", "example.com")),
        ("joe%example.com", None, Address("joe", "example.com")),
        ("joe:example.com", None, Address("joe", "example.com")),
        ("joe", "example.com", Address("joe", "example.com")),
        ("Joe@EXAMPLE.com", "other.test", Address("Joe", "example.com")),
        ("joe@bücher.example", None, Address("joe", "xn--bcher-kva.example")),
        # "@" is tried first, then "%", then ":"; the last one of that kind splits.
        ("a%b@example.com", None, Address("a%b", "example.com")),
        ("a:b%example.com", None, Address("a:b", "example.com")),
        ("a%b%example.com", None, Address("a%b", "example.com")),
        ('"a@b"@example.com', None, Address('"a@b"', "example.com")),
    ],
)
def test_login_forms(login: str, default: str | None, expected: Address) -> None:
    assert parse_login(login, default) == expected


@pytest.mark.parametrize(
    ("login", "default"),
    [
        ("joe", None),
        ("joe", ""),
        ("", "example.com"),
        ("@example.com", None),
        ("joe@", None),
        ("joe@[192.0.2.1]", None),
        ("joe@bad..domain", None),
        ("jo\x00e@example.com", None),
        ("x" * 65 + "@example.com", None),
        ("joe@" + "a" * 400 + ".com", None),
    ],
)
def test_unusable_logins(login: str, default: str | None) -> None:
    assert parse_login(login, default) is None


@given(st.text(max_size=80), st.one_of(st.none(), st.text(max_size=20), domains))
def test_parse_login_never_crashes(login: str, default: str | None) -> None:
    result = parse_login(login, default)
    assert result is None or isinstance(result, Address)


@given(locals_.filter(lambda s: not set("@%:") & set(s)), domains, st.sampled_from("@%:"))
def test_parse_login_round_trip(local: str, domain: str, separator: str) -> None:
    assert parse_login(f"{local}{separator}{domain}", None) == Address(local, domain)
    assert parse_login(local, domain) == Address(local, domain)


# -- authenticate ------------------------------------------------------------------


@pytest.fixture
def users(directory: Directory, hashed: str) -> Directory:
    directory.add_domain("example.test")
    for local in ("alice", "bob"):
        address = Address(local, "example.test")
        directory.add_mailbox(address, maildir_for(address), hashed)
    directory.set_enabled(Address("bob", "example.test"), False)
    return directory


@pytest.fixture
def argon2_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Count real argon2 verifications (the real function still runs)."""
    dummy_verify("warm up the dummy hash")
    calls: list[str] = []
    real = PasswordHasher.verify

    def counting(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        calls.append("verify")
        return real(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    yield calls


def test_ok_in_every_login_form(users: Directory) -> None:
    for login in ("alice@example.test", "ALICE%example.test", "alice:Example.Test"):
        mailbox = authenticate(users, login, PASSWORD, None)
        assert mailbox is not None and mailbox.address == Address("alice", "example.test")
    assert authenticate(users, "alice", PASSWORD, "example.test") is not None


@pytest.mark.parametrize(
    ("login", "password", "default"),
    [
        ("alice@example.test", "wrong", None),  # wrong password
        ("carol@example.test", PASSWORD, None),  # unknown user
        ("alice@other.test", PASSWORD, None),  # unknown domain
        ("bob@example.test", PASSWORD, None),  # disabled, right password
        ("bob@example.test", "wrong", None),  # disabled, wrong password
        ("alice", PASSWORD, None),  # bare user without a default domain
        ("@@@", PASSWORD, None),  # unparseable
    ],
)
def test_every_failure_is_none_and_costs_one_argon2_verification(
    users: Directory, argon2_calls: list[str], login: str, password: str, default: str | None
) -> None:
    assert authenticate(users, login, password, default) is None
    assert argon2_calls == ["verify"]


def test_success_costs_one_verification_too(users: Directory, argon2_calls: list[str]) -> None:
    assert authenticate(users, "alice@example.test", PASSWORD, None) is not None
    assert argon2_calls == ["verify"]


def test_legacy_hash_is_upgraded_on_login(users: Directory) -> None:
    address = Address("alice", "example.test")
    users.set_password(address, legacy.md5_crypt.hash("old secret"))
    assert authenticate(users, "alice@example.test", "wrong", None) is None
    stored = users.get_mailbox(address)
    assert stored is not None and not is_argon2(stored.password_hash)
    mailbox = authenticate(users, "alice@example.test", "old secret", None)
    assert mailbox is not None and is_argon2(mailbox.password_hash)
    stored = users.get_mailbox(address)
    assert stored is not None and stored.password_hash == mailbox.password_hash
    assert authenticate(users, "alice@example.test", "old secret", None) is not None


def test_legacy_mismatch_still_costs_an_argon2_verification(
    users: Directory, argon2_calls: list[str]
) -> None:
    users.set_password(Address("alice", "example.test"), legacy.md5_crypt.hash("old"))
    assert authenticate(users, "alice@example.test", "wrong", None) is None
    assert argon2_calls == ["verify"]


def test_upgrade_write_failure_does_not_fail_the_login(users: Directory, tmp_path: Path) -> None:
    address = Address("alice", "example.test")
    users.set_password(address, legacy.md5_crypt.hash("old secret"))
    # Another process holds the write lock longer than we wait for it.
    blocker = Directory.open(users.path)
    try:
        blocker._conn.execute("PRAGMA busy_timeout = 0")
        blocker._conn.execute("BEGIN IMMEDIATE")
        users._conn.execute("PRAGMA busy_timeout = 0")
        assert authenticate(users, "alice@example.test", "old secret", None) is not None
        blocker._conn.execute("ROLLBACK")
    finally:
        blocker.close()
    stored = users.get_mailbox(address)
    assert stored is not None and not is_argon2(stored.password_hash)


def test_owner_authentication(directory: Directory, hashed: str, argon2_calls: list[str]) -> None:
    directory.add_owner("alice", hashed)
    owner = authenticate_owner(directory, "Alice", PASSWORD)
    assert owner is not None and owner.name == "alice"
    assert authenticate_owner(directory, "alice", "wrong") is None
    assert authenticate_owner(directory, "nobody", PASSWORD) is None
    assert authenticate_owner(directory, "", PASSWORD) is None
    assert argon2_calls == ["verify"] * 4


def test_owner_legacy_hash_is_upgraded(directory: Directory) -> None:
    directory.add_owner("alice", legacy.sha512_crypt.using(rounds=5000).hash("pw"))
    owner = authenticate_owner(directory, "alice", "pw")
    assert owner is not None and is_argon2(owner.password_hash)
    stored = directory.get_owner("alice")
    assert stored is not None and is_argon2(stored.password_hash)
