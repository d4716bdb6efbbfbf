"""Hypothesis strategies shared by the queue tests."""

from __future__ import annotations

from hypothesis import strategies as st

from mailyard.queue.envelope import Envelope
from mailyard.queue.status import Outcome

__all__ = ["envelopes", "field_text", "outcome_lists"]

# Any Unicode text a field may hold: no NUL/CR/LF, no lone surrogates.
field_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\0\r\n"),
    max_size=40,
)

envelopes = st.builds(
    Envelope,
    sender=field_text,
    recipients=st.lists(field_text.filter(bool), min_size=1, max_size=6).map(tuple),
    birth=st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False),
    smtputf8=st.booleans(),
    extra=st.lists(
        st.tuples(field_text.filter(lambda k: bool(k) and "=" not in k), field_text),
        max_size=3,
    ).map(tuple),
)

_record_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Cc"]), max_size=30
)

outcome_lists = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=4),
        st.builds(Outcome, code=st.sampled_from(["D", "T", "B"]), text=_record_text),
    ),
    max_size=12,
)
