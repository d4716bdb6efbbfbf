"""Local delivery of one queued message to one mailbox (qmail-local's job).

Synchronous: runs in a worker thread. The loop check comes first (RFC 5321
§6.3, qmail-local): a message that already carries our ``Delivered-To:``
for this address has been here before, and delivering it again would loop.
Every storage error is temporary (the queue retries); only a loop or a
missing mailbox is permanent.
"""

from __future__ import annotations

from typing import BinaryIO

from mailyard import fsio
from mailyard.directory.model import Mailbox
from mailyard.dispatch.result import Delivered, DeliveryResult, PermFail, TempFail
from mailyard.maildir.deliver import deliver, ensure_maildir
from mailyard.message.headers import delivered_to_header, has_delivered_to, return_path_header

__all__ = ["deliver_to_mailbox"]


def deliver_to_mailbox(
    *,
    mail_root: str,
    mailbox: Mailbox,
    recipient: str,
    sender: str,
    header_block: bytes,
    body: BinaryIO,
    body_offset: int,
    body_size: int,
    hostname: str,
    syncer: fsio.DirSyncer | None,
) -> DeliveryResult:
    if has_delivered_to(header_block, recipient):
        return PermFail(f"mail loop: message was already delivered to {recipient}", "5.4.6")
    try:
        path = fsio.safe_join(mail_root, mailbox.maildir)
    except fsio.UnsafePathError:
        return TempFail("mailbox path in the directory is unsafe; fix the user entry", "4.3.5")
    prefix = return_path_header(sender) + delivered_to_header(recipient)
    try:
        ensure_maildir(path)
        body.seek(body_offset)
        name = deliver(path, prefix, body, body_size, hostname=hostname, syncer=syncer)
    except OSError as exc:
        status = "4.3.1" if fsio.is_disk_full(exc) else "4.3.0"
        return TempFail(f"maildir delivery failed: {exc.strerror or exc}", status)
    return Delivered(f"delivered to maildir as {name}")
