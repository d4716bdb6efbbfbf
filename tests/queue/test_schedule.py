"""Retry schedule (docs/design/queue.md, "Retry schedule"): qmail's quadratic rule."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.queue import schedule

births = st.floats(min_value=0, max_value=2e9, allow_nan=False)
ages = st.floats(min_value=0, max_value=1e7, allow_nan=False)
skips = st.integers(min_value=1, max_value=40)


def test_known_values() -> None:
    assert schedule.next_attempt(1000.0, 1000.0, 10) == 1100.0  # first retry after 100 s
    assert schedule.next_attempt(0.0, 3600.0, 10) == 4900.0  # isqrt(3600) = 60 → 70²
    assert schedule.next_attempt(0.0, 3600.5, 20) == 6400.0


@given(births, ages, skips)
def test_matches_qmail_formula(birth: float, age: float, skip: int) -> None:
    now = birth + age
    expected = birth + (math.isqrt(math.floor(now - birth)) + skip) ** 2
    got = schedule.next_attempt(birth, now, skip)
    assert got == expected or (expected <= now and got > now)


@given(births, ages, skips)
def test_always_after_now(birth: float, age: float, skip: int) -> None:
    now = birth + age
    assert schedule.next_attempt(birth, now, skip) > now


@given(births, ages, ages, skips)
def test_monotonic_in_now(birth: float, a: float, b: float, skip: int) -> None:
    early, late = sorted((birth + a, birth + b))
    assert schedule.next_attempt(birth, early, skip) <= schedule.next_attempt(birth, late, skip)


@given(births, st.floats(min_value=0, max_value=1e6), skips)
def test_clock_backwards_counts_as_age_zero(birth: float, back: float, skip: int) -> None:
    now = birth - back
    assert schedule.next_attempt(birth, now, skip) == birth + skip**2


def test_skip_must_be_positive() -> None:
    with pytest.raises(ValueError):
        schedule.next_attempt(0.0, 10.0, 0)
    with pytest.raises(ValueError):
        schedule.next_attempt(0.0, math.inf, 10)


@given(births, ages, st.floats(min_value=0, max_value=1e7))
def test_expired(birth: float, age: float, lifetime: float) -> None:
    assert schedule.expired(birth, birth + age, lifetime) == ((birth + age) - birth > lifetime)


def test_expired_boundary() -> None:
    assert not schedule.expired(0.0, 604800.0, 604800.0)
    assert schedule.expired(0.0, 604800.5, 604800.0)
