"""FETCH data that needs the message itself or its parsed summary (pure).

ENVELOPE, BODY and BODYSTRUCTURE come from the summary the store caches
(``mailyard.message.cache``: parsed once, kept per uid); sections, RFC822.*
and BINARY come from the message octets (RFC 9051 §6.4.5, RFC 3516). The
handler (fetch.py) reads files in the io pool and calls ``content_items``
there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from mailyard.message import sections as ms
from mailyard.message.bodystructure import imap_body
from mailyard.message.cache import CacheError, MessageSummary, decode_summary, summarize
from mailyard.message.envelope import imap_envelope
from mailyard.message.mime import MimePart, parse_message
from mailyard.proto.imap.fetchspec import (
    BinarySection,
    BinarySize,
    BodySection,
    FetchAttr,
    FetchItem,
    Partial,
    Section,
    SectionText,
)
from mailyard.proto.imap.responses import (
    BinaryData,
    BinarySizeData,
    BodyStructureData,
    EnvelopeData,
    FetchData,
    Rfc822Data,
    SectionData,
)

__all__ = [
    "SUMMARY_KIND",
    "UnknownEncoding",
    "content_items",
    "needs_data",
    "needs_summary",
    "summary_from",
]

SUMMARY_KIND: Final = 1  # the blob-cache kind of an encoded MessageSummary
_SUMMARY_ITEMS: Final = frozenset({FetchAttr.ENVELOPE, FetchAttr.BODY, FetchAttr.BODYSTRUCTURE})
_DATA_ITEMS: Final = frozenset({FetchAttr.RFC822, FetchAttr.RFC822_HEADER, FetchAttr.RFC822_TEXT})
_TEXTS: Final = {
    SectionText.HEADER: ms.SectionText.HEADER,
    SectionText.HEADER_FIELDS: ms.SectionText.HEADER_FIELDS,
    SectionText.HEADER_FIELDS_NOT: ms.SectionText.HEADER_FIELDS_NOT,
    SectionText.TEXT: ms.SectionText.TEXT,
    SectionText.MIME: ms.SectionText.MIME,
}


class UnknownEncoding(Exception):
    """RFC 3516 §4.3: a BINARY part whose transfer encoding cannot be
    decoded; the command fails with NO [UNKNOWN-CTE]."""


def needs_summary(items: Sequence[FetchItem]) -> bool:
    return any(item in _SUMMARY_ITEMS for item in items)


def needs_data(items: Sequence[FetchItem]) -> bool:
    return any(isinstance(item, BodySection | BinarySection | BinarySize)
               or item in _DATA_ITEMS for item in items)


def summary_from(blob: bytes | None, data: bytes | None) -> tuple[MessageSummary | None, bool]:
    """The summary from a cached blob, else parsed from ``data``; and
    whether it was parsed now (so the caller caches it)."""
    if blob is not None:
        try:
            return decode_summary(blob), False
        except CacheError:
            pass  # another version or damage: parse again
    if data is None:
        return None, False
    return summarize(data), True


def _message_section(section: Section) -> ms.Section:
    text = ms.SectionText.NONE if section.text is None else _TEXTS[section.text]
    fields = tuple(f.encode("utf-8", "replace") for f in section.fields)
    return ms.Section(section.part, text, fields)


def _partial(data: bytes | None, partial: Partial | None) -> tuple[bytes | None, int | None]:
    if data is None or partial is None:
        return data, None
    # RFC 9051 §6.4.5: <origin.count>; an origin past the end gives "".
    return ms.partial(data, partial.offset, partial.count), partial.offset


class _Parsed:
    """The message's MIME tree, parsed on first use only."""

    __slots__ = ("_tree", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._tree: MimePart | None = None

    @property
    def tree(self) -> MimePart:
        if self._tree is None:
            self._tree = parse_message(self.data)
        return self._tree


def content_items(items: Sequence[FetchItem], data: bytes | None,
                  summary: MessageSummary | None) -> dict[FetchItem, FetchData]:
    """The heavy items of one message, keyed by item (UnknownEncoding)."""
    out: dict[FetchItem, FetchData] = {}
    parsed = _Parsed(data or b"")
    for item in items:
        value = _one(item, parsed, summary)
        if value is not None:
            out[item] = value
    return out


def _one(item: FetchItem, parsed: _Parsed, summary: MessageSummary | None) -> FetchData | None:
    data = parsed.data
    if isinstance(item, BodySection):
        section = item.section
        tree = parsed.tree if section.part else None
        found = ms.section_bytes(data, _message_section(section), tree)
        chunk, origin = _partial(found, item.partial)
        return SectionData(section, chunk, origin)
    if isinstance(item, BinarySection):
        decoded = ms.binary_bytes(data, item.part, parsed.tree if item.part else None)
        if decoded is ms.BinaryError.UNKNOWN_CTE:
            raise UnknownEncoding(".".join(map(str, item.part)))
        content = None if isinstance(decoded, ms.BinaryError) else decoded
        chunk, origin = _partial(content, item.partial)
        return BinaryData(item.part, chunk, origin)
    if isinstance(item, BinarySize):
        size = ms.binary_size(data, item.part, parsed.tree if item.part else None)
        if size is ms.BinaryError.UNKNOWN_CTE:
            raise UnknownEncoding(".".join(map(str, item.part)))
        return BinarySizeData(item.part, size if isinstance(size, int) else 0)
    return _attr(item, parsed, summary)


def _attr(item: FetchItem, parsed: _Parsed, summary: MessageSummary | None) -> FetchData | None:
    data = parsed.data
    if item is FetchAttr.RFC822:
        return Rfc822Data(item, data)  # RFC 9051 §6.4.5: = BODY[]
    if item is FetchAttr.RFC822_HEADER:
        header = ms.section_bytes(data, ms.Section(text=ms.SectionText.HEADER))
        return Rfc822Data(item, header)
    if item is FetchAttr.RFC822_TEXT:
        return Rfc822Data(item, ms.section_bytes(data, ms.Section(text=ms.SectionText.TEXT)))
    if summary is None:
        return None
    if item is FetchAttr.ENVELOPE:
        return EnvelopeData(imap_envelope(summary.envelope))
    if item is FetchAttr.BODYSTRUCTURE:
        return BodyStructureData(imap_body(summary.body, extended=True), True)
    if item is FetchAttr.BODY:
        return BodyStructureData(imap_body(summary.body, extended=False), False)
    return None
