"""Failed-login throttling per client address.

A client that failed ``max_failures`` times within ``window`` seconds is
refused before its password is even checked, until the window passes. The
adapters also sleep ``delay`` seconds after every failure (asynchronously:
the delay costs the attacker time, not the server a thread).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["LoginThrottle"]

_MAX_TRACKED = 100_000  # bounded memory under a distributed attack


class LoginThrottle:
    def __init__(
        self,
        max_failures: int,
        window: float,
        delay: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.delay = delay
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str) -> deque[float]:
        stamps = self._failures.get(address)
        if stamps is None:
            return deque()
        horizon = self._clock() - self.window
        while stamps and stamps[0] < horizon:
            stamps.popleft()
        if not stamps:
            del self._failures[address]
        return stamps

    def blocked(self, address: str) -> bool:
        return len(self._recent(address)) >= self.max_failures

    def failure(self, address: str) -> None:
        if address not in self._failures and len(self._failures) >= _MAX_TRACKED:
            self._failures.pop(next(iter(self._failures)))
        self._failures.setdefault(address, deque()).append(self._clock())
