"""BODY[section] and BINARY[section] content (RFC 9051 §6.4.5, RFC 3516).

Pure; no I/O. A ``Section`` names what to fetch: ``part``, the numeric
part specifier (``(4, 2, 1)`` for ``4.2.1``, ``()`` for none), and
``text``, the optional final HEADER / HEADER.FIELDS / HEADER.FIELDS.NOT /
TEXT / MIME specifier, with ``fields`` the field names of the two
HEADER.FIELDS forms. The IMAP core's parser may build these values
directly.

``section_bytes`` returns the section's octets: slices of the message as
stored wherever the section is contiguous (everything but HEADER.FIELDS),
or ``None`` when the section does not exist in this message (a part
number beyond the parts, HEADER or TEXT on a part that is not a message,
MIME without a part number); the adapter answers NIL then. Sections of the
top-level message other than part numbers read only the header block.

Part numbering (RFC 9051 §6.4.5.1): the parts of a multipart are numbered
from 1; a message that is not multipart has a part 1, its body; the
numbers under a message/rfc822 or message/global part index the body of
the encapsulated message the same way. The MIME header of part 1 of a
non-multipart message is the message's own header, which is where its
MIME fields are.

``binary_bytes`` / ``binary_size`` give BINARY[part] / BINARY.SIZE[part]:
the part's body with its transfer encoding removed (text parts also get
CRLF line ends, RFC 3516 §6), or a ``BinaryError``: ``UNKNOWN_CTE`` when
the encoding is unknown (the adapter answers ``NO [UNKNOWN-CTE]``) or
``NO_SUCH_PART``. ``BINARY[]`` is the whole message, undecoded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from mailyard.message.encoded import decode_transfer
from mailyard.message.mime import Header, MimePart, crlf, parse_header, parse_message

__all__ = [
    "BinaryError",
    "Section",
    "SectionText",
    "binary_bytes",
    "binary_size",
    "find_part",
    "header_subset",
    "partial",
    "section_bytes",
]


class SectionText(Enum):
    NONE = ""
    HEADER = "HEADER"
    HEADER_FIELDS = "HEADER.FIELDS"
    HEADER_FIELDS_NOT = "HEADER.FIELDS.NOT"
    TEXT = "TEXT"
    MIME = "MIME"


@dataclass(frozen=True, slots=True)
class Section:
    part: tuple[int, ...] = ()
    text: SectionText = SectionText.NONE
    fields: tuple[bytes, ...] = ()


class BinaryError(Enum):
    NO_SUCH_PART = "no such part"
    UNKNOWN_CTE = "unknown content-transfer-encoding"


def find_part(tree: MimePart, part: tuple[int, ...]) -> MimePart | None:
    """The entity that part specifier ``part`` names; ``tree`` itself for
    ``(1,)`` of a non-multipart message; None when there is none."""
    message = tree  # the message whose body the next number indexes
    entity: MimePart | None = None
    for number in part:
        if number < 1:
            return None
        if entity is not None:
            if entity.message is not None:
                message = entity.message
            elif entity.children:
                if number > len(entity.children):
                    return None
                entity = entity.children[number - 1]
                continue
            else:
                return None  # a leaf has no parts
        if message.children:
            if number > len(message.children):
                return None
            entity = message.children[number - 1]
        elif number == 1:
            entity = message
        else:
            return None
    return entity


def header_subset(data: bytes, header: Header, names: Iterable[bytes], exclude: bool) -> bytes:
    """HEADER.FIELDS (``exclude=False``) or HEADER.FIELDS.NOT: the fields
    whose name is (not) in ``names``, ASCII case-insensitively, each as
    written, followed by the empty line when the header had one (RFC 9051
    §6.4.5.1)."""
    wanted = {name.lower() for name in names}
    pieces: list[bytes] = []
    for field in header.fields:
        if (field.key in wanted) != exclude:
            raw = data[field.start : field.end]
            # A last field without its line end (no body, no empty line)
            # must not run into the separator.
            pieces.append(raw if raw.endswith(b"\n") else raw + b"\r\n")
    pieces.append(header.separator)
    return b"".join(pieces)


def _message_section(data: bytes, header: Header, end: int, section: Section) -> bytes | None:
    """HEADER / HEADER.FIELDS(.NOT) / TEXT of a message whose header is ``header``."""
    text = section.text
    if text is SectionText.HEADER:
        return data[header.start : header.end]
    if text is SectionText.TEXT:
        return data[header.end : end]
    if text is SectionText.HEADER_FIELDS:
        return header_subset(data, header, section.fields, exclude=False)
    if text is SectionText.HEADER_FIELDS_NOT:
        return header_subset(data, header, section.fields, exclude=True)
    return None


def section_bytes(data: bytes, section: Section, tree: MimePart | None = None) -> bytes | None:
    """The content of BODY[``section``] (see the module doc). ``tree`` is
    ``parse_message(data)`` when the caller has it already."""
    if not section.part:
        if section.text is SectionText.NONE:
            return data
        if section.text is SectionText.MIME:
            return None  # RFC 9051 §6.4.5.1: MIME needs a part number
        return _message_section(data, parse_header(data), len(data), section)
    entity = find_part(tree if tree is not None else parse_message(data), section.part)
    if entity is None:
        return None
    if section.text is SectionText.NONE:
        return data[entity.body_start : entity.end]
    if section.text is SectionText.MIME:
        return data[entity.start : entity.body_start]
    if entity.message is None:
        return None  # HEADER and TEXT apply to message/rfc822 parts only
    return _message_section(data, entity.message.header, entity.message.end, section)


def partial(data: bytes, origin: int, count: int) -> bytes:
    """``<origin.count>`` (RFC 9051 §6.4.5): at most ``count`` octets from
    ``origin``; empty when ``origin`` is past the end."""
    start = max(origin, 0)
    return data[start : start + max(count, 0)]


def binary_bytes(
    data: bytes, part: tuple[int, ...], tree: MimePart | None = None
) -> bytes | BinaryError:
    """BINARY[``part``] content (see the module doc)."""
    if not part:
        return data
    entity = find_part(tree if tree is not None else parse_message(data), part)
    if entity is None:
        return BinaryError.NO_SUCH_PART
    decoded = decode_transfer(data[entity.body_start : entity.end], entity.encoding)
    if decoded is None:
        return BinaryError.UNKNOWN_CTE
    if entity.content_type.maintype == b"text":
        return crlf(decoded)
    return decoded


def binary_size(
    data: bytes, part: tuple[int, ...], tree: MimePart | None = None
) -> int | BinaryError:
    """BINARY.SIZE[``part``]: the length BINARY[``part``] will have."""
    content = binary_bytes(data, part, tree)
    return content if isinstance(content, BinaryError) else len(content)
