"""Addresses that refused or timed out a connection lately (qmail-tcpto's job).

When a host is down, every message for it would otherwise pay a connection
attempt (and a connect timeout) in turn. After a failed connection the
address is skipped for a while: one minute, doubling with each further
failure up to an hour; one successful connection forgets it. Messages that
find every address of their destination skipped are deferred at once,
without touching the network, and wait for their normal retry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["BACKOFF_MAX", "BACKOFF_MIN", "HostBackoff"]

BACKOFF_MIN: Final = 60.0  # seconds after the first failure
BACKOFF_MAX: Final = 3600.0
_MAX_ENTRIES: Final = 65536  # addresses remembered; expired ones go first


@dataclass(frozen=True, slots=True)
class _Down:
    failures: int
    until: float


class HostBackoff:
    def __init__(self, clock: Callable[[], float], minimum: float = BACKOFF_MIN,
                 maximum: float = BACKOFF_MAX) -> None:
        if not 0 < minimum <= maximum:
            raise ValueError("backoff needs 0 < minimum <= maximum")
        self._clock = clock
        self._min = minimum
        self._max = maximum
        self._down: dict[tuple[str, int], _Down] = {}

    def down_until(self, address: str, port: int) -> float | None:
        """When ``address:port`` may be tried again, or None if it may now."""
        entry = self._down.get((address, port))
        if entry is None or entry.until <= self._clock():
            return None
        return entry.until

    def failed(self, address: str, port: int) -> float:
        """Record a failed connection; returns when the address is tried again."""
        key = (address, port)
        previous = self._down.get(key)
        failures = 1 if previous is None else previous.failures + 1
        delay: float = min(self._max, self._min * 2.0 ** min(failures - 1, 32))
        until = self._clock() + delay
        self._down[key] = _Down(failures, until)
        if len(self._down) > _MAX_ENTRIES:
            self._prune()
        return until

    def succeeded(self, address: str, port: int) -> None:
        self._down.pop((address, port), None)

    def clear(self) -> None:
        """Forget every failure (``mailyard queue flush``: try everything now)."""
        self._down.clear()

    def _prune(self) -> None:
        now = self._clock()
        for key in [k for k, v in self._down.items() if v.until <= now]:
            del self._down[key]
        while len(self._down) > _MAX_ENTRIES:
            del self._down[next(iter(self._down))]
