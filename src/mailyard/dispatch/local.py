"""Local delivery of one queued message to one mailbox (qmail-local's job).

Synchronous: runs in a lspawn child, one message at a time. In this order:

1. the loop check (RFC 5321 §6.3, qmail-local): a message that already
   carries our ``Delivered-To:`` for this address has been here before,
   and delivering it again would loop: 5.4.6;
2. the mailbox's message size limit: 5.2.3;
3. the quota (dispatch/quota.py): the ``maildirsize`` definition is brought
   in line with the directory, then mailbox and domain total are checked:
   4.2.2 within the grace period, 5.2.2 after it;
4. the folder: an address extension naming an existing folder files the
   message there (``user+lists@`` → folder ``lists``), else INBOX;
5. the delivery itself, with its delta appended to ``maildirsize``
   (maildir/deliver_quota.py keeps it exact);
6. the nearly-full warning, at most once a day, straight into INBOX.

Every storage error is temporary (the queue retries); only a loop, a size
limit or an expired grace period is permanent.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from typing import BinaryIO

from mailyard import fsio
from mailyard.directory.model import Mailbox, Snapshot
from mailyard.dispatch.quota import (
    WARN_INTERVAL,
    DomainTotals,
    build_warning,
    domain_settings,
    effective_limits,
    max_message_size,
    over_quota,
    too_large,
    warning_due,
)
from mailyard.dispatch.result import Delivered, DeliveryResult, PermFail, TempFail
from mailyard.log import event
from mailyard.maildir.deliver import ensure_maildir, extension_folder
from mailyard.maildir.deliver_quota import claim_warning, deliver_counted, ensure_limits
from mailyard.maildir.errors import OverQuota
from mailyard.maildir.quota import Quota
from mailyard.message.headers import delivered_to_header, has_delivered_to, return_path_header

__all__ = ["Incoming", "LocalDelivery"]


@dataclass(frozen=True, slots=True)
class Incoming:
    """The queued message as local delivery sees it."""

    sender: str
    birth: float
    header_block: bytes
    body: BinaryIO  # the queue file; positioned by each delivery
    body_offset: int
    body_size: int


@dataclass
class LocalDelivery:
    """Delivers into the Maildirs below ``mail_root``; see the module doc."""

    mail_root: str
    hostname: str
    syncer: fsio.DirSyncer | None = None
    grace: float = 86400.0  # [quota] grace, seconds
    warn_percent: int = 90  # [quota] warn_percent; 0 = never
    totals: DomainTotals | None = None
    _totals: DomainTotals = field(init=False)

    def __post_init__(self) -> None:
        self._totals = self.totals or DomainTotals(self.mail_root)

    def deliver(self, mailbox: Mailbox, recipient: str, extension: str | None,
                message: Incoming, snapshot: Snapshot, now: float) -> DeliveryResult:
        """Deliver one copy for ``recipient`` into ``mailbox``."""
        if has_delivered_to(message.header_block, recipient):
            return PermFail(f"mail loop: message was already delivered to {recipient}", "5.4.6")
        try:
            root = fsio.safe_join(self.mail_root, mailbox.maildir)
        except fsio.UnsafePathError:
            return TempFail("mailbox path in the directory is unsafe; fix the user entry", "4.3.5")
        settings = domain_settings(snapshot, mailbox)
        limit = max_message_size(mailbox, settings)
        if limit is not None and message.body_size > limit:
            return too_large(message.body_size, limit)
        prefix = return_path_header(message.sender) + delivered_to_header(recipient)
        size = len(prefix) + message.body_size
        try:
            ensure_maildir(root)
            quota = ensure_limits(root, effective_limits(mailbox, settings),
                                  track=bool(settings.total_quota_bytes))
            refused = self._check(quota, mailbox, settings.total_quota_bytes, size, message,
                                  snapshot, now)
            if refused is not None:
                return refused
            folder = extension_folder(root, extension) if extension else None
            target = folder or root
            if folder is not None:
                ensure_maildir(folder)
            message.body.seek(message.body_offset)
            name = deliver_counted(root, target, prefix, message.body, message.body_size,
                                   hostname=self.hostname, syncer=self.syncer)
        except OSError as exc:
            status = "4.3.1" if fsio.is_disk_full(exc) else "4.3.0"
            return TempFail(f"maildir delivery failed: {exc.strerror or exc}", status)
        self._totals.add(mailbox.address.domain, size)
        self._warn(root, quota, mailbox, now)
        where = f" in folder {extension}" if folder is not None else ""
        return Delivered(f"delivered to maildir as {name}{where}")

    def _check(self, quota: Quota, mailbox: Mailbox, total: int | None, size: int,
               message: Incoming, snapshot: Snapshot, now: float) -> DeliveryResult | None:
        try:
            quota.check(size, 1)
        except OverQuota:
            return over_quota("mailbox", message.birth, now, self.grace)
        if total:
            used = self._totals.used(snapshot, mailbox.address.domain)
            if used + size > total:
                return over_quota("domain storage", message.birth, now, self.grace)
        return None

    def _warn(self, root: str, quota: Quota, mailbox: Mailbox, now: float) -> None:
        """The nearly-full note; a failure here never fails the delivery."""
        try:
            if not warning_due(quota, self.warn_percent):
                return
            if not claim_warning(root, now, WARN_INTERVAL):
                return
            usage = quota.usage()
            if usage is None:
                return
            data = build_warning(
                mailbox=str(mailbox.address), hostname=self.hostname,
                percent=self.warn_percent, storage=usage.storage,
                storage_limit=usage.limits.storage, messages=usage.messages,
                messages_limit=usage.limits.messages, now=now,
            )
            deliver_counted(root, root, b"", io.BytesIO(data), len(data),
                            hostname=self.hostname, syncer=self.syncer)
        except OSError as exc:
            event("quota.warning_failed", level=logging.WARNING, mailbox=str(mailbox.address),
                  error=str(exc))
            return
        event("quota.warning", mailbox=str(mailbox.address), storage=usage.storage,
              messages=usage.messages)
