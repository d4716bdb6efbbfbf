"""Retry and lifetime rules: pure functions of birth and now (qmail-send's schedule).

qmail retries a message at ``birth + (isqrt(age) + skip)²``: attempts come
quickly while a failure may be brief and thin out as the message ages, with
no per-message state but its birth time (docs/design/queue.md, "Retry
schedule"). ``skip`` is qmail's chanskip: 10 local, 20 remote.
"""

from __future__ import annotations

import math

__all__ = ["expired", "next_attempt"]


def next_attempt(birth: float, now: float, skip: int) -> float:
    """When to try again after an attempt failed at ``now``; always later than ``now``."""
    if skip < 1:
        # With skip 0 the formula can return now itself: the manager would spin.
        raise ValueError("retry skip must be at least 1")
    if not (math.isfinite(birth) and math.isfinite(now)):
        raise ValueError("birth and now must be finite")
    # A clock that went backwards (now < birth) counts as age 0.
    age = max(0, math.floor(now - birth))
    due = birth + (math.isqrt(age) + skip) ** 2
    # now - birth < age + 1 ≤ (isqrt(age) + 1)² ≤ (isqrt(age) + skip)², so
    # due > now in exact arithmetic; the guard only absorbs float rounding.
    return due if due > now else math.nextafter(now, math.inf)


def expired(birth: float, now: float, lifetime: float) -> bool:
    """True once the message has been queued longer than ``lifetime`` seconds."""
    return now - birth > lifetime
