"""One delivery pass over one queued message (qmail-send's per-message work).

``MessageProcessor.process(qid, now)`` is synchronous and runs in a worker
thread: load the message, route each pending recipient (local mailbox,
unknown, or remote), deliver, queue bounces for permanent failures, and
either complete the message or checkpoint it and say when to try again.

Order matters for "nothing lost": a bounce is committed to the queue
*before* the recipient is marked failed, and a recipient is marked done only
after its Maildir delivery is durable. A crash in between repeats work
(at-least-once), it never drops it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Final

from mailyard import fsio
from mailyard.config import Config
from mailyard.directory.resolve import LocalMailbox, NotLocal, UnknownLocal, resolve
from mailyard.directory.store import Directory
from mailyard.dispatch.local import deliver_to_mailbox
from mailyard.dispatch.result import Delivered, DeliveryResult, PermFail, TempFail
from mailyard.log import event
from mailyard.message.address import AddressError, parse_address
from mailyard.message.dsn import FailedRecipient, build_bounce, build_double_bounce
from mailyard.message.headers import read_header_block
from mailyard.queue import schedule
from mailyard.queue.store import (
    Envelope,
    Outcome,
    Queue,
    QueueCorrupt,
    QueuedMessage,
    QueueNotFound,
    RecipientState,
)

__all__ = ["MessageProcessor", "Verdict"]

_HEADER_PEEK: Final = 128 * 1024  # enough for any sane header block
KIND_KEY: Final = "kind"
KIND_BOUNCE: Final = "bounce"
KIND_DOUBLE: Final = "double-bounce"
HELD_REMOTE: Final = "remote delivery is held (delivery.remote = \"hold\")"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the manager does next with a message."""

    finished: bool
    next_attempt: float | None = None
    injected: tuple[str, ...] = ()  # bounces queued during this pass


@dataclass
class _Pass:
    outcomes: list[tuple[int, Outcome]] = field(default_factory=list)
    failed: list[FailedRecipient] = field(default_factory=list)
    failed_indices: list[tuple[int, str]] = field(default_factory=list)
    temporary: bool = False
    held: bool = False


@dataclass
class MessageProcessor:
    queue: Queue
    directory: Directory
    mail_root: str
    hostname: str
    postmaster: str
    lifetime: float
    retry_skip_local: int
    remote_mode: str
    syncer: fsio.DirSyncer | None = None

    @classmethod
    def from_config(
        cls, config: Config, directory: Directory, queue: Queue,
        syncer: fsio.DirSyncer | None = None,
    ) -> MessageProcessor:
        return cls(
            queue=queue,
            directory=directory,
            mail_root=config.path("mail"),
            hostname=config.hostname,
            postmaster=config.postmaster_address,
            lifetime=float(config.queue.lifetime),
            retry_skip_local=config.queue.retry_skip_local,
            remote_mode=config.delivery.remote,
            syncer=syncer,
        )

    def process(self, qid: str, now: float) -> Verdict:
        try:
            message = self.queue.load(qid)
        except QueueNotFound:
            return Verdict(finished=True)
        except QueueCorrupt as exc:
            # Leave it for the operator (`mailyard queue show/delete`); never retry in a loop.
            event("queue.corrupt", level=logging.ERROR, id=qid, error=str(exc))
            return Verdict(finished=True)
        except ValueError:
            # Not a queue id at all (a confused trigger): nothing to retry.
            event("queue.bad_id", level=logging.WARNING, id=qid[:40])
            return Verdict(finished=True)
        work = self._deliver_pending(message, now)
        outcomes = work.outcomes
        if work.failed and outcomes:
            # Checkpoint this pass's deliveries before queueing the bounce: if
            # the bounce cannot be queued (disk full), the retry must not
            # deliver them a second time.
            self.queue.record(qid, outcomes)
            outcomes = []
        injected = self._bounce(message, work, now)
        outcomes = outcomes + [(i, Outcome("B", text)) for i, text in work.failed_indices]
        if not work.temporary and not work.held:
            self.queue.complete(qid)
            event("queue.done", id=qid)
            return Verdict(finished=True, injected=injected)
        if outcomes:
            self.queue.record(qid, outcomes)
        if work.temporary:
            due = schedule.next_attempt(message.envelope.birth, now, self.retry_skip_local)
        else:
            due = None  # only held remote recipients: a flush, rescan or restart retries
        return Verdict(finished=False, next_attempt=due, injected=injected)

    # -- delivery ----------------------------------------------------------

    def _deliver_pending(self, message: QueuedMessage, now: float) -> _Pass:
        work = _Pass()
        # Wait for the directory if need be: a stale snapshot here would bounce
        # mail for a mailbox created a moment ago.
        snapshot = self.directory.snapshot(wait=True)
        expired = schedule.expired(message.envelope.birth, now, self.lifetime)
        with self.queue.open_body(message.id) as body:
            header_block = read_header_block(body.read(_HEADER_PEEK))
            for status in message.statuses:
                if status.state is not RecipientState.PENDING:
                    continue
                result = self._route_one(message, status.address, snapshot, header_block, body)
                if result is None:
                    work.held = True
                    if status.last_error != HELD_REMOTE:
                        work.outcomes.append((status.index, Outcome("T", HELD_REMOTE)))
                    continue
                self._log_attempt(message.id, status.address, result)
                if isinstance(result, TempFail) and expired:
                    result = PermFail(
                        f"{result.reason}; gave up after the queue lifetime", "4.4.7"
                    )
                self._note(work, status.index, status.address, result)
        return work

    def _route_one(
        self,
        message: QueuedMessage,
        recipient: str,
        snapshot: object,
        header_block: bytes,
        body: object,
    ) -> DeliveryResult | None:
        try:
            address = parse_address(recipient)
        except AddressError as exc:
            return PermFail(f"invalid recipient address: {exc}", "5.1.3")
        target = resolve(snapshot, address)  # type: ignore[arg-type]
        if isinstance(target, UnknownLocal):
            return PermFail("no such user here", "5.1.1")
        if isinstance(target, NotLocal):
            # Remote delivery arrives with the sending issue; until then every
            # remote recipient is held in the queue, visible in `queue list`.
            return None
        assert isinstance(target, LocalMailbox)
        return deliver_to_mailbox(
            mail_root=self.mail_root,
            mailbox=target.mailbox,
            recipient=recipient,
            sender=message.envelope.sender,
            header_block=header_block,
            body=body,  # type: ignore[arg-type]
            body_offset=message.body_offset,
            body_size=message.body_size,
            hostname=self.hostname,
            syncer=self.syncer,
        )

    @staticmethod
    def _note(work: _Pass, index: int, address: str, result: DeliveryResult) -> None:
        if isinstance(result, Delivered):
            work.outcomes.append((index, Outcome("D", result.detail)))
        elif isinstance(result, TempFail):
            work.temporary = True
            work.outcomes.append((index, Outcome("T", f"{result.status} {result.reason}")))
        else:
            diagnostic = f"x-mailyard; {result.reason}"
            work.failed.append(FailedRecipient(address, result.status, diagnostic, None))
            work.failed_indices.append((index, f"{result.status} {result.reason}"))

    @staticmethod
    def _log_attempt(qid: str, recipient: str, result: DeliveryResult) -> None:
        if isinstance(result, Delivered):
            event("delivery", id=qid, rcpt=recipient, result="ok", detail=result.detail)
        elif isinstance(result, TempFail):
            event("delivery", id=qid, rcpt=recipient, result="deferred", status=result.status,
                  detail=result.reason)
        else:
            event("delivery", id=qid, rcpt=recipient, result="failed", status=result.status,
                  detail=result.reason)

    # -- bounces -------------------------------------------------------------

    def _bounce(self, message: QueuedMessage, work: _Pass, now: float) -> tuple[str, ...]:
        if not work.failed:
            return ()
        kind = dict(message.envelope.extra).get(KIND_KEY)
        sender = message.envelope.sender
        if kind == KIND_DOUBLE:
            # qmail's "triple bounce: discarding": a failed double bounce ends here.
            event("bounce.discarded", level=logging.WARNING, id=message.id,
                  reason="double bounce failed")
            return ()
        original_headers = self._original_headers(message)
        if sender:
            data = build_bounce(
                reporting_mta=self.hostname,
                postmaster_from=self.postmaster,
                original_sender=sender,
                failed=work.failed,
                original_headers=original_headers,
                queue_id=message.id,
                arrival=message.envelope.birth,
                now=now,
                message_id_host=self.hostname,
                boundary_seed=f"{message.id}.{os.getpid()}",
            )
            # RFC 6531/6532: a bounce to a UTF-8 address carries it in To: too.
            envelope = Envelope("", (sender,), now, smtputf8=not sender.isascii(),
                                extra=((KIND_KEY, KIND_BOUNCE),))
        else:
            # RFC 5321 §6.1: never bounce to the null sender; tell the postmaster instead.
            data = build_double_bounce(
                reporting_mta=self.hostname,
                postmaster=self.postmaster,
                failed=work.failed,
                original_headers=original_headers,
                queue_id=message.id,
                arrival=message.envelope.birth,
                now=now,
                message_id_host=self.hostname,
                boundary_seed=f"{message.id}.{os.getpid()}",
            )
            envelope = Envelope("", (self.postmaster,), now, extra=((KIND_KEY, KIND_DOUBLE),))
        writer = self.queue.begin(envelope)
        try:
            writer.write(data)
            new_id = writer.commit()
        except BaseException:
            writer.abort()
            raise
        event("bounce.queued", id=new_id, original=message.id, to=envelope.recipients[0],
              recipients=len(work.failed))
        return (new_id,)

    def _original_headers(self, message: QueuedMessage) -> bytes:
        with self.queue.open_body(message.id) as body:
            return read_header_block(body.read(_HEADER_PEEK))
