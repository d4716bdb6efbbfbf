"""Modified UTF-7 (RFC 3501 §5.1.3): examples, round trips, rejects."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.proto.imap.utf7 import decode_mailbox, encode_mailbox

# Any Unicode text except lone surrogates, which UTF-16 cannot carry.
names = st.text(st.characters(exclude_categories=("Cs",)))


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("INBOX", "INBOX"),
        ("", ""),
        ("a&b", "a&-b"),
        ("&", "&-"),
        ("&&", "&-&-"),
        ("Entwürfe", "Entw&APw-rfe"),
        # RFC 3501 §5.1.3's own example.
        ("~peter/mail/\u65e5\u672c\u8a9e/\u53f0\u5317", "~peter/mail/&ZeVnLIqe-/&U,BTFw-"),
        ("\U0001f600", "&2D3eAA-"),
        ("\x00\x7f", "&AAAAfw-"),
        ("é&", "&AOk-&-"),
    ],
)
def test_known_spellings(name: str, wire: str) -> None:
    assert encode_mailbox(name) == wire
    assert decode_mailbox(wire) == name


@pytest.mark.parametrize(
    "wire",
    [
        "&",  # unterminated shift
        "&AOk",  # unterminated run
        "&AOk-&AOk-",  # two adjacent runs: one run spelled twice
        "&AGE-",  # encodes "a", which must stand for itself
        "&AOl-",  # non-zero padding bits
        "&AO-",  # truncated: one octet
        "&A-",  # one base64 character
        "&AOk=-",  # padding is not part of modified BASE64
        "&AO/p-",  # "/" is replaced by "," in modified BASE64
        "&2D0-",  # lone high surrogate
        "é",  # raw non-ASCII
        "a\tb",  # raw control character
        "a\x7fb",
    ],
)
def test_rejects(wire: str) -> None:
    with pytest.raises(ValueError):
        decode_mailbox(wire)


def test_encode_rejects_lone_surrogate() -> None:
    with pytest.raises(ValueError):
        encode_mailbox("a\ud800b")


@given(names)
def test_round_trip(name: str) -> None:
    wire = encode_mailbox(name)
    assert wire.isascii()
    assert all(" " <= ch <= "~" for ch in wire)
    assert decode_mailbox(wire) == name


@given(st.text(alphabet=st.sampled_from("&-AZaz09+,/=ÉOk\x00 ")))
def test_decode_is_canonical_or_raises(text: str) -> None:
    try:
        name = decode_mailbox(text)
    except ValueError:
        return
    assert encode_mailbox(name) == text


@given(st.text())
def test_decode_never_crashes(text: str) -> None:
    try:
        decode_mailbox(text)
    except ValueError:
        pass
