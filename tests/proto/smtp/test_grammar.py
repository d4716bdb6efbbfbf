"""Command-line grammar (grammar.py, envelope.py): RFC 5321 §4.1.1, §4.1.2, RFC 3030 §2."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailyard.message.address import Address
from mailyard.proto.smtp.envelope import parse_mail, parse_rcpt, postmaster_address
from mailyard.proto.smtp.grammar import (
    Command,
    GrammarError,
    parse_bdat,
    parse_hello,
    parse_params,
    split_command,
    split_path,
)
from mailyard.proto.smtp.settings import Features, SmtpLimits


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"NOOP", Command("NOOP", b"")),
        (b"noop x y", Command("NOOP", b"x y")),
        (b"MAIL FROM:<>", Command("MAIL", b"FROM:<>")),
        (b"MAIL\tFROM", None),
        (b"", None),
        (b"8BIT", None),
        (b"A" * 17, None),
    ],
)
def test_split_command(line: bytes, expected: Command | None) -> None:
    assert split_command(line) == expected


def test_rfc5321_4_1_2_quoted_local_part_may_hold_brackets() -> None:
    assert split_path('<"a>b"@example.org> SIZE=1') == ('<"a>b"@example.org>', " SIZE=1")
    assert split_path('<"a\\"> x"@y.test>') == ('<"a\\"> x"@y.test>', "")
    with pytest.raises(ValueError):
        split_path('<"unterminated>')


def test_rfc5321_4_1_2_params() -> None:
    assert parse_params("size=10  BODY=8BITMIME SMTPUTF8") == {
        "SIZE": "10",
        "BODY": "8BITMIME",
        "SMTPUTF8": None,
    }
    for bad in ("-X=1", "X=", "X=a=b", "X=\x01"):
        with pytest.raises(GrammarError):
            parse_params(bad)


def test_rfc3030_2_bdat() -> None:
    assert parse_bdat("0 LAST") == (0, True)
    assert parse_bdat("12 last") == (12, True)
    assert parse_bdat("7") == (7, False)
    for bad in ("", "x", "1 2", "-1", "1LAST", "9" * 21):
        with pytest.raises(GrammarError):
            parse_bdat(bad)


def test_hello() -> None:
    assert parse_hello("[192.0.2.1]") == "[192.0.2.1]"
    for bad in ("", "a b", "a\x00"):
        with pytest.raises(GrammarError):
            parse_hello(bad)


def test_parse_mail_and_rcpt() -> None:
    mail = parse_mail("FROM:<a@Example.ORG> BODY=BINARYMIME", SmtpLimits(), Features())
    assert mail.sender == Address("a", "example.org") and mail.binarymime
    postmaster = postmaster_address("mx.example.test")
    assert parse_rcpt("TO:<POSTMASTER>", utf8=False, postmaster=postmaster) == (postmaster, {})
    assert postmaster_address("not a host!") is None


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=120))
def test_mail_and_rcpt_never_raise_anything_else(text: str) -> None:
    for call in (
        lambda: parse_mail(text, SmtpLimits(), Features(auth_mechanisms=("PLAIN",))),
        lambda: parse_mail("FROM:" + text, SmtpLimits(), Features()),
        lambda: parse_rcpt("TO:" + text, utf8=True, postmaster=None),
        lambda: parse_bdat(text),
        lambda: parse_hello(text),
    ):
        try:
            call()
        except GrammarError as exc:
            assert 500 <= exc.reply.code <= 555


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9-]{0,8}", fullmatch=True),
                       st.none() | st.from_regex(r"[!-<>-~]{1,10}", fullmatch=True)))
def test_params_round_trip(params: dict[str, str | None]) -> None:
    text = " ".join(k if v is None else f"{k}={v}" for k, v in params.items())
    assert parse_params(text) == params
