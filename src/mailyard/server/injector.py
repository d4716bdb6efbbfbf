"""The queue writer: the one process that writes ``queue/`` (qmail-queue's role).

MODELS §7.3e: the network-facing SMTP side runs as its own user and cannot
write the queue; it sends each message here over ``run/queue.sock``
(``injector_wire.py``, client in ``injector_client.py``), and this worker,
running as the mail user, commits it with the queue's ordinary writers
(``Queue.begin``, ``Queue.begin_body_first``). ``OK <id>`` goes back only
after the commit point (fsync, rename, directory sync), so the SMTP side
still says 250 for nothing that is not on disk. Each committed id is
passed to the supervisor on the worker's channel, which wakes the
delivery worker.

Like the SMTP side, a transaction is kept in memory up to ``FLUSH_AT``
octets: a small message costs one trip to the thread pool (create, write,
fsync, rename, the shared directory sync), and the pool's threads let the
fsyncs of concurrent commits overlap and share directory syncs. The
envelope is decoded by the queue's own parser: the SMTP side is not
trusted with more than a well-formed message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Final, ParamSpec, TypeVar

from mailyard import fsio
from mailyard.config import Config
from mailyard.log import event
from mailyard.queue.envelope import Envelope, decode_envelope
from mailyard.queue.errors import QueueCorrupt
from mailyard.queue.ids import check_id
from mailyard.queue.store import BodyFirstWriter, Queue, QueueWriter
from mailyard.server.injector_wire import (
    MAX_LINE,
    Request,
    Verb,
    encode_reply,
    parse_request,
)

__all__ = ["QUEUE_SOCKET", "QueueServer"]

QUEUE_SOCKET: Final = "queue.sock"  # in run/
IO_THREADS: Final = 8  # as the SMTP side's pool (server/app.py): overlapping fsyncs
FLUSH_AT: Final = 256 * 1024

P = ParamSpec("P")
T = TypeVar("T")


class _Txn:
    """One message on its way in, on the writer's side."""

    def __init__(self, queue: Queue, qid: str, envelope: Envelope | None) -> None:
        self.qid = qid
        self._queue = queue
        self._envelope = envelope  # None: body first, the envelope comes at COMMIT
        self._writer: QueueWriter | BodyFirstWriter | None = None
        self._pending: list[bytes] = []
        self.pending_size = 0
        self.touched = False  # a pool job may have created a file
        self.failed: str | None = None

    def add(self, data: bytes) -> None:
        if self.failed is None and data:
            self._pending.append(data)
            self.pending_size += len(data)

    def _take(self) -> bytes:
        data = b"".join(self._pending)
        self._pending.clear()
        self.pending_size = 0
        return data

    def _writer_now(self) -> QueueWriter | BodyFirstWriter:
        if self._writer is None:
            if self._envelope is not None:
                self._writer = self._queue.begin(self._envelope, self.qid)
            else:
                self._writer = self._queue.begin_body_first(self.qid)
        return self._writer

    def flush(self) -> None:
        """Pool thread: write what is pending (failures are told at the commit)."""
        self.touched = True
        try:
            self._writer_now().write(self._take())
        except (OSError, ValueError) as exc:
            self.failed = str(exc) or type(exc).__name__

    def commit(self, envelope: Envelope | None, head: bytes) -> str:
        """Pool thread: the commit point; OSError or ValueError when it fails."""
        self.touched = True
        writer = self._writer_now()
        data = self._take()
        if isinstance(writer, BodyFirstWriter):
            if envelope is None:
                raise ValueError("a body-first message needs its envelope at COMMIT")
            return writer.commit(envelope, head, data)
        if data:
            writer.write(data)
        return writer.commit()

    def abort(self) -> None:
        """Pool thread (or the loop, when nothing was written): give it up."""
        self._pending.clear()
        if self._writer is not None:
            self._writer.abort()


class _ProtocolError(Exception):
    """The client broke the protocol: its connection is closed."""


class QueueServer:
    """The queue role's server, run by ``child.py`` like a ``RoleServer``."""

    def __init__(self, config: Config, notify: Callable[[str], None]) -> None:
        self.config = config
        self.syncer = fsio.DirSyncer()
        self.queue = Queue(config.path("queue"), syncer=self.syncer)
        self.queue.ensure_layout()
        self.pool = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="io")
        self.counters: dict[str, int] = {}
        self.on_sessions_changed: Callable[[], None] = lambda: None
        self._notify = notify
        self._servers: list[asyncio.Server] = []
        self._sessions: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._busy: set[asyncio.Task[None]] = set()  # in a transaction
        self._closing = False
        self._closed = False
        self.started = time.time()

    def count(self, name: str, n: int = 1) -> None:
        """Add to one of the figures the supervisor's ``status`` shows."""
        self.counters[name] = self.counters.get(name, 0) + n

    async def start(self, sockets: Mapping[str, list[socket.socket]]) -> None:
        """Serve the listening socket(s) the supervisor bound (``run/queue.sock``)."""
        for sock in sockets.get("queue", []):
            self._servers.append(await asyncio.start_unix_server(
                self._serve, sock=sock, limit=MAX_LINE * 4))

    def connection_counts(self) -> dict[str, int]:
        """Connections from SMTP workers."""
        return {"queue": len(self._sessions)}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions[task] = writer
        txn: _Txn | None = None
        try:
            while not (self._closing and txn is None):
                txn = await self._step(reader, writer, txn)
                if txn is None:
                    self._busy.discard(task)
                else:
                    self._busy.add(task)
        except (_ProtocolError, QueueCorrupt, ValueError) as exc:
            event("queue_writer.protocol", error=str(exc)[:200])
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the SMTP worker went away; what it had not committed is dropped
        finally:
            self._sessions.pop(task, None)
            self._busy.discard(task)
            if txn is not None:
                await self._abort(txn)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _read_request(self, reader: asyncio.StreamReader) -> Request | None:
        line = await reader.readline()
        if not line:
            return None
        if not line.endswith(b"\n"):
            raise _ProtocolError("truncated request line")
        return parse_request(line)

    async def _step(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    txn: _Txn | None) -> _Txn | None:
        """One request; the transaction under way after it."""
        request = await self._read_request(reader)
        if request is None:
            raise ConnectionError("end of input")
        parts = [await reader.readexactly(n) for n in request.lengths]
        verb = request.verb
        if verb in (Verb.BEGIN, Verb.BODY):
            if txn is not None:
                raise _ProtocolError("a transaction is already under way")
            envelope = _envelope(parts[0]) if verb is Verb.BEGIN else None
            return _Txn(self.queue, check_id(request.qid), envelope)
        if txn is None:
            raise _ProtocolError(f"{verb.value} outside a transaction")
        if verb is Verb.DATA:
            txn.add(parts[0])
            if txn.pending_size >= FLUSH_AT and txn.failed is None:
                await self._in_pool(txn.flush)
            return txn
        if verb is Verb.ABORT:
            await self._abort(txn)
            writer.write(encode_reply(""))
        else:
            writer.write(await self._commit(txn, parts))
        await writer.drain()
        return None

    async def _commit(self, txn: _Txn, parts: list[bytes]) -> bytes:
        envelope = _envelope(parts[0]) if parts[0] else None
        txn.add(parts[2])
        if txn.failed is not None:
            await self._abort(txn)
            self.count("queue_writer_failed")
            return encode_reply(None, txn.failed)
        try:
            qid = await self._in_pool(txn.commit, envelope, parts[1])
        except (OSError, ValueError) as exc:
            await self._abort(txn)
            self.count("queue_writer_failed")
            event("queue_writer.failed", id=txn.qid, error=str(exc)[:200])
            return encode_reply(None, str(exc) or type(exc).__name__)
        self.count("queue_writer_committed")
        self._notify(qid)
        return encode_reply(qid)

    async def _abort(self, txn: _Txn) -> None:
        if txn.touched:
            await self._in_pool(txn.abort)
        else:
            txn.abort()

    async def _in_pool(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, lambda: func(*args, **kwargs))

    def _close_listeners(self) -> None:
        self._closing = True
        for server in self._servers:
            server.close()
        # Connections between transactions are closed now (their clients
        # reconnect, to the worker that replaced this one); busy ones after
        # their transaction.
        for task, writer in list(self._sessions.items()):
            if task not in self._busy:
                task.cancel()
                writer.close()

    async def stop(self, grace: float) -> None:
        """Stop accepting; transactions under way get ``grace`` seconds."""
        event("worker.stopping", pid=os.getpid(), sessions=len(self._sessions))
        self._close_listeners()
        if self._sessions:
            _, pending = await asyncio.wait(list(self._sessions), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2.0)
        self._close()

    async def retire(self) -> None:
        """A reload replaced this worker: end once the transactions under way have."""
        event("worker.retired", pid=os.getpid(), sessions=len(self._sessions))
        self._close_listeners()
        while self._sessions:
            await asyncio.wait(list(self._sessions))
        self._close()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self.pool.shutdown(wait=True)
            event("worker.stopped", pid=os.getpid())


def _envelope(data: bytes) -> Envelope:
    envelope, end = decode_envelope(data)
    if end != len(data):
        raise _ProtocolError("octets after the envelope")
    return envelope
