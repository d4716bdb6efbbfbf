"""Netstrings (cr.yp.to/proto/netstrings.txt): encoding, the streaming length
reader, and the client-side splitter; hypothesis round trips and garbage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.proto.qmtp import LengthReader, NetstringError, encode_netstring, split_netstrings


def read_length(data: bytes, ceiling: int = 10**9) -> int | None:
    reader = LengthReader(ceiling)
    for octet in data:
        length = reader.feed(octet)
        if length is not None:
            return length
    return None


def test_examples_from_the_specification() -> None:
    assert encode_netstring(b"hello world!") == b"12:hello world!,"
    assert encode_netstring(b"") == b"0:,"


def test_length_reader_accepts_digits_then_colon() -> None:
    assert read_length(b"0:") == 0
    assert read_length(b"12:") == 12
    assert read_length(b"123") is None  # the colon is still to come


@pytest.mark.parametrize("bad", [b":", b"01:", b"00:", b"1a:", b"-1:", b" 1:", b"1 :", b"x"])
def test_length_reader_refuses_malformed_prefixes(bad: bytes) -> None:
    # "Extra zeros at the front of [len] are prohibited."
    with pytest.raises(NetstringError):
        read_length(bad)


def test_ceiling_is_checked_before_the_colon() -> None:
    assert read_length(b"100:", ceiling=100) == 100
    with pytest.raises(NetstringError):
        read_length(b"101", ceiling=100)  # no colon needed to know it is too long
    with pytest.raises(NetstringError):
        read_length(b"9" * 30, ceiling=10**12)  # absurd lengths stop early


def test_split_keeps_the_incomplete_rest() -> None:
    assert split_netstrings(b"1:a,2:bc,3:de") == ([b"a", b"bc"], b"3:de")
    assert split_netstrings(b"") == ([], b"")
    assert split_netstrings(b"12") == ([], b"12")


def test_split_refuses_a_missing_comma() -> None:
    with pytest.raises(NetstringError):
        split_netstrings(b"1:ab")


@given(st.lists(st.binary(max_size=40), max_size=8))
def test_round_trip(items: list[bytes]) -> None:
    data = b"".join(encode_netstring(x) for x in items)
    assert split_netstrings(data) == (items, b"")


@given(st.lists(st.binary(max_size=40), max_size=8), st.integers(min_value=0))
def test_any_prefix_splits_into_a_prefix(items: list[bytes], at: int) -> None:
    data = b"".join(encode_netstring(x) for x in items)
    prefix = data[: at % (len(data) + 1)]
    found, rest = split_netstrings(prefix)
    assert found == items[: len(found)]
    assert prefix.endswith(rest)


@given(st.binary(max_size=200))
def test_garbage_raises_only_netstring_error(data: bytes) -> None:
    try:
        found, rest = split_netstrings(data)
    except NetstringError:
        return
    assert b"".join(encode_netstring(x) for x in found) + rest == data
