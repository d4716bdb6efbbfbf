"""The two channels of a delivery pass, put together for the queue manager.

``DeliveryPasses.run(qid, now)`` is the manager's pass runner: first the
local stage (a lspawn child, or a thread in tests), then, when that stage
handed over remote recipients, the remote stage here on the event loop.
The stages run one after the other, so one pass is the only writer of the
message's state file, as ``Queue.record`` assumes.

The remote channel keeps its own retry time per message (qmail's
chanskip 20 against local's 10): a pass that comes early for the local
recipients leaves the remote ones alone until theirs is due. The time is
kept in memory only; after a restart the first pass tries them at once,
which costs one attempt, never a message. The disk work of the remote stage
(loading, reading the content, recording) runs in the executor's threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Final

from mailyard.dispatch.notify import HEADER_PEEK
from mailyard.dispatch.process import MessageProcessor, Verdict
from mailyard.dispatch.remote import RemoteDelivery, RemoteMessage
from mailyard.message.headers import read_header_block
from mailyard.queue.store import Queue, QueuedMessage, QueueNotFound, RecipientState

__all__ = ["INLINE_BODY", "DeliveryPasses", "RemoteChannel"]

INLINE_BODY: Final = 1024 * 1024  # content up to this size is read once, into memory
# Remote retry times kept; past this (messages deleted by an operator leave
# theirs behind) they are forgotten, which only brings attempts forward.
_MAX_DUE: Final = 200_000
_CHUNK: Final = 256 * 1024  # octets per read and per write of larger content


@dataclass(frozen=True, slots=True)
class _Prepared:
    message: QueuedMessage
    remote: RemoteMessage


def _merge(local: Verdict, remote: Verdict) -> Verdict:
    dues = [d for d in (local.next_attempt, remote.next_attempt) if d is not None]
    due = min(dues) if dues and not remote.finished else None
    return Verdict(remote.finished, due, local.injected + remote.injected)


def _inline_chunks(data: bytes) -> Callable[[], AsyncIterator[bytes]]:
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), _CHUNK):
            yield data[start : start + _CHUNK]

    return chunks


def _file_chunks(queue: Queue, qid: str, size: int,
                 executor: Executor) -> Callable[[], AsyncIterator[bytes]]:
    async def chunks() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        try:
            file = await loop.run_in_executor(executor, queue.open_body, qid)
        except QueueNotFound as exc:
            raise OSError(f"message {qid} left the queue") from exc
        try:
            remaining = size
            while remaining > 0:
                data = await loop.run_in_executor(executor, file.read, min(_CHUNK, remaining))
                if not data:
                    raise OSError(f"message {qid} is shorter than its size")
                remaining -= len(data)
                yield data
        finally:
            file.close()

    return chunks


class RemoteChannel:
    def __init__(self, processor: MessageProcessor, delivery: RemoteDelivery,
                 executor: Executor, clock: Callable[[], float]) -> None:
        self._processor = processor
        self.delivery = delivery
        self._executor = executor
        self._clock = clock
        self._due: dict[str, float] = {}

    def flush(self) -> None:
        """Retry now: forget the remote retry times and the hosts' backoff."""
        self._due.clear()
        self.delivery.flush()

    def stop(self) -> None:
        self.delivery.stopping = True

    async def run(self, qid: str, now: float, local: Verdict) -> Verdict:
        due = self._due.get(qid)
        if due is not None and due > now:
            return _merge(local, Verdict(finished=False, next_attempt=due))
        loop = asyncio.get_running_loop()
        prepared = await loop.run_in_executor(self._executor, self._prepare, qid, local.remote)
        if prepared is None:
            self._due.pop(qid, None)
            return Verdict(finished=True, injected=local.injected)
        results = await self.delivery.deliver(prepared.remote)
        verdict = await loop.run_in_executor(
            self._executor, self._processor.finish_remote, prepared.message, results,
            self._clock(),
        )
        if verdict.next_attempt is None:
            self._due.pop(qid, None)
        else:
            if len(self._due) >= _MAX_DUE:
                self._due.clear()
            self._due[qid] = verdict.next_attempt
        return _merge(local, verdict)

    def _prepare(self, qid: str, indices: Sequence[int]) -> _Prepared | None:
        """Load the message again (the local stage just recorded) and read
        what the SMTP session needs to know before MAIL."""
        message = self._processor.load(qid)
        if message is None:
            return None
        wanted = set(indices)
        recipients = tuple((s.index, s.address) for s in message.statuses
                           if s.index in wanted and s.state is RecipientState.PENDING)
        queue = self._processor.queue
        with queue.open_body(qid) as file:
            head = file.read(max(INLINE_BODY, HEADER_PEEK))
            eightbit = not head.isascii()
            inline = head if message.body_size <= len(head) else None
            while inline is None and not eightbit:
                block = file.read(INLINE_BODY)
                if not block:
                    break
                eightbit = not block.isascii()
        envelope = message.envelope
        headers = read_header_block(head[:HEADER_PEEK])
        # RFC 6531 §3.2: SMTPUTF8 is needed for UTF-8 addresses, and for
        # UTF-8 header fields (RFC 6532) of a message that came with it.
        smtputf8 = (not envelope.sender.isascii()
                    or any(not address.isascii() for _, address in recipients)
                    or (envelope.smtputf8 and not headers.isascii()))
        body = (_inline_chunks(inline) if inline is not None
                else _file_chunks(queue, qid, message.body_size, self._executor))
        remote = RemoteMessage(qid, envelope.sender, recipients, message.body_size, eightbit,
                               smtputf8, body)
        return _Prepared(message, remote)


PassRunner = Callable[[str, float], Awaitable[Verdict]]


class DeliveryPasses:
    """The manager's ``run_pass``: local stage, then remote stage."""

    def __init__(self, local: PassRunner, remote: RemoteChannel | None) -> None:
        self._local = local
        self.remote = remote

    async def run(self, qid: str, now: float) -> Verdict:
        verdict = await self._local(qid, now)
        if verdict.remote and self.remote is not None and not verdict.finished:
            verdict = await self.remote.run(qid, now, verdict)
        return verdict

    def flush(self) -> None:
        if self.remote is not None:
            self.remote.flush()

    def stop(self) -> None:
        if self.remote is not None:
            self.remote.stop()
