"""SRS (message/srs.py): forward rewriting, reversal, hash and age checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.message import srs

SECRET = b"s" * 32
OTHER = b"o" * 32
NOW = 1_733_072_400.0  # 2024-12-01
DAY = 86400.0

_LOCAL_CHARS = st.characters(
    min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='@"\\(),:;<>[] '
)
locals_ = st.text(_LOCAL_CHARS, min_size=1, max_size=20).filter(
    lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s
)
domains = st.from_regex(r"[a-z][a-z0-9]{0,10}\.(test|example|org)", fullmatch=True)


def test_srs0_form_and_round_trip() -> None:
    rewritten = srs.forward("User.Name@example.org", SECRET, NOW, "fwd.test")
    local, _, domain = rewritten.rpartition("@")
    assert domain == "fwd.test"
    tag, digest, stamp, orig_domain, orig_local = local.split("=", 4)
    assert (tag, orig_domain, orig_local) == ("SRS0", "example.org", "User.Name")
    assert len(digest) == srs.HASH_LENGTH and stamp == srs.timestamp(NOW)
    assert srs.reverse(rewritten, SECRET, NOW) == "User.Name@example.org"


def test_timestamp_is_days_mod_1024_in_base32() -> None:
    assert srs.timestamp(0) == "AA"
    assert srs.timestamp(DAY) == "AB"
    assert srs.timestamp(32 * DAY) == "BA"
    assert srs.timestamp(1024 * DAY) == "AA"  # wraps


def test_hash_check_ignores_case() -> None:
    rewritten = srs.forward("bob@example.org", SECRET, NOW, "fwd.test")
    # Some MTAs fold local parts to lowercase on the way back.
    assert srs.reverse(rewritten.lower(), SECRET, NOW) == "bob@example.org"
    assert srs.reverse(rewritten.upper(), SECRET, NOW).lower() == "bob@example.org"


def test_wrong_secret_or_tampered_address_is_refused() -> None:
    rewritten = srs.forward("bob@example.org", SECRET, NOW, "fwd.test")
    with pytest.raises(srs.SrsError):
        srs.reverse(rewritten, OTHER, NOW)
    tampered = rewritten.replace("=bob@", "=eve@")
    assert srs.reverse_recipient(tampered, SECRET, NOW) is None


@pytest.mark.parametrize(("age", "valid"), [(0, True), (21, True), (22, False), (-1, False)])
def test_age_limit(age: int, valid: bool) -> None:
    rewritten = srs.forward("bob@example.org", SECRET, NOW, "fwd.test")
    result = srs.reverse_recipient(rewritten, SECRET, NOW + age * DAY)
    assert (result == "bob@example.org") is valid


def test_age_limit_works_across_the_1024_day_wrap() -> None:
    made = 1023 * DAY + 10
    rewritten = srs.forward("bob@example.org", SECRET, made, "fwd.test")
    assert srs.reverse_recipient(rewritten, SECRET, made + 3 * DAY) == "bob@example.org"


def test_srs0_from_another_forwarder_becomes_srs1_and_reverses_to_it() -> None:
    first = srs.forward("bob@example.org", OTHER, NOW, "first.test")
    second = srs.forward(first, SECRET, NOW, "second.test")
    assert second.startswith("SRS1=") and second.endswith("@second.test")
    assert "=first.test==" in second
    # Our bounce goes straight back to the first forwarder, which reverses it.
    back = srs.reverse(second, SECRET, NOW)
    assert back == first
    assert srs.reverse(back, OTHER, NOW) == "bob@example.org"


def test_srs1_is_rehashed_and_keeps_the_first_forwarder() -> None:
    first = srs.forward("bob@example.org", OTHER, NOW, "first.test")
    second = srs.forward(first, b"2" * 32, NOW, "second.test")
    third = srs.forward(second, SECRET, NOW, "third.test")
    assert third.endswith("@third.test") and "=first.test==" in third
    assert srs.reverse(third, SECRET, NOW) == first


def test_a_sender_at_our_domain_is_left_alone() -> None:
    assert srs.forward("me@Fwd.test", SECRET, NOW, "fwd.test") == "me@Fwd.test"


def test_too_long_result_is_refused() -> None:
    with pytest.raises(srs.SrsError):
        srs.forward("a" * 60 + "@example.org", SECRET, NOW, "fwd.test")


def test_is_srs() -> None:
    assert srs.is_srs("SRS0=abcd=AB=example.org=bob@fwd.test")
    assert srs.is_srs("srs0+abcd=AB=example.org=bob@fwd.test")
    assert not srs.is_srs("srs0=abcd=AB@fwd.test")
    assert not srs.is_srs("bob@fwd.test")
    assert srs.reverse_recipient("bob@fwd.test", SECRET, NOW) is None


@given(locals_, domains, st.floats(min_value=0, max_value=4e9))
def test_round_trip_property(local: str, domain: str, now: float) -> None:
    sender = f"{local}@{domain}"
    try:
        rewritten = srs.forward(sender, SECRET, now, "fwd.test")
    except srs.SrsError:
        return  # too long for a local part
    assert srs.reverse(rewritten, SECRET, now + DAY) == sender


@given(st.text(max_size=120), st.floats(allow_nan=False, allow_infinity=False,
                                        min_value=-1e12, max_value=1e12))
def test_never_crashes_on_junk(text: str, now: float) -> None:
    srs.is_srs(text)
    assert srs.reverse_recipient(text, SECRET, now) in (None,) or isinstance(
        srs.reverse_recipient(text, SECRET, now), str)
    try:
        srs.forward(text, SECRET, now, "fwd.test")
    except srs.SrsError:
        pass


@given(st.from_regex(r"[Ss][Rr][Ss][01][=+-][A-Za-z0-9+/=]{0,30}@fwd\.test", fullmatch=True))
def test_forged_srs_shapes_never_reverse(address: str) -> None:
    assert srs.reverse_recipient(address, SECRET, NOW) is None
