"""QMTP's two message encodings become CRLF mail (lineends.py), whatever the
chunk boundaries."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.proto.qmtp import LineEndConverter, LineEnding, QmtpProtocolError
from tests.proto.qmtp.helpers import cut

BARE_LF = re.compile(rb"(?<!\r)\n")


def convert(ending: LineEnding, pieces: list[bytes]) -> bytes:
    converter = LineEndConverter(ending)
    return b"".join(converter.feed(p) for p in pieces)


def test_markers() -> None:
    assert LineEnding.from_marker(0x0D) is LineEnding.CRLF
    assert LineEnding.from_marker(0x0A) is LineEnding.LF
    with pytest.raises(QmtpProtocolError):
        LineEnding.from_marker(0x41)


def test_lf_convention_every_lf_is_a_line_end() -> None:
    assert convert(LineEnding.LF, [b"a\nb\n"]) == b"a\r\nb\r\n"
    # QMTP §5: a CR inside a line is part of the line and is kept.
    assert convert(LineEnding.LF, [b"a\r\nb"]) == b"a\r\r\nb"


def test_crlf_convention_is_kept_byte_exact() -> None:
    data = b"Subject: x\r\n\r\nbare\rcr\r\n"
    assert convert(LineEnding.CRLF, [data]) == data


def test_crlf_convention_bare_lf_becomes_crlf() -> None:
    # An unsafe message (QMTP §5 lets us change it); no bare LF reaches the queue.
    assert convert(LineEnding.CRLF, [b"a\nb\r\n\n"]) == b"a\r\nb\r\n\r\n"


def test_crlf_across_a_chunk_boundary() -> None:
    assert convert(LineEnding.CRLF, [b"a\r", b"\nb"]) == b"a\r\nb"
    assert convert(LineEnding.CRLF, [b"a", b"\nb"]) == b"a\r\nb"
    assert convert(LineEnding.CRLF, [b"a\r", b"", b"\n"]) == b"a\r\n"
    assert convert(LineEnding.CRLF, [b"\r", b"\n\n"]) == b"\r\n\r\n"


chunks = st.lists(st.sampled_from([b"\r", b"\n", b"x", b"\r\n", b"\n\r", b"."]), max_size=40)


@given(chunks, st.lists(st.integers(min_value=0), max_size=6), st.sampled_from(LineEnding))
def test_chunking_never_changes_the_result(parts: list[bytes], points: list[int],
                                           ending: LineEnding) -> None:
    data = b"".join(parts)
    assert convert(ending, cut(data, points)) == convert(ending, [data])


@given(chunks)
def test_crlf_output_has_no_bare_lf_and_only_adds_crs(parts: list[bytes]) -> None:
    data = b"".join(parts)
    out = convert(LineEnding.CRLF, [data])
    assert BARE_LF.search(out) is None
    assert out.replace(b"\r\n", b"\n") == data.replace(b"\r\n", b"\n")
    if BARE_LF.search(data) is None:
        assert out == data


@given(chunks)
def test_lf_output_is_each_line_joined_by_crlf(parts: list[bytes]) -> None:
    data = b"".join(parts)
    assert convert(LineEnding.LF, [data]).split(b"\r\n") == data.split(b"\n")
