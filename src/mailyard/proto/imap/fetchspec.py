"""FETCH data items as the client asks for them (RFC 9051 §6.4.5, RFC 3501
§6.4.5, RFC 3516 BINARY, RFC 7162 MODSEQ) and their parser.

``FetchAttr`` covers the items without arguments; ``BodySection``,
``BinarySection`` and ``BinarySize`` carry a section and partial range.
The macros ALL, FAST and FULL are expanded here (RFC 9051 §6.4.5), so the
adapter only ever sees real items.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final, TypeAlias

from mailyard.proto.imap.errors import CommandError
from mailyard.proto.imap.lexer import Cursor, decode_text

__all__ = [
    "BinarySection",
    "BinarySize",
    "BodySection",
    "FetchAttr",
    "FetchItem",
    "Partial",
    "Section",
    "SectionText",
    "parse_fetch_items",
    "sets_seen",
]


class FetchAttr(enum.Enum):
    ENVELOPE = "ENVELOPE"
    FLAGS = "FLAGS"
    INTERNALDATE = "INTERNALDATE"
    RFC822 = "RFC822"  # = BODY[] (sets \Seen)
    RFC822_HEADER = "RFC822.HEADER"  # = BODY.PEEK[HEADER]
    RFC822_SIZE = "RFC822.SIZE"
    RFC822_TEXT = "RFC822.TEXT"  # = BODY[TEXT] (sets \Seen)
    BODY = "BODY"  # the non-extensible BODYSTRUCTURE
    BODYSTRUCTURE = "BODYSTRUCTURE"
    UID = "UID"
    MODSEQ = "MODSEQ"  # RFC 7162 §3.1.4.1


class SectionText(enum.Enum):
    HEADER = "HEADER"
    HEADER_FIELDS = "HEADER.FIELDS"
    HEADER_FIELDS_NOT = "HEADER.FIELDS.NOT"
    TEXT = "TEXT"
    MIME = "MIME"  # only after a part number (RFC 9051 §9 section-text)


@dataclass(frozen=True, slots=True)
class Section:
    """RFC 9051 §9 section-spec: part numbers, then an optional text part;
    ``Section()`` is the whole message (``BODY[]``)."""

    part: tuple[int, ...] = ()
    text: SectionText | None = None
    fields: tuple[str, ...] = ()  # HEADER.FIELDS(.NOT), upper-cased

    def __str__(self) -> str:
        spec = ".".join(str(n) for n in self.part)
        if self.text is not None:
            spec += ("." if spec else "") + self.text.value
        if self.fields:
            spec += " (" + " ".join(self.fields) + ")"
        return spec


@dataclass(frozen=True, slots=True)
class Partial:
    """``<offset.count>``: at most ``count`` octets from ``offset``."""

    offset: int
    count: int


@dataclass(frozen=True, slots=True)
class BodySection:
    """``BODY[section]<partial>`` or ``BODY.PEEK[…]`` (peek: \\Seen untouched)."""

    section: Section = Section()
    partial: Partial | None = None
    peek: bool = False


@dataclass(frozen=True, slots=True)
class BinarySection:
    """RFC 3516 ``BINARY[part]<partial>`` / ``BINARY.PEEK``: decoded content."""

    part: tuple[int, ...] = ()
    partial: Partial | None = None
    peek: bool = False


@dataclass(frozen=True, slots=True)
class BinarySize:
    """RFC 3516 ``BINARY.SIZE[part]``: the decoded size."""

    part: tuple[int, ...] = ()


FetchItem: TypeAlias = FetchAttr | BodySection | BinarySection | BinarySize

_NAME: Final = re.compile(rb"[A-Za-z0-9.]+")
_SIMPLE: Final = {a.value: a for a in FetchAttr}
_FAST: Final = (FetchAttr.FLAGS, FetchAttr.INTERNALDATE, FetchAttr.RFC822_SIZE)
# RFC 9051 §6.4.5: the macros, which may not be combined with other items.
_MACROS: Final = {
    "FAST": _FAST,
    "ALL": (*_FAST, FetchAttr.ENVELOPE),
    "FULL": (*_FAST, FetchAttr.ENVELOPE, FetchAttr.BODY),
}
_TEXTS: Final = {t.value: t for t in SectionText}
_MAX_PART_DEPTH: Final = 64


def sets_seen(item: FetchItem) -> bool:
    """RFC 9051 §6.4.5: fetching body content without .PEEK sets \\Seen."""
    if isinstance(item, BodySection | BinarySection):
        return not item.peek
    return item in (FetchAttr.RFC822, FetchAttr.RFC822_TEXT)


def parse_fetch_items(cur: Cursor, *, binary: bool) -> tuple[FetchItem, ...]:
    """A macro, one item, or a parenthesised list of items."""
    if cur.take(b"("):
        items = [_item(cur, binary)]
        while cur.more("fetch attributes"):
            items.append(_item(cur, binary))
        return tuple(dict.fromkeys(items))
    for name, expansion in _MACROS.items():
        if (cur.peek_match(_NAME) or b"").upper() == name.encode():
            cur.take(name.encode())
            return expansion
    return (_item(cur, binary),)


def _item(cur: Cursor, binary: bool) -> FetchItem:
    raw = cur.peek_match(_NAME)
    if raw is None:
        raise CommandError("expected fetch attribute")
    cur.take(raw)
    name = raw.decode("ascii").upper()
    if cur.peek() == 0x5B:  # "["
        return _sectioned(cur, name, binary)
    attr = _SIMPLE.get(name)
    if attr is None:
        raise CommandError(f"unknown fetch attribute {name}")
    return attr


def _sectioned(cur: Cursor, name: str, binary: bool) -> FetchItem:
    if name in ("BODY", "BODY.PEEK"):
        section = _section(cur)
        return BodySection(section, _partial(cur), peek=name == "BODY.PEEK")
    if name in ("BINARY", "BINARY.PEEK", "BINARY.SIZE"):
        if not binary:
            raise CommandError(f"{name} is not available")  # RFC 3516 not offered
        cur.expect(b"[")
        part = _part_numbers(cur) if cur.peek() != 0x5D else ()
        cur.expect(b"]")
        if name == "BINARY.SIZE":
            return BinarySize(part)
        return BinarySection(part, _partial(cur), peek=name == "BINARY.PEEK")
    raise CommandError(f"unknown fetch attribute {name}[")


def _part_numbers(cur: Cursor) -> tuple[int, ...]:
    parts = [cur.number("part number", nonzero=True)]
    while cur.peek() == 0x2E and _is_digit(cur.peek_at(1)):
        cur.take(b".")
        parts.append(cur.number("part number", nonzero=True))
        if len(parts) > _MAX_PART_DEPTH:
            raise CommandError("section nested too deeply")
    return tuple(parts)


def _is_digit(octet: int | None) -> bool:
    return octet is not None and 0x30 <= octet <= 0x39


def _section(cur: Cursor) -> Section:
    """RFC 9051 §9 section = "[" [section-spec] "]"."""
    cur.expect(b"[")
    if cur.take(b"]"):
        return Section()
    part: tuple[int, ...] = ()
    if _is_digit(cur.peek()):
        part = _part_numbers(cur)
        if cur.take(b"]"):
            return Section(part)
        cur.expect(b".", "'.' after part number")
    word = (cur.peek_match(_NAME) or b"").decode("ascii").upper()
    text = _TEXTS.get(word)
    if text is None or (text is SectionText.MIME and not part):
        raise CommandError(f"invalid section text {word!r}")
    cur.take(word.encode())
    fields: tuple[str, ...] = ()
    if text in (SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT):
        if cur.peek() != 0x20:
            raise CommandError(f"{text.value} needs a list of header field names")
        cur.sp()
        fields = _header_list(cur)
    cur.expect(b"]")
    return Section(part, text, fields)


def _header_list(cur: Cursor) -> tuple[str, ...]:
    """RFC 9051 §9 header-list: "(" header-fld-name *(SP header-fld-name) ")"."""
    cur.expect(b"(", "header list")
    names = [decode_text(cur.astring("header field name"), "header field name").upper()]
    while cur.more("header field names"):
        names.append(decode_text(cur.astring("header field name"), "header field name").upper())
    return tuple(dict.fromkeys(names))


def _partial(cur: Cursor) -> Partial | None:
    """RFC 9051 §9 partial = "<" number64 "." nz-number64 ">"."""
    if not cur.take(b"<"):
        return None
    offset = cur.number("partial offset", wide=True)
    cur.expect(b".", "'.' in partial range")
    count = cur.number("partial length", wide=True, nonzero=True)
    cur.expect(b">", "'>' after partial range")
    return Partial(offset, count)
