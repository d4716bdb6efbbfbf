"""mailyard.message.search: content SEARCH keys."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.message.envelope import envelope_of
from mailyard.message.mime import parse_header
from mailyard.message.search import (
    AddressField,
    AddressKey,
    BodyKey,
    DateRelation,
    HeaderKey,
    MessageView,
    Need,
    SearchKey,
    SentKey,
    SizeKey,
    SizeRelation,
    SubjectKey,
    TextKey,
    matches,
    need,
)
from tests.message import mime_corpus as corpus

D = datetime.date


def found(key: SearchKey, data: bytes) -> bool:
    return matches(key, MessageView(data))


@pytest.mark.parametrize(
    ("key", "data", "expected"),
    [
        (AddressKey(AddressField.FROM, "alice"), corpus.SIMPLE, True),
        (AddressKey(AddressField.FROM, "ALICE example"), corpus.SIMPLE, True),  # name, any case
        (AddressKey(AddressField.FROM, "example.org"), corpus.SIMPLE, True),
        (AddressKey(AddressField.FROM, "bob"), corpus.SIMPLE, False),
        (AddressKey(AddressField.TO, "bob@example.test"), corpus.SIMPLE, True),
        (AddressKey(AddressField.CC, "records"), corpus.MIXED, True),
        (AddressKey(AddressField.BCC, ""), corpus.SIMPLE, True),  # "" is a substring of anything
        (AddressKey(AddressField.FROM, "andré"), corpus.ENCODED, True),  # RFC 2047 name
        (AddressKey(AddressField.TO, "jürgen"), corpus.ENCODED, True),
        (AddressKey(AddressField.TO, "team"), corpus.ENCODED, True),  # group name
        (AddressKey(AddressField.FROM, "groß"), corpus.EIGHT_BIT, True),  # raw UTF-8 name
        (SubjectKey("thursday"), corpus.SIMPLE, True),
        (SubjectKey("lunch on thursday"), corpus.SIMPLE, True),  # unfolded
        (SubjectKey("winter sale ❄"), corpus.ALTERNATIVE, True),
        (SubjectKey("understand the example"), corpus.ENCODED, True),  # two words, two charsets
        (SubjectKey("grüße"), corpus.EIGHT_BIT, True),
        (SubjectKey("GRÜSSE"), corpus.EIGHT_BIT, True),  # casefold: ß is ss
        (SubjectKey("invoice"), corpus.SIMPLE, False),
        (HeaderKey(b"Message-ID", "1234@example"), corpus.SIMPLE, True),
        (HeaderKey(b"content-type", "utf-8"), corpus.SIMPLE, True),
        (HeaderKey(b"X-Legacy", "café"), corpus.EIGHT_BIT, True),  # legacy 8-bit guessed
        (HeaderKey(b"received", "mx.example.test"), corpus.SIMPLE, True),
        (HeaderKey(b"X-Missing", ""), corpus.SIMPLE, False),  # empty needle: presence test
        (HeaderKey(b"Return-Path", ""), corpus.SIMPLE, True),
        (BodyKey("café opens"), corpus.SIMPLE, True),
        (BodyKey("bob"), corpus.SIMPLE, True),  # "Hi Bob" is in the body
        (BodyKey("alice@example.org"), corpus.SIMPLE, False),  # only the header says that
        (BodyKey("20% off this week – including"), corpus.ALTERNATIVE, True),  # quoted-printable
        (BodyKey("&ndash; including gloves"), corpus.ALTERNATIVE, True),  # base64 html
        (BodyKey("schöne grüße"), corpus.EIGHT_BIT, True),  # iso-8859-1 body
        (BodyKey("original text"), corpus.FORWARD, True),  # inside message/rfc822
        (BodyKey("PDF-1.4"), corpus.MIXED, False),  # attachments are not text
        (BodyKey("content-type"), corpus.MIXED, False),  # MIME headers are not body
        (TextKey("content-type: image/png"), corpus.MIXED, True),  # TEXT has every header
        (TextKey("lunch on thursday"), corpus.SIMPLE, True),
        (TextKey("café opens"), corpus.SIMPLE, True),
        (TextKey("the original"), corpus.FORWARD, True),  # encapsulated header
        (TextKey("nowhere at all"), corpus.FORWARD, False),
    ],
)
def test_keys(key: SearchKey, data: bytes, expected: bool) -> None:
    assert found(key, data) is expected


@pytest.mark.parametrize(
    ("relation", "day", "expected"),
    [
        # The Date is Tue, 1 Dec 2026 17:59:01 +0100: that day as written,
        # even though it is 16:59 UTC (and would be 2 Dec in Tokyo).
        (DateRelation.ON, D(2026, 12, 1), True),
        (DateRelation.ON, D(2026, 12, 2), False),
        (DateRelation.BEFORE, D(2026, 12, 2), True),
        (DateRelation.BEFORE, D(2026, 12, 1), False),
        (DateRelation.SINCE, D(2026, 12, 1), True),
        (DateRelation.SINCE, D(2026, 12, 2), False),
    ],
)
def test_sent_dates(relation: DateRelation, day: datetime.date, expected: bool) -> None:
    assert found(SentKey(relation, day), corpus.SIMPLE) is expected


def test_no_date_matches_no_sent_key() -> None:
    for relation in DateRelation:
        assert not found(SentKey(relation, D(2026, 1, 1)), corpus.NESTED.replace(b"Date:", b"X:"))


def test_sizes() -> None:
    view = MessageView(size=1000)
    assert matches(SizeKey(SizeRelation.LARGER, 999), view)
    assert not matches(SizeKey(SizeRelation.LARGER, 1000), view)
    assert matches(SizeKey(SizeRelation.SMALLER, 1001), view)
    assert not matches(SizeKey(SizeRelation.SMALLER, 1000), view)
    assert matches(SizeKey(SizeRelation.LARGER, 10), MessageView(corpus.SIMPLE))


def test_needs() -> None:
    assert need(SizeKey(SizeRelation.LARGER, 1)) is Need.SIZE
    assert need(SubjectKey("x")) is Need.ENVELOPE
    assert need(AddressKey(AddressField.CC, "x")) is Need.ENVELOPE
    assert need(SentKey(DateRelation.ON, D(2026, 1, 1))) is Need.ENVELOPE
    assert need(HeaderKey(b"x", "y")) is Need.HEADER
    assert need(BodyKey("x")) is Need.MESSAGE
    assert need(TextKey("x")) is Need.MESSAGE
    assert max(Need) is Need.MESSAGE


def test_envelope_keys_use_the_cached_envelope_alone() -> None:
    envelope = envelope_of(corpus.SIMPLE)
    view = MessageView(size=len(corpus.SIMPLE), envelope=envelope)  # no message bytes at all
    assert matches(SubjectKey("thursday"), view)
    assert matches(AddressKey(AddressField.FROM, "alice"), view)
    assert matches(SentKey(DateRelation.ON, D(2026, 12, 1)), view)


def test_header_keys_read_only_the_header_block() -> None:
    header_block = corpus.SIMPLE[: parse_header(corpus.SIMPLE).end]
    view = MessageView(header_block, size=len(corpus.SIMPLE))
    assert matches(HeaderKey(b"subject", "thursday"), view)
    assert matches(SubjectKey("thursday"), view)
    assert view._tree is None  # no MIME parse happened for header keys


@given(
    st.binary(max_size=400),
    st.sampled_from(
        [
            AddressKey(AddressField.FROM, "a"),
            SubjectKey("x"),
            HeaderKey(b"subject", ""),
            BodyKey("b"),
            TextKey("c"),
            SentKey(DateRelation.SINCE, D(2000, 1, 1)),
            SizeKey(SizeRelation.SMALLER, 100),
        ]
    ),
)
def test_matches_never_raises(data: bytes, key: SearchKey) -> None:
    assert matches(key, MessageView(data)) in (True, False)


@given(st.text(alphabet="abcdéß ", min_size=1, max_size=10))
def test_body_needle_found_in_any_case(word: str) -> None:
    data = b"Content-Type: text/plain; charset=utf-8\r\n\r\nxx " + word.encode() + b" yy\r\n"
    assert found(BodyKey(word.upper()), data)
    assert found(TextKey(word.lower()), data)
