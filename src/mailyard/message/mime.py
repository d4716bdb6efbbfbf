"""The MIME structure of a stored message, as offsets into its bytes.

Pure functions; no I/O. ``parse_message(data)`` builds a tree of
``MimePart`` values that hold offsets into ``data`` (never copies of
bodies) plus the parsed header fields of each entity, so sections can be
sliced out of the original bytes afterwards. ``parse_header`` reads one
header block only, for callers that need no more (ENVELOPE, HEADER.FIELDS,
header SEARCH keys).

The parser never raises, whatever the input (it runs on what clients
sent). Broken MIME gets a best-effort structure:

* no or invalid Content-Type: ``text/plain; charset=us-ascii`` (RFC 2045
  §5.2), or ``message/rfc822`` inside multipart/digest (RFC 2046 §5.1.5);
* a multipart without a boundary parameter is an invalid Content-Type, so
  it is read as text/plain as well;
* a multipart whose boundary never occurs gets one part: its whole body,
  without a header; a multipart without a close delimiter ends where its
  enclosing entity ends;
* nesting deeper than ``MAX_DEPTH`` and parts beyond ``MAX_PARTS`` are not
  parsed: such an entity is an ``application/octet-stream`` leaf;
* message/rfc822 and message/global bodies are always parsed as a message
  (RFC 9051 §9 forbids reporting them as basic parts).

Line ends may be CRLF or bare LF. Offsets, sizes and line counts are those
of the bytes given; a store serving LF-only files converts them first
(``crlf``) so that what the client is told matches what it receives.

Header field parsing follows ``mailyard.message.headers.iter_fields`` rule
for rule (obsolete white space before the colon, skipped garbage lines,
values unfolded and stripped), but also keeps each field's span in the
message, which HEADER.FIELDS needs and ``iter_fields`` does not give.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from mailyard.message.encoded import Params, merge_params

__all__ = [
    "MAX_DEPTH",
    "MAX_PARTS",
    "OCTET_STREAM",
    "TEXT_PLAIN",
    "ContentType",
    "Header",
    "HeaderField",
    "MimePart",
    "crlf",
    "parse_content_type",
    "parse_disposition",
    "parse_encoding",
    "parse_header",
    "parse_language",
    "parse_message",
]

MAX_DEPTH: Final = 32  # nested multiparts / encapsulated messages parsed
MAX_PARTS: Final = 1000  # entities parsed per message

_CR: Final = 0x0D
_LF: Final = 0x0A
_WSP: Final = b" \t"
_SPACE_CHARS: Final = b" \t\r\n"
# RFC 2045 §5.1: tspecials, which a token cannot contain.
_TSPECIALS: Final = frozenset(b'()<>@,;:\\"/[]?=')
# Runs of octets up to one of the given stops (white space, ";", "(",
# '"' and what each context adds).
_TOKEN_RUN: Final = re.compile(rb'[^ \t\r\n;("]*')
_NAME_RUN: Final = re.compile(rb'[^ \t\r\n;=("]*')
_PARAM_RUN: Final = re.compile(rb"[^;]*")
_TYPE_RUN: Final = re.compile(rb"[^ \t\r\n;/(]*")
_WORD_RUN: Final = re.compile(rb"[^ \t\r\n;(]*")
_TAG_RUN: Final = re.compile(rb"[^ \t\r\n,(]*")
_SPACE_RUN: Final = re.compile(rb"[ \t\r\n]*")
# RFC 822 quoted-string after its opening quote; unterminated runs to the end.
_QUOTED: Final = re.compile(rb'((?:[^"\\]|\\.|\\\Z)*)"?', re.DOTALL)
_QUOTED_PAIR: Final = re.compile(rb"\\(.)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One field: ``name`` as written, ``key`` its lowercase form, the span
    ``[start, end)`` in the message (continuation lines and the final line
    end included) and the unfolded, stripped ``value``."""

    name: bytes
    key: bytes
    start: int
    end: int
    value: bytes


@dataclass(frozen=True, slots=True)
class Header:
    """A header block at ``[start, end)``; ``end`` is where the body starts,
    after the empty line ``separator`` (``b"\\r\\n"``, ``b"\\n"``, or ``b""``
    when the block has no empty line and so no body)."""

    fields: tuple[HeaderField, ...]
    start: int
    end: int
    separator: bytes

    def get(self, key: bytes) -> bytes | None:
        """Value of the first field named ``key`` (lowercase)."""
        for field in self.fields:
            if field.key == key:
                return field.value
        return None

    def get_all(self, key: bytes) -> tuple[bytes, ...]:
        return tuple(field.value for field in self.fields if field.key == key)


@dataclass(frozen=True, slots=True)
class ContentType:
    """A media type (lowercase) with its parameters, RFC 2231 merged."""

    maintype: bytes
    subtype: bytes
    params: Params

    def param(self, name: bytes) -> bytes | None:
        for key, value in self.params:
            if key == name:
                return value
        return None


TEXT_PLAIN: Final = ContentType(b"text", b"plain", ((b"charset", b"us-ascii"),))
OCTET_STREAM: Final = ContentType(b"application", b"octet-stream", ())
_MESSAGE_RFC822: Final = ContentType(b"message", b"rfc822", ())


@dataclass(frozen=True, slots=True)
class MimePart:
    """One entity: its header, its body ``[header.end, end)``, the media
    type as interpreted (defaults applied), its lowercase transfer
    encoding, the parts of a multipart, and the encapsulated message of a
    message/rfc822 or message/global part."""

    header: Header
    end: int
    content_type: ContentType
    encoding: bytes
    children: tuple[MimePart, ...] = ()
    message: MimePart | None = None

    @property
    def start(self) -> int:
        return self.header.start

    @property
    def body_start(self) -> int:
        return self.header.end

    @property
    def is_multipart(self) -> bool:
        return self.content_type.maintype == b"multipart"


# -- header blocks -----------------------------------------------------------------


# RFC 5322 §2.1: the header section ends at the first empty line.
_BLANK_LINE: Final = re.compile(rb"\n(\r?\n)")
# One logical line: a line, then the continuation lines (RFC 5322 §2.2.3)
# that begin with white space.
_LOGICAL_LINE: Final = re.compile(rb"([^\n]*)(?:\n|\Z)((?:[ \t][^\n]*(?:\n|\Z))*)")
# RFC 5322 §3.6.8: field-name = 1*ftext, printable ASCII except ":".
_FIELD_NAME: Final = re.compile(rb"[\x21-\x39\x3b-\x7e]+")


def _header_end(data: bytes, start: int, stop: int) -> tuple[int, int]:
    """Where the fields end and where the body starts (after the empty line)."""
    if data.startswith(b"\n", start, stop):
        return start, start + 1
    if data.startswith(b"\r\n", start, stop):
        return start, start + 2
    blank = _BLANK_LINE.search(data, start, stop)
    if blank is None:
        return stop, stop
    return blank.start() + 1, blank.end()


def parse_header(data: bytes, start: int = 0, end: int | None = None) -> Header:
    """Read the header block that starts at ``start`` (RFC 5322 §2.1: it
    ends at the first empty line); never reads past ``end``."""
    stop = len(data) if end is None else min(end, len(data))
    fields_end, body_start = _header_end(data, start, stop)
    block = data[start:fields_end]
    fields: list[HeaderField] = []
    for line in _LOGICAL_LINE.finditer(block):
        first, continuation = line.group(1, 2)
        if not first or first[0] in _WSP:
            continue  # the final empty match, or a continuation of nothing
        colon = first.find(b":")
        # RFC 5322 §4.5.3 (obsolete syntax): white space may precede the colon.
        name = first[:colon].rstrip(_WSP) if colon > 0 else b""
        if not _FIELD_NAME.fullmatch(name):
            continue  # not a field: skipped, with its continuation lines
        value = first[colon + 1 :]
        if value.endswith(b"\r"):
            value = value[:-1]
        if continuation:  # unfold: the line breaks go, the white space stays
            value += continuation.replace(b"\r\n", b"").replace(b"\n", b"")
            if value.endswith(b"\r") and not continuation.endswith(b"\n"):
                value = value[:-1]  # the CR of a last line cut short by ``end``
        fields.append(
            HeaderField(
                name, name.lower(), start + line.start(), start + line.end(), value.strip(_WSP)
            )
        )
    return Header(tuple(fields), start, body_start, data[fields_end:body_start])


# -- structured MIME field values ---------------------------------------------------


def _run(value: bytes, position: int, pattern: re.Pattern[bytes]) -> tuple[bytes, int]:
    match = pattern.match(value, position)
    assert match is not None  # every run pattern matches the empty string
    return match.group(), match.end()


def _skip_comment(value: bytes, position: int) -> int:
    """Skip an RFC 822 comment starting at its "(" (nested, quoted pairs)."""
    depth = 0
    while position < len(value):
        octet = value[position]
        if octet == 0x5C:  # "\" quotes the next octet
            position += 2
            continue
        position += 1
        if octet == 0x28:
            depth += 1
        elif octet == 0x29:
            depth -= 1
            if depth == 0:
                break
    return position


def _skip_space(value: bytes, position: int) -> int:
    """Skip white space and comments."""
    while True:
        _, position = _run(value, position, _SPACE_RUN)
        if position >= len(value) or value[position] != 0x28:  # "("
            return position
        position = _skip_comment(value, position)


def _quoted(value: bytes, position: int) -> tuple[bytes, int]:
    """Read a quoted-string starting after its opening quote."""
    match = _QUOTED.match(value, position)
    assert match is not None  # the pattern matches the empty string
    text = match.group(1)
    return (_QUOTED_PAIR.sub(rb"\1", text) if b"\\" in text else text), match.end()


def _parse_params(value: bytes, position: int) -> Params:
    """``*(";" attribute "=" value)`` (RFC 2045 §5.1), read leniently: a
    missing ";" between parameters, white space around "=", unquoted values
    holding tspecials (``boundary=----=_Part_1``) are all accepted; a
    parameter without "=" is dropped."""
    raw: list[tuple[bytes, bytes]] = []
    length = len(value)
    while True:
        position = _skip_space(value, position)
        if position >= length:
            break
        if value[position] == 0x3B:  # ";"
            position += 1
            continue
        name, position = _run(value, position, _NAME_RUN)
        if not name:  # a stray quote or "=": skip to the next parameter
            _, position = _run(value, position + 1, _PARAM_RUN)
            continue
        position = _skip_space(value, position)
        if position >= length or value[position] != 0x3D:  # "name" without "="
            _, position = _run(value, position, _PARAM_RUN)
            continue
        position = _skip_space(value, position + 1)
        if position < length and value[position] == 0x22:
            text, position = _quoted(value, position + 1)
        else:
            text, position = _run(value, position, _TOKEN_RUN)
        raw.append((name.lower(), text))
    return merge_params(raw)


def _is_token(text: bytes) -> bool:
    return bool(text) and all(32 < octet < 127 and octet not in _TSPECIALS for octet in text)


def parse_content_type(value: bytes | None, default: ContentType = TEXT_PLAIN) -> ContentType:
    """``type/subtype; params`` (RFC 2045 §5.1); ``default`` when absent or
    syntactically invalid (§5.2)."""
    if value is None:
        return default
    position = _skip_space(value, 0)
    maintype, position = _run(value, position, _TYPE_RUN)
    position = _skip_space(value, position)
    if position >= len(value) or value[position] != 0x2F:  # "/"
        return default
    position = _skip_space(value, position + 1)
    subtype, position = _run(value, position, _WORD_RUN)
    if not (_is_token(maintype) and _is_token(subtype)):
        return default
    return ContentType(maintype.lower(), subtype.lower(), _parse_params(value, position))


def parse_disposition(value: bytes | None) -> tuple[bytes, Params] | None:
    """Content-Disposition (RFC 2183 §2): lowercase type and parameters."""
    if value is None:
        return None
    position = _skip_space(value, 0)
    kind, position = _run(value, position, _WORD_RUN)
    if not _is_token(kind):
        return None
    return kind.lower(), _parse_params(value, position)


def parse_encoding(value: bytes | None) -> bytes:
    """Content-Transfer-Encoding mechanism, lowercase; ``7bit`` by default
    (RFC 2045 §6.1)."""
    if value is None:
        return b"7bit"
    position = _skip_space(value, 0)
    token, _ = _run(value, position, _WORD_RUN)
    return token.lower() or b"7bit"


def parse_language(value: bytes | None) -> tuple[bytes, ...] | None:
    """Content-Language (RFC 3282 §2): the list of language tags."""
    if value is None:
        return None
    tags: list[bytes] = []
    position = 0
    while position < len(value):
        position = _skip_space(value, position)
        tag, position = _run(value, position, _TAG_RUN)
        if tag:
            tags.append(tag)
        elif position < len(value):
            position += 1  # a comma, or a stray octet
    return tuple(tags) or None


# -- the tree ----------------------------------------------------------------------


def _line_start(data: bytes, position: int, start: int) -> bool:
    return position == start or data[position - 1] == _LF


def _before_break(data: bytes, position: int, floor: int) -> int:
    """RFC 2046 §5.1.1: the line break before a delimiter belongs to it."""
    if position > floor and data[position - 1] == _LF:
        position -= 1
        if position > floor and data[position - 1] == _CR:
            position -= 1
    return position


def _split_multipart(
    data: bytes, start: int, end: int, boundary: bytes, limit: int
) -> list[tuple[int, int]]:
    """Spans of the body parts between ``--boundary`` delimiter lines
    (RFC 2046 §5.1.1). A delimiter line is ``--boundary`` at the start of a
    line followed only by white space; ``--boundary--`` closes."""
    delimiter = b"--" + boundary
    spans: list[tuple[int, int]] = []
    part_start: int | None = None
    position = start
    while True:
        found = data.find(delimiter, position, end)
        if found < 0:
            break
        after = found + len(delimiter)
        if not _line_start(data, found, start):
            position = found + 1
            continue
        newline = data.find(b"\n", after, end)
        line_end = end if newline < 0 else newline + 1
        closing = data[after : after + 2] == b"--"
        if not closing and data[after:line_end].strip(_SPACE_CHARS):
            position = after  # "--boundaryX": another string, not our delimiter
            continue
        if part_start is not None:
            if len(spans) + 1 >= limit:
                break  # the last part allowed takes the rest
            spans.append((part_start, _before_break(data, found, part_start)))
        if closing:
            return spans
        part_start = line_end
        position = line_end
    if part_start is not None:
        spans.append((part_start, end))
    return spans


class _Budget:
    """How many more entities this parse may create (MAX_PARTS)."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


def _parse_entity(
    data: bytes, start: int, end: int, default: ContentType, depth: int, budget: _Budget
) -> MimePart:
    budget.left -= 1
    header = parse_header(data, start, end)
    content_type = parse_content_type(header.get(b"content-type"), default)
    encoding = parse_encoding(header.get(b"content-transfer-encoding"))
    maintype = content_type.maintype
    nested = maintype == b"multipart" or (
        maintype == b"message" and content_type.subtype in (b"rfc822", b"global")
    )
    if not nested:
        return MimePart(header, end, content_type, encoding)
    if depth >= MAX_DEPTH or budget.left <= 0:
        return MimePart(header, end, OCTET_STREAM, encoding)
    if maintype == b"message":
        inner = _parse_entity(data, header.end, end, TEXT_PLAIN, depth + 1, budget)
        return MimePart(header, end, content_type, encoding, message=inner)
    boundary = content_type.param(b"boundary")
    if not boundary:
        # RFC 2046 §5.1.1 makes the boundary mandatory: without it the
        # Content-Type is invalid, and RFC 2045 §5.2 says what that means.
        return MimePart(header, end, TEXT_PLAIN, encoding)
    spans = _split_multipart(data, header.end, end, boundary, max(budget.left, 1))
    if not spans:
        # The boundary never occurs: one part, the whole body, no header.
        empty = Header((), header.end, header.end, b"")
        only = MimePart(empty, end, TEXT_PLAIN, b"7bit")
        return MimePart(header, end, content_type, encoding, children=(only,))
    child_default = _MESSAGE_RFC822 if content_type.subtype == b"digest" else TEXT_PLAIN
    children = tuple(
        _parse_entity(data, part_start, part_end, child_default, depth + 1, budget)
        for part_start, part_end in spans
    )
    return MimePart(header, end, content_type, encoding, children=children)


def parse_message(data: bytes) -> MimePart:
    """The MIME tree of a whole message (see the module doc)."""
    return _parse_entity(data, 0, len(data), TEXT_PLAIN, 0, _Budget(MAX_PARTS))


def crlf(data: bytes) -> bytes:
    """``data`` with every line end as CRLF (RFC 5322 §2.1; RFC 3501 §2.3.4
    sizes count CRLF); the very same object when it already is."""
    pairs = data.count(b"\r\n")
    if data.count(b"\n") == pairs and data.count(b"\r") == pairs:
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
