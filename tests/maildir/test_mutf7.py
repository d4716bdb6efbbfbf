"""IMAP modified UTF-7 (RFC 3501 §5.1.3): known forms, round trips, tolerant reading."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.maildir import mutf7


@pytest.mark.parametrize(("text", "encoded"), [
    # RFC 3501 §5.1.3's example.
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("&", "&-"),
    ("A&B", "A&-B"),
    ("Entwürfe", "Entw&APw-rfe"),
    ("", ""),
    ("plain ASCII ~!", "plain ASCII ~!"),
    ("😀", "&2D3eAA-"),
])
def test_known_forms(text: str, encoded: str) -> None:
    assert mutf7.encode(text) == encoded
    assert mutf7.decode(encoded, strict=True) == text


def test_forced_characters_go_into_base64() -> None:
    # Maildir++: "." separates levels on disk, so a "." inside one is encoded.
    assert mutf7.encode("a.b", force=".") == "a&AC4-b"
    assert mutf7.decode("a&AC4-b") == "a.b"
    assert "." not in mutf7.encode("...x.y", force=".")


def test_tolerant_decoding_keeps_what_it_cannot_read() -> None:
    assert mutf7.decode("&") == "&"
    assert mutf7.decode("a&b") == "a&b"          # unterminated
    assert mutf7.decode("&***-") == "&***-"      # not base64
    assert mutf7.decode("&AA-") == "&AA-"        # odd number of octets
    assert mutf7.decode("Entwürfe") == "Entwürfe"  # raw UTF-8 another tool wrote
    for bad in ("&", "a&b", "&***-", "Entwürfe", "\x01"):
        with pytest.raises(ValueError):
            mutf7.decode(bad, strict=True)


@given(st.text(), st.text(alphabet=".&/ -", max_size=3))
def test_round_trip(text: str, force: str) -> None:
    encoded = mutf7.encode(text, force=force)
    assert encoded.isascii()
    assert all(" " <= ch <= "~" for ch in encoded)
    assert not any(ch in encoded for ch in force if ch != "&" and ch != "-")
    assert mutf7.decode(encoded, strict=True) == text


@given(st.text())
def test_decoding_never_crashes(text: str) -> None:
    assert isinstance(mutf7.decode(text), str)
    try:
        mutf7.decode(text, strict=True)
    except ValueError:
        pass
