"""The receive buffer's bounded line reader (linebuffer.py)."""

from __future__ import annotations

from mailyard.proto.smtp.linebuffer import TOO_LONG, LineBuffer


def test_lines_crlf_and_bare_lf() -> None:
    buf = LineBuffer()
    buf.append(b"a\r\nb\nc")
    assert buf.next_line(10) == b"a"
    assert buf.next_line(10) == b"b"
    assert buf.next_line(10) is None
    buf.append(b"\r\n")
    assert buf.next_line(10) == b"c"


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


def test_clear_and_peek() -> None:
    buf = LineBuffer()
    buf.append(b"one\r\ntwo")
    assert buf.next_line(10) == b"one"
    assert buf.peek() == b"two"
    buf.advance(1)
    assert buf.peek() == b"wo"
    buf.clear()
    assert len(buf) == 0
