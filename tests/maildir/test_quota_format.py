"""maildirsize lines (Courier's README.maildirquota)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailyard.maildir import quota
from mailyard.maildir.quota import QuotaLimits

limits = st.builds(QuotaLimits, st.none() | st.integers(0, 2**50), st.none() | st.integers(0, 2**30))
deltas = st.lists(st.tuples(st.integers(-(2**40), 2**40), st.integers(-1000, 1000)), max_size=20)


def test_definition_line() -> None:
    assert quota.parse_limits("10000000S,1000C") == QuotaLimits(10_000_000, 1000)
    assert quota.parse_limits("1000C,500S") == QuotaLimits(500, 1000)
    assert quota.parse_limits("5000S") == QuotaLimits(5000, None)
    assert quota.parse_limits("") == QuotaLimits(None, None)
    assert quota.parse_limits("junk,12X,S,-5S,7C") == QuotaLimits(None, 7)
    assert quota.format_limits(QuotaLimits(10, 2)) == "10S,2C"


def test_usage_lines() -> None:
    data = b"100S,10C\n 40 1\n   60    2\n-40 -1\n"
    assert quota.parse_maildirsize(data) == (QuotaLimits(100, 10), 60, 2)
    # A last line without its newline is being written: not counted.
    assert quota.parse_maildirsize(data + b"99 9") == (QuotaLimits(100, 10), 60, 2)
    assert quota.parse_maildirsize(b"100S\n1 2 3\n") is None
    assert quota.parse_maildirsize(b"100S\nx y\n") is None


@given(limits, deltas)
def test_round_trip(defined: QuotaLimits, lines: list[tuple[int, int]]) -> None:
    data = (quota.format_limits(defined) + "\n").encode() + b"".join(
        quota.format_delta(size, count) for size, count in lines)
    assert quota.parse_maildirsize(data) == (
        defined, sum(s for s, _ in lines), sum(c for _, c in lines))


@given(st.binary(max_size=300))
def test_never_crashes(data: bytes) -> None:
    parsed = quota.parse_maildirsize(data)
    if parsed is not None:
        assert isinstance(parsed[0], QuotaLimits)
