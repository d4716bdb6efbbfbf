"""mailyard.message.dates: the Date: field for SENT* and SORT DATE."""

from __future__ import annotations

import calendar
import datetime
import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.message.dates import SentDate, parse_date


def utc(*fields: int) -> float:
    return float(calendar.timegm((*fields, 0, 0, 0)))


@pytest.mark.parametrize(
    ("value", "day", "timestamp"),
    [
        (b"Tue, 1 Dec 2026 17:59:01 +0100", (2026, 12, 1), utc(2026, 12, 1, 16, 59, 1)),
        # RFC 5256 §2.2: "31 Dec 2000 16:01:33 -0800" is 1 Jan 2001 00:01:33 UTC,
        # but SEARCH keeps the day as written.
        (b"31 Dec 2000 16:01:33 -0800", (2000, 12, 31), utc(2001, 1, 1, 0, 1, 33)),
        (b"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)", (1996, 7, 17), utc(1996, 7, 17, 9, 23, 25)),
        (b"6 Dec 26 07:00 EST", (2026, 12, 6), utc(2026, 12, 6, 12, 0, 0)),  # RFC 5322 §4.3
        (b"6 Dec 99 07:00 GMT", (1999, 12, 6), utc(1999, 12, 6, 7, 0, 0)),
        (b"6 Dec 103 07:00 UT", (2003, 12, 6), utc(2003, 12, 6, 7, 0, 0)),
        (b"Tue Dec  1 17:00:00 2026", (2026, 12, 1), utc(2026, 12, 1, 17, 0, 0)),  # asctime
        (b"1 december 2026 10:00 +0000", (2026, 12, 1), utc(2026, 12, 1, 10, 0, 0)),
        (b"1 Dec 2026", (2026, 12, 1), utc(2026, 12, 1, 0, 0, 0)),  # no time: midnight
        (b"1 Dec 2026 25:61:00 +0000", (2026, 12, 1), utc(2026, 12, 1, 0, 0, 0)),  # bad time
        (b"1 Dec 2026 10:00 +0099", (2026, 12, 1), utc(2026, 12, 1, 10, 0, 0)),  # bad zone: UTC
        (b"1 Dec 2026 10:00 A", (2026, 12, 1), utc(2026, 12, 1, 10, 0, 0)),  # military: -0000
        (b"1 Dec 2026 10:00 +0200 (EST)", (2026, 12, 1), utc(2026, 12, 1, 8, 0, 0)),
    ],
)
def test_dates(value: bytes, day: tuple[int, int, int], timestamp: float) -> None:
    assert parse_date(value) == SentDate(datetime.date(*day), timestamp)


@pytest.mark.parametrize(
    "value", [None, b"", b"yesterday", b"31 Feb 2026 10:00", b"Dec 2026", b"1 Dec", b"x" * 300]
)
def test_no_date(value: bytes | None) -> None:
    assert parse_date(value) is None


@given(st.datetimes(min_value=datetime.datetime(1901, 1, 1), max_value=datetime.datetime(2099, 12, 31)),
       st.integers(-12 * 60, 14 * 60))  # fmt: skip
def test_formatted_dates_round_trip(moment: datetime.datetime, offset: int) -> None:
    aware = moment.replace(
        microsecond=0, tzinfo=datetime.timezone(datetime.timedelta(minutes=offset))
    )
    parsed = parse_date(email.utils.format_datetime(aware).encode())
    assert parsed == SentDate(aware.date(), aware.timestamp())


@given(st.binary(max_size=80))
def test_parse_date_never_raises(value: bytes) -> None:
    parsed = parse_date(value)
    assert parsed is None or isinstance(parsed.day, datetime.date)


_CANONICAL_SHAPES = st.builds(
    lambda name, day, month, year, hour, minute, second, zone: (
        f"{name}{day} {month} {year:04d} {hour:02d}:{minute:02d}{second} {zone}".encode()
    ),
    st.sampled_from(["", "Tue, ", "Mon,", " Sun, "]),
    st.integers(0, 39),
    st.sampled_from(["Jan", "dec", "Foo", "MAY", "Sep"]),
    st.integers(0, 9999),
    st.integers(0, 30),
    st.integers(0, 70),
    st.sampled_from(["", ":00", ":59", ":61"]),
    st.sampled_from(["+0000", "-0800", "+0530", "+0099", "-1260"]),
)


@given(_CANONICAL_SHAPES)
def test_fast_path_agrees_with_the_lenient_reading(value: bytes) -> None:
    from mailyard.message.dates import _lenient

    assert parse_date(value) == _lenient(value)
