"""SORT (RFC 5256 §3) and SORT=DISPLAY (RFC 5957) over cached envelopes.

Pure. The adapter gives one ``SortItem`` per message that matched the
search criteria: ``number`` (what to report: sequence number or UID),
``position`` (the sequence number, the implicit last criterion of RFC 5256
§3), the cached ``envelope``, ``internal_date`` (seconds, UTC) and
``size`` (RFC822.SIZE). ``sort_numbers(items, criteria)`` returns the
numbers in order.

Keys: ARRIVAL is the internal date; DATE the sent date (RFC 5256 §2.2,
``dates.parse_date``) with the internal date when the Date: field is
missing or unreadable; SIZE; SUBJECT the base subject (``subject``); FROM,
TO, CC the addr-mailbox of the first address; DISPLAYFROM, DISPLAYTO the
decoded display name of the first address, else ``mailbox@host``, else the
mailbox (RFC 5957 §3). A missing field sorts as the empty string, before
any other (RFC 5256 §3). Strings compare by i;unicode-casemap
(``subject.collation_key``). Only the keys the criteria name are computed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final

from mailyard.message.dates import parse_date
from mailyard.message.encoded import decode_words
from mailyard.message.envelope import Envelope, EnvelopeAddress
from mailyard.message.subject import base_subject, collation_key

__all__ = [
    "SortCriterion",
    "SortItem",
    "SortKey",
    "display_value",
    "sent_timestamp",
    "sort_numbers",
]


class SortKey(Enum):
    ARRIVAL = "ARRIVAL"
    CC = "CC"
    DATE = "DATE"
    FROM = "FROM"
    SIZE = "SIZE"
    SUBJECT = "SUBJECT"
    TO = "TO"
    DISPLAYFROM = "DISPLAYFROM"
    DISPLAYTO = "DISPLAYTO"


@dataclass(frozen=True, slots=True)
class SortCriterion:
    key: SortKey
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class SortItem:
    number: int
    position: int
    envelope: Envelope
    internal_date: float
    size: int


def sent_timestamp(envelope: Envelope, internal_date: float) -> float:
    """RFC 5256 §2.2 sent date: the Date: field in UTC, else INTERNALDATE."""
    sent = parse_date(envelope.date)
    return internal_date if sent is None else sent.timestamp


def _first(addresses: tuple[EnvelopeAddress, ...]) -> EnvelopeAddress | None:
    return addresses[0] if addresses else None


def _mailbox(addresses: tuple[EnvelopeAddress, ...]) -> str:
    first = _first(addresses)
    if first is None or first.mailbox is None:
        return ""
    return collation_key(decode_words(first.mailbox))


def display_value(addresses: tuple[EnvelopeAddress, ...]) -> str:
    """RFC 5957 §3 DISPLAY sort value of the first address (not collated)."""
    first = _first(addresses)
    if first is None:
        return ""
    if first.name is not None:
        name = decode_words(first.name)
        if name:
            return name
    if first.mailbox is not None and first.host is not None:
        return decode_words(first.mailbox + b"@" + first.host)
    if first.mailbox is not None:
        return decode_words(first.mailbox)
    return ""


_KeyFunction = Callable[[SortItem], "str | float | int"]

_KEYS: Final[dict[SortKey, _KeyFunction]] = {
    SortKey.ARRIVAL: lambda item: item.internal_date,
    SortKey.SIZE: lambda item: item.size,
    SortKey.DATE: lambda item: sent_timestamp(item.envelope, item.internal_date),
    SortKey.SUBJECT: lambda item: collation_key(base_subject(item.envelope.subject).text),
    SortKey.FROM: lambda item: _mailbox(item.envelope.from_),
    SortKey.TO: lambda item: _mailbox(item.envelope.to),
    SortKey.CC: lambda item: _mailbox(item.envelope.cc),
    SortKey.DISPLAYFROM: lambda item: collation_key(display_value(item.envelope.from_)),
    SortKey.DISPLAYTO: lambda item: collation_key(display_value(item.envelope.to)),
}


def sort_numbers(items: Sequence[SortItem], criteria: Sequence[SortCriterion]) -> list[int]:
    """The items' numbers sorted by ``criteria``, ties by position.

    One stable sort per criterion, from the last to the first: each keeps
    the order of the ones before as a tie-break, so the first criterion
    counts most and the sequence order least. ``reverse`` uses Python's
    stable reverse, which leaves equal items in their previous order: that
    is RFC 5256's rule that REVERSE does not reverse the implicit sequence
    order.
    """
    order = sorted(range(len(items)), key=lambda index: items[index].position)
    for criterion in reversed(criteria):
        function = _KEYS[criterion.key]
        keys = [function(item) for item in items]
        order.sort(key=keys.__getitem__, reverse=criterion.reverse)
    return [items[index].number for index in order]
