"""The structured values FETCH returns: ENVELOPE and BODYSTRUCTURE
(RFC 9051 §7.5.2, RFC 3501 §7.4.2), as plain frozen data.

These mirror the grammar, not any parser. The encoder also takes the
generic nested tuples ``mailyard.message`` produces (``NestedValue``, in
the grammar's field order) and renders them with the grammar's spacing,
so a cached structure need not be converted. String fields take ``str`` or
raw header ``bytes``; ``None`` is NIL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "Address",
    "BodyStructure",
    "Disposition",
    "Envelope",
    "MultiPart",
    "NString",
    "NestedValue",
    "Params",
    "SinglePart",
    "ThreadTree",
]

NString: TypeAlias = str | bytes | None
# The generic form mailyard.message returns (``imap_envelope``, ``imap_body``)
# and caches: None is NIL, int a number, str/bytes a string, tuple a list.
NestedValue: TypeAlias = "int | str | bytes | tuple[NestedValue, ...] | None"
Params: TypeAlias = tuple[tuple[str, str | bytes], ...]


@dataclass(frozen=True, slots=True)
class Address:
    """RFC 9051 §9 address: (name adl mailbox host). A group start has
    ``host`` None and the group name as ``mailbox``; a group end is all None."""

    name: NString = None
    adl: NString = None
    mailbox: NString = None
    host: NString = None


@dataclass(frozen=True, slots=True)
class Envelope:
    """RFC 9051 §7.5.2 ENVELOPE, fields in wire order; an empty or None
    address list is NIL. ``sender`` and ``reply_to`` default to ``from_``
    (RFC 9051 §7.5.2) — that is the filler's job, not the encoder's."""

    date: NString = None
    subject: NString = None
    from_: tuple[Address, ...] | None = None
    sender: tuple[Address, ...] | None = None
    reply_to: tuple[Address, ...] | None = None
    to: tuple[Address, ...] | None = None
    cc: tuple[Address, ...] | None = None
    bcc: tuple[Address, ...] | None = None
    in_reply_to: NString = None
    message_id: NString = None


@dataclass(frozen=True, slots=True)
class Disposition:
    """RFC 9051 §9 body-fld-dsp: ("attachment" ("filename" "a.txt"))."""

    type: str
    params: Params = ()


@dataclass(frozen=True, slots=True)
class SinglePart:
    """A non-multipart body. Rendered as body-type-msg when ``envelope`` and
    ``body`` are set (message/rfc822), as body-type-text when ``lines`` is
    set, else body-type-basic. The extension fields (``md5`` onwards) are
    sent only for BODYSTRUCTURE."""

    type: str
    subtype: str
    params: Params = ()
    id: NString = None
    description: NString = None
    encoding: str = "7BIT"
    size: int = 0
    lines: int | None = None
    envelope: Envelope | None = None
    body: BodyStructure | None = None
    md5: NString = None
    disposition: Disposition | None = None
    language: tuple[str, ...] = ()
    location: NString = None


@dataclass(frozen=True, slots=True)
class MultiPart:
    """body-type-mpart: the parts, the subtype, then (BODYSTRUCTURE only)
    params, disposition, language, location."""

    parts: tuple[BodyStructure, ...]
    subtype: str
    params: Params = ()
    disposition: Disposition | None = None
    language: tuple[str, ...] = ()
    location: NString = None


BodyStructure: TypeAlias = SinglePart | MultiPart


@dataclass(frozen=True, slots=True)
class ThreadTree:
    """RFC 5256 §4 thread: a chain of messages, then two or more sub-threads.
    An empty ``numbers`` is a dummy parent (its children share a parent that
    was not found); a single child is merged into the chain when rendered."""

    numbers: tuple[int, ...] = ()
    children: tuple[ThreadTree, ...] = ()
