"""The folder lock: ``flock`` on a lock file, shared by every process that changes a folder.

Any process that assigns uids, renames or unlinks messages through the
store, or rewrites one of the folder's files holds this lock meanwhile
(DESIGN §4): IMAP sessions in several worker processes, the POP3 maildrop,
tools. ``flock`` belongs to an open file description, so the kernel drops it
when the holder dies however it dies, and two opens in one process exclude
each other as two processes do. Inside one object the lock is reentrant,
and a thread lock makes the threads of a process queue before the kernel
lock rather than inside it.

Lock order, to rule out deadlocks: the root lock before any folder lock,
and never two folder locks at once (copy and move take them one after the
other).
"""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from types import TracebackType
from typing import Final

__all__ = ["FOLDER_LOCK", "ROOT_LOCK", "FileLock", "root_lock"]

FOLDER_LOCK: Final = "mailyard.lock"
ROOT_LOCK: Final = "mailyard-root.lock"


class FileLock:
    """An exclusive, reentrant lock on ``directory/name`` (created if absent)."""

    __slots__ = ("__weakref__", "_depth", "_fd", "_mutex", "path")

    def __init__(self, directory: str, name: str = FOLDER_LOCK) -> None:
        self.path = os.path.join(directory, name)
        self._mutex = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True when some thread of this process holds it through this object."""
        return self._depth > 0

    def __enter__(self) -> FileLock:
        self._mutex.acquire()
        try:
            if self._depth == 0:
                # O_NOFOLLOW: never lock (or create) a file a symlink points to.
                flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
                fd = os.open(self.path, flags, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                self._fd = fd
            self._depth += 1
        except BaseException:
            self._mutex.release()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._depth -= 1
            if self._depth == 0 and self._fd is not None:
                # Closing the descriptor releases the flock.
                os.close(self._fd)
                self._fd = None
        finally:
            self._mutex.release()


_roots: weakref.WeakValueDictionary[str, FileLock] = weakref.WeakValueDictionary()
_roots_lock = threading.Lock()


def root_lock(root: str) -> FileLock:
    """The process's one lock object for a Maildir root's ``ROOT_LOCK``.

    One object per root, so that a thread already holding it (a folder
    rename that then counts quota) re-enters it instead of waiting on a
    second descriptor of its own.
    """
    key = os.path.abspath(root)
    with _roots_lock:
        lock = _roots.get(key)
        if lock is None:
            lock = _roots[key] = FileLock(key, ROOT_LOCK)
        return lock
