"""Compact, versioned serialisation of parsed message data for the index.

Pure. The store parses a message once (``summarize``) and keeps the
result in its per-folder index; the adapter renders ENVELOPE and
BODYSTRUCTURE, sorts, threads and answers header SEARCH keys from it
without reading the message again.

Format: UTF-8 JSON, ``[version, …]``. The payloads are the generic IMAP
forms (``imap_envelope``, ``imap_body(…, extended=True)``) with every
octet string mapped to a JSON string through latin-1 (lossless for any
octets), lists for tuples, ``null`` for NIL:

* envelope: ``[1, <envelope>]``
* body structure: ``[1, <body>]``
* summary: ``[1, <envelope>, <body>, <references or null>]``

``decode_*`` validate the shape strictly and raise ``CacheError`` (a
``ValueError``) on anything else, including another version: the store
then reparses the message, as after any other index damage.
``decode_summary_subject`` alone reads just the head of a summary (the
version and the first two envelope fields) and leaves the rest unchecked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from mailyard.message.bodystructure import (
    BodyStructure,
    Disposition,
    MultiPart,
    SinglePart,
    body_structure,
    imap_body,
)
from mailyard.message.encoded import Params
from mailyard.message.envelope import (
    Envelope,
    EnvelopeAddress,
    ImapValue,
    build_envelope,
    imap_envelope,
)
from mailyard.message.mime import MAX_DEPTH, parse_message

__all__ = [
    "CACHE_VERSION",
    "CacheError",
    "MessageSummary",
    "decode_body",
    "decode_envelope",
    "decode_summary",
    "decode_summary_envelope",
    "decode_summary_subject",
    "encode_body",
    "encode_envelope",
    "encode_summary",
    "summarize",
]

CACHE_VERSION: Final = 1
_MAX_NESTING: Final = MAX_DEPTH + 2
# A summary as _dump writes it begins so: the version, then the envelope's list.
_SUMMARY_HEAD: Final = f"[{CACHE_VERSION},["
_SCANNER: Final = json.JSONDecoder()


class CacheError(ValueError):
    """A cached blob that is not one of ours (damaged, or another version)."""


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """What the index keeps per message: ENVELOPE, BODYSTRUCTURE and the raw
    References: field (for THREAD=REFERENCES)."""

    envelope: Envelope
    body: BodyStructure
    references: bytes | None


def summarize(data: bytes) -> MessageSummary:
    """Parse a whole message once, for the index."""
    tree = parse_message(data)
    return MessageSummary(
        envelope=build_envelope(tree.header),
        body=body_structure(data, tree),
        references=tree.header.get(b"references"),
    )


# -- ImapValue <-> JSON --------------------------------------------------------------

_Json = int | str | list["_Json"] | None


def _to_json(value: ImapValue) -> _Json:
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return [_to_json(item) for item in value]


def _dump(items: list[ImapValue]) -> bytes:
    payload = [CACHE_VERSION, *(_to_json(item) for item in items)]
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _load(blob: bytes, length: int) -> list[object]:
    try:
        payload = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CacheError("not a cache entry") from exc
    if not isinstance(payload, list) or len(payload) != length + 1:
        raise CacheError("wrong shape")
    if payload[0] != CACHE_VERSION or isinstance(payload[0], bool):
        raise CacheError(f"unsupported version {payload[0]!r}")
    return payload[1:]


# -- typed checks, straight from the JSON values -------------------------------------------


def _nstring(value: object) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise CacheError("character outside latin-1") from exc
    raise CacheError("expected a string or NIL")


def _string(value: object) -> bytes:
    text = _nstring(value)
    if text is None:
        raise CacheError("expected a string")
    return text


def _number(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise CacheError("expected a number")


def _list(value: object, length: int | None = None) -> list[object]:
    if not isinstance(value, list) or (length is not None and len(value) != length):
        raise CacheError("expected a list")
    return value


def _params(value: object) -> Params:
    if value is None:
        return ()
    items = _list(value)
    if not items or len(items) % 2:
        raise CacheError("parameters come in pairs")
    return tuple((_string(items[i]), _string(items[i + 1])) for i in range(0, len(items), 2))


def _addresses(value: object) -> tuple[EnvelopeAddress, ...]:
    if value is None:
        return ()
    addresses = _list(value)
    if not addresses:
        raise CacheError("an empty address list is NIL")
    return tuple(EnvelopeAddress(*map(_nstring, _list(item, 4))) for item in addresses)


def _envelope(value: object) -> Envelope:
    fields = _list(value, 10)
    return Envelope(
        date=_nstring(fields[0]),
        subject=_nstring(fields[1]),
        from_=_addresses(fields[2]),
        sender=_addresses(fields[3]),
        reply_to=_addresses(fields[4]),
        to=_addresses(fields[5]),
        cc=_addresses(fields[6]),
        bcc=_addresses(fields[7]),
        in_reply_to=_nstring(fields[8]),
        message_id=_nstring(fields[9]),
    )


def _disposition(value: object) -> Disposition | None:
    if value is None:
        return None
    kind, params = _list(value, 2)
    return Disposition(_string(kind), _params(params))


def _language(value: object) -> tuple[bytes, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (_string(value),)
    tags = _list(value)
    if not tags:
        raise CacheError("empty language list")
    return tuple(_string(tag) for tag in tags)


def _multipart(fields: list[object], depth: int) -> MultiPart:
    count = next((i for i, item in enumerate(fields) if not isinstance(item, list)), len(fields))
    if count == 0 or len(fields) != count + 5:
        raise CacheError("malformed multipart")
    parts = tuple(_body(item, depth + 1) for item in fields[:count])
    subtype, params, disposition, language, location = fields[count:]
    return MultiPart(
        parts=parts,
        subtype=_string(subtype),
        params=_params(params),
        disposition=_disposition(disposition),
        language=_language(language),
        location=_nstring(location),
    )


def _single(fields: list[object], depth: int) -> SinglePart:
    maintype, subtype = _string(fields[0]), _string(fields[1])
    message = maintype == b"message" and subtype in (b"rfc822", b"global")
    extra = 3 if message else 1 if maintype == b"text" else 0
    if len(fields) != 7 + extra + 4:
        raise CacheError("malformed body part")
    envelope = _envelope(fields[7]) if message else None
    inner = _body(fields[8], depth + 1) if message else None
    lines = _number(fields[6 + extra]) if extra else None
    md5, disposition, language, location = fields[7 + extra :]
    return SinglePart(
        maintype=maintype,
        subtype=subtype,
        params=_params(fields[2]),
        content_id=_nstring(fields[3]),
        description=_nstring(fields[4]),
        encoding=_string(fields[5]),
        size=_number(fields[6]),
        lines=lines,
        envelope=envelope,
        body=inner,
        md5=_nstring(md5),
        disposition=_disposition(disposition),
        language=_language(language),
        location=_nstring(location),
    )


def _body(value: object, depth: int = 0) -> BodyStructure:
    if depth > _MAX_NESTING:
        raise CacheError("nested too deeply")
    fields = _list(value)
    if not fields:
        raise CacheError("empty body")
    if isinstance(fields[0], list):
        return _multipart(fields, depth)
    if len(fields) < 2:
        raise CacheError("malformed body part")
    return _single(fields, depth)


# -- public encoders and decoders --------------------------------------------------------


def encode_envelope(envelope: Envelope) -> bytes:
    return _dump([imap_envelope(envelope)])


def decode_envelope(blob: bytes) -> Envelope:
    (value,) = _load(blob, 1)
    return _envelope(value)


def encode_body(body: BodyStructure) -> bytes:
    return _dump([imap_body(body, extended=True)])


def decode_body(blob: bytes) -> BodyStructure:
    (value,) = _load(blob, 1)
    return _body(value)


def encode_summary(summary: MessageSummary) -> bytes:
    body = imap_body(summary.body, extended=True)
    return _dump([imap_envelope(summary.envelope), body, summary.references])


def decode_summary(blob: bytes) -> MessageSummary:
    envelope, body, references = _load(blob, 3)
    return MessageSummary(_envelope(envelope), _body(body), _nstring(references))


def decode_summary_envelope(blob: bytes) -> Envelope:
    """Only the envelope of an encoded summary, for SEARCH and SORT over many
    messages: the body structure is checked for shape only, not built."""
    envelope, body, references = _load(blob, 3)
    _list(body)
    _nstring(references)
    return _envelope(envelope)


def decode_summary_subject(blob: bytes) -> bytes | None:
    """Only the envelope subject of an encoded summary, for SEARCH SUBJECT
    over many messages: the date and subject, the first two fields, are read
    and nothing after them is decoded (``decode_summary_envelope`` checks
    the rest when a key needs it)."""
    try:
        text = blob.decode("utf-8")
        if not text.startswith(_SUMMARY_HEAD):
            raise CacheError("not a summary of this version")
        date, end = _SCANNER.raw_decode(text, len(_SUMMARY_HEAD))
        if text[end] != ",":
            raise CacheError("wrong shape")
        subject, end = _SCANNER.raw_decode(text, end + 1)
        if text[end] != ",":
            raise CacheError("wrong shape")
    except (UnicodeDecodeError, ValueError, IndexError, RecursionError) as exc:
        raise CacheError("not a cache entry") from exc
    if date is not None and not isinstance(date, str):
        raise CacheError("expected a string or NIL")
    return _nstring(subject)
