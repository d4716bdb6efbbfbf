"""DATA and BDAT content readers (dataread.py), fed whole, byte by byte and split."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailyard.proto.smtp.dataread import BdatReader, ContentProblem, DotReader
from tests.proto.splitting import split_at


def read_dot(
    chunks: list[bytes], max_size: int = 1000, max_line: int = 100
) -> tuple[bytes, ContentProblem | None, bytes | None]:
    """Feed chunks; return (content, problem, bytes left after the end or None)."""
    reader = DotReader(max_size, max_line)
    out = b""
    for i, chunk in enumerate(chunks):
        used, done = reader.feed(chunk, 0)
        out += b"".join(reader.take())
        if done:
            return out, reader.problem, chunk[used:] + b"".join(chunks[i + 1 :])
    return out, reader.problem, None


def three_ways(data: bytes) -> list[list[bytes]]:
    return [[data], [data[i : i + 1] for i in range(len(data))], [data[:3], data[3:]]]


@pytest.mark.parametrize(
    ("wire", "content"),
    [
        (b".\r\n", b""),
        (b"a\r\n.\r\n", b"a\r\n"),
        (b"..\r\n.\r\n", b".\r\n"),
        (b"..a\r\n.b\r\n.\r\n", b".a\r\nb\r\n"),
        (b".\rx\r\n.\r\n", b"\rx\r\n"),
        (b"a\rb\r\n.\r\n", b"a\rb\r\n"),
        (b"\r\r\n.\r\n", b"\r\r\n"),
        (b"x\r\n\r\n.\r\n", b"x\r\n\r\n"),
    ],
)
def test_rfc5321_4_5_2_unstuffing(wire: bytes, content: bytes) -> None:
    for chunks in three_ways(wire + b"NEXT"):
        got, problem, rest = read_dot(chunks)
        assert (got, problem, rest) == (content, None, b"NEXT")


@pytest.mark.parametrize(
    "wire",
    [b"a\n.\n", b"a\n.\r\n", b"a\r.\r\n", b"a\r\n.\n", b"a\r\n.\rx", b"a\r\n. \r\n", b"\n.\r\n"],
)
def test_smuggling_endings_do_not_end_data(wire: bytes) -> None:
    for chunks in three_ways(wire):
        assert read_dot(chunks)[2] is None


@pytest.mark.parametrize(
    "wire", [b"a\nb\r\n.\r\n", b"\n.\r\n.\r\n", b".\n\r\n.\r\n", b"a\r\n\n.\r\n.\r\n"]
)
def test_bare_lf_is_refused_at_the_end(wire: bytes) -> None:
    for chunks in three_ways(wire):
        _content, problem, rest = read_dot(chunks)
        assert problem is ContentProblem.BARE_LF and rest == b""


def test_line_length_at_limit_and_over() -> None:
    ok = b"x" * 98 + b"\r\n"
    assert read_dot([ok + b".\r\n"])[1] is None
    assert read_dot([b"." + ok + b".\r\n"])[1] is None  # counted after unstuffing
    assert read_dot([b"x" + ok + b".\r\n"])[1] is ContentProblem.LINE_TOO_LONG
    long = b"y" * 500
    assert read_dot([long[:50], long[50:], b"\r\n.\r\n"])[1] is ContentProblem.LINE_TOO_LONG


def test_size_at_limit_and_over() -> None:
    body = (b"z" * 98 + b"\r\n") * 10
    assert read_dot([body + b".\r\n"], max_size=1000)[1] is None
    content, problem, rest = read_dot([body + b"!\r\n.\r\nX"], max_size=1000)
    assert problem is ContentProblem.TOO_BIG and rest == b"X"
    assert content == b""


def test_first_problem_wins() -> None:
    assert read_dot([b"a\nb" * 500 + b"\r\n.\r\n"])[1] is ContentProblem.BARE_LF


def test_content_before_a_problem_may_go_out_but_nothing_after() -> None:
    content, problem, _ = read_dot([b"ok\r\n", b"bad\nmore\r\n", b"x\r\n.\r\n"])
    assert content == b"ok\r\n" and problem is ContentProblem.BARE_LF


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=8))
def test_dot_reader_split_invariant(body: bytes, cuts: list[int]) -> None:
    wire = body + b"\r\n.\r\nTAIL"
    whole = read_dot([wire], max_size=10**6, max_line=10**6)
    split = read_dot(split_at(wire, cuts), max_size=10**6, max_line=10**6)
    assert whole[1:] == split[1:]
    if whole[1] is None:
        assert whole[0] == split[0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b)))
def test_stuffing_round_trip(lines: list[bytes]) -> None:
    """What a client dot-stuffs (RFC 5321 §4.5.2) comes back exactly."""
    content = b"".join(line + b"\r\n" for line in lines)
    stuffed = b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)
    got, problem, rest = read_dot([stuffed + b".\r\n"], max_size=10**6, max_line=10**6)
    assert (got, problem, rest) == (content, None, b"")


def test_bdat_reader_counts_exactly() -> None:
    reader = BdatReader(10)
    reader.start_chunk(4)
    assert reader.feed(b"ab", 0) == (2, False)
    assert reader.feed(b"cdEXTRA", 0) == (2, True)
    assert b"".join(reader.take()) == b"abcd"
    reader.start_chunk(7)
    assert reader.problem is ContentProblem.TOO_BIG
    assert reader.feed(b"1234567", 0) == (7, True)
    assert reader.take() == []


def test_bdat_reader_at_limit() -> None:
    reader = BdatReader(10)
    reader.start_chunk(10)
    assert reader.feed(b"0123456789", 0) == (10, True)
    assert reader.problem is None
