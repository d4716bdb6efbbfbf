"""mailyard.message.sorting: SORT and SORT=DISPLAY."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailyard.message.envelope import envelope_of
from mailyard.message.sorting import (
    SortCriterion,
    SortItem,
    SortKey,
    display_value,
    sent_timestamp,
    sort_numbers,
)


def item(number: int, header: str, *, arrival: float = 0.0, size: int = 0) -> SortItem:
    envelope = envelope_of(header.replace("\n", "\r\n").encode() + b"\r\n")
    return SortItem(number, number, envelope, arrival, size)


ITEMS = [
    item(1, "Subject: Re: beta\nDate: 2 Jan 2026 10:00 +0000\nFrom: Zoe <zoe@x>\nTo: b@x", arrival=5, size=300),
    item(2, "Subject: alpha\nDate: 1 Jan 2026 10:00 +0000\nFrom: adam@x\nTo: a@x\nCc: c@x", arrival=4, size=100),
    item(3, "Subject: [list] Beta\nDate: 1 Jan 2026 09:00 -0500\nFrom: =?utf-8?q?=C3=89ve?= <eve@x>", arrival=3, size=200),
    item(4, "Subject: ALPHA (fwd)\nFrom: Bob <bob@x>\nTo: d@x", arrival=2, size=100),
    item(5, "Subject: gamma\nDate: garbage\nFrom: carl@x\nTo: c@x", arrival=1, size=50),
]  # fmt: skip


def by(*criteria: SortCriterion) -> list[int]:
    return sort_numbers(ITEMS, criteria)


def test_subject_ties_keep_sequence_order() -> None:
    # base subjects: beta, alpha, beta, alpha, gamma
    assert by(SortCriterion(SortKey.SUBJECT)) == [2, 4, 1, 3, 5]


def test_subject_then_reverse_date() -> None:
    # RFC 5256 §3 example shape: (SUBJECT REVERSE DATE).
    # Sent dates: 1 = 2 Jan 10:00, 3 = 1 Jan 14:00 UTC; 2 = 1 Jan 10:00, 4 = none
    # (INTERNALDATE 2, i.e. 1970).
    assert by(SortCriterion(SortKey.SUBJECT), SortCriterion(SortKey.DATE, reverse=True)) == [
        2, 4, 1, 3, 5,
    ]  # fmt: skip
    assert by(SortCriterion(SortKey.SUBJECT), SortCriterion(SortKey.DATE)) == [4, 2, 3, 1, 5]


def test_reverse_does_not_reverse_the_sequence_tie_break() -> None:
    # RFC 5256 §3: REVERSE SUBJECT is not the reverse of SUBJECT.
    assert by(SortCriterion(SortKey.SUBJECT, reverse=True)) == [5, 1, 3, 2, 4]


def test_date_falls_back_to_internal_date() -> None:
    # 4 has no Date:, 5 an unreadable one: their INTERNALDATEs (2 and 1) count.
    assert by(SortCriterion(SortKey.DATE)) == [5, 4, 2, 3, 1]
    assert sent_timestamp(ITEMS[4].envelope, 1.0) == 1.0


def test_arrival_and_size() -> None:
    assert by(SortCriterion(SortKey.ARRIVAL)) == [5, 4, 3, 2, 1]
    assert by(SortCriterion(SortKey.SIZE)) == [5, 2, 4, 3, 1]
    assert by(SortCriterion(SortKey.SIZE, reverse=True), SortCriterion(SortKey.ARRIVAL)) == [
        1, 3, 4, 2, 5,
    ]  # fmt: skip


def test_address_keys_use_the_mailbox_and_empty_sorts_first() -> None:
    assert by(SortCriterion(SortKey.FROM)) == [2, 4, 5, 3, 1]  # adam bob carl eve zoe
    assert by(SortCriterion(SortKey.TO)) == [3, 2, 1, 5, 4]  # "" a b c d
    assert by(SortCriterion(SortKey.CC)) == [1, 3, 4, 5, 2]  # only 2 has a Cc


def test_display_keys() -> None:
    # Zoe, adam@x, Éve (decoded), Bob, carl@x; É collates with E.
    assert by(SortCriterion(SortKey.DISPLAYFROM)) == [2, 4, 5, 3, 1]
    assert display_value(ITEMS[2].envelope.from_) == "Éve"
    assert display_value(ITEMS[1].envelope.from_) == "adam@x"
    assert display_value(ITEMS[2].envelope.to) == ""
    group = envelope_of(b"From: team:;\r\n\r\n")
    assert display_value(group.from_) == "team"  # RFC 5957 §3: the mailbox if no host


@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=20),
    st.lists(
        st.tuples(st.sampled_from([SortKey.SIZE, SortKey.ARRIVAL]), st.booleans()), max_size=3
    ),
)
def test_sort_is_a_permutation_ordered_by_the_criteria(
    values: list[tuple[int, int]], raw: list[tuple[SortKey, bool]]
) -> None:
    empty = envelope_of(b"")
    items = [SortItem(100 + i, i, empty, float(a), s) for i, (s, a) in enumerate(values)]
    criteria = [SortCriterion(key, reverse) for key, reverse in raw]
    result = sort_numbers(items, criteria)
    assert sorted(result) == [i.number for i in items]

    def key(it: SortItem) -> tuple[int, ...]:
        parts = []
        for c in criteria:
            v = it.size if c.key is SortKey.SIZE else int(it.internal_date)
            parts.append(-v if c.reverse else v)
        return (*parts, it.position)

    assert result == [it.number for it in sorted(items, key=key)]
