"""Flag letters, IMAP flag names and the keywords file."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.maildir import flags
from mailyard.maildir.errors import KeywordLimit, StoreError
from mailyard.maildir.flags import KeywordTable

letters = st.text(alphabet="DFPRSTabcdefghijklmnopqrstuvwxyz", max_size=32)
keyword = st.from_regex(r"[A-Za-z$][A-Za-z0-9_$.-]{0,15}", fullmatch=True)


def test_system_letters() -> None:
    # Maildir spec letters and RFC 3501 names.
    bits = flags.bits_from_info("DFPRST")
    assert bits == flags.SYSTEM_MASK
    table = KeywordTable()
    assert table.flag_names(bits) == (
        "\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "$Forwarded")
    assert table.bits(["\\seen", "\\DELETED", "$forwarded", "\\Recent"]) == (
        flags.SEEN | flags.DELETED | flags.FORWARDED)
    with pytest.raises(StoreError):
        table.bits(["\\Important"])


def test_unknown_letters_are_kept() -> None:
    assert flags.bits_from_info("S2X") == flags.SEEN
    assert flags.info_from_bits(flags.SEEN | flags.FLAGGED, keep="XS,") == ",FSX"


@given(letters)
def test_letters_round_trip(info: str) -> None:
    bits = flags.bits_from_info(info)
    assert flags.info_from_bits(bits) == "".join(sorted(set(info)))
    assert 0 <= bits < 2**32


def test_keyword_table() -> None:
    table = KeywordTable().with_keywords(["Junk", "$Label1", "junk", "$Forwarded"])
    assert table.names[:3] == ("Junk", "$Label1", None)
    assert table.index("JUNK") == 0
    bits = table.bits(["junk", "$label1", "NotThere"])
    assert flags.info_from_bits(bits) == "ab"
    assert table.flag_names(bits | flags.SEEN) == ("\\Seen", "Junk", "$Label1")
    assert "\\*" not in table.defined() and "Junk" in table.defined()
    assert KeywordTable.from_mapping(flags.parse_keywords(table.encode())) == table
    with pytest.raises(StoreError):
        table.with_keywords(["bad keyword"])
    full = KeywordTable().with_keywords([f"k{i}" for i in range(flags.MAX_KEYWORDS)])
    assert full.full
    with pytest.raises(KeywordLimit):
        full.with_keywords(["one-more"])


def test_keyword_validity() -> None:
    # RFC 3501 §9: flag-keyword = atom.
    for good in ("Junk", "$MDNSent", "a.b-c_d", "x+y"):
        assert flags.valid_keyword(good)
    for bad in ("", "a b", "a(b", "a)b", "a{b", "a%b", "a*b", 'a"b', "a\\b", "a]b", "\\Seen",
                "é", "x" * 101, "a\x01"):
        assert not flags.valid_keyword(bad)


def test_dovecot_style_file_is_read_tolerantly() -> None:
    data = b"0 $Label1\n1 Junk\n2 bad keyword\n30 Far\nx Y\n1 Other\n3 junk\n4 Fine\r\n"
    assert flags.parse_keywords(data) == {0: "$Label1", 1: "Junk", 4: "Fine"}


@given(st.lists(keyword, max_size=30, unique_by=str.lower))
def test_keywords_file_round_trip(words: list[str]) -> None:
    try:
        table = KeywordTable().with_keywords(words)
    except KeywordLimit:
        assert len([w for w in words if w.lower() != "$forwarded"]) > flags.MAX_KEYWORDS
        return
    assert KeywordTable.from_mapping(flags.parse_keywords(table.encode())) == table


@given(st.binary(max_size=400))
def test_keywords_parser_never_crashes(data: bytes) -> None:
    for index, name in flags.parse_keywords(data).items():
        assert 0 <= index < flags.MAX_KEYWORDS
        assert flags.valid_keyword(name)
