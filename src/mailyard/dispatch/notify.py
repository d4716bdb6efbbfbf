"""Reports to senders: bounces, double bounces and delay warnings (qmail-send's
``injectbounce``), committed to the queue like any other message.

The rules that keep reports from looping:

* every report goes out with the null reverse-path ``<>`` (RFC 5321 §4.5.5),
  so nothing ever answers it with another report;
* a failure of mail from ``<>`` is never bounced (RFC 5321 §6.1): the
  postmaster gets a double bounce instead;
* a double bounce that fails is logged and dropped (qmail's "triple
  bounce: discarding");
* delay warnings go only to a real sender, never about a report.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from mailyard.dispatch.delay import DelayReport, build_delay_warning
from mailyard.log import event
from mailyard.message.dsn import FailedRecipient, build_bounce, build_double_bounce
from mailyard.message.headers import read_header_block
from mailyard.queue.store import Envelope, Queue, QueuedMessage

__all__ = [
    "HEADER_PEEK",
    "KIND_BOUNCE",
    "KIND_DELAY",
    "KIND_DOUBLE",
    "KIND_KEY",
    "Notifier",
]

HEADER_PEEK: Final = 128 * 1024  # enough for any sane header block
KIND_KEY: Final = "kind"
KIND_BOUNCE: Final = "bounce"
KIND_DOUBLE: Final = "double-bounce"
KIND_DELAY: Final = "delay-warning"


@dataclass(frozen=True, slots=True)
class Notifier:
    queue: Queue
    hostname: str
    postmaster: str
    lifetime: float

    def original_headers(self, message: QueuedMessage) -> bytes:
        with self.queue.open_body(message.id) as body:
            return read_header_block(body.read(HEADER_PEEK))

    def bounce(self, message: QueuedMessage, failed: Sequence[FailedRecipient],
               now: float) -> tuple[str, ...]:
        """Queue the report for ``failed``; the ids of what was queued."""
        if not failed:
            return ()
        kind = dict(message.envelope.extra).get(KIND_KEY)
        sender = message.envelope.sender
        if kind == KIND_DOUBLE:
            event("bounce.discarded", level=logging.WARNING, id=message.id,
                  reason="double bounce failed")
            return ()
        headers = self.original_headers(message)
        seed = f"{message.id}.{os.getpid()}"
        if sender:
            data = build_bounce(
                reporting_mta=self.hostname, postmaster_from=self.postmaster,
                original_sender=sender, failed=failed, original_headers=headers,
                queue_id=message.id, arrival=message.envelope.birth, now=now,
                message_id_host=self.hostname, boundary_seed=seed,
            )
            # RFC 6531/6532: a report to a UTF-8 address needs SMTPUTF8 too.
            envelope = Envelope("", (sender,), now, smtputf8=not sender.isascii(),
                                extra=((KIND_KEY, KIND_BOUNCE),))
        else:
            data = build_double_bounce(
                reporting_mta=self.hostname, postmaster=self.postmaster, failed=failed,
                original_headers=headers, queue_id=message.id,
                arrival=message.envelope.birth, now=now, message_id_host=self.hostname,
                boundary_seed=seed,
            )
            envelope = Envelope("", (self.postmaster,), now, extra=((KIND_KEY, KIND_DOUBLE),))
        new_id = self._inject(envelope, data)
        event("bounce.queued", id=new_id, original=message.id, to=envelope.recipients[0],
              recipients=len(failed))
        return (new_id,)

    def delay_warning(self, message: QueuedMessage, delayed: Sequence[FailedRecipient],
                      now: float) -> tuple[str, ...]:
        """Queue a delay warning to the sender, if there is one to tell."""
        sender = message.envelope.sender
        if not delayed or not sender or dict(message.envelope.extra).get(KIND_KEY):
            return ()
        data = build_delay_warning(DelayReport(
            reporting_mta=self.hostname,
            sender=sender,
            delayed=tuple(delayed),
            original_headers=self.original_headers(message),
            queue_id=message.id,
            arrival=message.envelope.birth,
            now=now,
            retry_until=message.envelope.birth + self.lifetime,
            boundary_seed=f"{message.id}.{os.getpid()}.delay",
        ))
        envelope = Envelope("", (sender,), now, smtputf8=not sender.isascii(),
                            extra=((KIND_KEY, KIND_DELAY),))
        new_id = self._inject(envelope, data)
        event("delay.queued", id=new_id, original=message.id, to=sender,
              recipients=len(delayed))
        return (new_id,)

    def _inject(self, envelope: Envelope, data: bytes) -> str:
        writer = self.queue.begin(envelope)
        try:
            writer.write(data)
            return writer.commit()
        except BaseException:
            writer.abort()
            raise
