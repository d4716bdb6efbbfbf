"""mailyard.message.envelope: address lists and ENVELOPE."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.message.envelope import (
    GROUP_END,
    Envelope,
    EnvelopeAddress,
    envelope_of,
    imap_envelope,
    parse_addresses,
)
from tests.message import mime_corpus as corpus


def address(name: bytes | None, mailbox: bytes, host: bytes, adl: bytes | None = None):
    return EnvelopeAddress(name, adl, mailbox, host)


def test_rfc9051_sample_envelope() -> None:
    # The message of RFC 9051 §8 and the ENVELOPE the RFC shows for it.
    data = (
        b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
        b"From: Terry Gray <gray@cac.washington.edu>\r\n"
        b"Subject: IMAP4rev2 WG mtg summary and minutes\r\n"
        b"To: imap@cac.washington.edu\r\n"
        b"cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n"
        b"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
        b"\r\n"
    )
    gray = ((b"Terry Gray", None, b"gray", b"cac.washington.edu"),)
    assert imap_envelope(envelope_of(data)) == (
        b"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)",
        b"IMAP4rev2 WG mtg summary and minutes",
        gray,
        gray,  # Sender defaults to From
        gray,  # Reply-To too
        ((None, None, b"imap", b"cac.washington.edu"),),
        (
            (None, None, b"minutes", b"CNRI.Reston.VA.US"),
            (b"John Klensin", None, b"KLENSIN", b"MIT.EDU"),
        ),
        None,
        None,
        b"<B27397-0100000@cac.washington.edu>",
    )


def test_simple_message_envelope() -> None:
    envelope = envelope_of(corpus.SIMPLE)
    assert envelope.date == b"Tue, 1 Dec 2026 17:59:01 +0100"
    assert envelope.subject == b"Lunch on Thursday?"  # unfolded: the CRLF goes, the space stays
    assert envelope.from_ == (address(b"Alice Example", b"alice", b"example.org"),)
    assert envelope.to == (address(b"Bob", b"bob", b"example.test"),)
    assert envelope.cc == () and envelope.bcc == ()
    assert envelope.message_id == b"<20261201165901.1234@example.org>"
    assert envelope.in_reply_to is None


def test_encoded_words_stay_encoded_and_groups_are_marked() -> None:
    envelope = envelope_of(corpus.ENCODED)
    assert envelope.from_ == (
        address(b"=?ISO-8859-1?Q?Andr=E9?= Pirard", b"PIRARD", b"vm1.ulg.ac.be"),
    )
    assert envelope.to == (
        address(b"=?UTF-8?B?SsO8cmdlbg==?=", b"juergen", b"example.de"),
        EnvelopeAddress(None, None, b"team", None),
        address(None, b"a", b"example.de"),
        address(b"B, C", b"bc", b"example.de"),
        GROUP_END,
    )
    assert envelope.cc == (EnvelopeAddress(None, None, b"undisclosed-recipients", None), GROUP_END)
    assert envelope.reply_to == (
        address(None, b"list", b"example.de", adl=b"@relay1.example,@relay2.example"),
    )
    assert envelope.sender == envelope.from_
    assert envelope.subject == (
        b"=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?= "
        b"=?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?="
    )


def test_group_markers_have_the_rfc_shape() -> None:
    start, end = parse_addresses(b"undisclosed-recipients:;")
    assert start.is_group_start and not start.is_group_end
    assert end.is_group_end and end == GROUP_END


def test_absent_and_empty_fields() -> None:
    envelope = envelope_of(b"Subject:\r\nFrom: a@b\r\nSender:\r\nReply-To: \r\nTo:\r\n\r\n")
    assert envelope.subject == b""  # present but empty: the empty string
    assert envelope.date is None  # absent: NIL
    assert envelope.to == ()  # present but empty: NIL
    assert envelope.sender == envelope.from_ == envelope.reply_to
    assert imap_envelope(envelope)[5] is None


def test_no_header_at_all() -> None:
    envelope = envelope_of(b"")
    assert envelope == Envelope(None, None, (), (), (), (), (), (), None, None)
    assert imap_envelope(envelope) == (None,) * 10


def test_eight_bit_names_are_kept() -> None:
    envelope = envelope_of(corpus.EIGHT_BIT)
    assert envelope.from_ == (address("Jürgen Groß".encode(), b"jg", b"example.de"),)
    assert envelope.subject == "Grüße aus Köln".encode()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b'"Doe, John" <john@example.com>', [(b"Doe, John", b"john", b"example.com")]),
        (b"jane@example.org (Jane Roe)", [(b"Jane Roe", b"jane", b"example.org")]),
        (b"J. Smith <js@x.org>", [(b"J. Smith", b"js", b"x.org")]),
        (b'"a \\"q\\" b" <q@x>', [(b'a "q" b', b"q", b"x")]),
        (b'"john doe"@example.com', [(None, b"john doe", b"example.com")]),
        (b"john . doe @ example . com", [(None, b"john.doe", b"example.com")]),
        (b"x@[192.0.2.1]", [(None, b"x", b"[192.0.2.1]")]),
        (b"bare", [(None, b"bare", b"")]),  # no domain: "" keeps it from looking like a group
        (b"Broken <unterminated@x", [(b"Broken", b"unterminated", b"x")]),
        (b"a@b, , ,c@d", [(None, b"a", b"b"), (None, b"c", b"d")]),
        (b"<>", []),
        (b"Nobody <>", [(b"Nobody", b"", b"")]),
        (b"Name <a@b> trailing junk, c@d", [(b"Name", b"a", b"b"), (None, b"c", b"d")]),
        (b"(only a comment)", []),
        (b"Joe (the boss) <joe@x>", [(b"Joe", b"joe", b"x")]),
    ],
)
def test_addresses(value: bytes, expected: list[tuple[bytes | None, bytes, bytes]]) -> None:
    assert [(a.name, a.mailbox, a.host) for a in parse_addresses(value)] == expected


def test_unterminated_group_is_closed() -> None:
    assert parse_addresses(b"friends: a@b") == (
        EnvelopeAddress(None, None, b"friends", None),
        address(None, b"a", b"b"),
        GROUP_END,
    )


_ATOM = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_NAME = st.text(alphabet='abc XYZ,.;:@<>()\\"', max_size=15).filter(lambda s: s.strip() == s)


def quote(name: str) -> bytes:
    return b'"' + name.replace("\\", "\\\\").replace('"', '\\"').encode() + b'"'


@given(st.lists(st.tuples(_NAME, _ATOM, st.lists(_ATOM, min_size=1, max_size=3)), max_size=5))
def test_rendered_addresses_round_trip(items: list[tuple[str, str, list[str]]]) -> None:
    rendered = b", ".join(
        (quote(name) + b" " if name else b"")
        + b"<"
        + local.encode()
        + b"@"
        + ".".join(domain).encode()
        + b">"
        for name, local, domain in items
    )
    parsed = parse_addresses(rendered)
    assert [(a.name, a.mailbox, a.host) for a in parsed] == [
        (name.encode() or None, local.encode(), ".".join(domain).encode())
        for name, local, domain in items
    ]


@given(st.binary(max_size=300))
def test_parse_addresses_never_raises(value: bytes) -> None:
    for item in parse_addresses(value):
        assert isinstance(item, EnvelopeAddress)


@given(st.binary(max_size=500))
def test_envelope_of_never_raises(data: bytes) -> None:
    value = imap_envelope(envelope_of(data))
    assert isinstance(value, tuple) and len(value) == 10


_PIECES = st.sampled_from(
    [b"a@b", b"Name <x@y>", b'"Q, R" <q@r>', b"<p@q>", b",", b", ", b" ", b"\t", b"J. S <j@k>",
     b"(c)", b";", b":", b"<", b">", b"@", b'"', b"x", b"\xc3\xa9", b"[1.2]", b"\\", b"\r\n "]
)  # fmt: skip


@given(st.lists(_PIECES, max_size=10).map(b"".join))
def test_fast_path_agrees_with_the_full_parser(value: bytes) -> None:
    from mailyard.message.envelope import _Parser, _tokens

    assert parse_addresses(value) == _Parser(_tokens(value)).run()
