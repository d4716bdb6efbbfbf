"""The SMTP side's queue when another process writes it: ``RemoteQueue``.

It has the methods ``spool.py`` and ``qmtpd.py`` use of ``queue.Queue``
(``new_id``, ``begin``, ``begin_body_first``, and the writers' ``write``,
``commit``, ``abort``), but sends the message to the queue writer
(``injector.py``) over ``run/queue.sock`` (``injector_wire.py``). The calls
block, like the disk writes they replace, and are made from the receiving
side's io thread pool. ``commit`` returns only once the writer has the
message on disk; any failure is an OSError, answered as a temporary one.

Connections are kept for the next transaction; one found closed (the
writer was restarted or replaced by a reload) is dropped before use.
"""

from __future__ import annotations

import socket
import threading
from typing import Final

from mailyard.queue.envelope import Envelope, encode_envelope
from mailyard.queue.ids import check_id, new_id
from mailyard.server.injector_wire import (
    MAX_FRAME,
    MAX_LINE,
    Request,
    Verb,
    WriterError,
    encode_request,
    parse_reply,
)

__all__ = ["RemoteBodyWriter", "RemoteQueue", "RemoteWriter"]

TIMEOUT: Final = 300.0  # seconds a reply may take (a large message's fsync on a slow disk)
_SEND_AT: Final = 64 * 1024  # buffered request octets that go out before the commit
_IDLE_MAX: Final = 64  # connections kept for reuse


class _Link:
    """One connection to the writer: buffered requests, one reply at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._out: list[bytes] = []
        self._size = 0
        self._in = sock.makefile("rb")

    def send(self, request: Request, *payload: bytes) -> None:
        self._out.append(encode_request(request))
        self._out.extend(payload)
        self._size += request.payload
        if self._size >= _SEND_AT:
            self.push()

    def push(self) -> None:
        data, self._out, self._size = b"".join(self._out), [], 0
        self.sock.sendall(data)

    def reply(self) -> str:
        self.push()
        line = self._in.readline(MAX_LINE)
        if not line:
            raise ConnectionError("the queue writer closed the connection")
        try:
            return parse_reply(line)
        except ValueError as exc:
            raise ConnectionError(str(exc)) from exc

    def alive(self) -> bool:
        """Whether the writer still holds this idle connection."""
        timeout = self.sock.gettimeout()
        # Non-blocking for this one call: with a timeout set, Python would
        # first wait that long for something to read.
        self.sock.settimeout(0.0)
        try:
            return self.sock.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            return True  # nothing to read: open and quiet, as it should be
        except OSError:
            return False
        finally:
            self.sock.settimeout(timeout)

    def close(self) -> None:
        self._in.close()
        self.sock.close()


def _chunks(data: bytes) -> list[bytes]:
    return [data[i:i + MAX_FRAME] for i in range(0, len(data), MAX_FRAME)] or [b""]


class _Transaction:
    """What both writers share: the link, the lock, and giving the link back."""

    def __init__(self, queue: RemoteQueue, qid: str) -> None:
        self.id = qid
        self._queue = queue
        self._link: _Link | None = None
        self._done = False
        # A teardown's abort() may come while a write is still in a pool thread.
        self._lock = threading.Lock()

    def _open(self) -> _Link:
        if self._done:
            raise ValueError(f"queue transaction {self.id} is finished")
        if self._link is None:
            self._link = self._queue.checkout()
            self._started(self._link)
        return self._link

    def _started(self, link: _Link) -> None:
        """Send the request that opens the transaction."""

    def _data(self, data: bytes) -> None:
        link = self._open()
        try:
            for chunk in _chunks(data):
                link.send(Request(Verb.DATA, lengths=(len(chunk),)), chunk)
        except BaseException:
            self._fail()
            raise

    def _commit(self, envelope: bytes, head: bytes, data: bytes) -> str:
        link = self._open()
        try:
            *most, last = _chunks(data)
            for chunk in most:
                link.send(Request(Verb.DATA, lengths=(len(chunk),)), chunk)
            link.send(Request(Verb.COMMIT, lengths=(len(envelope), len(head), len(last))),
                      envelope, head, last)
            qid = link.reply()
        except WriterError:
            self._finish()  # the writer said ERR: the link is fine for the next one
            raise
        except BaseException:
            self._fail()  # a timeout or a broken link: no telling where it stands
            raise
        self._finish()
        if qid != self.id:
            raise OSError(f"queue writer committed {qid!r} for {self.id!r}")
        return qid

    def abort(self) -> None:
        """Give the message up; idempotent, and a no-op once committed."""
        with self._lock:
            link = self._link
            if self._done or link is None:
                self._done = True
                return
            try:
                link.send(Request(Verb.ABORT))
                link.reply()
            except WriterError:
                pass
            except OSError:
                self._fail()
                return
            self._finish()

    def _finish(self) -> None:
        self._done = True
        link, self._link = self._link, None
        if link is not None:
            self._queue.checkin(link)

    def _fail(self) -> None:
        self._done = True
        link, self._link = self._link, None
        if link is not None:
            link.close()


class RemoteWriter(_Transaction):
    """``Queue.begin``'s writer, remote: the envelope is known first (SMTP)."""

    def __init__(self, queue: RemoteQueue, qid: str, envelope: Envelope) -> None:
        super().__init__(queue, qid)
        self._envelope = encode_envelope(envelope)

    def _started(self, link: _Link) -> None:
        link.send(Request(Verb.BEGIN, self.id, (len(self._envelope),)), self._envelope)

    def write(self, data: bytes) -> None:
        """Append message octets."""
        with self._lock:
            self._data(data)

    def commit(self) -> str:
        """The writer has it on disk: its id. OSError otherwise."""
        with self._lock:
            return self._commit(b"", b"", b"")


class RemoteBodyWriter(_Transaction):
    """``Queue.begin_body_first``'s writer, remote (QMTP, QMQP): no I/O until used."""

    def _started(self, link: _Link) -> None:
        link.send(Request(Verb.BODY, self.id))

    def write(self, data: bytes) -> None:
        """Append body octets."""
        with self._lock:
            self._data(data)

    def commit(self, envelope: Envelope, head: bytes = b"", tail: bytes = b"") -> str:
        """Queue ``head`` + body + ``tail`` under ``envelope``; its id once on disk."""
        with self._lock:
            encoded = encode_envelope(envelope)
            if len(encoded) > MAX_FRAME or len(head) > MAX_FRAME:
                raise OSError("envelope too large for the queue writer")
            return self._commit(encoded, head, tail)


class RemoteQueue:
    """The queue of ``spool.py`` and ``qmtpd.py``, written by the queue writer at ``path``."""

    def __init__(self, path: str, timeout: float = TIMEOUT) -> None:
        self.path = path
        self._timeout = timeout
        self._idle: list[_Link] = []
        self._lock = threading.Lock()

    @staticmethod
    def new_id() -> str:
        """A fresh queue id (the writer keeps it), without any I/O."""
        return new_id()

    def begin(self, envelope: Envelope, qid: str | None = None) -> RemoteWriter:
        """A transaction for ``envelope``; nothing is sent before its first write."""
        return RemoteWriter(self, check_id(qid) if qid is not None else new_id(), envelope)

    def begin_body_first(self, qid: str | None = None) -> RemoteBodyWriter:
        """A body-first transaction; no I/O until its first write or commit."""
        return RemoteBodyWriter(self, check_id(qid) if qid is not None else new_id())

    def checkout(self) -> _Link:
        """An open connection to the writer: a kept one that still works, or a new one."""
        while True:
            with self._lock:
                link = self._idle.pop() if self._idle else None
            if link is None:
                break
            if link.alive():
                return link
            link.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self._timeout)
            sock.connect(self.path)
        except BaseException:
            sock.close()
            raise
        return _Link(sock)

    def checkin(self, link: _Link) -> None:
        """Keep ``link`` for the next transaction."""
        with self._lock:
            if len(self._idle) < _IDLE_MAX:
                self._idle.append(link)
                return
        link.close()

    def close(self) -> None:
        """Close the kept connections."""
        with self._lock:
            links, self._idle = self._idle, []
        for link in links:
            link.close()
