"""The maildrop view (drop.py) against a model: RFC 1939 §5 numbering and
deletion marks under any sequence of DELE / RSET."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.proto.pop3.commands import CommandError
from mailyard.proto.pop3.drop import DropEntry, Maildrop

sizes = st.lists(st.integers(0, 10_000), max_size=8)
ops = st.lists(st.one_of(st.integers(-1, 10), st.just("RSET")), max_size=30)


@given(sizes, ops)
def test_matches_the_model(entry_sizes: list[int], operations: list[int | str]) -> None:
    drop = Maildrop([DropEntry(size, f"u{i}") for i, size in enumerate(entry_sizes)])
    marked: set[int] = set()
    for op in operations:
        if op == "RSET":
            drop.reset()
            marked.clear()
            continue
        assert isinstance(op, int)
        if 1 <= op <= len(entry_sizes) and op - 1 not in marked:
            drop.delete(op)
            marked.add(op - 1)
        else:
            with pytest.raises(CommandError):
                drop.delete(op)
        live = [i for i in range(len(entry_sizes)) if i not in marked]
        assert drop.totals() == (len(live), sum(entry_sizes[i] for i in live))
        assert drop.scan_listing() == [f"{i + 1} {entry_sizes[i]}" for i in live]
        assert drop.uid_listing() == [f"{i + 1} u{i}" for i in live]
        assert drop.deleted == tuple(sorted(marked))
        for number in range(0, len(entry_sizes) + 2):
            if number - 1 in live:
                assert drop.index(number) == number - 1
            else:
                with pytest.raises(CommandError):
                    drop.index(number)
