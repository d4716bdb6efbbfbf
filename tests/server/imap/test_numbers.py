"""Message sets against a session's numbering (server/imap/numbers.py)."""

from __future__ import annotations

from array import array

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.proto.imap.sequence import STAR, SequenceSet
from mailyard.server.imap.fetch import row_numbers
from mailyard.server.imap.numbers import (
    OutOfRange,
    index_spans,
    member,
    pick,
    positions,
    span_count,
    uid_set,
)

UIDS = array("I", [3, 5, 6, 7, 10, 11, 20])
uid_lists = st.lists(st.integers(1, 60), max_size=30, unique=True).map(sorted)
ranges = st.lists(st.tuples(st.integers(0, 70), st.integers(0, 70)), min_size=1, max_size=6)


def _naive(uids: list[int], items: list[tuple[int, int]], uid: bool) -> list[int]:
    """Indexes the set names, the slow obvious way."""
    largest = (uids[-1] if uids else 0) if uid else len(uids)
    wanted: set[int] = set()
    for first, last in items:
        a = largest if first == STAR else first
        b = largest if last == STAR else last
        wanted.update(range(min(a, b), max(a, b) + 1))
    if uid:
        return [i for i, u in enumerate(uids) if u in wanted]
    return [n - 1 for n in sorted(wanted) if 1 <= n <= len(uids)]


def test_sequence_numbers() -> None:
    assert index_spans(UIDS, SequenceSet.parse("1:3,5"), uid=False) == ((0, 3), (4, 5))
    assert index_spans(UIDS, SequenceSet.parse("2:*"), uid=False) == ((1, 7),)
    assert index_spans(UIDS, SequenceSet.parse("9:*"), uid=False) == ((6, 7),)  # "*" clips
    with pytest.raises(OutOfRange):
        index_spans(UIDS, SequenceSet.parse("8"), uid=False)
    assert index_spans(array("I"), SequenceSet.parse("1:*"), uid=False) == ()


def test_uids() -> None:
    assert index_spans(UIDS, SequenceSet.parse("5:10"), uid=True) == ((1, 5),)
    assert index_spans(UIDS, SequenceSet.parse("1,4,21"), uid=True) == ()
    # RFC 9051 §6.4.8: n:* includes the last message even when n is larger.
    assert index_spans(UIDS, SequenceSet.parse("999:*"), uid=True) == ((6, 7),)
    assert index_spans(UIDS, SequenceSet(saved=True), uid=False, saved=(6, 20)) == (
        (2, 3), (6, 7))
    assert index_spans(UIDS, SequenceSet(saved=True), uid=True) == ()


@given(uid_lists, ranges, st.booleans())
def test_spans_match_the_naive_reading(uids: list[int], items: list[tuple[int, int]],
                                       uid: bool) -> None:
    numbers = SequenceSet(tuple((a if a else STAR, b if b else STAR) for a, b in items))
    values = array("I", uids)
    try:
        spans = index_spans(values, numbers, uid=uid)
    except OutOfRange:
        assert not uid and any(max(a, b) > len(uids) for a, b in numbers.items if STAR not in (a, b))
        return
    assert list(positions(spans)) == _naive(uids, list(numbers.items), uid)
    assert span_count(spans) == len(list(positions(spans)))
    assert list(pick(values, spans)) == [uids[i] for i in positions(spans)]


@given(uid_lists)
def test_uid_set_round_trip(uids: list[int]) -> None:
    numbers = uid_set(uids)
    if not uids:
        assert numbers.items == ()
        return
    assert list(numbers.iter(max(uids))) == uids
    inside = member(numbers, max(uids))
    assert all(inside(u) for u in uids) and not inside(max(uids) + 1)


def test_pick_shares_a_whole_array() -> None:
    assert pick(UIDS, ((0, len(UIDS)),)) is UIDS


def test_row_numbers_with_and_without_ghosts() -> None:
    spans = ((0, 2), (4, 6))
    assert list(row_numbers(UIDS, spans, 4, [3, 5, 10, 11])) == [1, 2, 5, 6]
    # uid 5 expunged meanwhile: the rows skip it, numbers stay the session's.
    assert list(row_numbers(UIDS, spans, 4, [3, 10, 11])) == [1, 5, 6]
