"""Hypothesis: both cores fed whole, byte by byte and cut at random give the
same events and answers; encoders round-trip through the cores; garbage
raises nothing but QmtpProtocolError."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailyard.proto.qmtp import (
    LineEnding,
    QmtpLimits,
    encode_qmqp_request,
    encode_qmtp_package,
)
from tests.proto.qmtp.helpers import Run, cut, drive, envelope_of, qmqp, qmtp
from tests.proto.splitting import bytewise

# CRLF mail as the queue holds it: lines without LF (a CR inside is fine),
# joined by CRLF, the last one maybe partial.
lines = st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")), max_size=6)
messages = st.builds(lambda ls, end: b"\r\n".join(ls) + end, lines, st.sampled_from([b"", b"\r\n"]))
addresses = st.binary(max_size=12)
packages = st.lists(
    st.tuples(messages, addresses, st.lists(addresses, max_size=4), st.sampled_from(LineEnding)),
    min_size=1, max_size=3,
)
cuts = st.lists(st.integers(min_value=0), max_size=8)
LIMITS = QmtpLimits(max_message_size=4096, max_discard_size=8192)


def qmtp_stream(items: list[tuple[bytes, bytes, list[bytes], LineEnding]]) -> bytes:
    return b"".join(encode_qmtp_package(m, s, r, line_ending=e) for m, s, r, e in items)


def summary(run: Run) -> tuple[object, ...]:
    return (run.kinds(), run.messages, envelope_of(run), run.output, run.error is None)


@given(packages, cuts)
def test_qmtp_round_trip_however_cut(items: list[tuple[bytes, bytes, list[bytes], LineEnding]],
                                     points: list[int]) -> None:
    data = qmtp_stream(items)
    runs = [drive(qmtp(LIMITS), pieces) for pieces in ([data], bytewise(data), cut(data, points))]
    assert summary(runs[0]) == summary(runs[1]) == summary(runs[2])
    run = runs[0]
    assert run.error is None
    assert run.messages == [m for m, _, _, _ in items]
    assert envelope_of(run) == [(s, r) for _, s, r, _ in items]
    assert len(run.responses) == sum(len(r) for _, _, r, _ in items)


@given(messages, addresses, st.lists(addresses, min_size=1, max_size=4), cuts)
def test_qmqp_round_trip_however_cut(message: bytes, sender: bytes, rcpts: list[bytes],
                                     points: list[int]) -> None:
    data = encode_qmqp_request(message, sender, rcpts)
    runs = [drive(qmqp(LIMITS), pieces) for pieces in ([data], bytewise(data), cut(data, points))]
    assert summary(runs[0]) == summary(runs[1]) == summary(runs[2])
    assert runs[0].messages == [message]
    assert envelope_of(runs[0]) == [(sender, rcpts)]
    assert runs[0].responses == [b"Kok 0"]


@given(packages, st.integers(min_value=0))
def test_answers_only_for_complete_packages(
        items: list[tuple[bytes, bytes, list[bytes], LineEnding]], at: int) -> None:
    encoded = [encode_qmtp_package(m, s, r, line_ending=e) for m, s, r, e in items]
    data = b"".join(encoded)
    prefix = data[: at % (len(data) + 1)]
    run = drive(qmtp(LIMITS), [prefix], eof=False)
    complete, size = 0, 0
    for package, (_, _, rcpts, _) in zip(encoded, items, strict=True):
        size += len(package)
        if size <= len(prefix):
            complete += len(rcpts)
    assert len(run.responses) == complete


garbage = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from([b"0", b"1", b"9", b":", b",", b"\r", b"\n", b"x", b"12:"]),
             max_size=60).map(b"".join),
)


@settings(max_examples=300)
@given(garbage, cuts)
def test_garbage_never_raises_anything_else(data: bytes, points: list[int]) -> None:
    for core in (qmtp(LIMITS), qmqp(LIMITS)):
        drive(core, cut(data, points))  # QmtpProtocolError is caught in drive(); nothing else


@settings(max_examples=200)
@given(packages, st.integers(min_value=0), st.binary(min_size=1, max_size=3))
def test_mutated_packages_never_raise_anything_else(
        items: list[tuple[bytes, bytes, list[bytes], LineEnding]], at: int, junk: bytes) -> None:
    data = bytearray(qmtp_stream(items))
    pos = at % len(data)
    data[pos : pos + len(junk)] = junk
    for core in (qmtp(LIMITS), qmqp(LIMITS)):
        drive(core, bytewise(bytes(data)))
