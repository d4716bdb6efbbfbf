"""The client's reply reader: RFC 5321 §4.2 replies, fed whole, byte by byte
and split anywhere; its limits; and hypothesis' never-crash property."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.proto.smtp.client_events import Extensions, parse_extensions
from mailyard.proto.smtp.client_reply import ReplyReader, ReplySyntaxError, ServerReply

MULTI = b"250-first line\r\n250-second\r\n250 last\r\n"


def read_all(chunks: list[bytes], **limits: int) -> list[ServerReply]:
    reader = ReplyReader(**limits)
    out = []
    for chunk in chunks:
        reader.feed(chunk)
        while (reply := reader.next_reply()) is not None:
            out.append(reply)
    return out


def test_a_multi_line_reply_whole_bytewise_and_with_trailing_data() -> None:
    expected = [ServerReply(250, ("first line", "second", "last"))]
    assert read_all([MULTI]) == expected
    assert read_all([MULTI[i : i + 1] for i in range(len(MULTI))]) == expected
    trailing = read_all([MULTI + b"354 go"])
    assert trailing == expected  # the partial reply waits for its line end


def test_bare_code_and_bare_lf_lines() -> None:
    assert read_all([b"250\r\n"]) == [ServerReply(250, ("",))]
    assert read_all([b"221 bye\n"]) == [ServerReply(221, ("bye",))]


@pytest.mark.parametrize("line", [
    b"25 short\r\n", b"250x\r\n", b"150 never used by SMTP\r\n", b"260 bad second digit\r\n",
    b"hello\r\n", b"\r\n", b"2500 four digits\r\n", b"650 bad class\r\n",
])
def test_lines_that_are_no_reply_are_refused(line: bytes) -> None:
    with pytest.raises(ReplySyntaxError):
        read_all([line])


def test_a_multi_line_reply_that_changes_its_code_is_refused() -> None:
    with pytest.raises(ReplySyntaxError):
        read_all([b"250-one\r\n251 two\r\n"])


def test_line_length_limit_at_and_past_it() -> None:
    at = b"250 " + b"x" * (100 - 6) + b"\r\n"
    assert len(at) == 100
    assert read_all([at], max_line=100)[0].lines == ("x" * 94,)
    with pytest.raises(ReplySyntaxError):
        read_all([b"250 " + b"x" * 95 + b"\r\n"], max_line=100)


def test_line_count_limit_at_and_past_it() -> None:
    def reply(lines: int) -> bytes:
        return b"".join(b"250-l\r\n" for _ in range(lines - 1)) + b"250 end\r\n"

    assert len(read_all([reply(5)], max_lines=5)[0].lines) == 5
    with pytest.raises(ReplySyntaxError):
        read_all([reply(6)], max_lines=5)


def test_enhanced_code_text_and_describe() -> None:
    reply = ServerReply(550, ("5.1.1 no such user", "5.1.1 really"))
    assert reply.enhanced == "5.1.1"
    assert reply.text == "no such user really"
    assert reply.describe() == "550 5.1.1 no such user really"
    assert reply.permanent and not reply.positive
    # RFC 3463 §2: an enhanced code of another class is not one.
    mismatched = ServerReply(450, ("5.1.1 odd",))
    assert mismatched.enhanced is None and mismatched.describe() == "450 5.1.1 odd"
    assert ServerReply(250, ("",)).describe() == "250"


def test_invalid_utf8_is_replaced_not_raised() -> None:
    (reply,) = read_all([b"550 caf\xe9 \xff\r\n"])
    assert reply.lines == ("caf\ufffd \ufffd",)


def test_extensions_from_an_ehlo_reply() -> None:
    (reply,) = read_all([b"250-mx hi\r\n250-pipelining\r\n250-SIZE\r\n250-AUTH=LOGIN\r\n"
                         b"250-AUTH PLAIN cram-md5\r\n250-X-ODD=1 2\r\n250-!!\r\n250 STARTTLS\r\n"])
    ext = parse_extensions(reply)
    assert ext.pipelining and ext.starttls and not ext.smtputf8 and not ext.chunking
    assert ext.size == 0  # RFC 1870 §4: SIZE without a number is no fixed limit
    assert ext.auth == frozenset({"LOGIN", "PLAIN", "CRAM-MD5"})
    assert "X-ODD" in ext.keywords and "!!" not in ext.keywords
    assert parse_extensions(ServerReply(250, ("mx", "SIZE many"))).size is None
    assert parse_extensions(ServerReply(250, ("mx",))) == Extensions()


# -- properties ----------------------------------------------------------------

texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
                max_size=40)
replies = st.builds(
    lambda code, lines: ServerReply(code, tuple(lines)),
    st.integers(200, 559).filter(lambda c: c % 100 // 10 <= 5),
    st.lists(texts, min_size=1, max_size=5),
)


def render(reply: ServerReply) -> bytes:
    last = len(reply.lines) - 1
    return b"".join(f"{reply.code}{' ' if i == last else '-'}{line}\r\n".encode()
                    for i, line in enumerate(reply.lines))


@given(st.lists(replies, min_size=1, max_size=4), st.lists(st.integers(0, 5000), max_size=8))
def test_round_trip_whatever_the_split(items: list[ServerReply], cuts: list[int]) -> None:
    data = b"".join(render(r) for r in items)
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in itertools.pairwise(points)]
    assert read_all(chunks) == items
    assert read_all([data[i : i + 1] for i in range(len(data))]) == items


PIECES = [b"250", b"-", b" ", b"\r\n", b"\n", b"\r", b"354 go", b"5.1.1 ", b"\xff", b"421"]


@given(st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=20)), max_size=30))
def test_the_reader_never_raises_anything_but_reply_syntax_error(parts: list[bytes]) -> None:
    reader = ReplyReader(max_line=64, max_lines=4)
    try:
        for part in parts:
            reader.feed(part)
            while (reply := reader.next_reply()) is not None:
                assert 200 <= reply.code <= 559 and reply.lines
                reply.describe()
                parse_extensions(reply)
    except ReplySyntaxError:
        pass
