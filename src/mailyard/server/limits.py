"""Connection limits per listener: in total and per client address (tcpserver -c / tcprules)."""

from __future__ import annotations

from collections import Counter

__all__ = ["ConnectionLimiter"]


class ConnectionLimiter:
    def __init__(self, total: int, per_address: int) -> None:
        self._total = total
        self._per_address = per_address
        self._by_address: Counter[str] = Counter()
        self.active = 0

    def acquire(self, address: str) -> bool:
        """Take a slot for a new connection; False means refuse it."""
        if self.active >= self._total or self._by_address[address] >= self._per_address:
            return False
        self.active += 1
        self._by_address[address] += 1
        return True

    def release(self, address: str) -> None:
        self.active -= 1
        self._by_address[address] -= 1
        if self._by_address[address] <= 0:
            del self._by_address[address]
