"""mailyard.message.cache.decode_summary_subject: the subject alone, read
from the head of an encoded summary (SEARCH SUBJECT over many messages)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.message.bodystructure import BodyStructure
from mailyard.message.cache import (
    CACHE_VERSION,
    CacheError,
    MessageSummary,
    decode_summary_subject,
    encode_summary,
    summarize,
)
from mailyard.message.envelope import Envelope
from tests.message import mime_corpus as corpus
from tests.message.test_cache import _NSTRING, BODIES, ENVELOPES


@pytest.mark.parametrize("name", sorted(corpus.CORPUS))
def test_corpus_subjects(name: str) -> None:
    summary = summarize(corpus.CORPUS[name])
    assert decode_summary_subject(encode_summary(summary)) == summary.envelope.subject


@given(ENVELOPES, BODIES, _NSTRING)
def test_subject_is_the_envelope_subject(envelope: Envelope, body: BodyStructure,
                                         refs: bytes | None) -> None:
    blob = encode_summary(MessageSummary(envelope, body, refs))
    assert decode_summary_subject(blob) == envelope.subject


def test_other_versions_and_shapes_are_refused() -> None:
    blob = encode_summary(summarize(corpus.SIMPLE))
    payload = json.loads(blob)
    payload[0] = CACHE_VERSION + 1
    for bad in (json.dumps(payload).encode(), b"", b"[1,", b"[1,[1,2]]", b'[1,["d"]]',
                b'[1,["d",5,', b"\xff\xfe"):
        with pytest.raises(CacheError):
            decode_summary_subject(bad)


@given(st.binary(max_size=200))
def test_garbage_raises_only_cache_error(blob: bytes) -> None:
    try:
        result = decode_summary_subject(blob)
    except CacheError:
        return
    assert result is None or isinstance(result, bytes)


@given(st.text(max_size=40), st.text(max_size=40))
def test_garbage_after_the_head_raises_only_cache_error(date: str, rest: str) -> None:
    blob = f"[{CACHE_VERSION},[{json.dumps(date)},{rest}".encode()
    try:
        decode_summary_subject(blob)
    except CacheError:
        pass
