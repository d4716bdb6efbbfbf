"""Outcome of one delivery attempt to one recipient (qmail-local's 0/111/100).

A remote attempt also says which host answered (``remote_mta``) and what it
said (``diagnostic``, RFC 3464 §2.3.6 form ``smtp; 550 5.1.1 ...``); a
bounce carries both per failed recipient. Local results leave them None.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Delivered", "DeliveryResult", "PermFail", "TempFail"]


@dataclass(frozen=True, slots=True)
class Delivered:
    detail: str


@dataclass(frozen=True, slots=True)
class TempFail:
    """Try again later (qmail's 111): disk full, I/O error, lock busy, a 4xx."""

    reason: str
    status: str = "4.3.0"  # RFC 3463 enhanced status
    remote_mta: str | None = None  # DNS name of the host that answered
    diagnostic: str | None = None  # "smtp; <reply>" when a server said it


@dataclass(frozen=True, slots=True)
class PermFail:
    """Give up and bounce (qmail's 100): no such user, loop, too large, a 5xx."""

    reason: str
    status: str = "5.0.0"
    remote_mta: str | None = None
    diagnostic: str | None = None


DeliveryResult = Delivered | TempFail | PermFail
