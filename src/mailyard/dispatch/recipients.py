"""What one delivery pass does with each local recipient, by what ``resolve`` says.

* ``LocalMailbox``: deliver (dispatch/local.py: loop, size, quota, folder),
  then maybe a vacation reply (dispatch/vacation.py);
* ``Forward``: loop check, expand, queue the copies (dispatch/forward.py),
  and deliver the kept copy when the forward keeps one; the recipient is
  done only when both are;
* an SRS address of ours: reversed and re-queued to the original address
  with the sender kept; a forged or expired one is refused (5.1.1);
* ``Refused``: 5.2.1 (receiving off, or the mailbox expired);
  ``UnknownLocal``: 5.1.1; ``NotLocal``: the remote channel's.

A message reaching one mailbox directly and through a list, or through two
lists, gets one copy there: the pass shares one ``exclude`` set with
``expand``, seeded with every mailbox the message reaches directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, TypeAlias

from mailyard import fsio
from mailyard.directory.model import Mailbox, Snapshot
from mailyard.directory.resolve import (
    Forward,
    LocalMailbox,
    NotLocal,
    Refused,
    Resolution,
    UnknownLocal,
    expand,
    resolve,
)
from mailyard.dispatch.forward import Copy, Forwarder, find_marker, marker_for
from mailyard.dispatch.local import Incoming, LocalDelivery
from mailyard.dispatch.result import Delivered, DeliveryResult, PermFail, TempFail
from mailyard.dispatch.vacation import Vacationer
from mailyard.message.address import AddressError, parse_address
from mailyard.message.headers import has_delivered_to
from mailyard.queue.store import Outcome, Queue, QueuedMessage, RecipientStatus

__all__ = ["PassState", "RecipientRouter", "SrsBounce"]


@dataclass(frozen=True, slots=True)
class SrsBounce:
    """A recipient that is one of our SRS addresses (a bounce to forwarded mail)."""

    address: str


Route: TypeAlias = Resolution | PermFail | SrsBounce


@dataclass
class PassState:
    """What the recipients of one pass share."""

    message: QueuedMessage
    snapshot: Snapshot
    header_block: bytes
    incoming: Incoming
    now: float
    routes: dict[int, Route]
    exclude: set[tuple[str, str]] = field(default_factory=set)
    injected: list[str] = field(default_factory=list)


def _loop(recipient: str) -> PermFail:
    return PermFail(f"mail loop: message was already delivered to {recipient}", "5.4.6")


def _storage_error(what: str, exc: OSError) -> TempFail:
    status = "4.3.1" if fsio.is_disk_full(exc) else "4.3.0"
    return TempFail(f"{what}: {exc.strerror or exc}", status)


def _with_marker(result: DeliveryResult, marker: str) -> DeliveryResult:
    """The kept copy's result, saying that the forwarded copies are queued."""
    if not marker:
        return result
    if isinstance(result, Delivered):
        return Delivered(f"{result.detail}; forwarded{marker}")
    if isinstance(result, TempFail):
        # The marker rides in the record so a retry does not forward again;
        # the bounce's diagnostic stays without it.
        return TempFail(result.reason + marker, result.status,
                        diagnostic=result.diagnostic or f"x-mailyard; {result.reason}")
    return PermFail(f"forwarded, but the own copy failed: {result.reason}", result.status)


@dataclass
class RecipientRouter:
    queue: Queue
    local: LocalDelivery
    forwarder: Forwarder
    vacation: Vacationer

    def begin(self, message: QueuedMessage, snapshot: Snapshot, header_block: bytes,
              body: BinaryIO, now: float) -> PassState:
        """Route every recipient (pending or not) and seed the shared ``exclude``."""
        envelope = message.envelope
        incoming = Incoming(envelope.sender, envelope.birth, header_block, body,
                            message.body_offset, message.body_size)
        routes = {s.index: self._route(s.address, snapshot, now) for s in message.statuses}
        state = PassState(message, snapshot, header_block, incoming, now, routes)
        for route in routes.values():
            if isinstance(route, LocalMailbox):
                state.exclude.add(route.mailbox.address.key)
            elif isinstance(route, Forward) and route.keep is not None:
                state.exclude.add(route.keep.address.key)
        return state

    def _route(self, recipient: str, snapshot: Snapshot, now: float) -> Route:
        try:
            address = parse_address(recipient)
        except AddressError as exc:
            return PermFail(f"invalid recipient address: {exc}", "5.1.3")
        if self.forwarder.is_srs_recipient(f"{address.local}@{address.domain}"):
            return SrsBounce(f"{address.local}@{address.domain}")
        return resolve(snapshot, address, now)

    def deliver(self, state: PassState, status: RecipientStatus) -> DeliveryResult | None:
        """This recipient's result; None when it is for another host."""
        route = state.routes[status.index]
        if isinstance(route, PermFail):
            return route
        if isinstance(route, SrsBounce):
            return self._srs_bounce(state, status, route)
        if isinstance(route, NotLocal):
            return None
        if isinstance(route, UnknownLocal):
            return PermFail("no such user here", "5.1.1")
        if isinstance(route, Refused):
            return PermFail(route.reason, route.status)
        if isinstance(route, LocalMailbox):
            return self._mailbox(state, route.mailbox, status.address, route.extension)
        return self._forward(state, status, route)

    def _mailbox(self, state: PassState, mailbox: Mailbox, recipient: str,
                 extension: str | None) -> DeliveryResult:
        result = self.local.deliver(mailbox, recipient, extension, state.incoming,
                                    state.snapshot, state.now)
        if isinstance(result, Delivered):
            state.injected += self.vacation.after_delivery(
                mailbox, recipient, state.message, state.header_block, state.snapshot,
                state.now)
        return result

    def _forward(self, state: PassState, status: RecipientStatus,
                 target: Forward) -> DeliveryResult:
        recipient = status.address
        if has_delivered_to(state.header_block, recipient):
            return _loop(recipient)
        marker = find_marker(status.last_error)
        if marker is None:
            targets = expand(state.snapshot, target, state.now, exclude=state.exclude)
            copies = self.forwarder.plan(state.snapshot, target, targets,
                                         state.message.envelope.sender, state.now)
            try:
                marker = self._queue_copies(state, status, copies)
            except OSError as exc:
                return _storage_error("could not queue the forwarded copies", exc)
        if target.keep is None:
            return Delivered(f"forwarded{marker}" if marker else
                             "forwarded: every target already has a copy")
        kept = self._mailbox(state, target.keep, recipient, target.extension)
        return _with_marker(kept, marker)

    def _srs_bounce(self, state: PassState, status: RecipientStatus,
                    route: SrsBounce) -> DeliveryResult:
        recipient = status.address
        if has_delivered_to(state.header_block, recipient):
            return _loop(recipient)
        marker = find_marker(status.last_error)
        if marker is None:
            try:
                original = self.forwarder.reverse(route.address, state.now)
            except OSError as exc:
                return _storage_error("cannot read the SRS secret", exc)
            if original is None:
                return PermFail("invalid or expired SRS address", "5.1.1")
            copy = Copy(state.message.envelope.sender, (original,))
            try:
                marker = self._queue_copies(state, status, [copy])
            except OSError as exc:
                return _storage_error("could not queue the message for the original sender",
                                      exc)
        return Delivered(f"SRS address reversed{marker}")

    def _queue_copies(self, state: PassState, status: RecipientStatus,
                      copies: list[Copy]) -> str:
        """Queue the copies and record at once that they are queued; the marker."""
        if not copies:
            return ""
        message = state.message
        ids = self.forwarder.inject(message, status.address, copies, state.incoming.body,
                                    state.now)
        state.injected += ids
        marker = marker_for(ids)
        # Durable before anything else happens to this recipient: a retry
        # after a crash from here on finds the marker and does not forward twice.
        self.queue.record(message.id, [(status.index, Outcome("T", f"4.0.0 queued{marker}"))])
        return marker
