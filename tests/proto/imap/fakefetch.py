"""FETCH items and SEARCH matching for the fake store (tests only): a
crude header split stands in for the MIME module."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailyard.proto.imap import responses as r
from mailyard.proto.imap.fetchspec import (
    BinarySection,
    BinarySize,
    BodySection,
    FetchAttr,
    FetchItem,
    SectionText,
    sets_seen,
)
from mailyard.proto.imap.search import (
    And,
    DateKey,
    FlagKey,
    HeaderKey,
    ModSeqKey,
    Not,
    Or,
    SearchKey,
    SequenceKey,
    SizeKey,
    TextKey,
    TextWhere,
)
from mailyard.proto.imap.values import Address, Envelope, SinglePart

if TYPE_CHECKING:
    from tests.proto.imap.fakestore import Mailbox, Message


# The real server lists flags in this order (maildir/flags.py), keywords after.
_ORDER = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "$Forwarded")


def flag_list(message: Message, box: Mailbox) -> tuple[str, ...]:
    """FETCH FLAGS as the real server sends them, \\Recent last."""
    known = [f for f in _ORDER if f in message.flags]
    known += sorted(f for f in message.flags if f not in _ORDER)
    if message.uid in box.recent:
        known.append("\\Recent")
    return tuple(known)


def split(data: bytes) -> tuple[bytes, bytes]:
    end = data.find(b"\r\n\r\n")
    return (data, b"") if end < 0 else (data[: end + 4], data[end + 4 :])


def header(data: bytes, name: str) -> bytes | None:
    head, _ = split(data)
    for line in head.split(b"\r\n"):
        key, sep, value = line.partition(b":")
        if sep and key.strip().upper() == name.upper().encode():
            return value.strip()
    return None


def _address(value: bytes | None) -> tuple[Address, ...] | None:
    if not value:
        return None
    text = value.decode("utf-8", "replace")
    name, _, rest = text.rpartition("<")
    mailbox, _, host = rest.rstrip(">").partition("@")
    return (Address(name.strip().strip('"') or None, None, mailbox, host),)


def envelope(data: bytes) -> Envelope:
    sender = _address(header(data, "From"))
    return Envelope(header(data, "Date"), header(data, "Subject"), sender, sender, sender,
                    _address(header(data, "To")), None, None, None, header(data, "Message-ID"))  # fmt: skip


def _section(item: BodySection, data: bytes) -> bytes:
    head, text = split(data)
    section = item.section
    if section.text is SectionText.HEADER:
        return head
    if section.text is SectionText.TEXT:
        return text
    if section.text in (SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT):
        wanted = section.text is SectionText.HEADER_FIELDS
        kept = [line for line in head.split(b"\r\n")[:-2]
                if (line.partition(b":")[0].strip().upper().decode() in section.fields) == wanted]  # fmt: skip
        return b"".join(line + b"\r\n" for line in kept) + b"\r\n"
    return data


def fetch_items(
    items: tuple[FetchItem, ...], message: Message, box: Mailbox, read_only: bool
) -> tuple[r.FetchData, ...]:
    out: list[r.FetchData] = []
    if not read_only and any(sets_seen(i) for i in items) and "\\Seen" not in message.flags:
        box.modseq += 1
        message.flags.add("\\Seen")
        message.modseq = box.modseq
        if FetchAttr.FLAGS not in items:
            items = (*items, FetchAttr.FLAGS)  # RFC 9051 §6.4.5: the change is reported
    for item in items:
        out.append(_one(item, message, box))
    return tuple(out)


def _one(item: FetchItem, message: Message, box: Mailbox) -> r.FetchData:
    data = message.data
    if isinstance(item, BodySection):
        chunk = _section(item, data)
        if item.partial is None:
            return r.SectionData(item.section, chunk)
        start = item.partial.offset
        return r.SectionData(item.section, chunk[start : start + item.partial.count], start)
    if isinstance(item, BinarySection):
        return r.BinaryData(item.part, _binary(item.part, data))
    if isinstance(item, BinarySize):
        return r.BinarySizeData(item.part, len(_binary(item.part, data)))
    simple = {
        FetchAttr.UID: lambda: r.UidData(message.uid),
        FetchAttr.FLAGS: lambda: r.FlagsData(flag_list(message, box)),
        FetchAttr.RFC822_SIZE: lambda: r.SizeData(len(data)),
        FetchAttr.INTERNALDATE: lambda: r.InternalDateData(message.date),
        FetchAttr.MODSEQ: lambda: r.ModSeqData(message.modseq),
        FetchAttr.ENVELOPE: lambda: r.EnvelopeData(envelope(data)),
        FetchAttr.RFC822: lambda: r.Rfc822Data(FetchAttr.RFC822, data),
        FetchAttr.RFC822_HEADER: lambda: r.Rfc822Data(FetchAttr.RFC822_HEADER, split(data)[0]),
        FetchAttr.RFC822_TEXT: lambda: r.Rfc822Data(FetchAttr.RFC822_TEXT, split(data)[1]),
    }
    if item in simple:
        return simple[item]()  # type: ignore[index]
    text = split(data)[1]
    part = SinglePart("text", "plain", (("charset", "us-ascii"),), None, None, "7bit", len(text),
                      lines=text.count(b"\n"))  # fmt: skip
    return r.BodyStructureData(part, extensible=item is FetchAttr.BODYSTRUCTURE)


def _binary(part: tuple[int, ...], data: bytes) -> bytes:
    """RFC 9051 §6.4.5: part 1 of a message that is not multipart is its body."""
    return split(data)[1] if part == (1,) else data


def matches(key: SearchKey, number: int, message: Message, box: Mailbox) -> bool:
    if isinstance(key, And):
        return all(matches(k, number, message, box) for k in key.keys)
    if isinstance(key, Or):
        return matches(key.left, number, message, box) or matches(key.right, number, message, box)
    if isinstance(key, Not):
        return not matches(key.key, number, message, box)
    if isinstance(key, FlagKey):
        return (key.flag in message.flags) == key.present
    if isinstance(key, SequenceKey):
        largest = (box.messages[-1].uid if box.messages else 0) if key.uid else len(box.messages)
        return key.numbers.contains(message.uid if key.uid else number, largest)
    if isinstance(key, SizeKey):
        return len(message.data) > key.size if key.larger else len(message.data) < key.size
    if isinstance(key, ModSeqKey):
        return message.modseq >= key.modseq
    if isinstance(key, DateKey):
        day = message.date.date()
        return {"BEFORE": day < key.day, "ON": day == key.day, "SINCE": day >= key.day}[
            key.relation
        ]
    if isinstance(key, HeaderKey):
        value = header(message.data, key.field)
        return value is not None and key.value.lower().encode() in value.lower()
    assert isinstance(key, TextKey)
    _head, text = split(message.data)
    where = {TextWhere.BODY: text, TextWhere.TEXT: message.data}.get(key.where)
    if where is None:
        where = header(message.data, key.where.value) or b""
    return key.value.lower().encode() in where.lower()
