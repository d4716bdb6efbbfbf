"""The shared receive buffer (proto/buffer.py): the bounded line reader,
fed whole, byte by byte and split anywhere; memory stays bounded."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.proto.buffer import TOO_LONG, LineBuffer, TooLong


def test_lines_crlf_and_bare_lf() -> None:
    buf = LineBuffer()
    buf.append(b"a\r\nb\nc")
    assert buf.next_line(10) == b"a"
    assert buf.next_line(10) == b"b"
    assert buf.next_line(10) is None
    buf.append(b"\r\n")
    assert buf.next_line(10) == b"c"


def test_lone_cr_stays_in_the_line() -> None:
    buf = LineBuffer()
    buf.append(b"a\rb\r\n\r\n")
    assert buf.next_line(10) == b"a\rb"
    assert buf.next_line(10) == b""


def test_limit_counts_the_line_end() -> None:
    buf = LineBuffer()
    buf.append(b"12345678\r\n" + b"123456789\r\nok\r\n")
    assert buf.next_line(10) == b"12345678"
    assert buf.next_line(10) is TOO_LONG
    assert buf.next_line(10) == b"ok"


def test_over_long_line_is_dropped_as_it_arrives() -> None:
    buf = LineBuffer()
    buf.append(b"x" * 50)
    assert buf.next_line(10) is None
    assert len(buf) == 0
    for _ in range(100):
        buf.append(b"y" * 1000)
        assert buf.next_line(10) is None
        assert len(buf) == 0
    buf.append(b"end\r\nnext\r\n")
    assert buf.next_line(10) is TOO_LONG
    assert buf.next_line(10) == b"next"


def test_too_long_is_reported_once() -> None:
    buf = LineBuffer()
    buf.append(b"x" * 20 + b"\n")
    assert buf.next_line(10) is TOO_LONG
    assert buf.next_line(10) is None


def test_clear_and_peek() -> None:
    buf = LineBuffer()
    buf.append(b"one\r\ntwo")
    assert buf.next_line(10) == b"one"
    assert buf.peek() == b"two"
    buf.advance(1)
    assert buf.peek() == b"wo"
    buf.clear()
    assert len(buf) == 0


def test_clear_forgets_a_dropped_line() -> None:
    buf = LineBuffer()
    buf.append(b"x" * 50)
    assert buf.next_line(10) is None
    buf.clear()  # e.g. TLS started: the tail of the long line is new input
    buf.append(b"ok\r\n")
    assert buf.next_line(10) == b"ok"


def test_misuse() -> None:
    buf = LineBuffer()
    buf.append(b"ab")
    with pytest.raises(ValueError):
        buf.advance(3)
    with pytest.raises(ValueError):
        buf.advance(-1)
    with pytest.raises(ValueError):
        buf.next_line(1)


def test_consumed_bytes_are_released() -> None:
    buf = LineBuffer()
    for _ in range(10_000):
        buf.append(b"line\r\n")
        assert buf.next_line(100) == b"line"
    assert len(buf._data) == 0  # the memory bound is the point


def reference(data: bytes, max_len: int) -> list[bytes | TooLong]:
    """What next_line must yield for ``data``: complete lines only."""
    out: list[bytes | TooLong] = []
    for raw in data.split(b"\n")[:-1]:
        if len(raw) + 1 > max_len:
            out.append(TOO_LONG)
        else:
            out.append(raw[:-1] if raw.endswith(b"\r") else raw)
    return out


def read_all(chunks: list[bytes], max_len: int) -> list[bytes | TooLong]:
    buf = LineBuffer()
    out: list[bytes | TooLong] = []
    for chunk in chunks:
        buf.append(chunk)
        while (line := buf.next_line(max_len)) is not None:
            out.append(line)
        assert len(buf) < max_len  # never more than one unfinished line's worth
    return out


data_strategy = st.lists(
    st.one_of(st.sampled_from([b"\r\n", b"\n", b"\r", b"abc", b"x" * 30]), st.binary(max_size=20)),
    max_size=30,
).map(b"".join)


@given(data_strategy, st.integers(2, 40), st.lists(st.integers(0, 2000), max_size=12))
def test_any_split_gives_the_same_lines(data: bytes, max_len: int, cuts: list[int]) -> None:
    expected = reference(data, max_len)
    assert read_all([data], max_len) == expected
    assert read_all([data[i : i + 1] for i in range(len(data))], max_len) == expected
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    pieces = [data[a:b] for a, b in itertools.pairwise(points)]
    assert read_all(pieces, max_len) == expected


def test_take_consumes_at_most_what_is_asked() -> None:
    buf = LineBuffer()
    buf.append(b"abcdef")
    assert buf.take(4) == b"abcd"
    assert buf.take(10) == b"ef"
    assert buf.take(3) == b""
    assert len(buf) == 0
