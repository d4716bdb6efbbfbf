"""The state file (docs/design/queue.md, "State file"): lines, torn tails, folding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.queue.errors import QueueCorrupt
from mailyard.queue.status import (
    Outcome,
    RecipientState,
    RecipientStatus,
    encode_records,
    parse_records,
    summarize,
)
from tests.queue.strategies import outcome_lists

COUNT = 5  # recipients in the strategies' messages


def test_known_lines() -> None:
    data = encode_records([(0, Outcome("D", "ok")), (12, Outcome("T", "4.3.0 busy"))])
    assert data == b"0 D ok\n12 T 4.3.0 busy\n"


def test_control_characters_cannot_forge_lines() -> None:
    data = encode_records([(0, Outcome("T", "first\r\n1 D forged\0"))])
    assert data.count(b"\n") == 1
    assert parse_records(data, 2) == [(0, Outcome("T", "first  1 D forged "))]


@given(outcome_lists)
def test_round_trip(records: list[tuple[int, Outcome]]) -> None:
    assert parse_records(encode_records(records), COUNT) == records


@given(outcome_lists, st.data())
def test_torn_last_line_is_ignored(records: list[tuple[int, Outcome]], data: st.DataObject) -> None:
    encoded = encode_records(records)
    cut = data.draw(st.integers(0, len(encoded)))
    prefix = encoded[:cut]
    complete_lines = prefix.count(b"\n")
    assert parse_records(prefix, COUNT) == records[:complete_lines]


@given(outcome_lists, outcome_lists, st.data())
def test_repaired_tear_keeps_every_later_record(
    before: list[tuple[int, Outcome]], after: list[tuple[int, Outcome]], data: st.DataObject
) -> None:
    """record() ends a torn line with "\\n" before appending (store.py)."""
    encoded = encode_records(before)
    cut = data.draw(st.integers(0, len(encoded)))
    torn = encoded[:cut]
    repaired = torn + (b"\n" if torn and not torn.endswith(b"\n") else b"") + encode_records(after)
    parsed = parse_records(repaired, COUNT)
    kept = torn.count(b"\n")
    assert parsed[:kept] == before[:kept]
    assert parsed[-len(after):] == after if after else True
    # A remnant that still parses has its index and code intact (only the text is cut).
    middle = parsed[kept:len(parsed) - len(after)]
    assert len(middle) <= 1
    for (index, outcome), (orig_index, orig) in zip(middle, before[kept:], strict=False):
        assert (index, outcome.code) == (orig_index, orig.code)
        # A tear inside a multi-byte character decodes as U+FFFD.
        assert orig.text.startswith(outcome.text.rstrip("\ufffd"))


@given(st.binary(max_size=300))
def test_garbage_never_crashes(data: bytes) -> None:
    try:
        records = parse_records(data, COUNT)
    except QueueCorrupt:
        return
    assert all(0 <= index < COUNT for index, _ in records)


@pytest.mark.parametrize("line", [b"01 D x", b"+1 D x", b" 1 D x", b"1 X x", b"1D x", b"\0\0\0",
                                  b"\xd9\xa1 D arabic-indic digit", b"1_0 D x", b""])
def test_malformed_complete_lines_are_skipped(line: bytes) -> None:
    assert parse_records(line + b"\n0 D ok\n", 2) == [(0, Outcome("D", "ok"))]


def test_index_beyond_recipients_is_corrupt() -> None:
    with pytest.raises(QueueCorrupt):
        parse_records(b"2 D ok\n", 2)


def test_encode_refuses_bad_index() -> None:
    for bad in (-1, True):
        with pytest.raises(ValueError):
            encode_records([(bad, Outcome("D", "x"))])


def test_outcome_refuses_unknown_code() -> None:
    with pytest.raises(ValueError):
        Outcome("X", "x")  # type: ignore[arg-type]


def test_summarize_latest_wins_and_counts_attempts() -> None:
    records = [
        (0, Outcome("T", "busy")),
        (1, Outcome("T", "full")),
        (0, Outcome("T", "busy again")),
        (0, Outcome("D", "done")),
        (1, Outcome("B", "5.1.1 no such user")),
    ]
    assert summarize(("a", "b", "c"), records) == (
        RecipientStatus(0, "a", RecipientState.DELIVERED, 3, None),
        RecipientStatus(1, "b", RecipientState.FAILED, 2, "5.1.1 no such user"),
        RecipientStatus(2, "c", RecipientState.PENDING, 0, None),
    )


@given(outcome_lists)
def test_summarize_matches_last_record(records: list[tuple[int, Outcome]]) -> None:
    statuses = summarize(tuple(f"r{i}" for i in range(COUNT)), records)
    for status in statuses:
        mine = [o for i, o in records if i == status.index]
        assert status.attempts == len(mine)
        if not mine:
            assert status.state is RecipientState.PENDING
            continue
        expected = {"D": RecipientState.DELIVERED, "T": RecipientState.PENDING,
                    "B": RecipientState.FAILED}[mine[-1].code]
        assert status.state is expected
        assert status.last_error == (None if mine[-1].code == "D" else mine[-1].text)
