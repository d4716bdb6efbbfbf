from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from hypothesis import given, settings
from hypothesis import strategies as st
from passlib import hash as legacy

from mailyard.directory.passwords import (
    PasswordCheck,
    dummy_verify,
    hash_password,
    is_argon2,
    verify_password,
)
from tests.directory.conftest import PASSWORD

OK_CURRENT = PasswordCheck(ok=True, needs_upgrade=False)
OK_UPGRADE = PasswordCheck(ok=True, needs_upgrade=True)
NO = PasswordCheck(ok=False, needs_upgrade=False)


def test_argon2id_round_trip(hashed: str) -> None:
    assert hashed.startswith("$argon2id$") and is_argon2(hashed)
    assert verify_password(hashed, PASSWORD) == OK_CURRENT
    assert verify_password(hashed, PASSWORD + "x") == NO
    assert verify_password(hashed, "") == NO


def test_hashes_are_salted(hashed: str) -> None:
    assert hash_password(PASSWORD) != hashed


def test_weaker_argon2_parameters_need_an_upgrade() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw")
    assert verify_password(weak, "pw") == OK_UPGRADE
    assert verify_password(weak, "other") == NO


@pytest.mark.parametrize(
    "stored",
    [
        legacy.md5_crypt.hash("legacy pw"),
        legacy.sha256_crypt.using(rounds=5000).hash("legacy pw"),
        legacy.sha512_crypt.using(rounds=5000).hash("legacy pw"),
        legacy.bcrypt.using(rounds=4, ident="2b").hash("legacy pw"),
        legacy.bcrypt.using(rounds=4, ident="2a").hash("legacy pw"),
        legacy.bcrypt.using(rounds=4, ident="2y").hash("legacy pw"),
        legacy.des_crypt.hash("legacypw"),
    ],
    ids=["md5", "sha256", "sha512", "bcrypt-2b", "bcrypt-2a", "bcrypt-2y", "des"],
)
def test_legacy_hashes_verify_and_need_upgrade(stored: str) -> None:
    password = "legacypw" if len(stored) == 13 else "legacy pw"
    assert verify_password(stored, password) == OK_UPGRADE
    assert verify_password(stored, "wrong") == NO


def test_bcrypt_ignores_octets_past_72_like_crypt_blowfish() -> None:
    long_password = "é" * 50  # 100 octets
    stored = legacy.bcrypt.using(rounds=4).hash(long_password.encode()[:72])
    assert verify_password(stored, long_password) == OK_UPGRADE


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "*",
        "!",
        "garbage",
        "$argon2id$v=19$m=65536,t=3,p=4$broken",
        "$argon2id$",
        "$1$abc$def",
        "$6$rounds=x$salt$hash",
        "$2b$04$tooshort",
        "$2x$04$" + "a" * 53,
        "$9$unknown$scheme",
    ],
)
def test_malformed_stored_hash_is_just_no(stored: str) -> None:
    assert verify_password(stored, "anything") == NO


@pytest.mark.filterwarnings("ignore::passlib.exc.PasslibHashWarning")
# Strategies stay clear of "rounds=" so a random legacy hash cannot ask for
# a billion sha-crypt rounds.
@settings(max_examples=200)
@given(
    st.one_of(
        st.text(max_size=80),
        st.builds(
            lambda p, s: p + s,
            st.sampled_from(
                ["$1$", "$5$", "$6$", "$2a$", "$2b$", "$2y$", "$argon2id$", "$argon2i$"]
            ),
            st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789./$=,", max_size=70),
        ),
    ).filter(lambda s: "rounds=" not in s),
    st.text(max_size=20),
)
def test_verify_never_raises(stored: str, password: str) -> None:
    result = verify_password(stored, password)
    assert isinstance(result, PasswordCheck)


def test_dummy_verify_does_one_real_argon2_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = PasswordHasher.verify

    def counting(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        calls.append(str(hash))
        return real(self, hash, password)

    dummy_verify("warm up")  # the dummy hash is made once, lazily
    monkeypatch.setattr(PasswordHasher, "verify", counting)
    dummy_verify("whatever")
    assert len(calls) == 1
    # At today's default cost, i.e. as expensive as verifying a real hash.
    assert not PasswordHasher().check_needs_rehash(calls[0])
