"""One message on its way into the queue: states S1 → S2 → S3 of docs/design/queue.md.

``Queue.begin()`` creates ``tmp/ID`` and writes the envelope; the writer
appends the body as it streams in and ``commit()`` makes it durable: fsync
the file, rename it into ``mess/``, sync ``mess/`` (shared with concurrent
commits through ``fsio.DirSyncer``). That sync is the commit point; one file
fsync and a share of one directory fsync is the whole cost of a message.

Any failure in ``write()`` or ``commit()`` discards the message at once and
re-raises, so nothing partial is left and ``abort()`` has nothing more to do.
"""

from __future__ import annotations

import enum
import os
import threading

from mailyard import fsio
from mailyard.queue.layout import Layout

__all__ = ["QueueWriter"]


class _Stage(enum.Enum):
    OPEN = "open"  # S1: tmp/ID exists, descriptor open
    RENAMED = "renamed"  # S2: in mess/, directory not yet synced
    COMMITTED = "committed"  # S3: the commit point has passed
    DISCARDED = "discarded"  # aborted or failed; nothing left on disk


class QueueWriter:
    """Streams one message body into its queue file; see the module doc."""

    __slots__ = ("_fd", "_layout", "_lock", "_stage", "_syncer", "id")

    def __init__(self, layout: Layout, qid: str, fd: int, syncer: fsio.DirSyncer | None) -> None:
        self.id = qid
        self._layout = layout
        self._fd: int | None = fd
        self._syncer = syncer
        self._stage = _Stage.OPEN
        # One session uses a writer at a time, but abort() may come from a
        # connection teardown while a flush is still in the pool.
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        """Append body bytes straight to the file (nothing is kept in memory)."""
        with self._lock:
            fd = self._open_fd()
            try:
                fsio.write_all(fd, data)
            except BaseException:
                self._discard()
                raise
            fsio.crash_point("queue.write")

    def commit(self) -> str:
        """Make the message durable and visible; return its id (the commit point)."""
        with self._lock:
            fd = self._open_fd()
            try:
                self._commit(fd)
            except BaseException:
                self._discard()
                raise
            self._stage = _Stage.COMMITTED
            return self.id

    def abort(self) -> None:
        """Give the message up; idempotent, and a no-op once committed."""
        with self._lock:
            self._discard()

    def _open_fd(self) -> int:
        if self._stage is not _Stage.OPEN or self._fd is None:
            raise ValueError(f"queue writer {self.id} is {self._stage.value}")
        return self._fd

    def _commit(self, fd: int) -> None:
        # The one file fsync a message costs; it precedes the rename so that
        # a name in mess/ always means complete contents.
        fsio.fsync_file(fd)
        fsio.crash_point("queue.commit.fsync")
        self._fd = None
        os.close(fd)
        target = self._layout.mess_file(self.id)
        if os.path.lexists(target):
            # rename() would silently replace a committed message.
            raise FileExistsError(f"queue id {self.id} is already committed")
        fsio.rename_into(self._layout.tmp_file(self.id), target)
        self._stage = _Stage.RENAMED
        fsio.crash_point("queue.commit.rename")
        if self._syncer is None:
            fsio.fsync_dir(self._layout.mess)
        else:
            self._syncer.sync(self._layout.mess)
        fsio.crash_point("queue.commit.sync")

    def _discard(self) -> None:
        """Remove whatever this writer left: tmp/ID (S1) or an unacknowledged mess/ID (S2)."""
        stage = self._stage
        if stage in (_Stage.COMMITTED, _Stage.DISCARDED):
            return
        self._stage = _Stage.DISCARDED
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
        path = (
            self._layout.tmp_file(self.id)
            if stage is _Stage.OPEN
            else self._layout.mess_file(self.id)
        )
        try:
            os.unlink(path)
        except FileNotFoundError:
            return  # already gone (recover() removed old debris, or a failed rename)
        fsio.crash_point("queue.abort.unlink")
