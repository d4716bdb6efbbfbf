"""The state table (states.py): every (state, verb) pair is decided."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailyard.proto.smtp.states import KNOWN_VERBS, SEQUENCE, State, check_sequence


@given(st.sampled_from(list(State)), st.sampled_from(sorted(KNOWN_VERBS)))
def test_every_pair_is_allowed_or_refused_with_503_or_554(state: State, verb: str) -> None:
    refusal = check_sequence(state, verb)
    if state is State.CLOSED:
        assert refusal is not None
    if refusal is not None:
        assert refusal.code in (503, 554) and refusal.enhanced == "5.5.1"


def test_rfc5321_3_3_transaction_order() -> None:
    assert check_sequence(State.GREETED, "MAIL") is None
    assert check_sequence(State.MAIL, "RCPT") is None
    assert check_sequence(State.RCPT, "DATA") is None
    assert check_sequence(State.RCPT, "BDAT") is None
    assert check_sequence(State.BDAT, "BDAT") is None
    assert check_sequence(State.MAIL, "DATA").code == 554  # type: ignore[union-attr]


def test_always_allowed_verbs() -> None:
    for verb in ("EHLO", "HELO", "RSET", "NOOP", "VRFY", "HELP", "QUIT"):
        assert SEQUENCE[verb] == {}
