"""FETCH content items (server/imap/content.py): sections, partials, BINARY,
the cached summary."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.message.cache import encode_summary, summarize
from mailyard.proto.imap.fetchspec import (
    BinarySection,
    BinarySize,
    BodySection,
    FetchAttr,
    Partial,
    Section,
    SectionText,
)
from mailyard.proto.imap.responses import (
    BinaryData,
    BinarySizeData,
    BodyStructureData,
    EnvelopeData,
    Rfc822Data,
    SectionData,
)
from mailyard.server.imap.content import (
    UnknownEncoding,
    content_items,
    needs_data,
    needs_summary,
    summary_from,
)

MESSAGE = (
    b"Subject: parts\r\nFrom: a@example.org\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
    b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"AAEC\r\n"
    b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-unknown\r\n\r\n???\r\n"
    b"--b--\r\n"
)


def test_what_needs_what() -> None:
    assert needs_summary([FetchAttr.ENVELOPE]) and not needs_data([FetchAttr.ENVELOPE])
    assert needs_data([BodySection()]) and needs_data([FetchAttr.RFC822_TEXT])
    assert not needs_data([FetchAttr.UID, FetchAttr.FLAGS]) and not needs_summary([FetchAttr.UID])


def test_sections() -> None:
    items = [
        BodySection(Section()),
        BodySection(Section(text=SectionText.HEADER_FIELDS, fields=("SUBJECT",)), peek=True),
        BodySection(Section((1,))),
        BodySection(Section((1,), SectionText.MIME)),
        BodySection(Section((9,))),
        BodySection(Section(text=SectionText.TEXT), Partial(2, 5)),
        BodySection(Section(), Partial(10_000, 5)),
    ]
    got = content_items(items, MESSAGE, None)
    assert got[items[0]] == SectionData(Section(), MESSAGE)
    assert got[items[1]] == SectionData(items[1].section, b"Subject: parts\r\n\r\n")
    assert got[items[2]].data == b"first part"  # type: ignore[union-attr]
    assert got[items[3]].data == b"Content-Type: text/plain\r\n\r\n"  # type: ignore[union-attr]
    assert got[items[4]] == SectionData(Section((9,)), None)  # NIL
    text = MESSAGE[MESSAGE.index(b"\r\n\r\n") + 4:]
    assert got[items[5]] == SectionData(items[5].section, text[2:7], 2)
    assert got[items[6]] == SectionData(Section(), b"", 10_000)


def test_binary() -> None:
    items = [BinarySection((2,)), BinarySize((2,)), BinarySection((7,)), BinarySection()]
    got = content_items(items, MESSAGE, None)
    assert got[items[0]] == BinaryData((2,), b"\x00\x01\x02")
    assert got[items[1]] == BinarySizeData((2,), 3)
    assert got[items[2]] == BinaryData((7,), None)
    assert got[items[3]] == BinaryData((), MESSAGE)
    with pytest.raises(UnknownEncoding):
        content_items([BinarySection((3,))], MESSAGE, None)  # RFC 3516: NO [UNKNOWN-CTE]


def test_rfc822_and_summary_items() -> None:
    summary = summarize(MESSAGE)
    items = [FetchAttr.RFC822_HEADER, FetchAttr.RFC822_TEXT, FetchAttr.ENVELOPE,
             FetchAttr.BODY, FetchAttr.BODYSTRUCTURE]
    got = content_items(items, MESSAGE, summary)
    header = MESSAGE[: MESSAGE.index(b"\r\n\r\n") + 4]
    assert got[FetchAttr.RFC822_HEADER] == Rfc822Data(FetchAttr.RFC822_HEADER, header)
    assert got[FetchAttr.RFC822_TEXT] == Rfc822Data(FetchAttr.RFC822_TEXT, MESSAGE[len(header):])
    envelope = got[FetchAttr.ENVELOPE]
    assert isinstance(envelope, EnvelopeData) and envelope.envelope[1] == b"parts"  # type: ignore[index]
    body = got[FetchAttr.BODY]
    structure = got[FetchAttr.BODYSTRUCTURE]
    assert isinstance(body, BodyStructureData) and not body.extensible
    assert isinstance(structure, BodyStructureData) and structure.extensible
    assert content_items([FetchAttr.ENVELOPE], None, None) == {}


def test_summary_from_cache_or_message() -> None:
    blob = encode_summary(summarize(MESSAGE))
    assert summary_from(blob, None) == (summarize(MESSAGE), False)
    assert summary_from(b"garbage", MESSAGE) == (summarize(MESSAGE), True)
    assert summary_from(b"garbage", None) == (None, False)
    assert summary_from(None, None) == (None, False)


_sections = st.builds(
    BodySection,
    st.builds(Section, st.lists(st.integers(1, 4), max_size=3).map(tuple),
              st.sampled_from([None, SectionText.HEADER, SectionText.TEXT, SectionText.MIME])),
    st.none() | st.builds(Partial, st.integers(0, 300), st.integers(1, 300)),
)


@given(st.binary(max_size=400), st.lists(_sections, max_size=4))
def test_any_message_any_section_never_raises(data: bytes, items: list[BodySection]) -> None:
    items = [i for i in items if i.section.text is not SectionText.MIME or i.section.part]
    got = content_items(items, data, None)
    assert set(got) == set(items)
