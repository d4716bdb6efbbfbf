"""Quota and size rules at delivery time (VMailMgr's per-user limits, Courier's maildirsize).

* The limits of a mailbox are its own values, else its domain's defaults;
  0 means "explicitly no limit" and so does a missing value.
* Over quota, a message is deferred (``4.2.2 mailbox full``, RFC 3463) while
  it is younger than ``[quota] grace`` counted from its birth in the queue,
  then bounced (``5.2.2``): a user who empties the mailbox in time loses
  nothing, and a forgotten mailbox does not keep mail queued for a week.
* A domain's ``total_quota_bytes`` bounds the sum of its mailboxes' usage
  the same way. The sum reads every mailbox's ``maildirsize``, so it is
  cached per process for ``TOTAL_CACHE_SECONDS`` (plus what this process
  delivered since), which is why the total is approximate by that much.
* A message bigger than the mailbox's ``max_message_size`` bounces with
  ``5.2.3`` (RFC 3463: message length exceeds administrative limit).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from mailyard import fsio
from mailyard.directory.model import DomainSettings, Mailbox, Snapshot
from mailyard.dispatch.result import PermFail, TempFail
from mailyard.maildir.quota import Quota, QuotaLimits, count_maildir
from mailyard.message.headers import fold_field, format_date

__all__ = [
    "TOTAL_CACHE_SECONDS",
    "WARN_INTERVAL",
    "DomainTotals",
    "build_warning",
    "domain_settings",
    "effective_limits",
    "max_message_size",
    "over_quota",
    "too_large",
    "warning_due",
]

TOTAL_CACHE_SECONDS: Final = 30.0
WARN_INTERVAL: Final = 86400.0  # Courier: one quota warning a day at most


def _limit(own: int | None, default: int | None) -> int | None:
    value = own if own is not None else default
    return value if value else None  # 0 and None: no limit


def domain_settings(snapshot: Snapshot, mailbox: Mailbox) -> DomainSettings:
    domain = snapshot.domains.get(mailbox.address.domain)
    return domain.settings if domain is not None else DomainSettings()


def effective_limits(mailbox: Mailbox, settings: DomainSettings) -> QuotaLimits:
    """The ``maildirsize`` definition this mailbox should have."""
    return QuotaLimits(
        _limit(mailbox.quota_bytes, settings.quota_bytes),
        _limit(mailbox.quota_messages, settings.quota_messages),
    )


def max_message_size(mailbox: Mailbox, settings: DomainSettings) -> int | None:
    return _limit(mailbox.max_message_size, settings.max_message_size)


def too_large(size: int, limit: int) -> PermFail:
    return PermFail(f"message of {size} octets is larger than this mailbox accepts "
                    f"({limit} octets)", "5.2.3")


def over_quota(what: str, birth: float, now: float, grace: float) -> TempFail | PermFail:
    """Deferred within the grace period, bounced after it."""
    if now - birth < grace:
        return TempFail(f"{what} full (over quota)", "4.2.2")
    return PermFail(f"{what} full (over quota) for longer than the grace period", "5.2.2")


def warning_due(quota: Quota, percent: int) -> bool:
    """True when the usage has reached ``percent`` of a limit (0 = never)."""
    if percent <= 0:
        return False
    usage = quota.usage()
    if usage is None:
        return False
    limits = usage.limits
    if limits.storage and usage.storage * 100 >= limits.storage * percent:
        return True
    return bool(limits.messages and usage.messages * 100 >= limits.messages * percent)


@dataclass
class DomainTotals:
    """Per-domain usage sums, cached in this (single-threaded) process."""

    mail_root: str
    clock: Callable[[], float] = time.monotonic
    _cache: dict[str, tuple[float, int]] = field(default_factory=dict)

    def used(self, snapshot: Snapshot, domain: str) -> int:
        """Octets used by all of ``domain``'s mailboxes (cached)."""
        stamp = self.clock()
        found = self._cache.get(domain)
        if found is not None and stamp - found[0] < TOTAL_CACHE_SECONDS:
            return found[1]
        total = sum(self._usage(m.maildir) for m in snapshot.mailboxes.values()
                    if m.address.domain == domain)
        self._cache[domain] = (stamp, total)
        return total

    def add(self, domain: str, size: int) -> None:
        """Count a delivery of this process into the cached sum."""
        found = self._cache.get(domain)
        if found is not None:
            self._cache[domain] = (found[0], found[1] + size)

    def _usage(self, maildir: str) -> int:
        try:
            root = fsio.safe_join(self.mail_root, maildir)
        except fsio.UnsafePathError:
            return 0
        try:
            usage = Quota(root).usage()
            if usage is not None:
                return usage.storage
            return count_maildir(root)[0]
        except (FileNotFoundError, NotADirectoryError):
            return 0


def _digest(mailbox: str, now: float) -> str:
    return hashlib.sha256(f"{mailbox}\0{now!r}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


def build_warning(*, mailbox: str, hostname: str, percent: int, storage: int,
                  storage_limit: int | None, messages: int, messages_limit: int | None,
                  now: float) -> bytes:
    """The short note put into the user's INBOX when the mailbox is nearly full."""
    lines = [
        "Your mailbox is nearly full.",
        "",
        f"It holds {storage} octets" + (f" of {storage_limit} allowed" if storage_limit else "")
        + f" and {messages} messages" + (f" of {messages_limit} allowed" if messages_limit else "")
        + ".",
        f"Past {percent}% of the quota you get this warning once a day. When the",
        "mailbox is full, new mail waits in the queue for a while and is then",
        "returned to its senders. Please delete or archive some messages.",
    ]
    head = [
        f"From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n".encode(),
        fold_field("To", f"<{mailbox}>"),
        b"Subject: Your mailbox is nearly full\r\n",
        f"Date: {format_date(now)}\r\n".encode("ascii"),
        f"Message-ID: <{int(now)}.{_digest(mailbox, now)}.quotawarn@{hostname}>\r\n".encode(),
        # RFC 3834 §5: a notice made by the system, not a reply to anything.
        b"Auto-Submitted: auto-generated\r\n",
        b"MIME-Version: 1.0\r\n",
        b"Content-Type: text/plain; charset=us-ascii\r\n",
    ]
    return b"".join(head) + b"\r\n" + "\r\n".join(lines).encode("ascii") + b"\r\n"
