"""Forwarding: aliases, lists, a mailbox's forwards and SRS bounces go back into the queue.

A recipient that resolves to a ``Forward`` is not delivered anywhere by
this pass: its final recipients (``directory.resolve.expand``) are put into
the queue as new messages, as qmail-local does for ``&address`` lines. Each
new message is ``Delivered-To: <recipient>`` followed by the original
message, byte for byte, so the loop check sees every hop.

The envelope sender of a copy (one queued message per distinct sender):

* a list's owner, when the alias has one (list-owner rewriting: bounces go
  to the owner, not to each poster);
* else ``<>`` stays ``<>`` (RFC 5321 §4.5.5: nothing answers a bounce);
* else, for recipients at other hosts with SRS on, the sender rewritten by
  SRS (message/srs.py), so the receiver's SPF check sees our domain; local
  recipients keep the original sender (no SPF check is in the way), which
  splits one forward into two messages;
* a sender at one of our own domains is never rewritten: our SPF covers it.

Crash safety: after the copies are committed, the recipient's record says
so (``FORWARDED`` marker, fsync'd at once); a retry that finds the marker
does not forward again. Only a crash between the commit and that record can
forward twice (at-least-once, as everywhere in the queue).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from mailyard.directory.model import Snapshot
from mailyard.directory.resolve import Forward, NotLocal, resolve
from mailyard.log import event
from mailyard.message import srs
from mailyard.message.address import AddressError, parse_address
from mailyard.message.headers import delivered_to_header
from mailyard.queue.store import Envelope, Queue, QueuedMessage, QueueNotFound

__all__ = [
    "FORWARDED",
    "Copy",
    "Forwarder",
    "SrsSettings",
    "find_marker",
    "marker_for",
]

# Carried in a forwarded recipient's record (like process.DELAY_WARNED): the
# ids of the copies already queued for it.
FORWARDED: Final = re.compile(r" \[forwarded as ([0-9A-Za-z,]*)\]")
_CHUNK: Final = 64 * 1024
FORWARDED_KEY: Final = "forwarded"  # envelope note: the id of the message this copies


def marker_for(ids: Sequence[str]) -> str:
    return f" [forwarded as {','.join(ids)}]"


def find_marker(last_error: str | None) -> str | None:
    """The marker in a recipient's last record, if its copies were queued."""
    if not last_error:
        return None
    found = FORWARDED.search(last_error)
    return found.group(0) if found else None


@dataclass
class SrsSettings:
    """SRS for remote forwards: on/off, our SRS domain, the secret (loaded once)."""

    enabled: bool
    domain: str
    max_age_days: int
    load_secret: Callable[[], bytes]
    _secret: bytes | None = field(default=None, init=False, repr=False)

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            self._secret = self.load_secret()
        return self._secret

    def is_ours(self, domain: str, hostname: str) -> bool:
        return domain.lower() in {self.domain.lower(), hostname.lower()}


@dataclass(frozen=True, slots=True)
class Copy:
    """One message to queue: a sender and its share of the recipients."""

    sender: str
    recipients: tuple[str, ...]


@dataclass
class Forwarder:
    queue: Queue
    hostname: str
    srs: SrsSettings | None = None

    def plan(self, snapshot: Snapshot, forward: Forward, targets: Sequence[str],
             sender: str, now: float) -> list[Copy]:
        """The messages to queue for ``targets``, grouped by envelope sender."""
        groups: dict[str, list[str]] = {}
        for target in targets:
            groups.setdefault(self._sender_for(snapshot, forward, target, sender, now),
                              []).append(target)
        return [Copy(s, tuple(r)) for s, r in groups.items()]

    def _sender_for(self, snapshot: Snapshot, forward: Forward, target: str, sender: str,
                    now: float) -> str:
        if forward.owner:
            return forward.owner
        if not sender or self.srs is None or not self.srs.enabled:
            return sender
        try:
            remote = isinstance(resolve(snapshot, parse_address(target), now), NotLocal)
            sender_domain = parse_address(sender).domain
        except AddressError:
            return sender
        if not remote or sender_domain in snapshot.domains:
            return sender
        if self.srs.is_ours(sender_domain, self.hostname):
            return sender
        try:
            return srs.forward(sender, self.srs.secret, now, self.srs.domain)
        except srs.SrsError as exc:
            event("srs.not_rewritten", level=logging.WARNING, sender=sender, reason=str(exc))
            return sender

    def is_srs_recipient(self, recipient: str) -> bool:
        """True for an address of SRS form at our SRS domain (or host name)."""
        if self.srs is None:
            return False
        domain = recipient.rpartition("@")[2]
        return self.srs.is_ours(domain, self.hostname) and srs.is_srs(recipient)

    def reverse(self, recipient: str, now: float) -> str | None:
        """Where a bounce to our SRS ``recipient`` goes; None when it is forged or expired;
        OSError when the secret cannot be read (a temporary failure)."""
        if self.srs is None:
            return None
        return srs.reverse_recipient(recipient, self.srs.secret, now, self.srs.max_age_days)

    def inject(self, message: QueuedMessage, recipient: str, copies: Sequence[Copy],
               body: BinaryIO, now: float) -> tuple[str, ...]:
        """Queue every copy; all or none (a failure removes those already queued)."""
        done: list[str] = []
        try:
            for copy in copies:
                done.append(self._inject_one(message, recipient, copy, body, now))
        except BaseException:
            for qid in done:
                # Not yet known to the manager; at worst a rescan started it.
                with contextlib.suppress(QueueNotFound, OSError):
                    self.queue.delete(qid)
            raise
        for qid, copy in zip(done, copies, strict=True):
            event("forward.queued", id=qid, original=message.id, rcpt=recipient,
                  sender=copy.sender, recipients=len(copy.recipients))
        return tuple(done)

    def _inject_one(self, message: QueuedMessage, recipient: str, copy: Copy,
                    body: BinaryIO, now: float) -> str:
        utf8 = message.envelope.smtputf8 or not copy.sender.isascii() or not all(
            r.isascii() for r in copy.recipients)
        envelope = Envelope(copy.sender, copy.recipients, now, smtputf8=utf8,
                            extra=((FORWARDED_KEY, message.id),))
        writer = self.queue.begin(envelope)
        try:
            writer.write(delivered_to_header(recipient))
            body.seek(message.body_offset)
            remaining = message.body_size
            while remaining:
                chunk = body.read(min(remaining, _CHUNK))
                if not chunk:
                    raise OSError("queued message is shorter than its recorded size")
                writer.write(chunk)
                remaining -= len(chunk)
            return writer.commit()
        except BaseException:
            writer.abort()
            raise
