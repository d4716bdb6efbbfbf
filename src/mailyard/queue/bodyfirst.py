"""A message whose body arrives before its envelope (QMTP, QMQP).

The queue file starts with the envelope (docs/design/queue.md), but QMTP
and QMQP send the message first and the sender and recipients after it.
``BodyFirstWriter`` therefore streams the body into a private spool file
and writes the real queue file only at ``commit(envelope)``, through the
ordinary path: ``Queue.begin(envelope)`` → ``tmp/ID``, the head (the
``Received:`` field), the spooled body copied over, the tail → fsync →
rename into ``mess/`` → directory sync. The commit point is the same as
SMTP's, and nothing partial can reach ``mess/``.

The spool lives in ``tmp/`` (the queue's filesystem: the same disk-full
behaviour, no cross-device copy) but only for an instant under a name: it
is created exclusively, opened a second time for reading and unlinked at
once, so it is an anonymous file from then on. A crash, a dropped
connection or a forgotten writer leaves nothing behind; the kernel frees
the space when the descriptors close. A crash in the instant between
create and unlink leaves an empty ``tmp/`` file, removed by ``recover()``
like any debris.

A writer touches the disk only at its first ``write()``: a small message
that the caller kept in memory is committed with no spool at all (one
file, one fsync, as for SMTP). The spool is never fsync'd: it is
scratch space, and only the queue file it is copied into must be durable.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from typing import Final

from mailyard import fsio
from mailyard.queue.envelope import Envelope
from mailyard.queue.ids import check_id, new_id
from mailyard.queue.layout import Layout
from mailyard.queue.writer import QueueWriter

__all__ = ["BodyFirstWriter"]

_COPY_CHUNK: Final = 1024 * 1024


class BodyFirstWriter:
    """Spools a body, then queues it under the envelope given to ``commit``."""

    __slots__ = ("_begin", "_done", "_layout", "_lock", "_read_fd", "_size", "_write_fd", "id")

    def __init__(
        self, layout: Layout, begin: Callable[[Envelope, str], QueueWriter], qid: str
    ) -> None:
        self.id = check_id(qid)  # the final queue id, known before the envelope
        self._layout = layout
        self._begin = begin
        self._write_fd: int | None = None
        self._read_fd: int | None = None
        self._size = 0
        self._done = False  # committed, aborted or failed
        # A teardown's abort() may race a write still running in a pool thread.
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """Body octets spooled so far (not counting ``commit``'s head and tail)."""
        return self._size

    def write(self, data: bytes) -> None:
        """Append body bytes to the spool (created on the first call)."""
        with self._lock:
            self._check_open()
            try:
                if self._write_fd is None:
                    self._create_spool()
                assert self._write_fd is not None
                fsio.write_all(self._write_fd, data)
            except BaseException:
                self._discard()
                raise
            self._size += len(data)
            fsio.crash_point("queue.body.write")

    def commit(self, envelope: Envelope, head: bytes = b"", tail: bytes = b"") -> str:
        """Queue ``head`` + the spooled body + ``tail`` under ``envelope``;
        returns the id once committed (the same commit point as ``QueueWriter``).

        Any failure leaves nothing in the queue and re-raises (OSError for
        a full disk): the caller answers with a temporary failure.
        """
        with self._lock:
            self._check_open()
            try:
                writer = self._begin(envelope, self.id)
                try:
                    self._fill(writer, head, tail)
                except BaseException:
                    writer.abort()
                    raise
                return writer.commit()
            finally:
                self._discard()

    def abort(self) -> None:
        """Give the message up; idempotent, and a no-op once committed."""
        with self._lock:
            self._discard()

    def _check_open(self) -> None:
        if self._done:
            raise ValueError(f"body writer {self.id} is finished")

    def _create_spool(self) -> None:
        name = new_id()  # a queue id: recover() knows it as debris if it lingers
        path = os.path.join(self._layout.tmp, name)
        self._write_fd = fsio.create_excl(self._layout.tmp, name)
        fsio.crash_point("queue.body.create")
        try:
            self._read_fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        finally:
            # From here on the spool has no name: nothing can be left behind.
            os.unlink(path)
        fsio.crash_point("queue.body.hide")

    def _fill(self, writer: QueueWriter, head: bytes, tail: bytes) -> None:
        if head:
            writer.write(head)
        if self._read_fd is not None:
            offset = 0
            while chunk := os.pread(self._read_fd, _COPY_CHUNK, offset):
                writer.write(chunk)
                offset += len(chunk)
            if offset != self._size:
                # Never queue a message shorter than what was received.
                raise OSError(errno.EIO, f"spool of {self.id}: {offset} of {self._size} octets")
        if tail:
            writer.write(tail)

    def _discard(self) -> None:
        self._done = True
        for fd in (self._write_fd, self._read_fd):
            if fd is not None:
                os.close(fd)
        self._write_fd = self._read_fd = None
