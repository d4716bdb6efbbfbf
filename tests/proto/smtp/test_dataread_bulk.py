"""DotReader's bulk scanning against a plain octet-by-octet model of the policy.

The reader checks whole runs of content with ``count``/``rfind`` and walks
line by line only where a rule breaks (issue 7). The model below reads one
octet at a time, exactly as the module doc states the rules, and hands out
content at the same moments (at a line-start dot and at the end of a feed),
so even the order of several problems must agree, feed for feed.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailyard.proto.smtp.dataread import ContentProblem, DotReader
from tests.proto.splitting import split_at

_CR, _LF, _DOT = 0x0D, 0x0A, 0x2E


class _Model:
    """RFC 5321 §4.5.2 unstuffing plus the module's policy, one octet at a time."""

    def __init__(self, max_size: int, max_line: int) -> None:
        self.max_size, self.max_line = max_size, max_line
        self.state = "start"  # start | dot | dot_cr | mid
        self.line = 0
        self.prev_cr = False
        self.size = 0
        self.problem: ContentProblem | None = None
        self.out = bytearray()
        self.pending = bytearray()

    def flag(self, problem: ContentProblem) -> None:
        if self.problem is None:
            self.problem = problem
            self.out.clear()

    def flush(self) -> None:
        if not self.pending:
            return
        self.size += len(self.pending)
        if self.size > self.max_size:
            self.flag(ContentProblem.TOO_BIG)
        if self.problem is None:
            self.out += self.pending
        self.pending.clear()

    def feed(self, buf: bytes) -> tuple[int, bool]:
        for index, octet in enumerate(buf):
            if self.state == "dot_cr":
                if octet == _LF:
                    return index + 1, True
                self.pending.append(_CR)  # ".\r" + other: the CR is content
                if index == 0:
                    self.flush()  # a CR held over from the last feed goes out at once
                self.state, self.line, self.prev_cr = "mid", 1, True
            elif self.state == "start":
                if octet == _DOT:
                    self.flush()
                    self.state = "dot"
                    continue
                self.state, self.line, self.prev_cr = "mid", 0, False
            elif self.state == "dot":
                if octet == _CR:
                    self.state = "dot_cr"
                    continue
                self.state, self.line, self.prev_cr = "mid", 0, False
            self.mid(octet)
        self.flush()
        return len(buf), False

    def mid(self, octet: int) -> None:
        self.pending.append(octet)
        self.line += 1
        if self.line > self.max_line:
            self.flag(ContentProblem.LINE_TOO_LONG)
        if octet == _LF:
            if self.prev_cr:
                self.state, self.line = "start", 0
            else:
                self.flag(ContentProblem.BARE_LF)
        self.prev_cr = octet == _CR

    def take(self) -> bytes:
        out = bytes(self.out)
        self.out.clear()
        return out


_PIECES = st.sampled_from(
    [b"a", b"bc", b"\r", b"\n", b".", b"\r\n", b"\r\n.", b"..", b"\r\n.\r", b"xyzxyzxyz"]
)


@settings(max_examples=600, deadline=None)
@given(
    st.lists(_PIECES, max_size=60),
    st.lists(st.integers(0, 400), max_size=6),
    st.integers(1, 14),
    st.integers(0, 80),
    st.booleans(),
)
def test_reader_agrees_with_the_octet_model(
    pieces: list[bytes], cuts: list[int], max_line: int, max_size: int, terminate: bool
) -> None:
    wire = b"".join(pieces) + (b"\r\n.\r\nTAIL" if terminate else b"")
    reader, model = DotReader(max_size, max_line), _Model(max_size, max_line)
    for chunk in split_at(wire, cuts):
        got = reader.feed(chunk, 0)
        assert got == model.feed(chunk)
        assert reader.problem is model.problem
        assert b"".join(reader.take()) == model.take()
        if got[1]:
            break


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 50), st.integers(1, 30))
def test_reader_never_crashes_and_position_is_in_range(
    data: bytes, pos: int, max_line: int
) -> None:
    reader = DotReader(100, max_line)
    start = min(pos, len(data))
    used, _done = reader.feed(data, start)
    assert start <= used <= len(data)


def test_large_message_in_large_chunks() -> None:
    line = b"abcdefghijklmnopqrstuvwxyz0123456789" * 2 + b"\r\n"
    expected = b".leading dot\r\n" + line * 3000 + b".\r\nnext line\r\n" + line * 10
    # RFC 5321 §4.5.2: the client doubles every line-start dot.
    wire = b"." + expected.replace(b"\r\n.", b"\r\n..") + b".\r\nAFTER"
    for size in (1, 7, 4096, 65536, len(wire)):
        reader = DotReader(10**7, 1000)
        out, rest = b"", b""
        for start in range(0, len(wire), size):
            chunk = wire[start : start + size]
            used, done = reader.feed(chunk, 0)
            out += b"".join(reader.take())
            if done:
                rest = chunk[used:] + wire[start + size :]
                break
        assert (out, reader.problem, rest) == (expected, None, b"AFTER")


def test_long_line_found_after_many_good_ones() -> None:
    good = b"g" * 98 + b"\r\n"
    for bad in (b"b" * 99 + b"\r\n", b"b" * 150):
        reader = DotReader(10**6, 100)
        reader.feed(good * 500 + bad + good, 0)
        assert reader.problem is ContentProblem.LINE_TOO_LONG
    reader = DotReader(10**6, 100)
    reader.feed(good * 500 + b"b" * 100, 0)  # 100 octets so far: not over yet
    assert reader.problem is None
    reader.feed(b"\r\n", 0)
    assert reader.problem is ContentProblem.LINE_TOO_LONG
