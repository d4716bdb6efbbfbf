"""Outcome of one delivery attempt to one recipient (qmail-local's 0/111/100)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Delivered", "DeliveryResult", "PermFail", "TempFail"]


@dataclass(frozen=True, slots=True)
class Delivered:
    detail: str


@dataclass(frozen=True, slots=True)
class TempFail:
    """Try again later (qmail's 111): disk full, I/O error, lock busy."""

    reason: str
    status: str = "4.3.0"  # RFC 3463 enhanced status


@dataclass(frozen=True, slots=True)
class PermFail:
    """Give up and bounce (qmail's 100): no such user, loop, too large."""

    reason: str
    status: str = "5.0.0"


DeliveryResult = Delivered | TempFail | PermFail
