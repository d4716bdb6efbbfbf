"""SEARCH keys that depend on message content (RFC 3501 / RFC 9051 §6.4.4).

Pure; no I/O. The adapter evaluates the flag, UID, sequence and
INTERNALDATE keys from its index and combines keys with AND / OR / NOT
itself; for each content key it calls ``matches(key, view)``.

Keys (values; the needles are already decoded from the command's CHARSET):

* ``AddressKey(field, needle)``: FROM / TO / CC / BCC, matched against the
  envelope's address list, each address read as ``name <mailbox@host>``
  with RFC 2047 names decoded (RFC 9051: "the envelope structure's FROM
  field");
* ``SubjectKey(needle)``: the envelope subject, decoded;
* ``HeaderKey(name, needle)``: any field called ``name`` whose decoded
  value contains ``needle``; an empty needle tests for the field's presence;
* ``BodyKey(needle)``: the text of the text/* and message/* leaf parts
  (RFC 9051 §6.4.4 lets a server skip other media types), transfer- and
  charset-decoded; ``TextKey(needle)``: the same plus every header field
  of every entity (top level, MIME part headers, encapsulated messages);
* ``SentKey(relation, day)``: SENTBEFORE / SENTON / SENTSINCE on the date
  of the Date: field as written, time and zone ignored; a message without
  a readable Date: matches none of them;
* ``SizeKey(relation, octets)``: LARGER / SMALLER on RFC822.SIZE.

String matching is a case-insensitive substring test (``str.casefold``:
the ASCII range as RFC 9051 asks, and the rest of Unicode as well).

``need(key)`` tells the adapter the least it must supply in the
``MessageView``: only the size (``Need.SIZE``), the cached envelope
(``Need.ENVELOPE``), the header block (``Need.HEADER``) or the whole
message (``Need.MESSAGE``); header-only keys never parse a body.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import TypeAlias

from mailyard.message.dates import parse_date
from mailyard.message.encoded import decode_charset, decode_transfer, decode_words, param_text
from mailyard.message.envelope import Envelope, EnvelopeAddress, build_envelope
from mailyard.message.mime import Header, MimePart, parse_header, parse_message

__all__ = [
    "AddressField",
    "AddressKey",
    "BodyKey",
    "DateRelation",
    "HeaderKey",
    "MessageView",
    "Need",
    "SearchKey",
    "SentKey",
    "SizeKey",
    "SizeRelation",
    "SubjectKey",
    "TextKey",
    "matches",
    "need",
    "subject_matches",
    "subject_test",
]


class AddressField(Enum):
    FROM = "from"
    TO = "to"
    CC = "cc"
    BCC = "bcc"


class DateRelation(Enum):
    BEFORE = "before"
    ON = "on"
    SINCE = "since"


class SizeRelation(Enum):
    LARGER = "larger"
    SMALLER = "smaller"


class Need(IntEnum):
    """What a key reads, least first."""

    SIZE = 0
    ENVELOPE = 1
    HEADER = 2
    MESSAGE = 3


@dataclass(frozen=True, slots=True)
class AddressKey:
    field: AddressField
    needle: str


@dataclass(frozen=True, slots=True)
class SubjectKey:
    needle: str


@dataclass(frozen=True, slots=True)
class HeaderKey:
    name: bytes
    needle: str


@dataclass(frozen=True, slots=True)
class BodyKey:
    needle: str


@dataclass(frozen=True, slots=True)
class TextKey:
    needle: str


@dataclass(frozen=True, slots=True)
class SentKey:
    relation: DateRelation
    day: datetime.date


@dataclass(frozen=True, slots=True)
class SizeKey:
    relation: SizeRelation
    octets: int


SearchKey: TypeAlias = AddressKey | SubjectKey | HeaderKey | BodyKey | TextKey | SentKey | SizeKey


class MessageView:
    """One message as SEARCH sees it, parsed lazily and at most once.

    ``data`` is the whole message, or just its header block when no key
    needs more (``need``); ``envelope`` is the store's cached one, if any;
    ``size`` is RFC822.SIZE (``len(data)`` when not given). With
    ``load_envelope``, ``subject`` is the envelope's subject, known already,
    and ``load_envelope()`` gives the envelope when some other key needs it
    (SEARCH SUBJECT over many cached messages decodes nothing else). This is
    a memo, not a value: each derived view is computed on first use.
    """

    __slots__ = ("_body", "_data", "_envelope", "_header", "_load", "_size", "_subject",
                 "_text", "_tree")

    def __init__(
        self, data: bytes = b"", *, size: int | None = None, envelope: Envelope | None = None,
        subject: bytes | None = None, load_envelope: Callable[[], Envelope] | None = None,
    ) -> None:
        self._data = data
        self._size = len(data) if size is None else size
        self._envelope = envelope
        self._subject = subject
        self._load = load_envelope
        self._header: Header | None = None
        self._tree: MimePart | None = None
        self._body: list[str] | None = None
        self._text: list[str] | None = None

    @property
    def size(self) -> int:
        return self._size

    @property
    def header(self) -> Header:
        if self._header is None:
            self._header = self._tree.header if self._tree is not None else parse_header(self._data)
        return self._header

    @property
    def envelope(self) -> Envelope:
        if self._envelope is None:
            if self._load is not None:
                self._envelope = self._load()
            else:
                self._envelope = build_envelope(self.header)
        return self._envelope

    @property
    def subject(self) -> bytes | None:
        """The envelope's subject (raw, as in ENVELOPE)."""
        if self._envelope is None and self._load is not None:
            return self._subject
        return self.envelope.subject

    @property
    def tree(self) -> MimePart:
        if self._tree is None:
            self._tree = parse_message(self._data)
        return self._tree

    def body_texts(self) -> list[str]:
        """Casefolded decoded text of each text-like leaf part."""
        if self._body is None:
            self._body = [text.casefold() for text in _leaf_texts(self._data, self.tree)]
        return self._body

    def header_texts(self) -> list[str]:
        """Casefolded ``name: value`` lines of every header of every entity."""
        if self._text is None:
            self._text = [
                "\n".join(_field_lines(header)).casefold() for header in _headers(self.tree)
            ]
        return self._text


def need(key: SearchKey) -> Need:
    if isinstance(key, SizeKey):
        return Need.SIZE
    if isinstance(key, AddressKey | SubjectKey | SentKey):
        return Need.ENVELOPE
    if isinstance(key, HeaderKey):
        return Need.HEADER
    return Need.MESSAGE


# -- walking the parts -------------------------------------------------------------


def _entities(tree: MimePart) -> Iterator[MimePart]:
    """Every entity in document order, encapsulated messages included."""
    stack = [tree]
    while stack:
        part = stack.pop()
        yield part
        if part.message is not None:
            stack.append(part.message)
        stack.extend(reversed(part.children))


def _headers(tree: MimePart) -> Iterator[Header]:
    for part in _entities(tree):
        if part.header.fields:
            yield part.header


def _leaf_texts(data: bytes, tree: MimePart) -> Iterator[str]:
    for part in _entities(tree):
        if part.children or part.message is not None:
            continue
        if part.content_type.maintype not in (b"text", b"message"):
            continue
        raw = data[part.body_start : part.end]
        decoded = decode_transfer(raw, part.encoding)
        charset = param_text(part.content_type.params, b"charset")
        yield decode_charset(raw if decoded is None else decoded, charset)


def _field_lines(header: Header) -> Iterator[str]:
    for field in header.fields:
        yield f"{field.name.decode('ascii', errors='replace')}: {decode_words(field.value)}"


# -- matching ----------------------------------------------------------------------


def _address_text(address: EnvelopeAddress) -> str:
    name = decode_words(address.name) if address.name else ""
    if address.host is None:  # group markers: the group name is all there is
        return name or decode_words(address.mailbox or b"")
    mailbox = decode_words(address.mailbox or b"")
    return f"{name} <{mailbox}@{decode_words(address.host)}>"


def _addresses(envelope: Envelope, field: AddressField) -> tuple[EnvelopeAddress, ...]:
    if field is AddressField.FROM:
        return envelope.from_
    if field is AddressField.TO:
        return envelope.to
    if field is AddressField.CC:
        return envelope.cc
    return envelope.bcc


def _sent(key: SentKey, view: MessageView) -> bool:
    sent = parse_date(view.envelope.date)
    if sent is None:
        return False
    if key.relation is DateRelation.BEFORE:
        return sent.day < key.day
    if key.relation is DateRelation.ON:
        return sent.day == key.day
    return sent.day >= key.day


def _header(key: HeaderKey, view: MessageView) -> bool:
    name = key.name.lower()
    needle = key.needle.casefold()
    return any(
        needle in decode_words(field.value).casefold()
        for field in view.header.fields
        if field.key == name
    )


def subject_test(needle: str) -> Callable[[bytes], bool]:
    """Whether a raw envelope subject, decoded, contains ``needle``
    (casefolded), for testing many messages with one needle."""
    folded = needle.casefold()
    octets = folded.encode("ascii") if folded.isascii() else None

    def test(raw: bytes) -> bool:
        if raw.isascii() and b"=?" not in raw:
            # decode_words leaves 7-bit text without encoded words as it is,
            # and casefolding 7-bit text is lower(): no str is made (SEARCH
            # SUBJECT over 100,000 messages).
            return octets is not None and octets in raw.lower()
        return folded in decode_words(raw).casefold()

    return test


def subject_matches(needle: str, raw: bytes) -> bool:
    """Whether the decoded subject ``raw`` contains ``needle``, casefolded."""
    return subject_test(needle)(raw)


def matches(key: SearchKey, view: MessageView) -> bool:
    """Whether the message of ``view`` satisfies content key ``key``."""
    if isinstance(key, SizeKey):
        if key.relation is SizeRelation.LARGER:
            return view.size > key.octets
        return view.size < key.octets
    if isinstance(key, SentKey):
        return _sent(key, view)
    if isinstance(key, SubjectKey):
        return subject_matches(key.needle, view.subject or b"")
    if isinstance(key, AddressKey):
        listed = ", ".join(_address_text(a) for a in _addresses(view.envelope, key.field))
        return key.needle.casefold() in listed.casefold()
    if isinstance(key, HeaderKey):
        return _header(key, view)
    needle = key.needle.casefold()
    if isinstance(key, TextKey) and any(needle in text for text in view.header_texts()):
        return True
    return any(needle in text for text in view.body_texts())
