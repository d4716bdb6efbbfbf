"""Sequence sets (RFC 9051 §9): parsing, rendering, evaluation without lists."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.proto.imap.sequence import STAR, SequenceSet


def test_parse_and_render() -> None:
    s = SequenceSet.parse("1:3,5,7:*,*:9,*")
    assert s.items == ((1, 3), (5, 5), (7, STAR), (STAR, 9), (STAR, STAR))
    assert str(s) == "1:3,5,7:*,*:9,*"
    assert SequenceSet.parse("$").saved
    assert str(SequenceSet.parse("$")) == "$"


@pytest.mark.parametrize(
    "text", ["", "0", "1:0", "a", "1,", ",1", "1::2", "4294967296", "1:2:3", "$,1"]
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        SequenceSet.parse(text)


def test_ranges_resolve_star_and_merge() -> None:
    s = SequenceSet.parse("5:*,1,2,3:4,20")
    assert s.ranges(10) == ((1, 10), (20, 20))
    assert s.clipped(10) == ((1, 10),)
    # RFC 9051 §9: a range may be written backwards; "*" is the largest in use.
    assert SequenceSet.parse("*:3").ranges(2) == ((2, 3),)
    assert SequenceSet.parse("*").ranges(0) == ()


def test_large_ranges_stay_ranges() -> None:
    s = SequenceSet.parse("1:*")
    assert s.ranges(100_000) == ((1, 100_000),)
    assert s.count(100_000) == 100_000
    assert s.contains(99_999, 100_000)
    assert not s.contains(100_001, 100_000)
    assert s.highest(100_000) == 100_000
    it = s.iter(100_000)
    assert [next(it), next(it)] == [1, 2]


def test_saved_set_must_be_resolved() -> None:
    with pytest.raises(ValueError):
        SequenceSet(saved=True).ranges(3)
    with pytest.raises(ValueError):
        SequenceSet(((1, 2),), saved=True)


def test_from_numbers_keeps_order() -> None:
    assert str(SequenceSet.from_numbers([1, 2, 3, 7, 8, 5])) == "1:3,7:8,5"
    assert SequenceSet.from_numbers([]).items == ()


ranges = st.lists(
    st.tuples(st.integers(0, 50), st.integers(0, 50)),
    min_size=1,
    max_size=8,
)


@given(ranges, st.integers(0, 60))
def test_ranges_match_brute_force(items: list[tuple[int, int]], largest: int) -> None:
    s = SequenceSet(tuple(items))
    expected: set[int] = set()
    for first, last in items:
        a = largest if first == STAR else first
        b = largest if last == STAR else last
        expected.update(range(min(a, b), max(a, b) + 1))
    expected.discard(0)
    assert list(s.iter(largest)) == sorted(expected)
    assert s.count(largest) == len(expected)
    for n in range(0, 62):
        assert s.contains(n, largest) == (n in expected)


@given(ranges)
def test_render_parse_round_trip(items: list[tuple[int, int]]) -> None:
    s = SequenceSet(tuple(items))
    assert SequenceSet.parse(str(s)) == s


@given(st.lists(st.integers(1, 200), max_size=50))
def test_from_numbers_round_trip(numbers: list[int]) -> None:
    s = SequenceSet.from_numbers(numbers)
    flat = [n for a, b in s.items for n in range(a, b + 1)]
    assert flat == numbers


@given(st.text(alphabet="0123456789:*,$ x", max_size=20))
def test_parse_never_crashes(text: str) -> None:
    try:
        SequenceSet.parse(text)
    except ValueError:
        pass
