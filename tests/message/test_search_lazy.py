"""MessageView with a subject known in advance and the envelope loaded on
demand (message/search.py): SUBJECT never loads it, other envelope keys do,
and every answer is the one the whole envelope gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailyard.message.envelope import Envelope, envelope_of
from mailyard.message.search import (
    AddressField,
    AddressKey,
    MessageView,
    SearchKey,
    SubjectKey,
    matches,
)

MESSAGE = (b"From: Amy <amy@example.org>\r\nTo: bob@example.net\r\n"
           b"Subject: =?UTF-8?Q?K=C3=A4se?= and more\r\n\r\nbody\r\n")


def _lazy(envelope: Envelope, calls: list[int]) -> MessageView:
    def load() -> Envelope:
        calls.append(1)
        return envelope

    return MessageView(b"", size=10, subject=envelope.subject, load_envelope=load)


def test_subject_keys_do_not_load_the_envelope() -> None:
    envelope = envelope_of(MESSAGE)
    calls: list[int] = []
    view = _lazy(envelope, calls)
    assert matches(SubjectKey("käse"), view) and not matches(SubjectKey("brie"), view)
    assert calls == []
    assert matches(AddressKey(AddressField.FROM, "amy@"), view)
    assert matches(AddressKey(AddressField.TO, "bob"), view)
    assert calls == [1]  # loaded once, then kept
    assert view.subject == envelope.subject


_KEYS = st.one_of(
    st.builds(SubjectKey, st.text(max_size=6)),
    st.builds(AddressKey, st.sampled_from(list(AddressField)), st.text(max_size=6)),
)


@given(st.binary(max_size=300), st.lists(_KEYS, max_size=4))
def test_lazy_answers_equal_eager_ones(header: bytes, keys: list[SearchKey]) -> None:
    envelope = envelope_of(header + b"\r\n\r\n")
    eager = MessageView(b"", size=10, envelope=envelope)
    lazy = _lazy(envelope, [])
    assert [matches(k, lazy) for k in keys] == [matches(k, eager) for k in keys]


_RAW_SUBJECTS = st.one_of(
    st.binary(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=127), max_size=40).map(str.encode),
    st.sampled_from([b"=?UTF-8?Q?K=C3=A4se?=", b"Re: ABC", b"caf\xc3\xa9", b"\xe9t\xe9"]),
)


@given(st.text(max_size=5), _RAW_SUBJECTS)
def test_subject_fast_path_agrees_with_decoding(needle: str, raw: bytes) -> None:
    from mailyard.message.encoded import decode_words
    from mailyard.message.search import subject_matches

    expected = needle.casefold() in decode_words(raw).casefold()
    assert subject_matches(needle, raw) == expected


def test_subject_fast_path_examples() -> None:
    from mailyard.message.search import subject_matches

    assert subject_matches("NEEDLE", b"a needle here")
    assert subject_matches("k\u212a", b"KK")  # KELVIN SIGN casefolds to k
    assert not subject_matches("caf\u00e9", b"cafe")
    assert subject_matches("", b"")
