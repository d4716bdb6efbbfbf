"""Streams one incoming message into the queue without blocking the event loop.

The queue id is taken at DATA/BDAT time without touching the disk (the
``Received:`` field names it); the queue file itself is created by the
first worker-thread job. Chunks are gathered in memory up to ``FLUSH_AT``
bytes and then written by a worker thread; the session awaits each flush
before reading more, so memory stays bounded whatever the message size.

A small message therefore costs one trip to the thread pool: create, write,
fsync, rename and the shared directory sync all happen in the commit job.
A transaction refused before any flush never touches the disk at all.
With a queue writer process (MODELS §7.3e) ``ctx.queue`` is its client
(``injector_client.py``): the same calls, sent to it instead of the disk.
"""

from __future__ import annotations

import threading
from typing import Final

from mailyard.queue.store import Envelope
from mailyard.server.context import IngestWriter, ServerContext

__all__ = ["Spool"]

FLUSH_AT: Final = 256 * 1024


class Spool:
    """One SMTP transaction's message on its way into ``ctx.queue``."""

    def __init__(self, ctx: ServerContext, envelope: Envelope) -> None:
        self._ctx = ctx
        self._envelope = envelope
        self.queue_id = ctx.queue.new_id()
        self._writer: IngestWriter | None = None
        # Set on the loop when a pool job may have created the queue file;
        # the lock orders that job against a teardown's abort in the pool.
        self._touched = False
        self._lock = threading.Lock()
        self._aborted = False
        self._pending: list[bytes] = []
        self._pending_size = 0
        self.size = 0
        self.failed: OSError | None = None

    def add(self, data: bytes) -> bool:
        """Buffer ``data``; True when the caller should ``await flush()``."""
        self.size += len(data)
        if self.failed is None:
            self._pending.append(data)
            self._pending_size += len(data)
        return self._pending_size >= FLUSH_AT

    def _take(self) -> bytes:
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        return data

    def _write(self, data: bytes) -> IngestWriter:
        """Worker thread: create the queue file on first use, append ``data``."""
        with self._lock:
            if self._aborted:
                raise OSError("the transaction was abandoned")
            if self._writer is None:
                self._writer = self._ctx.queue.begin(self._envelope, self.queue_id)
            if data:
                self._writer.write(data)
            return self._writer

    async def flush(self) -> None:
        if not self._pending or self.failed is not None:
            return
        self._touched = True
        try:
            await self._ctx.in_io(self._write, self._take())
        except OSError as exc:
            # Remembered, not raised: the client is answered at end of data.
            self.failed = exc

    async def commit(self) -> str:
        """Write the rest and commit; raises OSError (disk full, I/O error)."""
        if self.failed is not None:
            raise self.failed
        self._touched = True
        return await self._ctx.in_io(self._write_and_commit, self._take())

    def _write_and_commit(self, data: bytes) -> str:
        return self._write(data).commit()

    async def abort(self) -> None:
        self._pending.clear()
        self._pending_size = 0
        if self._touched:
            await self._ctx.in_io(self._abort_in_pool)

    def _abort_in_pool(self) -> None:
        with self._lock:
            self._aborted = True
            if self._writer is not None:
                self._writer.abort()  # a no-op once committed
