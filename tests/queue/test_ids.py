"""Queue ids (docs/design/queue.md, "Queue ids")."""

from __future__ import annotations

import re
import threading

import pytest

from mailyard.queue.ids import ID_LENGTH, check_id, is_id, new_id


def test_shape_and_order() -> None:
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    for qid in ids:
        assert len(qid) == ID_LENGTH <= 32
        assert re.fullmatch(r"[0-9a-z]+", qid)
        assert check_id(qid) == qid


def test_unique_across_threads() -> None:
    found: list[list[str]] = [[] for _ in range(8)]

    def work(slot: list[str]) -> None:
        slot.extend(new_id() for _ in range(500))

    threads = [threading.Thread(target=work, args=(slot,)) for slot in found]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [qid for slot in found for qid in slot]
    assert len(set(flat)) == len(flat)


@pytest.mark.parametrize(
    "bad", ["", "../x", "a/b", ".", "..", "x" * 33, "a b", "a\0", "a\n", "ab-c", "٣", "é", "/etc"]
)
def test_malformed_ids(bad: str) -> None:
    assert not is_id(bad)
    with pytest.raises(ValueError):
        check_id(bad)


def test_not_a_string() -> None:
    with pytest.raises(ValueError):
        check_id(42)  # type: ignore[arg-type]


def test_accepts_any_ascii_alnum_up_to_32() -> None:
    assert check_id("A" * 32) == "A" * 32
    assert check_id("0") == "0"
