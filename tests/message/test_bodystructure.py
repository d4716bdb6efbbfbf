"""mailyard.message.bodystructure: BODYSTRUCTURE and BODY values."""

from __future__ import annotations

import email
import email.policy

from hypothesis import given
from hypothesis import strategies as st

from mailyard.message.bodystructure import (
    Disposition,
    MultiPart,
    SinglePart,
    describe,
    imap_body,
    line_count,
)
from mailyard.message.envelope import ImapValue, envelope_of, imap_envelope
from tests.message import mime_corpus as corpus


def body_of(data: bytes) -> bytes:
    return data[data.index(b"\r\n\r\n") + 4 :]


def test_line_count() -> None:
    assert line_count(b"", 0, 0) == 0
    assert line_count(b"a", 0, 1) == 1
    assert line_count(b"a\r\n", 0, 3) == 1
    assert line_count(b"a\r\nb", 0, 4) == 2
    assert line_count(b"a\n\nb\n", 0, 5) == 3


def test_rfc9051_sample_body() -> None:
    # RFC 9051 §8 shows ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)
    # for a 92-line body of 3028 octets; we report types in lowercase.
    body = b"".join(
        b"line %02d of the minutes, padded to a fixed width....\r\n" % i for i in range(92)
    )
    data = b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n" + body
    assert imap_body(describe(data), extended=False) == (
        b"text", b"plain", (b"charset", b"US-ASCII"), None, None, b"7bit", len(body), 92,
    )  # fmt: skip


def test_simple() -> None:
    body = body_of(corpus.SIMPLE)
    assert imap_body(describe(corpus.SIMPLE), extended=True) == (
        b"text", b"plain", (b"charset", b"utf-8"), None, None, b"8bit", len(body), 5,
        None, None, None, None,
    )  # fmt: skip


def test_no_content_type_is_us_ascii_text() -> None:
    data = b"Subject: old style\r\n\r\nline one\r\nline two"
    assert imap_body(describe(data), extended=False) == (
        b"text", b"plain", (b"charset", b"us-ascii"), None, None, b"7bit", 18, 2,
    )  # fmt: skip


def test_text_without_charset_gets_the_default_one() -> None:
    data = b"Content-Type: text/html; format=flowed\r\n\r\n<p>"
    structure = describe(data)
    assert isinstance(structure, SinglePart)
    assert structure.params == ((b"charset", b"us-ascii"), (b"format", b"flowed"))


def test_alternative() -> None:
    structure = describe(corpus.ALTERNATIVE)
    assert isinstance(structure, MultiPart)
    plain, html = structure.parts
    assert isinstance(plain, SinglePart) and isinstance(html, SinglePart)
    # Two lines each: the empty line before a delimiter ends the second line,
    # the line break after it belongs to the delimiter (RFC 2046 §5.1.1).
    assert (plain.subtype, plain.encoding, plain.lines) == (b"plain", b"quoted-printable", 2)
    assert (html.subtype, html.encoding, html.lines) == (b"html", b"base64", 2)
    assert imap_body(structure, extended=False)[2:] == (b"alternative",)
    assert imap_body(structure, extended=True)[2:] == (
        b"alternative", (b"boundary", b"b1_alt"), None, None, None,
    )  # fmt: skip


def test_mixed_with_attachments_and_extension_data() -> None:
    structure = describe(corpus.MIXED)
    assert isinstance(structure, MultiPart)
    text, pdf, png = structure.parts
    assert isinstance(text, SinglePart) and isinstance(pdf, SinglePart)
    assert isinstance(png, SinglePart)
    assert imap_body(text, extended=True) == (
        b"text", b"plain", (b"charset", b"us-ascii"), None, None, b"7bit", 33, 1,
        None, None, None, None,
    )  # fmt: skip
    assert (pdf.maintype, pdf.subtype, pdf.params) == (
        b"application", b"pdf", ((b"name", b"invoice.pdf"),),
    )  # fmt: skip
    assert pdf.lines is None  # only text and message parts count lines
    assert pdf.description == b"Invoice 7"
    assert pdf.md5 == b"Q2hlY2sgSW50ZWdyaXR5IQ=="
    assert pdf.disposition == Disposition(b"attachment", ((b"filename", b"invoice.pdf"),))
    assert png.content_id == b"<photo1@example.net>"
    # RFC 2231 continuations merged into one extended parameter.
    assert png.disposition == Disposition(
        b"inline", ((b"filename*", b"utf-8''%C3%A9t%C3%A9%20photo.png"),)
    )
    assert png.language == (b"en", b"fr")
    assert png.location == b"http://example.net/photo.png"
    assert imap_body(png, extended=True)[7:] == (
        None,
        (b"inline", (b"filename*", b"utf-8''%C3%A9t%C3%A9%20photo.png")),
        (b"en", b"fr"),
        b"http://example.net/photo.png",
    )


def test_sizes_are_of_the_encoded_body_and_agree_with_the_stdlib() -> None:
    structure = describe(corpus.MIXED)
    assert isinstance(structure, MultiPart)
    theirs = [
        part
        for part in email.message_from_bytes(corpus.MIXED, policy=email.policy.compat32).walk()
        if not part.is_multipart()
    ]
    for ours, other in zip(structure.parts, theirs, strict=True):
        assert isinstance(ours, SinglePart)
        raw = other.get_payload(decode=False)
        assert isinstance(raw, str)
        # compat32 leaves the line break before the next delimiter on the payload.
        assert ours.size == len(raw.encode().rstrip(b"\r\n"))


def test_nested_multipart() -> None:
    structure = describe(corpus.NESTED)
    assert imap_body(structure, extended=False) == (
        (
            (b"text", b"plain", (b"charset", b"us-ascii"), None, None, b"7bit", 10, 1),
            (b"text", b"html", (b"charset", b"us-ascii"), None, None, b"7bit", 16, 1),
            b"alternative",
        ),
        (b"application", b"octet-stream", None, None, None, b"base64", 8),
        b"mixed",
    )


def test_message_rfc822_part() -> None:
    structure = describe(corpus.FORWARD)
    assert isinstance(structure, MultiPart)
    attached = structure.parts[1]
    assert isinstance(attached, SinglePart) and attached.is_message
    inner = corpus.INNER_MESSAGE.replace("\n", "\r\n").encode()
    assert attached.size == len(inner)
    assert attached.lines == inner.count(b"\n")
    assert attached.envelope == envelope_of(inner)
    assert attached.disposition == Disposition(b"attachment", ())
    rendered = imap_body(attached, extended=False)
    assert isinstance(rendered, tuple)
    assert rendered[:7] == (b"message", b"rfc822", None, None, None, b"7bit", len(inner))
    assert rendered[7] == imap_envelope(envelope_of(inner))
    assert rendered[8] == (
        (b"text", b"plain", (b"charset", b"us-ascii"), None, None, b"7bit", 13, 1),
        (b"application", b"zip", None, None, None, b"base64", 8),
        b"mixed",
    )
    assert rendered[9] == attached.lines
    assert len(rendered) == 10  # BODY carries no extension data


def test_broken_mime_gets_best_effort_structures() -> None:
    assert imap_body(describe(corpus.MISSING_BOUNDARY), extended=False)[:2] == (b"text", b"plain")
    unterminated = describe(corpus.UNTERMINATED)
    assert isinstance(unterminated, MultiPart) and len(unterminated.parts) == 2
    never = describe(corpus.BOUNDARY_NEVER_SEEN)
    assert isinstance(never, MultiPart)
    (only,) = never.parts
    assert isinstance(only, SinglePart)
    assert only.size == len(b"Just text, the parts never came.\r\n")


def test_digest_entries_are_messages() -> None:
    structure = describe(corpus.DIGEST)
    assert isinstance(structure, MultiPart)
    for part in structure.parts:
        assert isinstance(part, SinglePart) and part.is_message and part.envelope is not None


def test_lf_only_sizes_are_of_the_bytes_given() -> None:
    lf = describe(corpus.LF_ONLY)
    normal = describe(corpus.MIXED)
    assert isinstance(lf, MultiPart) and isinstance(normal, MultiPart)
    assert [p.lines for p in lf.parts if isinstance(p, SinglePart)] == [
        p.lines for p in normal.parts if isinstance(p, SinglePart)
    ]
    first_lf, first = lf.parts[0], normal.parts[0]
    assert isinstance(first_lf, SinglePart) and isinstance(first, SinglePart)
    assert first.size - first_lf.size == (first.lines or 0) - 1


def renderable(value: ImapValue) -> bool:
    if value is None or isinstance(value, int | bytes):
        return True
    return isinstance(value, tuple) and all(renderable(item) for item in value)


@given(st.binary(max_size=600))
def test_describe_never_raises(data: bytes) -> None:
    structure = describe(data)
    assert renderable(imap_body(structure, extended=True))
    assert renderable(imap_body(structure, extended=False))
