"""mailyard.message.cache: the index's serialisation of parsed messages."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.message.bodystructure import (
    BodyStructure,
    Disposition,
    MultiPart,
    SinglePart,
    describe,
)
from mailyard.message.cache import (
    CACHE_VERSION,
    CacheError,
    MessageSummary,
    decode_body,
    decode_envelope,
    decode_summary,
    decode_summary_envelope,
    encode_body,
    encode_envelope,
    encode_summary,
    summarize,
)
from mailyard.message.envelope import Envelope, EnvelopeAddress, envelope_of
from tests.message import mime_corpus as corpus


@pytest.mark.parametrize("name", sorted(corpus.CORPUS))
def test_corpus_summaries_round_trip(name: str) -> None:
    data = corpus.CORPUS[name]
    summary = summarize(data)
    assert summary.envelope == envelope_of(data)
    assert summary.body == describe(data)
    assert decode_summary(encode_summary(summary)) == summary
    assert decode_envelope(encode_envelope(summary.envelope)) == summary.envelope
    assert decode_body(encode_body(summary.body)) == summary.body


def test_summary_keeps_references() -> None:
    summary = summarize(corpus.FORWARD)
    assert summary.references == b"<orig-1@example.com>"
    assert summarize(corpus.SIMPLE).references is None


def test_format_is_versioned_json() -> None:
    blob = encode_envelope(envelope_of(corpus.SIMPLE))
    payload = json.loads(blob)
    assert payload[0] == CACHE_VERSION == 1
    assert payload[1][1] == "Lunch on Thursday?"
    print(f"\nsummary of a simple message: {len(encode_summary(summarize(corpus.SIMPLE)))} octets")


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"{}",
        b"[]",
        b"[2, null]",  # another version
        b"[true, null]",
        b"[1]",
        b"[1, null, null]",
        b"[1, [1, 2]]",
        b'[1, ["\\u0100"]]',  # not an octet
        b"[1, 1.5]",
        b"[1, [[], []]]",
        b'[1, ["text", "plain", null, null, null, "7bit", -1, 0, null, null, null, null]]',
        b'[1, ["text", "plain", null, null, null, "7bit", 1, null, null, null, null]]',
        b'[1, ["text", "plain", ["odd"], null, null, "7bit", 1, 0, null, null, null, null]]',
        b"[1, " + b"[" * 5000 + b"]" * 5000 + b"]",
    ],
)
def test_damaged_blobs_raise_cache_error(blob: bytes) -> None:
    with pytest.raises(CacheError):
        decode_body(blob)
    with pytest.raises(CacheError):
        decode_envelope(blob)


# -- round trips of generated values ---------------------------------------------------

_NSTRING = st.none() | st.binary(max_size=12)
_PARAMS = st.lists(st.tuples(st.binary(max_size=6), st.binary(max_size=6)), max_size=3).map(tuple)
_DISPOSITION = st.none() | st.builds(Disposition, st.binary(max_size=10), _PARAMS)
_LANGUAGE = st.none() | st.lists(st.binary(max_size=5), min_size=1, max_size=3).map(tuple)
_ADDRESSES = st.lists(
    st.builds(EnvelopeAddress, _NSTRING, _NSTRING, _NSTRING, _NSTRING), max_size=3
).map(tuple)
ENVELOPES = st.builds(
    Envelope, _NSTRING, _NSTRING, _ADDRESSES, _ADDRESSES, _ADDRESSES, _ADDRESSES, _ADDRESSES,
    _ADDRESSES, _NSTRING, _NSTRING,
)  # fmt: skip
_SIZES = st.integers(0, 2**40)


def _single(maintype: st.SearchStrategy[bytes], lines: bool) -> st.SearchStrategy[SinglePart]:
    return st.builds(
        SinglePart,
        maintype=maintype,
        subtype=st.binary(max_size=8),
        params=_PARAMS,
        content_id=_NSTRING,
        description=_NSTRING,
        encoding=st.binary(max_size=8),
        size=_SIZES,
        lines=_SIZES if lines else st.none(),
        md5=_NSTRING,
        disposition=_DISPOSITION,
        language=_LANGUAGE,
        location=_NSTRING,
    )


def _message(inner: st.SearchStrategy[BodyStructure]) -> st.SearchStrategy[SinglePart]:
    return st.builds(
        SinglePart,
        maintype=st.just(b"message"),
        subtype=st.sampled_from([b"rfc822", b"global"]),
        params=_PARAMS,
        content_id=_NSTRING,
        description=_NSTRING,
        encoding=st.binary(max_size=8),
        size=_SIZES,
        lines=_SIZES,
        envelope=ENVELOPES,
        body=inner,
        md5=_NSTRING,
        disposition=_DISPOSITION,
        language=_LANGUAGE,
        location=_NSTRING,
    )


def _multi(inner: st.SearchStrategy[BodyStructure]) -> st.SearchStrategy[MultiPart]:
    return st.builds(
        MultiPart,
        parts=st.lists(inner, min_size=1, max_size=3).map(tuple),
        subtype=st.binary(max_size=8),
        params=_PARAMS,
        disposition=_DISPOSITION,
        language=_LANGUAGE,
        location=_NSTRING,
    )


_LEAF_TYPES = st.sampled_from([b"application", b"image", b"audio", b"video", b"x-other", b""])
BODIES: st.SearchStrategy[BodyStructure] = st.recursive(
    _single(_LEAF_TYPES, lines=False) | _single(st.just(b"text"), lines=True),
    lambda inner: _message(inner) | _multi(inner),
    max_leaves=8,
)


@given(ENVELOPES)
def test_envelope_round_trip(envelope: Envelope) -> None:
    assert decode_envelope(encode_envelope(envelope)) == envelope


@given(BODIES)
def test_body_round_trip(body: BodyStructure) -> None:
    assert decode_body(encode_body(body)) == body


@given(ENVELOPES, BODIES, _NSTRING)
def test_summary_round_trip(envelope: Envelope, body: BodyStructure, refs: bytes | None) -> None:
    summary = MessageSummary(envelope, body, refs)
    assert decode_summary(encode_summary(summary)) == summary


@given(ENVELOPES, BODIES, _NSTRING)
def test_summary_envelope_alone(envelope: Envelope, body: BodyStructure,
                                refs: bytes | None) -> None:
    blob = encode_summary(MessageSummary(envelope, body, refs))
    assert decode_summary_envelope(blob) == envelope
    with pytest.raises(CacheError):
        decode_summary_envelope(encode_envelope(envelope))  # not a summary


@given(st.binary(max_size=200))
def test_garbage_bytes_raise_only_cache_error(blob: bytes) -> None:
    for decode in (decode_body, decode_envelope, decode_summary, decode_summary_envelope):
        try:
            decode(blob)
        except CacheError:
            pass


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False)
    | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=6),
    max_leaves=30,
)


@given(_JSON)
def test_garbage_json_raises_only_cache_error(value: object) -> None:
    blob = json.dumps([CACHE_VERSION, value, value, value][:2]).encode()
    for decode in (decode_body, decode_envelope):
        try:
            decode(blob)
        except CacheError:
            pass


def test_summary_speed() -> None:
    typical = corpus.MIXED  # a few KB, three parts
    large = corpus.large_multipart(100_000)
    rounds = 200
    started = time.perf_counter()
    for _ in range(rounds):
        summary = summarize(typical)
    per_summary = (time.perf_counter() - started) / rounds
    blob = encode_summary(summary)
    started = time.perf_counter()
    for _ in range(rounds):
        decode_summary(blob)
    per_decode = (time.perf_counter() - started) / rounds
    started = time.perf_counter()
    summarize(large)
    per_large = time.perf_counter() - started
    print(
        f"\nsummarize {len(typical)} octets: {per_summary * 1e6:.0f} us; "
        f"{len(large)} octets: {per_large * 1e3:.2f} ms; "
        f"decode_summary ({len(blob)} octets): {per_decode * 1e6:.0f} us"
    )
