"""IMAP BODYSTRUCTURE and BODY (RFC 3501 §7.4.2, RFC 9051 §7.5.2).

Pure; no I/O. ``body_structure(data, tree)`` describes a parsed message
(``mailyard.message.mime``) as values:

* ``SinglePart``: lowercase ``maintype``/``subtype``; ``params`` as
  ``((name, value), …)`` with RFC 2231 continuations merged (see
  ``encoded.merge_params``), and ``charset=us-ascii`` supplied for a text
  part that names no charset (RFC 2045 §5.2); ``content_id``,
  ``description`` (raw field values or None); ``encoding`` (lowercase,
  ``7bit`` by default); ``size``, octets of the body as stored (still
  transfer-encoded); ``lines``, the body's line count, for text/* and
  message/rfc822|global parts only; ``envelope`` and ``body`` of the
  encapsulated message, for message/rfc822|global only; extension data
  ``md5``, ``disposition``, ``language``, ``location``.
* ``MultiPart``: ``parts`` (one or more), lowercase ``subtype``, and the
  extension data ``params``, ``disposition``, ``language``, ``location``.
* ``Disposition(kind, params)``: lowercase disposition type and its
  parameters (RFC 2183).

``imap_body(body, extended=…)`` renders either as the generic
``ImapValue`` in RFC 9051 §9 order (``body-type-1part`` /
``body-type-mpart``): BODYSTRUCTURE with ``extended=True``, the
non-extensible BODY with ``extended=False`` (no extension data, RFC 9051
§7.5.2). Empty parameter lists and absent values are NIL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypeAlias

from mailyard.message.encoded import Params
from mailyard.message.envelope import Envelope, ImapValue, build_envelope, imap_envelope
from mailyard.message.mime import MimePart, parse_disposition, parse_language, parse_message

__all__ = [
    "BodyStructure",
    "Disposition",
    "MultiPart",
    "SinglePart",
    "body_structure",
    "describe",
    "imap_body",
    "line_count",
]

_LF: Final = 0x0A
_US_ASCII: Final = (b"charset", b"us-ascii")


@dataclass(frozen=True, slots=True)
class Disposition:
    kind: bytes
    params: Params


@dataclass(frozen=True, slots=True)
class SinglePart:
    maintype: bytes
    subtype: bytes
    params: Params
    content_id: bytes | None
    description: bytes | None
    encoding: bytes
    size: int
    lines: int | None = None
    envelope: Envelope | None = None
    body: BodyStructure | None = None
    md5: bytes | None = None
    disposition: Disposition | None = None
    language: tuple[bytes, ...] | None = None
    location: bytes | None = None

    @property
    def is_message(self) -> bool:
        """message/rfc822 or message/global: carries envelope, body, lines."""
        return self.maintype == b"message" and self.subtype in (b"rfc822", b"global")


@dataclass(frozen=True, slots=True)
class MultiPart:
    parts: tuple[BodyStructure, ...]
    subtype: bytes
    params: Params = ()
    disposition: Disposition | None = None
    language: tuple[bytes, ...] | None = None
    location: bytes | None = None


BodyStructure: TypeAlias = "SinglePart | MultiPart"


def line_count(data: bytes, start: int, end: int) -> int:
    """Lines in ``data[start:end]``: its line ends, plus a last line that
    has none (the line break before a boundary belongs to the boundary,
    RFC 2046 §5.1.1, so a part usually ends without one)."""
    if start >= end:
        return 0
    return data.count(b"\n", start, end) + (data[end - 1] != _LF)


def _disposition(part: MimePart) -> Disposition | None:
    parsed = parse_disposition(part.header.get(b"content-disposition"))
    return None if parsed is None else Disposition(*parsed)


def _single(data: bytes, part: MimePart) -> SinglePart:
    content_type = part.content_type
    header = part.header
    params = content_type.params
    lines: int | None = None
    envelope: Envelope | None = None
    inner: BodyStructure | None = None
    if content_type.maintype == b"text":
        lines = line_count(data, part.body_start, part.end)
        if not any(name in (b"charset", b"charset*") for name, _ in params):
            params = (_US_ASCII, *params)
    elif part.message is not None:
        lines = line_count(data, part.body_start, part.end)
        envelope = build_envelope(part.message.header)
        inner = body_structure(data, part.message)
    return SinglePart(
        maintype=content_type.maintype,
        subtype=content_type.subtype,
        params=params,
        content_id=header.get(b"content-id"),
        description=header.get(b"content-description"),
        encoding=part.encoding,
        size=part.end - part.body_start,
        lines=lines,
        envelope=envelope,
        body=inner,
        md5=header.get(b"content-md5"),
        disposition=_disposition(part),
        language=parse_language(header.get(b"content-language")),
        location=header.get(b"content-location"),
    )


def body_structure(data: bytes, tree: MimePart) -> BodyStructure:
    """The body structure of entity ``tree`` (a whole message from
    ``parse_message(data)``, or one of its parts)."""
    if not tree.children:
        return _single(data, tree)
    return MultiPart(
        parts=tuple(body_structure(data, child) for child in tree.children),
        subtype=tree.content_type.subtype,
        params=tree.content_type.params,
        disposition=_disposition(tree),
        language=parse_language(tree.header.get(b"content-language")),
        location=tree.header.get(b"content-location"),
    )


def describe(data: bytes) -> BodyStructure:
    """Parse ``data`` and describe it: ``body_structure(data, parse_message(data))``."""
    return body_structure(data, parse_message(data))


# -- rendering as generic IMAP values ------------------------------------------------


def _params(params: Params) -> ImapValue:
    if not params:
        return None
    return tuple(item for pair in params for item in pair)


def _extension(
    disposition: Disposition | None, language: tuple[bytes, ...] | None, location: bytes | None
) -> tuple[ImapValue, ...]:
    rendered: ImapValue = (
        None if disposition is None else (disposition.kind, _params(disposition.params))
    )
    return (rendered, language, location)


def imap_body(body: BodyStructure, *, extended: bool) -> ImapValue:
    """``body`` as the nested value of a BODYSTRUCTURE (``extended``) or
    BODY response, in the order of RFC 9051 §9 ``body``."""
    if isinstance(body, MultiPart):
        parts = tuple(imap_body(part, extended=extended) for part in body.parts)
        if not extended:
            return (*parts, body.subtype)
        tail = _extension(body.disposition, body.language, body.location)
        return (*parts, body.subtype, _params(body.params), *tail)
    fields: tuple[ImapValue, ...] = (
        body.maintype,
        body.subtype,
        _params(body.params),
        body.content_id,
        body.description,
        body.encoding,
        body.size,
    )
    if body.envelope is not None and body.body is not None:
        nested = imap_body(body.body, extended=extended)
        fields = (*fields, imap_envelope(body.envelope), nested, body.lines)
    elif body.lines is not None:
        fields = (*fields, body.lines)
    if not extended:
        return fields
    return (*fields, body.md5, *_extension(body.disposition, body.language, body.location))
