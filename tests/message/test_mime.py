"""mailyard.message.mime: header blocks, Content-Type, the MIME tree."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailyard.message.encoded import decode_transfer
from mailyard.message.headers import iter_fields
from mailyard.message.mime import (
    MAX_DEPTH,
    MAX_PARTS,
    OCTET_STREAM,
    TEXT_PLAIN,
    ContentType,
    MimePart,
    crlf,
    parse_content_type,
    parse_disposition,
    parse_encoding,
    parse_header,
    parse_language,
    parse_message,
)
from tests.message import mime_corpus as corpus


def leaves(part: MimePart) -> Iterator[MimePart]:
    if part.children:
        for child in part.children:
            yield from leaves(child)
    elif part.message is not None:
        yield from leaves(part.message)
    else:
        yield part


def entities(part: MimePart) -> Iterator[MimePart]:
    yield part
    if part.message is not None:
        yield from entities(part.message)
    for child in part.children:
        yield from entities(child)


def assert_well_formed(data: bytes, part: MimePart) -> None:
    """Offsets nest: every entity inside its parent, children in order."""
    for entity in entities(part):
        assert 0 <= entity.start <= entity.body_start <= entity.end <= len(data)
        for field in entity.header.fields:
            assert entity.start <= field.start < field.end <= entity.body_start
        previous = entity.body_start
        for child in entity.children:
            assert previous <= child.start and child.end <= entity.end
            previous = child.end
        if entity.message is not None:
            assert entity.message.start == entity.body_start
            assert entity.message.end == entity.end


# -- header blocks --------------------------------------------------------------------


def test_header_fields_spans_and_values() -> None:
    data = b"A: 1\r\nB:  two\r\n\tlines \r\nC:3\r\n\r\nbody"
    header = parse_header(data)
    assert [(f.name, f.value) for f in header.fields] == [
        (b"A", b"1"),
        (b"B", b"two\tlines"),
        (b"C", b"3"),
    ]
    assert data[header.fields[1].start : header.fields[1].end] == b"B:  two\r\n\tlines \r\n"
    assert header.end == data.index(b"body")
    assert header.separator == b"\r\n"
    assert header.get(b"b") == b"two\tlines"
    assert header.get(b"missing") is None


def test_header_without_empty_line_is_all_header() -> None:
    data = b"A: 1\r\nB: 2"
    header = parse_header(data)
    assert header.end == len(data)
    assert header.separator == b""
    assert [f.value for f in header.fields] == [b"1", b"2"]


def test_message_starting_with_empty_line_has_no_fields() -> None:
    header = parse_header(b"\r\nA: not a header\r\n")
    assert header.fields == ()
    assert header.end == 2


def test_lf_only_header() -> None:
    header = parse_header(b"A: 1\n b\nC: 2\n\nbody")
    assert [(f.name, f.value) for f in header.fields] == [(b"A", b"1 b"), (b"C", b"2")]
    assert header.separator == b"\n"


def test_garbage_lines_are_skipped_with_their_continuations() -> None:
    header = parse_header(b"A: 1\r\nnot a field\r\n continued\r\n: empty name\r\nB: 2\r\n\r\n")
    assert [f.name for f in header.fields] == [b"A", b"B"]


def test_obsolete_space_before_colon_and_repeated_fields() -> None:
    header = parse_header(b"Received : one\r\nreceived: two\r\n\r\n")
    assert header.get_all(b"received") == (b"one", b"two")
    assert header.fields[0].name == b"Received"


def test_header_parse_stops_at_end() -> None:
    data = b"A: 1\r\nB: 2\r\n\r\n"
    header = parse_header(data, 0, 6)
    assert [f.name for f in header.fields] == [b"A"]
    assert header.end == 6


_HEADERISH = st.lists(
    st.one_of(
        st.sampled_from([b"Subject: hi", b" folded", b"\tmore", b"", b"X:", b"bad line", b"a :b"]),
        st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")),
    ),
    max_size=12,
).flatmap(lambda lines: st.sampled_from([b"\r\n", b"\n"]).map(lambda end: end.join(lines) + end))


@given(_HEADERISH | st.binary(max_size=120) | st.text("ab: \t\r\n").map(str.encode))
def test_fields_agree_with_iter_fields(block: bytes) -> None:
    # One header parser's rules for the whole package (headers.iter_fields).
    header = parse_header(block)
    assert [(f.name, f.value) for f in header.fields] == list(iter_fields(block))
    for field in header.fields:
        assert block[field.start : field.end].startswith(field.name)


@given(st.binary(max_size=400))
def test_parse_header_never_raises(data: bytes) -> None:
    header = parse_header(data)
    assert 0 <= header.end <= len(data)


# -- structured field values ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"text/plain", ContentType(b"text", b"plain", ())),
        (b"TEXT/HTML; CHARSET=UTF-8", ContentType(b"text", b"html", ((b"charset", b"UTF-8"),))),
        (
            b'multipart/mixed;\r\n boundary="----=_NextPart_000_0000_01D0.1234"',
            ContentType(b"multipart", b"mixed", ((b"boundary", b"----=_NextPart_000_0000_01D0.1234"),)),
        ),
        (
            b"multipart/alternative; boundary=----=_Part_1_2.3",  # unquoted tspecials
            ContentType(b"multipart", b"alternative", ((b"boundary", b"----=_Part_1_2.3"),)),
        ),
        (
            b'text/plain (a comment) ; charset = "us-ascii" (Plain text)',
            ContentType(b"text", b"plain", ((b"charset", b"us-ascii"),)),
        ),
        (
            b'application/x-stuff; name="a \\"quoted\\" name"; x',
            ContentType(b"application", b"x-stuff", ((b"name", b'a "quoted" name'),)),
        ),
        (b"text/plain; charset=utf-8 format=flowed",  # the ";" forgotten
         ContentType(b"text", b"plain", ((b"charset", b"utf-8"), (b"format", b"flowed")))),
        (b'text/plain; name="unterminated', ContentType(b"text", b"plain", ((b"name", b"unterminated"),))),
        (b"text", TEXT_PLAIN),
        (b"text/", TEXT_PLAIN),
        (b"te xt/plain", TEXT_PLAIN),
        (b"", TEXT_PLAIN),
        (b"/plain", TEXT_PLAIN),
    ],
)  # fmt: skip
def test_content_type(value: bytes, expected: ContentType) -> None:
    assert parse_content_type(value) == expected


def test_content_type_default_is_given_by_the_caller() -> None:
    assert parse_content_type(None, OCTET_STREAM) is OCTET_STREAM
    assert parse_content_type(b"garbage", OCTET_STREAM) is OCTET_STREAM


def test_disposition_encoding_language() -> None:
    assert parse_disposition(b'attachment; filename="a.txt"; size=12') == (
        b"attachment",
        ((b"filename", b"a.txt"), (b"size", b"12")),
    )
    assert parse_disposition(b"INLINE") == (b"inline", ())
    assert parse_disposition(b";") is None
    assert parse_disposition(None) is None
    assert parse_encoding(b" Base64 (comment)") == b"base64"
    assert parse_encoding(None) == b"7bit"
    assert parse_encoding(b"") == b"7bit"
    assert parse_language(b"en, fr (French)") == (b"en", b"fr")
    assert parse_language(b" , ") is None


_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-+.", min_size=1, max_size=10)
_VALUE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=15)


@given(_TOKEN, _TOKEN, st.lists(st.tuples(_TOKEN, _VALUE), max_size=4, unique_by=lambda p: p[0]))
def test_content_type_round_trip(
    maintype: str, subtype: str, params: list[tuple[str, str]]
) -> None:
    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    rendered = f"{maintype.upper()}/{subtype}" + "".join(
        f";\r\n {name}={quoted(value)}" for name, value in params
    )
    assert parse_content_type(rendered.encode()) == ContentType(
        maintype.encode(),
        subtype.encode(),
        tuple((name.encode(), value.encode()) for name, value in params),
    )


@given(st.binary(max_size=200))
def test_field_value_parsers_never_raise(value: bytes) -> None:
    parse_content_type(value)
    parse_disposition(value)
    parse_encoding(value)
    parse_language(value)


# -- the tree: the corpus ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(corpus.CORPUS))
def test_corpus_trees_are_well_formed(name: str) -> None:
    data = corpus.CORPUS[name]
    assert_well_formed(data, parse_message(data))


@pytest.mark.parametrize("name", ["simple", "alternative", "mixed", "nested", "forward", "digest"])
def test_leaves_agree_with_the_stdlib(name: str) -> None:
    data = corpus.CORPUS[name]
    ours = list(leaves(parse_message(data)))
    theirs = [
        part
        for part in email.message_from_bytes(data, policy=email.policy.compat32).walk()
        if not part.is_multipart()
    ]
    assert [(p.content_type.maintype + b"/" + p.content_type.subtype).decode() for p in ours] == [
        part.get_content_type() for part in theirs
    ]
    for part, other in zip(ours, theirs, strict=True):
        decoded = decode_transfer(data[part.body_start : part.end], part.encoding)
        expected = other.get_payload(decode=True)
        assert decoded is not None and isinstance(expected, bytes)
        # compat32 keeps the line break before a delimiter in the last line
        assert decoded.rstrip(b"\r\n") == expected.rstrip(b"\r\n")


def test_mixed_structure() -> None:
    data = corpus.MIXED
    tree = parse_message(data)
    assert tree.content_type.param(b"boundary") == b"----=_Part_0_1234.5678"
    text, pdf, png = tree.children
    assert data[text.body_start : text.end] == b"Please find the invoice attached."
    assert decode_transfer(data[pdf.body_start : pdf.end], pdf.encoding) == corpus.PDF_BYTES
    assert decode_transfer(data[png.body_start : png.end], png.encoding) == corpus.PNG_BYTES
    assert png.header.get(b"content-id") == b"<photo1@example.net>"


def test_forward_has_the_encapsulated_message() -> None:
    data = corpus.FORWARD
    tree = parse_message(data)
    attached = tree.children[1]
    assert attached.message is not None
    inner = attached.message
    assert inner.header.get(b"subject") == b"The original"
    assert [c.content_type.subtype for c in inner.children] == [b"plain", b"zip"]


def test_missing_boundary_is_text_plain() -> None:
    tree = parse_message(corpus.MISSING_BOUNDARY)
    assert tree.content_type == TEXT_PLAIN
    assert tree.children == ()


def test_boundary_that_never_occurs_gives_one_part() -> None:
    data = corpus.BOUNDARY_NEVER_SEEN
    tree = parse_message(data)
    (only,) = tree.children
    assert only.header.fields == ()
    assert data[only.body_start : only.end] == b"Just text, the parts never came.\r\n"


def test_unterminated_multipart_ends_with_its_container() -> None:
    data = corpus.UNTERMINATED
    first, second = parse_message(data).children
    assert data[first.body_start : first.end] == b"first"
    assert data[second.body_start : second.end] == b"second, and the sender died here\r\n"


def test_digest_parts_default_to_message_rfc822() -> None:
    data = corpus.DIGEST
    tree = parse_message(data)
    assert [c.content_type.subtype for c in tree.children] == [b"rfc822", b"rfc822"]
    assert [c.message.header.get(b"subject") for c in tree.children if c.message] == [
        b"first",
        b"second",
    ]


def test_lf_only_has_the_same_structure() -> None:
    lf = parse_message(corpus.LF_ONLY)
    normal = parse_message(corpus.MIXED)
    assert [p.content_type for p in leaves(lf)] == [p.content_type for p in leaves(normal)]
    for a, b in zip(leaves(lf), leaves(normal), strict=True):
        left = corpus.LF_ONLY[a.body_start : a.end]
        right = corpus.MIXED[b.body_start : b.end]
        assert left.replace(b"\n", b"\r\n") == right


def test_crlf() -> None:
    assert crlf(corpus.LF_ONLY) == corpus.MIXED
    assert crlf(corpus.MIXED) is corpus.MIXED
    assert crlf(b"a\rb\nc\r\n") == b"a\r\nb\r\nc\r\n"


_WHOLE = None  # the only part is the whole body: no opening delimiter was seen


@pytest.mark.parametrize(
    ("line", "body"),
    [
        (b"--b", b"x"),
        (b"--b  \t", b"x"),  # RFC 2046 §5.1.1 transport padding
        (b"--b--", _WHOLE),  # a close delimiter opens nothing
        (b"--b--junk", _WHOLE),
        (b"--bx", _WHOLE),  # another string that starts like the boundary
    ],
)
def test_delimiter_lines(line: bytes, body: bytes | None) -> None:
    head = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    data = head + line + b"\r\n\r\nx\r\n--b--\r\n"
    (only,) = parse_message(data).children
    content = data[only.body_start : only.end]
    assert content == (data[len(head) :] if body is _WHOLE else body)


def test_nested_boundary_sharing_a_prefix() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: multipart/mixed; boundary=b-inner\r\n\r\n"
        b"--b-inner\r\n\r\ninner\r\n--b-inner--\r\n--b--\r\n"
    )
    (outer_part,) = parse_message(data).children
    (inner,) = outer_part.children
    assert data[inner.body_start : inner.end] == b"inner"


def test_nesting_is_capped() -> None:
    depth = MAX_DEPTH * 4
    data = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    tree = parse_message(data + b"\r\ndeep\r\n")
    levels = 0
    node = tree
    while node.children:
        node = node.children[0]
        levels += 1
    assert levels == MAX_DEPTH
    assert node.content_type == OCTET_STREAM


def test_encapsulation_is_capped() -> None:
    data = b"Content-Type: message/rfc822\r\n\r\n" * (MAX_DEPTH * 3) + b"\r\nend"
    node = parse_message(data)
    levels = 0
    while node.message is not None:
        node = node.message
        levels += 1
    assert levels == MAX_DEPTH


def test_part_count_is_capped() -> None:
    parts = b"".join(b"--b\r\n\r\n%d\r\n" % i for i in range(MAX_PARTS * 3))
    data = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n"
    tree = parse_message(data)
    assert len(list(entities(tree))) <= MAX_PARTS + 1
    assert tree.children[-1].end == len(data)  # the last part allowed takes the rest
    assert_well_formed(data, tree)


def test_huge_header() -> None:
    data = corpus.huge_header(5000)
    tree = parse_message(data)
    assert len(tree.header.get_all(b"received")) == 5000
    assert tree.header.get(b"subject") == b"far away"


# -- round trip through generated MIME trees ------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    subtype: str
    body: bytes


@dataclass(frozen=True)
class Multi:
    subtype: str
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Message:
    inner: Node


Node = Leaf | Multi | Message

_BODY = st.text(alphabet="ab -:\n", max_size=40).map(lambda t: t.replace("\n", "\r\n").encode())
_TREES: st.SearchStrategy[Node] = st.recursive(
    st.builds(Leaf, st.sampled_from(["plain", "html"]), _BODY),
    lambda inner: st.one_of(
        st.builds(Multi, st.sampled_from(["mixed", "alternative"]), st.lists(inner, min_size=1, max_size=4).map(tuple)),
        st.builds(Message, inner),
    ),
    max_leaves=12,
)  # fmt: skip


def render(node: Node, counter: list[int]) -> bytes:
    if isinstance(node, Leaf):
        return b"Content-Type: text/" + node.subtype.encode() + b"\r\n\r\n" + node.body
    if isinstance(node, Message):
        return b"Content-Type: message/rfc822\r\n\r\nSubject: x\r\n" + render(node.inner, counter)
    counter[0] += 1
    boundary = b"=_%d" % counter[0]  # "=" never occurs in a generated body
    out = (
        b"Content-Type: multipart/"
        + node.subtype.encode()
        + b'; boundary="'
        + boundary
        + b'"\r\n\r\n'
    )
    for child in node.children:
        out += b"--" + boundary + b"\r\n" + render(child, counter) + b"\r\n"
    return out + b"--" + boundary + b"--"


def assert_matches(data: bytes, part: MimePart, node: Node) -> None:
    if isinstance(node, Leaf):
        assert part.content_type.subtype == node.subtype.encode()
        assert data[part.body_start : part.end] == node.body
    elif isinstance(node, Message):
        assert part.message is not None
        assert_matches(data, part.message, node.inner)
    else:
        assert part.content_type.subtype == node.subtype.encode()
        assert len(part.children) == len(node.children)
        for child, expected in zip(part.children, node.children, strict=True):
            assert_matches(data, child, expected)


@settings(max_examples=200)
@given(_TREES)
def test_generated_trees_round_trip(node: Node) -> None:
    data = render(node, [0])
    tree = parse_message(data)
    assert_matches(data, tree, node)
    assert_well_formed(data, tree)


@given(_TREES, st.binary(max_size=60), st.integers(min_value=0, max_value=10_000))
def test_damaged_trees_never_raise(node: Node, junk: bytes, where: int) -> None:
    data = render(node, [0])
    cut = where % (len(data) + 1)
    damaged = data[:cut] + junk + data[cut:]
    assert_well_formed(damaged, parse_message(damaged))


@given(st.binary(max_size=600))
def test_parse_message_never_raises(data: bytes) -> None:
    assert_well_formed(data, parse_message(data))


def test_large_message_parse_time() -> None:
    data = corpus.large_multipart(100_000)
    started = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        tree = parse_message(data)
    elapsed = (time.perf_counter() - started) / rounds
    assert len(list(leaves(tree))) == 3
    print(f"\nparse_message of a {len(data)} octet multipart: {elapsed * 1000:.3f} ms")
