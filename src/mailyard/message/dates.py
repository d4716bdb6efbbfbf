"""The Date: header field, read leniently (RFC 5322 §3.3 and §4.3).

Pure; no clock. ``parse_date`` gives a ``SentDate`` with two readings of
one field, because IMAP uses it in two ways:

* ``day``: the calendar date as written, ignoring time and zone, which is
  what SENTBEFORE / SENTON / SENTSINCE compare (RFC 9051 §6.4.4);
* ``timestamp``: seconds since the epoch in UTC, the zone applied, which
  is the "sent date" of SORT and THREAD (RFC 5256 §2.2): an invalid zone
  counts as UTC and an invalid time as 00:00:00.

Besides RFC 5322 dates (day name optional, 2- and 3-digit years, obsolete
zone names) it reads the asctime form ``Tue Dec  1 17:00:00 2026`` some
old mailers write. ``None`` means no valid date, and the callers then
apply their own rule (SORT falls back to INTERNALDATE).
"""

from __future__ import annotations

import calendar
import datetime
import re
from dataclasses import dataclass
from typing import Final

__all__ = ["SentDate", "parse_date"]

_TOKEN: Final = re.compile(rb"[A-Za-z]+|[0-9]{1,2}:[0-9]{1,2}(?::[0-9]{1,2})?|[+-][0-9]{4}|[0-9]+")
_MONTHS: Final = {
    b"jan": 1, b"feb": 2, b"mar": 3, b"apr": 4, b"may": 5, b"jun": 6,
    b"jul": 7, b"aug": 8, b"sep": 9, b"oct": 10, b"nov": 11, b"dec": 12,
}  # fmt: skip
# RFC 5322 §4.3 obsolete zone names, in minutes east of UTC. Military
# single letters are to be read as -0000 (unknown), so they are UTC here.
_ZONES: Final = {
    b"ut": 0, b"utc": 0, b"gmt": 0, b"z": 0,
    b"edt": -240, b"est": -300, b"cdt": -300, b"cst": -360,
    b"mdt": -360, b"mst": -420, b"pdt": -420, b"pst": -480,
}  # fmt: skip
_MAX_FIELD: Final = 200  # a Date: field longer than this is not a date
# RFC 5322 §3.3 as nearly every mailer writes it, read in one step; any
# other form goes through the token loop, which reads this one the same way.
_CANONICAL: Final = re.compile(
    rb"[ \t]*(?:[A-Za-z]{3},[ \t]*)?([0-9]{1,2}) ([A-Za-z]{3}) ([0-9]{4})"
    rb" ([0-9]{2}:[0-9]{2}(?::[0-9]{2})?) ([+-][0-9]{4})(?![0-9])"
)


@dataclass(frozen=True, slots=True)
class SentDate:
    day: datetime.date
    timestamp: float


def _year(text: bytes) -> int:
    value = int(text)
    if len(text) == 2:  # RFC 5322 §4.3: 00-49 is 20xx, 50-99 is 19xx
        return value + (2000 if value < 50 else 1900)
    if len(text) == 3:  # RFC 5322 §4.3: three digits add 1900
        return value + 1900
    return value


def _clock(text: bytes) -> int:
    """Seconds into the day of ``hh:mm[:ss]``; 0 when not a valid time."""
    pieces = [int(piece) for piece in text.split(b":")]
    hour, minute = pieces[0], pieces[1]
    second = pieces[2] if len(pieces) > 2 else 0
    if hour > 23 or minute > 59 or second > 60:
        return 0
    return hour * 3600 + minute * 60 + min(second, 59)


def _zone(token: bytes) -> int:
    """Minutes east of UTC; 0 (UTC) for what cannot be read (RFC 5256 §2.2)."""
    if token[:1] in (b"+", b"-"):
        hours, minutes = int(token[1:3]), int(token[3:5])
        if minutes > 59:
            return 0
        offset = hours * 60 + minutes
        return -offset if token[:1] == b"-" else offset
    return _ZONES.get(token.lower(), 0)


def parse_date(value: bytes | None) -> SentDate | None:
    """Read a Date: field value; None when it holds no valid date."""
    if value is None or len(value) > _MAX_FIELD:
        return None
    canonical = _CANONICAL.match(value)
    if canonical is not None:
        day, month_name, year, clock_text, zone_text = canonical.groups()
        month = _MONTHS.get(month_name.lower())
        if month is not None:
            return _sent(int(year), month, int(day), _clock(clock_text), _zone(zone_text))
    return _lenient(value)


def _sent(year: int, month: int, day: int, clock: int, zone: int) -> SentDate | None:
    try:
        written = datetime.date(year, month, day)
    except ValueError:
        return None
    midnight = calendar.timegm((year, month, day, 0, 0, 0, 0, 0, 0))
    return SentDate(written, float(midnight + clock - zone * 60))


def _lenient(value: bytes) -> SentDate | None:
    """Any order of tokens: day, month name, year, time, zone."""
    month = day = year = None
    clock = 0
    zone: int | None = None
    seen_clock = False
    for token in _TOKEN.findall(value):
        if token[:1].isalpha():
            lowered = token.lower()
            if month is None and lowered[:3] in _MONTHS and len(token) >= 3:
                month = _MONTHS[lowered[:3]]
            elif seen_clock and zone is None and lowered in _ZONES:
                zone = _ZONES[lowered]
        elif b":" in token:
            if not seen_clock:
                clock, seen_clock = _clock(token), True
        elif token[:1] in (b"+", b"-"):
            if seen_clock and zone is None:
                zone = _zone(token)
        elif day is None and len(token) <= 2:
            day = int(token)
        elif year is None and day is not None:
            year = _year(token)
        elif year is None and len(token) == 4:
            year = int(token)
    if month is None or day is None or year is None:
        return None
    return _sent(year, month, day, clock, zone or 0)
