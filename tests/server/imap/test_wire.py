"""Cached, rendered ENVELOPE and BODY[STRUCTURE] (content_wire.py,
fetch.load_content, encoder.RenderedEnvelope / RenderedBody): a FETCH
answered from the rendered cache sends exactly the octets rendering the
summary sends, in UTF-8 sessions and others."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.maildir.folder import Folder
from mailyard.message.cache import summarize
from mailyard.proto.imap.encoder import Encoder, Output, RenderedBody, RenderedEnvelope
from mailyard.proto.imap.fetchspec import FetchAttr, FetchItem
from mailyard.proto.imap.responses import FetchData, FetchResponse, UidData
from mailyard.server.imap.content import SUMMARY_KIND, content_items
from mailyard.server.imap.content_wire import WIRE_KINDS, render_wire, rendered_item
from mailyard.server.imap.fetch import load_content
from tests.maildir.storehelp import deliver_to
from tests.message import mime_corpus as corpus

ITEMS: list[FetchItem] = [FetchAttr.ENVELOPE, FetchAttr.BODYSTRUCTURE, FetchAttr.BODY]
EIGHT_BIT_SUBJECT = b"From: a@example.org\r\nSubject: caf\xc3\xa9\r\n\r\nbody\r\n"


def _wire(items: dict[FetchItem, FetchData], utf8: bool) -> bytes:
    encoder = Encoder()
    encoder.utf8 = utf8
    out = Output()
    ordered = [items[item] for item in ITEMS if item in items]  # as FETCH orders them
    encoder.untagged(FetchResponse(1, (UidData(9), *ordered)), out)
    return out.take()


def _rendered(summary_items: dict[FetchItem, FetchData]) -> dict[FetchItem, FetchData]:
    out = dict(summary_items)
    for item, value in summary_items.items():
        again = rendered_item(item, render_wire(value))
        if again is not None:
            out[item] = again
    return out


@pytest.mark.parametrize("name", sorted(corpus.CORPUS))
def test_rendered_items_send_the_same_octets(name: str) -> None:
    built = content_items(ITEMS, None, summarize(corpus.CORPUS[name]))
    rendered = _rendered(built)
    for utf8 in (False, True):
        assert _wire(rendered, utf8) == _wire(built, utf8)
    assert set(WIRE_KINDS) == set(ITEMS) and len(set(WIRE_KINDS.values())) == 3


def test_the_items_keep_their_kind() -> None:
    got = _rendered(content_items(ITEMS, None, summarize(corpus.MIXED)))
    assert isinstance(got[FetchAttr.ENVELOPE], RenderedEnvelope)
    body, structure = got[FetchAttr.BODY], got[FetchAttr.BODYSTRUCTURE]
    assert isinstance(body, RenderedBody) and not body.extensible
    assert isinstance(structure, RenderedBody) and structure.extensible


def test_eight_bit_values_are_never_kept_rendered() -> None:
    built = content_items(ITEMS, None, summarize(EIGHT_BIT_SUBJECT))
    assert render_wire(built[FetchAttr.ENVELOPE]) == b"\x00"
    assert rendered_item(FetchAttr.ENVELOPE, b"\x00") is None
    assert rendered_item(FetchAttr.BODY, render_wire(built[FetchAttr.BODY])) is not None


def test_rendered_values_must_be_one_line_of_seven_bit_text() -> None:
    for bad in (b"(\r\n)", b'("a\nb")', b"(\x00)", b'("caf\xc3\xa9")'):
        with pytest.raises(ValueError):
            RenderedEnvelope(None, bad)
        with pytest.raises(ValueError):
            RenderedBody(None, True, bad)
        assert rendered_item(FetchAttr.ENVELOPE, b"\x01" + bad) is None


@given(st.sampled_from(ITEMS), st.binary(max_size=80))
def test_any_blob_gives_a_rendered_item_or_none(item: FetchItem, blob: bytes) -> None:
    got = rendered_item(item, blob)
    assert got is None or isinstance(got, RenderedEnvelope | RenderedBody)


def test_other_forms_are_ignored() -> None:
    assert rendered_item(FetchAttr.ENVELOPE, b"\x02(NIL)") is None
    assert rendered_item(FetchAttr.BODY, b"") is None
    assert rendered_item(FetchAttr.ENVELOPE, b"\x01\xf0\x00\x00\x00(NIL)") is None


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Folder]:
    box = tmp_path / "box"
    for message in (corpus.MIXED, corpus.FORWARD, EIGHT_BIT_SUBJECT, corpus.SIMPLE):
        deliver_to(box, message)
    opened = Folder.open(str(box))
    opened.sync()
    yield opened
    opened.close()


def test_load_content_caches_the_rendered_form(folder: Folder) -> None:
    uids = list(folder.view().uids)
    items: list[FetchItem] = [FetchAttr.UID, *ITEMS]
    first = load_content(folder, uids, items)
    second = load_content(folder, uids, items)
    for before, after in zip(first, second, strict=True):
        assert before is not None and after is not None
        for utf8 in (False, True):
            assert _wire(after, utf8) == _wire(before, utf8)
    assert isinstance(second[0][FetchAttr.ENVELOPE], RenderedEnvelope)  # type: ignore[index]
    assert isinstance(second[1][FetchAttr.BODY], RenderedBody)  # type: ignore[index]
    # 8-bit: marked as not renderable once, and built from the summary each time.
    assert not isinstance(second[2][FetchAttr.ENVELOPE], RenderedEnvelope)  # type: ignore[index]
    assert isinstance(second[2][FetchAttr.BODY], RenderedBody)  # type: ignore[index]
    assert folder.cached_many(uids[2:3], WIRE_KINDS[FetchAttr.ENVELOPE]) == {uids[2]: b"\x00"}
    # The first FETCH sent what it had just rendered, too.
    assert isinstance(first[0][FetchAttr.ENVELOPE], RenderedEnvelope)  # type: ignore[index]


def test_load_content_mixes_rendered_and_file_items(folder: Folder) -> None:
    uids = list(folder.view().uids)
    load_content(folder, uids, ITEMS)
    got = load_content(folder, uids[:1], [FetchAttr.ENVELOPE, FetchAttr.RFC822_SIZE,
                                          FetchAttr.RFC822_HEADER])
    assert got[0] is not None
    assert isinstance(got[0][FetchAttr.ENVELOPE], RenderedEnvelope)
    assert got[0][FetchAttr.RFC822_HEADER].data.endswith(b"\r\n\r\n")  # type: ignore[union-attr]


def test_a_damaged_summary_is_parsed_again(folder: Folder, tmp_path: Path) -> None:
    uids = list(folder.view().uids)
    expected = load_content(folder, uids[:1], [FetchAttr.ENVELOPE])
    box = tmp_path / "fresh"
    deliver_to(box, corpus.MIXED)
    fresh = Folder.open(str(box))
    try:
        fresh.sync()
        uid = fresh.view().uids[0]
        fresh.cache(uid, SUMMARY_KIND, b"[99, \"another version\"]")
        got = load_content(fresh, [uid], [FetchAttr.ENVELOPE])
        assert got[0] is not None and expected[0] is not None
        assert _wire(got[0], False) == _wire(expected[0], False)
    finally:
        fresh.close()
