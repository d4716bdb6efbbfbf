"""The shared SASL steps (proto/sasl.py): PLAIN (RFC 4616) and LOGIN, strict
base64, cancel, limits; hypothesis round trip and never-crash."""

from __future__ import annotations

from base64 import b64encode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.proto.sasl import (
    MAX_FIELD_OCTETS,
    MAX_RESPONSE_LINE,
    Challenge,
    Credentials,
    SaslError,
    SaslExchange,
    SaslProblem,
    decode_plain,
    decode_response,
)


def b64(data: bytes) -> str:
    return b64encode(data).decode("ascii")


def problem(call) -> SaslProblem:
    with pytest.raises(SaslError) as info:
        call()
    return info.value.problem


# -- decode_response ---------------------------------------------------------------


def test_decode_response() -> None:
    assert decode_response("Ym9i") == b"bob"
    assert decode_response(b" Ym9i ") == b"bob"
    assert decode_response("") == b""


def test_rfc4954_4_star_cancels() -> None:
    assert problem(lambda: decode_response("*")) is SaslProblem.CANCELLED
    assert problem(lambda: decode_response(b"*", initial=True)) is SaslProblem.CANCELLED


def test_equals_is_empty_only_as_initial_response() -> None:
    assert decode_response("=", initial=True) == b""
    assert problem(lambda: decode_response("=")) is SaslProblem.BAD_BASE64


@pytest.mark.parametrize(
    "text",
    ["Ym9", "Ym9i=", "Y m9i", "Ym9i\t", "Ym9i!", "Ym9=", "Ym8", "====", "Ym9iYg", b"\xff\xfe"],
)
def test_strict_base64(text: str | bytes) -> None:
    # Missing or extra padding, stray characters, non-zero pad bits, non-ASCII.
    assert problem(lambda: decode_response(text)) is SaslProblem.BAD_BASE64


# -- PLAIN (RFC 4616 §2) -------------------------------------------------------------


def test_plain_fields() -> None:
    assert decode_plain(b"\x00bob\x00secret") == Credentials("PLAIN", "", "bob", "secret")
    assert decode_plain("zid\x00jöe\x00pässword".encode()) == Credentials(
        "PLAIN", "zid", "jöe", "pässword"
    )


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"bob",
        b"\x00bob",
        b"\x00\x00pw",
        b"\x00bob\x00",
        b"a\x00b\x00c\x00d",
        b"\x00\xff\x00pw",
    ],
)
def test_plain_malformed(message: bytes) -> None:
    assert problem(lambda: decode_plain(message)) is SaslProblem.MALFORMED


def test_plain_length_limit() -> None:
    at_limit = b"\x00" + b"u" * MAX_FIELD_OCTETS + b"\x00pw"
    assert decode_plain(at_limit).authcid == "u" * MAX_FIELD_OCTETS
    over = b"\x00bob\x00" + b"p" * (MAX_FIELD_OCTETS + 1)
    assert problem(lambda: decode_plain(over)) is SaslProblem.TOO_LONG


def test_longest_plain_fits_the_response_line() -> None:
    message = b"\x00".join([b"z" * MAX_FIELD_OCTETS] * 3)
    assert len(b64(message)) + 2 == MAX_RESPONSE_LINE


def test_password_not_in_repr() -> None:
    assert "secret" not in repr(Credentials("PLAIN", "", "bob", "secret"))


# -- exchanges -----------------------------------------------------------------------


def test_plain_with_initial_response() -> None:
    assert SaslExchange("plain").start(b64(b"\x00bob\x00pw")) == Credentials(
        "PLAIN", "", "bob", "pw"
    )


def test_plain_with_empty_challenge() -> None:
    exchange = SaslExchange("PLAIN")
    assert exchange.start(None) == Challenge(b"")
    assert Challenge(b"").encoded == ""
    assert exchange.respond(b64(b"\x00bob\x00pw").encode()) == Credentials("PLAIN", "", "bob", "pw")


def test_login_prompts() -> None:
    exchange = SaslExchange("LOGIN")
    first = exchange.start(None)
    assert first == Challenge(b"Username:") and first.encoded == "VXNlcm5hbWU6"
    second = exchange.respond(b64(b"bob"))
    assert second == Challenge(b"Password:") and second.encoded == "UGFzc3dvcmQ6"
    assert exchange.respond(b64(b"pw")) == Credentials("LOGIN", "", "bob", "pw")


def test_login_with_initial_username() -> None:
    exchange = SaslExchange("LOGIN")
    assert exchange.start(b64(b"bob")) == Challenge(b"Password:")
    assert exchange.respond(b64(b"pw")) == Credentials("LOGIN", "", "bob", "pw")


@pytest.mark.parametrize("answers", [["", "cHc="], ["Ym9i", ""], ["Ym9i", "*"], ["AA==", "cHc="]])
def test_login_refuses_empty_fields_and_cancel(answers: list[str]) -> None:
    exchange = SaslExchange("LOGIN")
    exchange.start(None)
    with pytest.raises(SaslError):
        for answer in answers:
            exchange.respond(answer)


def test_exchange_misuse() -> None:
    with pytest.raises(ValueError):
        SaslExchange("CRAM-MD5")
    exchange = SaslExchange("PLAIN")
    with pytest.raises(RuntimeError):
        exchange.respond("x")
    exchange.start(b64(b"\x00a\x00b"))
    with pytest.raises(RuntimeError):
        exchange.start(None)
    with pytest.raises(RuntimeError):
        exchange.respond("x")  # over
    failed = SaslExchange("PLAIN")
    failed.start(None)
    with pytest.raises(SaslError):
        failed.respond("!!")
    with pytest.raises(RuntimeError):
        failed.respond(b64(b"\x00a\x00b"))  # an error ended it


field_text = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=40
)


@given(field_text, field_text.filter(bool), field_text.filter(bool))
def test_plain_round_trip(authzid: str, authcid: str, password: str) -> None:
    message = b"\x00".join(s.encode("utf-8") for s in (authzid, authcid, password))
    via_initial = SaslExchange("PLAIN").start(b64(message))
    assert via_initial == Credentials("PLAIN", authzid, authcid, password)
    exchange = SaslExchange("PLAIN")
    exchange.start(None)
    assert exchange.respond(b64(message).encode()) == via_initial


@given(
    st.sampled_from(["PLAIN", "LOGIN"]),
    st.one_of(st.none(), st.binary(max_size=60)),
    st.lists(st.binary(max_size=60), max_size=3),
)
def test_never_crashes(mechanism: str, initial: bytes | None, lines: list[bytes]) -> None:
    exchange = SaslExchange(mechanism)
    try:
        result = exchange.start(initial)
        for line in lines:
            if not isinstance(result, Challenge):
                break
            result = exchange.respond(line)
    except SaslError as exc:
        assert isinstance(exc.problem, SaslProblem)
