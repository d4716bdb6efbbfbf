"""Connection limits per listener: in total, per client address (tcpserver -c /
tcprules), and per access rule (server/access.py's ``max_connections``).

The plain and implicit-TLS listeners of a section (submission and smtps,
pop3 and pop3s, imap and imaps) share one limiter, so every count here is
per section. Several worker processes serving one socket each keep a
limiter of their own; ``workers`` gives each its share of a rule's limit.
"""

from __future__ import annotations

import math
from collections import Counter

__all__ = ["ConnectionLimiter"]


class ConnectionLimiter:
    """Counts of the connections a section holds; every acquire has its release."""

    def __init__(self, total: int, per_address: int, *, workers: int = 1) -> None:
        self._total = total
        self._per_address = per_address
        self._workers = max(1, workers)
        self._by_address: Counter[str] = Counter()
        self._by_rule: Counter[int] = Counter()
        self.active = 0

    def acquire(self, address: str) -> bool:
        """Take a slot for a new connection; False means refuse it."""
        if self.active >= self._total or self._by_address[address] >= self._per_address:
            return False
        self.active += 1
        self._by_address[address] += 1
        return True

    def release(self, address: str) -> None:
        """Give back what ``acquire(address)`` took."""
        self.active -= 1
        self._by_address[address] -= 1
        if self._by_address[address] <= 0:
            del self._by_address[address]

    def acquire_rule(self, rule: int, limit: int) -> bool:
        """Take a slot of access rule ``rule`` (its number); ``limit`` 0 means none.

        The count is per rule, over every client address the rule holds:
        ``max_connections = 10`` on 10.0.0.0/8 lets that whole network hold
        ten connections to the section at once (with ``workers``, this
        process's share of them: at least one).
        """
        if limit and self._by_rule[rule] >= math.ceil(limit / self._workers):
            return False
        self._by_rule[rule] += 1
        return True

    def release_rule(self, rule: int) -> None:
        """Give back what ``acquire_rule(rule, ...)`` took."""
        self._by_rule[rule] -= 1
        if self._by_rule[rule] <= 0:
            del self._by_rule[rule]

    def rule_active(self, rule: int) -> int:
        """Connections held now under access rule ``rule``."""
        return self._by_rule[rule]
