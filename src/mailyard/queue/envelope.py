"""The envelope and its on-disk encoding at the head of every queue file.

Format (docs/design/queue.md, "Message file"): a versioned first line, then
NUL-terminated fields with one-letter tags in a fixed order (qmail's
"don't parse": nothing to quote, nothing to escape), an empty field, then the
message bytes. Decoding is strict and raises only ``QueueCorrupt``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import BinaryIO, Final

from mailyard.queue.errors import QueueCorrupt

__all__ = [
    "MAGIC",
    "MAX_ENVELOPE",
    "Envelope",
    "decode_envelope",
    "encode_envelope",
    "read_envelope",
]

MAGIC: Final = b"mailyard-queue 1\n"
_MAGIC_NAME: Final = b"mailyard-queue "
MAX_ENVELOPE: Final = 1024 * 1024  # far above 1,000 recipients of 256 bytes
_READ_CHUNK: Final = 64 * 1024
_FORBIDDEN: Final = frozenset("\0\r\n")
# What float repr() produces for a finite, non-negative number; float() alone
# would also take " 1", "1_0", "nan" and "infinity".
_BIRTH: Final = re.compile(rb"-?[0-9]+(?:\.[0-9]+)?(?:e[+-][0-9]+)?")


def _check_text(what: str, value: object) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    if any(ch in _FORBIDDEN for ch in value):
        raise ValueError(f"{what} contains NUL, CR or LF")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} is not valid Unicode text") from exc


def _check_birth(birth: object) -> None:
    if isinstance(birth, bool) or not isinstance(birth, (int, float)):
        raise ValueError("birth must be a number")
    try:
        finite = math.isfinite(birth)
    except OverflowError:  # an int too large for a float
        finite = False
    if not finite or birth < 0:
        raise ValueError("birth must be a finite, non-negative timestamp")


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who a queued message is from and for (RFC 5321 §3.3 reverse/forward paths)."""

    sender: str  # "" = null reverse-path <>
    recipients: tuple[str, ...]  # RFC 5321 mailboxes as text (may be UTF-8)
    birth: float  # time.time() at acceptance
    smtputf8: bool = False
    extra: tuple[tuple[str, str], ...] = ()  # small notes, e.g. (("kind", "bounce"),)

    def __post_init__(self) -> None:
        _check_text("sender", self.sender)
        if not self.recipients:
            raise ValueError("an envelope needs at least one recipient")
        for rcpt in self.recipients:
            _check_text("recipient", rcpt)
            if not rcpt:
                raise ValueError("empty recipient")
        _check_birth(self.birth)
        for item in self.extra:
            if not isinstance(item, tuple) or len(item) != 2:
                raise ValueError("extra items are (key, value) pairs")
            key, value = item
            _check_text("extra key", key)
            _check_text("extra value", value)
            if not key or "=" in key:
                raise ValueError("extra key must be non-empty and contain no '='")


def encode_envelope(envelope: Envelope) -> bytes:
    """The bytes that start a queue file; the body follows them directly."""
    fields = [
        b"B" + repr(float(envelope.birth)).encode("ascii"),
        b"U1" if envelope.smtputf8 else b"U0",
        b"F" + envelope.sender.encode("utf-8"),
        *(b"T" + rcpt.encode("utf-8") for rcpt in envelope.recipients),
        *(b"X" + f"{key}={value}".encode() for key, value in envelope.extra),
    ]
    data = MAGIC + b"".join(field + b"\0" for field in fields) + b"\0"
    if len(data) > MAX_ENVELOPE:
        raise ValueError("envelope too large for the queue")
    return data


def _split_fields(data: bytes) -> tuple[list[bytes], int]:
    if not data.startswith(MAGIC):
        if data.startswith(_MAGIC_NAME):
            raise QueueCorrupt("unsupported queue file version")
        raise QueueCorrupt("not a queue file")
    fields: list[bytes] = []
    pos = len(MAGIC)
    limit = min(len(data), MAX_ENVELOPE)
    while True:
        end = data.find(b"\0", pos, limit)
        if end < 0:
            raise QueueCorrupt("envelope is truncated")
        if end == pos:
            return fields, end + 1  # the empty field ends the envelope
        fields.append(data[pos:end])
        pos = end + 1


def _text(field: bytes) -> str:
    try:
        return field[1:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise QueueCorrupt("envelope field is not UTF-8") from exc


def _birth(field: bytes) -> float:
    if field[:1] != b"B" or _BIRTH.fullmatch(field, 1) is None:
        raise QueueCorrupt("bad or missing birth field")
    return float(field[1:])


def _flag(field: bytes) -> bool:
    if field not in (b"U0", b"U1"):
        raise QueueCorrupt("bad or missing SMTPUTF8 field")
    return field == b"U1"


def _extra(fields: list[bytes]) -> tuple[tuple[str, str], ...]:
    notes = []
    for field in fields:
        if field[:1] != b"X":
            raise QueueCorrupt("unexpected envelope field")
        key, sep, value = _text(field).partition("=")
        if not sep:
            raise QueueCorrupt("note without '='")
        notes.append((key, value))
    return tuple(notes)


def decode_envelope(data: bytes) -> tuple[Envelope, int]:
    """Decode the envelope at the start of ``data``; return it and the body offset."""
    fields, body_offset = _split_fields(data)
    if len(fields) < 4:
        raise QueueCorrupt("envelope has too few fields")
    birth = _birth(fields[0])
    smtputf8 = _flag(fields[1])
    if fields[2][:1] != b"F":
        raise QueueCorrupt("bad or missing sender field")
    sender = _text(fields[2])
    rest = fields[3:]
    count = 0
    while count < len(rest) and rest[count][:1] == b"T":
        count += 1
    if count == 0:
        raise QueueCorrupt("envelope has no recipient")
    recipients = tuple(_text(field) for field in rest[:count])
    extra = _extra(rest[count:])
    try:
        envelope = Envelope(sender, recipients, birth, smtputf8, extra)
    except ValueError as exc:
        raise QueueCorrupt(f"invalid envelope: {exc}") from exc
    return envelope, body_offset


def read_envelope(file: BinaryIO) -> tuple[Envelope, int]:
    """Read and decode the envelope from the start of an open queue file.

    Reads in chunks until the terminating empty field; one read suffices for
    any ordinary envelope.
    """
    file.seek(0)
    data = b""
    while len(data) < MAX_ENVELOPE:
        chunk = file.read(_READ_CHUNK)
        if not chunk:
            break
        # Search only the new bytes (plus one, for a terminator split across reads).
        start = max(0, len(data) - 1)
        data += chunk
        if data.find(b"\0\0", start) >= 0:
            break
    return decode_envelope(data)
