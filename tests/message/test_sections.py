"""mailyard.message.sections: BODY[section], partial fetches, BINARY."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.message.mime import parse_message
from mailyard.message.sections import (
    BinaryError,
    Section,
    SectionText,
    binary_bytes,
    binary_size,
    find_part,
    partial,
    section_bytes,
)
from tests.message import mime_corpus as corpus

EXAMPLE = corpus.SECTIONS_EXAMPLE
TREE = parse_message(EXAMPLE)


def spec(text: str) -> Section:
    """Parse a section spec the way the IMAP core would, for the tests."""
    names: tuple[bytes, ...] = ()
    if " (" in text:
        text, _, listed = text.partition(" (")
        names = tuple(name.encode() for name in listed.rstrip(")").split())
    numbers: list[int] = []
    pieces = text.split(".") if text else []
    while pieces and pieces[0].isdigit():
        numbers.append(int(pieces.pop(0)))
    kind = SectionText(".".join(pieces)) if pieces else SectionText.NONE
    return Section(tuple(numbers), kind, names)


def fetch(text: str, data: bytes = EXAMPLE) -> bytes | None:
    return section_bytes(data, spec(text), parse_message(data))


# -- the complex message of RFC 9051 §6.4.5.1 -------------------------------------------


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("1", b"1 text"),
        ("2", b"2 data"),
        ("3.HEADER", b"Subject: part 3 message\r\nContent-Type: multipart/mixed; boundary=m3\r\n\r\n"),
        ("3.1", b"3.1 text"),
        ("3.2", b"3.2 data"),
        ("4.1", b"4.1 gif"),
        ("4.1.MIME", b"Content-Type: image/gif\r\n\r\n"),
        ("4.2.HEADER", b"Subject: part 4.2 message\r\nContent-Type: multipart/mixed; boundary=m42\r\n\r\n"),
        ("4.2.1", b"4.2.1 text"),
        ("4.2.2.1", b"4.2.2.1 text"),
        ("4.2.2.2", b"4.2.2.2 richtext"),
        ("4.2.2.1.MIME", b"Content-Type: text/plain\r\n\r\n"),
        ("3.MIME", b"Content-Type: message/rfc822\r\n\r\n"),
        ("3.HEADER.FIELDS (subject)", b"Subject: part 3 message\r\n\r\n"),
    ],
)  # fmt: skip
def test_rfc9051_section_example(section: str, expected: bytes) -> None:
    assert fetch(section) == expected


def test_rfc9051_example_whole_parts() -> None:
    header_end = EXAMPLE.index(b"\r\n\r\n") + 4
    assert fetch("") == EXAMPLE
    assert fetch("HEADER") == EXAMPLE[:header_end]
    assert fetch("TEXT") == EXAMPLE[header_end:]
    part3 = fetch("3")
    assert part3 is not None
    assert part3.startswith(b"Subject: part 3 message\r\n") and part3.endswith(b"--m3--\r\n")
    assert fetch("3.TEXT") == part3[part3.index(b"\r\n\r\n") + 4 :]
    part4 = fetch("4")
    assert part4 is not None and part4.startswith(b"--p4\r\n") and part4.endswith(b"--p4--")
    inner = fetch("4.2.2")
    assert inner is not None and inner.startswith(b"--a422\r\n") and inner.endswith(b"--a422--")
    assert fetch("4.2.TEXT") == (fetch("4.2") or b"").split(b"\r\n\r\n", 1)[1]


@pytest.mark.parametrize(
    "section", ["5", "0", "1.1", "3.3", "4.3", "4.1.HEADER", "1.TEXT", "MIME", "4.2.2.3", "2.1"]
)
def test_sections_that_do_not_exist(section: str) -> None:
    assert fetch(section) is None


def test_header_fields_and_not() -> None:
    data = b"From: a@b\r\nTo: c@d\r\nSubject: s\r\n folded\r\nX-Other: 1\r\n\r\nbody\r\n"
    assert fetch("HEADER.FIELDS (SUBJECT from)", data) == (
        b"From: a@b\r\nSubject: s\r\n folded\r\n\r\n"  # header order, folding as written
    )
    assert fetch("HEADER.FIELDS.NOT (subject X-OTHER)", data) == b"From: a@b\r\nTo: c@d\r\n\r\n"
    assert fetch("HEADER.FIELDS (missing)", data) == b"\r\n"  # the blank line is always there


def test_header_of_a_message_without_body() -> None:
    data = b"From: a@b\r\nSubject: no body"
    assert fetch("HEADER", data) == data
    assert fetch("TEXT", data) == b""
    # No blank line to include (RFC 9051 §6.4.5.1); the last field gets its CRLF.
    assert fetch("HEADER.FIELDS (subject)", data) == b"Subject: no body\r\n"


def test_header_only_sections_read_no_tree() -> None:
    # The top-level HEADER family works without a parsed tree.
    assert section_bytes(corpus.SIMPLE, Section((), SectionText.HEADER_FIELDS, (b"to",))) == (
        b"To: Bob <bob@example.test>\r\n\r\n"
    )


# -- non-multipart messages and message/rfc822 parts ---------------------------------------------


def test_single_part_message_has_a_part_one() -> None:
    data = corpus.SIMPLE
    body = data[data.index(b"\r\n\r\n") + 4 :]
    assert fetch("1", data) == body
    assert fetch("TEXT", data) == body
    assert fetch("1.MIME", data) == data[: data.index(b"\r\n\r\n") + 4]
    assert fetch("2", data) is None
    assert fetch("1.1", data) is None
    assert fetch("1.HEADER", data) is None


def test_encapsulated_single_part_message() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
        b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--x--\r\n"
    )
    assert fetch("1", data) == b"Subject: inner\r\n\r\ninner body"
    assert fetch("1.1", data) == b"inner body"  # the encapsulated message's only part
    assert fetch("1.1.MIME", data) == b"Subject: inner\r\n\r\n"
    assert fetch("1.TEXT", data) == b"inner body"
    assert fetch("1.2", data) is None


def test_top_level_message_rfc822() -> None:
    data = b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body"
    assert fetch("1", data) == b"Subject: inner\r\n\r\ninner body"
    assert fetch("1.HEADER", data) == b"Subject: inner\r\n\r\n"
    assert fetch("1.1", data) == b"inner body"


def test_find_part_on_the_tree() -> None:
    part = find_part(TREE, (4, 2, 2, 1))
    assert part is not None and part.content_type.subtype == b"plain"
    assert find_part(TREE, ()) is None


# -- partial ---------------------------------------------------------------------------------


def test_partial() -> None:
    assert partial(b"0123456789", 0, 4) == b"0123"
    assert partial(b"0123456789", 8, 100) == b"89"
    assert partial(b"0123456789", 10, 1) == b""
    assert partial(b"0123456789", 20, 5) == b""


@given(st.binary(max_size=50), st.integers(0, 60), st.integers(0, 60))
def test_partial_is_a_slice(data: bytes, origin: int, count: int) -> None:
    assert partial(data, origin, count) == data[origin : origin + count]


# -- BINARY ----------------------------------------------------------------------------------


def test_binary_decodes_parts() -> None:
    data = corpus.MIXED
    assert binary_bytes(data, (2,)) == corpus.PDF_BYTES
    assert binary_bytes(data, (3,)) == corpus.PNG_BYTES
    assert binary_size(data, (2,)) == len(corpus.PDF_BYTES)
    assert binary_bytes(data, (1,)) == b"Please find the invoice attached."
    assert binary_bytes(data, ()) == data


def test_binary_of_quoted_printable_and_base64_text() -> None:
    data = corpus.ALTERNATIVE
    plain = binary_bytes(data, (1,))
    assert (
        plain
        == "Everything is 20% off this week – including gloves.\r\nVisit us soon!\r\n".encode()
    )
    html = binary_bytes(data, (2,))
    assert isinstance(html, bytes) and html.startswith(b"<html><body><p>Everything")


def test_binary_text_gets_crlf() -> None:
    data = b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n" + b"YQpiCg==\n"
    assert binary_bytes(data, (1,)) == b"a\r\nb\r\n"  # RFC 3516 §6
    assert binary_size(data, (1,)) == 6


def test_binary_problems() -> None:
    data = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin"
    assert binary_bytes(data, (1,)) is BinaryError.UNKNOWN_CTE
    assert binary_size(data, (1,)) is BinaryError.UNKNOWN_CTE
    assert binary_bytes(data, (2,)) is BinaryError.NO_SUCH_PART


# -- properties ------------------------------------------------------------------------------

_SECTIONS = st.builds(
    Section,
    st.lists(st.integers(0, 5), max_size=4).map(tuple),
    st.sampled_from(list(SectionText)),
    st.lists(st.sampled_from([b"subject", b"FROM", b"x"]), max_size=3).map(tuple),
)


@given(st.sampled_from(sorted(corpus.CORPUS)), _SECTIONS)
def test_sections_of_the_corpus_never_raise(name: str, section: Section) -> None:
    data = corpus.CORPUS[name]
    result = section_bytes(data, section)
    assert result is None or isinstance(result, bytes)
    if (
        section.text is not SectionText.HEADER_FIELDS
        and section.text is not SectionText.HEADER_FIELDS_NOT
        and result
    ):
        assert result in data  # everything but the field subsets is a slice
    binary = binary_bytes(data, section.part)
    assert isinstance(binary, bytes | BinaryError)


@given(st.binary(max_size=400), _SECTIONS)
def test_sections_of_garbage_never_raise(data: bytes, section: Section) -> None:
    result = section_bytes(data, section)
    assert result is None or isinstance(result, bytes)
    assert isinstance(binary_size(data, section.part), int | BinaryError)
