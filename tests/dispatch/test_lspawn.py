"""The one-line protocol between the delivery worker and its lspawn children."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.dispatch.lspawn import decode_verdict, encode_verdict
from mailyard.dispatch.process import Verdict
from mailyard.queue.store import Queue

ids = st.builds(lambda _: Queue.new_id(), st.integers())
verdicts = st.builds(
    Verdict,
    finished=st.booleans(),
    next_attempt=st.none() | st.floats(min_value=0, max_value=1e12, allow_nan=False),
    injected=st.lists(ids, max_size=3).map(tuple),
    remote=st.lists(st.integers(0, 10**9 - 1), max_size=5).map(tuple),
)


@given(verdicts)
def test_verdicts_round_trip(verdict: Verdict) -> None:
    line = encode_verdict(verdict)
    assert "\n" not in line
    assert decode_verdict(line) == verdict


def test_the_remote_recipients_travel_in_the_third_field() -> None:
    verdict = Verdict(finished=False, next_attempt=None, remote=(0, 2))
    assert encode_verdict(verdict) == "0 - 0,2"
    assert encode_verdict(Verdict(finished=True)) == "1 - -"


@given(st.text(max_size=80))
def test_garbage_answers_raise_value_error_only(line: str) -> None:
    try:
        decode_verdict(line)
    except ValueError:
        pass


@pytest.mark.parametrize("line", [
    "", "2 - -", "1", "1 -", "0 soon -", "1 - - ../etc/passwd", "1 - - a/b", "1 - ../x",
    "1 - 1,,2", "1 - -1", "1 - 1e3", "1 - 1234567890",
])
def test_malformed_answers_are_refused(line: str) -> None:
    with pytest.raises(ValueError):
        decode_verdict(line)
