"""The size, count and date parsers of the CLI: examples, round trips, never a crash."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.cli.values import (
    MAX_SIZE,
    format_size,
    format_when,
    parse_count,
    parse_size,
    parse_when,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("1234", 1234),
        ("10k", 10 * 1024),
        ("10K", 10 * 1024),
        ("500M", 500 * 1024**2),
        ("500mb", 500 * 1024**2),
        ("2G", 2 * 1024**3),
        ("2GiB", 2 * 1024**3),
        (" 3 T ", 3 * 1024**4),
        ("7b", 7),
    ],
)
def test_sizes(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "-1", "1.5G", "10X", "G", "1 0k", "١٢", str(MAX_SIZE + 1)])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_format_size() -> None:
    assert [format_size(n) for n in (0, 1, 1024, 1536, 500 * 1024**2, 2 * 1024**4)] == [
        "0",
        "1",
        "1k",
        "1536",
        "500M",
        "2T",
    ]


@given(st.integers(min_value=0, max_value=MAX_SIZE))
def test_size_round_trip(value: int) -> None:
    assert parse_size(format_size(value)) == value


@given(st.text(max_size=20))
def test_size_never_crashes(text: str) -> None:
    try:
        value = parse_size(text)
    except ValueError:
        return
    assert 0 <= value <= MAX_SIZE


@given(st.text(max_size=20))
def test_count_never_crashes(text: str) -> None:
    try:
        value = parse_count(text)
    except ValueError:
        return
    assert 0 <= value <= MAX_SIZE and str(value) == text.strip().lstrip("0").rjust(1, "0")


def test_dates() -> None:
    utc = dt.UTC
    assert (
        parse_when("2030-01-02T03:04:05Z")
        == dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=utc).timestamp()
    )
    assert parse_when("2030-01-02T05:04:05+02:00") == parse_when("2030-01-02T03:04:05Z")
    # A date alone, or a time without an offset, is local time.
    assert parse_when("2030-01-02") == dt.datetime(2030, 1, 2).timestamp()
    assert parse_when("2030-01-02 10:30") == dt.datetime(2030, 1, 2, 10, 30).timestamp()
    for bad in ("", "tomorrow", "2030-02-30", "1969-12-31T00:00:00Z", "2030-01-02T25:00", "0"):
        with pytest.raises(ValueError):
            parse_when(bad)


@given(st.integers(min_value=0, max_value=2**33))
def test_when_round_trip(seconds: int) -> None:
    assert parse_when(format_when(seconds)) == seconds


@given(st.text(max_size=30))
def test_when_never_crashes(text: str) -> None:
    try:
        seconds = parse_when(text)
    except ValueError:
        return
    assert seconds >= 0
