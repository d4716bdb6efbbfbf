"""Streams one incoming message into the queue without blocking the event loop.

Chunks are gathered in memory up to ``FLUSH_AT`` bytes, then written by a
worker thread; the session awaits each flush before reading more (so memory
stays bounded whatever the message size). The commit (fsync, rename,
directory fsync) also runs in the pool.
"""

from __future__ import annotations

from typing import Final

from mailyard.queue.store import Envelope, QueueWriter
from mailyard.server.context import ServerContext

__all__ = ["Spool"]

FLUSH_AT: Final = 256 * 1024


class Spool:
    def __init__(self, ctx: ServerContext, writer: QueueWriter) -> None:
        self._ctx = ctx
        self._writer = writer
        self._pending: list[bytes] = []
        self._pending_size = 0
        self.size = 0
        self.failed: OSError | None = None

    @classmethod
    async def open(cls, ctx: ServerContext, envelope: Envelope) -> Spool:
        writer = await ctx.in_io(ctx.queue.begin, envelope)
        return cls(ctx, writer)

    @property
    def queue_id(self) -> str:
        return self._writer.id

    def add(self, data: bytes) -> bool:
        """Buffer ``data``; True when the caller should ``await flush()``."""
        self.size += len(data)
        if self.failed is None:
            self._pending.append(data)
            self._pending_size += len(data)
        return self._pending_size >= FLUSH_AT

    async def flush(self) -> None:
        if not self._pending or self.failed is not None:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        try:
            await self._ctx.in_io(self._writer.write, data)
        except OSError as exc:
            self.failed = exc

    async def commit(self) -> str:
        """Write the rest and commit; raises OSError (disk full, I/O error)."""
        if self.failed is not None:
            raise self.failed
        data = b"".join(self._pending)
        self._pending.clear()
        return await self._ctx.in_io(self._write_and_commit, data)

    def _write_and_commit(self, data: bytes) -> str:
        if data:
            self._writer.write(data)
        return self._writer.commit()

    async def abort(self) -> None:
        self._pending.clear()
        await self._ctx.in_io(self._writer.abort)
