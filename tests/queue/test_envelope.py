"""Envelope encoding (docs/design/queue.md, "Message file"): round trips and strictness."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.queue.envelope import (
    MAGIC,
    MAX_ENVELOPE,
    Envelope,
    decode_envelope,
    encode_envelope,
    read_envelope,
)
from mailyard.queue.errors import QueueCorrupt
from tests.queue.strategies import envelopes

SAMPLE = Envelope(
    "s@example.org", ("a@example.test", "b@exämple.test"), 1733072400.25,
    smtputf8=True, extra=(("kind", "bounce"),),
)


def test_known_encoding() -> None:
    assert encode_envelope(SAMPLE) == (
        b"mailyard-queue 1\n"
        b"B1733072400.25\0U1\0Fs@example.org\0Ta@example.test\0"
        + "Tb@exämple.test".encode() + b"\0Xkind=bounce\0\0"
    )


def test_null_sender_and_integer_birth() -> None:
    env = Envelope("", ("a@b",), 0)
    assert decode_envelope(encode_envelope(env))[0] == env


@given(envelopes, st.binary(max_size=200))
def test_round_trip(envelope: Envelope, body: bytes) -> None:
    header = encode_envelope(envelope)
    decoded, offset = decode_envelope(header + body)
    assert decoded == envelope
    assert offset == len(header)


@given(envelopes, st.binary(max_size=100))
def test_read_envelope_from_file(envelope: Envelope, body: bytes) -> None:
    header = encode_envelope(envelope)
    assert read_envelope(io.BytesIO(header + body)) == (envelope, len(header))


def test_read_envelope_across_chunks() -> None:
    env = Envelope("s", tuple(f"r{i}@example.test" * 8 for i in range(1000)), 5.0)
    header = encode_envelope(env)
    assert len(header) > 64 * 1024
    assert read_envelope(io.BytesIO(header + b"body\0\0")) == (env, len(header))


@given(st.binary(max_size=300))
def test_garbage_is_queue_corrupt(data: bytes) -> None:
    try:
        decode_envelope(data)
    except QueueCorrupt:
        pass


@given(st.binary(max_size=120))
def test_garbage_after_magic_is_queue_corrupt(data: bytes) -> None:
    try:
        decode_envelope(MAGIC + data)
    except QueueCorrupt:
        pass


@given(envelopes, st.data())
def test_mutated_header_decodes_or_is_corrupt(envelope: Envelope, data: st.DataObject) -> None:
    header = bytearray(encode_envelope(envelope))
    pos = data.draw(st.integers(0, len(header) - 1))
    header[pos] = data.draw(st.integers(0, 255))
    try:
        decoded, _ = decode_envelope(bytes(header))
    except QueueCorrupt:
        return
    assert isinstance(decoded, Envelope)


@given(envelopes)
def test_every_truncation_is_corrupt(envelope: Envelope) -> None:
    header = encode_envelope(envelope)
    for cut in range(len(header)):
        with pytest.raises(QueueCorrupt):
            decode_envelope(header[:cut])


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"mailyard-queue 2\nB1.0\0U0\0F\0Ta\0\0",
        b"MAILYARD-QUEUE 1\nB1.0\0U0\0F\0Ta\0\0",
        MAGIC + b"B1.0\0U0\0F\0\0",  # no recipient
        MAGIC + b"B1.0\0U0\0F\0Ta\0Xnokey\0\0",  # note without '='
        MAGIC + b"B1.0\0U0\0F\0Ta\0X=v\0\0",  # empty key
        MAGIC + b"B1.0\0U0\0F\0Ta\0Xk=v\0Tb\0\0",  # recipient after a note
        MAGIC + b"B1.0\0U2\0F\0Ta\0\0",
        MAGIC + b"Bnan\0U0\0F\0Ta\0\0",
        MAGIC + b"B1_0\0U0\0F\0Ta\0\0",
        MAGIC + b"B 1\0U0\0F\0Ta\0\0",
        MAGIC + b"B-1.0\0U0\0F\0Ta\0\0",
        MAGIC + b"B1e999\0U0\0F\0Ta\0\0",
        MAGIC + b"U0\0B1.0\0F\0Ta\0\0",  # wrong order
        MAGIC + b"B1.0\0U0\0Fs\xff\0Ta\0\0",  # not UTF-8
        MAGIC + b"B1.0\0U0\0F\0Ta\rb\0\0",  # CR inside a field
        MAGIC + b"B1.0\0U0\0F\0T\0\0",  # empty recipient
        MAGIC + b"B1.0\0U0\0F\0Ta\0",  # no terminator
        MAGIC + b"\0",
    ],
)
def test_damaged_headers(data: bytes) -> None:
    with pytest.raises(QueueCorrupt):
        decode_envelope(data)


def test_terminator_beyond_limit_is_corrupt() -> None:
    data = MAGIC + b"B1.0\0U0\0F\0T" + b"a" * MAX_ENVELOPE + b"\0\0"
    with pytest.raises(QueueCorrupt):
        decode_envelope(data)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sender": "a\0b"},
        {"sender": "a\rb"},
        {"sender": "a\nb"},
        {"recipients": ()},
        {"recipients": ("",)},
        {"recipients": ("x\ny",)},
        {"recipients": ("\udcff",)},
        {"birth": float("nan")},
        {"birth": float("inf")},
        {"birth": -1.0},
        {"birth": 10**400},
        {"extra": (("k\0", "v"),)},
        {"extra": (("k", "v\n"),)},
        {"extra": (("", "v"),)},
        {"extra": (("k=1", "v"),)},
    ],
)
def test_envelope_refuses_bad_fields(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"sender": "s", "recipients": ("r",), "birth": 1.0}
    fields.update(kwargs)
    with pytest.raises(ValueError):
        Envelope(**fields)  # type: ignore[arg-type]


def test_oversized_envelope_is_refused() -> None:
    env = Envelope("s", tuple("r" * 1000 for _ in range(1100)), 1.0)
    with pytest.raises(ValueError):
        encode_envelope(env)
