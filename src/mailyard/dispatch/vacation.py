"""The autoresponder's I/O: after a delivery, maybe queue a vacation reply.

The decision is message/autoreply.py's (RFC 3834 §2); this module supplies
what it needs (the mailbox's addresses), asks the directory whether this
sender was answered within the interval (``note_vacation_reply``: a bounded
record that survives restarts), and queues the reply with the null
reverse-path (RFC 3834 §3.3: so that nothing answers the answer, and a
failure to deliver it bounces nowhere but to the postmaster).

A vacation problem is never a delivery problem: the copy is already in the
mailbox, so any failure here is logged and the delivery stands.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Final

from mailyard.directory.model import Mailbox, Snapshot
from mailyard.directory.store import Directory
from mailyard.log import event
from mailyard.message.autoreply import ReplySpec, address_key, build_reply, no_reply_reason
from mailyard.queue.store import Envelope, Queue, QueuedMessage

__all__ = ["KIND_AUTOREPLY", "MAX_ALIAS_SCAN", "Vacationer", "own_addresses"]

KIND_AUTOREPLY: Final = "auto-reply"
# Aliases are searched for ones pointing at the mailbox only while the
# directory is this small ("when cheap"); the mailbox's own address and the
# one the mail came to are always counted.
MAX_ALIAS_SCAN: Final = 2000
_DAY: Final = 86400.0


def own_addresses(snapshot: Snapshot, mailbox: Mailbox, recipient: str) -> list[str]:
    """The addresses that count as the mailbox's in To/Cc."""
    address = mailbox.address
    found = [str(address), recipient]
    for domain in snapshot.domains.values():
        # Domain aliases: user@alias.example is user@example.
        if domain.settings.alias_of == address.domain:
            found.append(f"{address.local}@{domain.name}")
    if len(snapshot.aliases) <= MAX_ALIAS_SCAN:
        key = address.key
        for alias in snapshot.aliases.values():
            # A list (an alias with an owner) is not the user's own address:
            # RFC 3834 §2 wants no replies to list traffic.
            if alias.owner is None and any(address_key(t) == key for t in alias.targets):
                found.append(str(alias.address))
    return found


@dataclass
class Vacationer:
    queue: Queue
    directory: Directory
    hostname: str

    def after_delivery(self, mailbox: Mailbox, recipient: str, message: QueuedMessage,
                       header_block: bytes, snapshot: Snapshot, now: float) -> tuple[str, ...]:
        """The id of a reply queued for this delivery, if one was due."""
        vacation = snapshot.vacations.get(mailbox.address.key)
        if vacation is None or not vacation.active(now):
            return ()
        try:
            return self._reply(mailbox, recipient, message, header_block, snapshot, now)
        except Exception:
            # The delivery is done; a broken reply must not undo it.
            event("vacation.failed", level=logging.ERROR, exc_info=True, id=message.id,
                  mailbox=str(mailbox.address))
            return ()

    def _reply(self, mailbox: Mailbox, recipient: str, message: QueuedMessage,
               header_block: bytes, snapshot: Snapshot, now: float) -> tuple[str, ...]:
        vacation = snapshot.vacations[mailbox.address.key]
        sender = message.envelope.sender
        addresses = own_addresses(snapshot, mailbox, recipient)
        reason = no_reply_reason(sender, header_block, addresses)
        sender_key = address_key(sender) if sender else None
        if reason is None and sender_key in {address_key(a) for a in addresses}:
            reason = "the sender is the recipient"
        if reason is not None or sender_key is None:
            event("vacation.skipped", id=message.id, mailbox=str(mailbox.address),
                  reason=reason or "unreadable sender")
            return ()
        due = self.directory.note_vacation_reply(
            mailbox.address, "@".join(sender_key), now, vacation.interval_days * _DAY)
        if not due:
            event("vacation.skipped", id=message.id, mailbox=str(mailbox.address),
                  reason="answered within the interval")
            return ()
        data = build_reply(ReplySpec(
            sender=sender, mailbox=str(mailbox.address), display_name=mailbox.display_name,
            subject=vacation.subject, body=vacation.body, original_headers=header_block,
            now=now, host=self.hostname, seed=f"{message.id}.{os.getpid()}",
        ))
        utf8 = not sender.isascii() or not str(mailbox.address).isascii()
        envelope = Envelope("", (sender,), now, smtputf8=utf8,
                            extra=(("kind", KIND_AUTOREPLY),))
        writer = self.queue.begin(envelope)
        try:
            writer.write(data)
            qid = writer.commit()
        except BaseException:
            writer.abort()
            raise
        event("vacation.queued", id=qid, original=message.id, mailbox=str(mailbox.address),
              to=sender)
        return (qid,)
