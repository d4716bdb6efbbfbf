"""POP3's view of a Maildir: one locked session at a time (qmail-pop3d's job).

RFC 1939 §4: once a client has authenticated, the server takes an
exclusive-access lock on the maildrop, so that no two sessions see (and
delete from) it at once; a second login is refused (RFC 2449 §8:
``[IN-USE]``). The lock is an ``flock`` on a file in the Maildir root, so
the kernel frees it when the holding process dies, however it dies. Inside
one process a registry of held locks refuses a second open as well: on
filesystems where Linux emulates flock with POSIX record locks (NFS), the
locks of one process would not conflict with each other.

Opening moves every message in ``new/`` to ``cur/`` (maildir spec: a reader
that has seen a message moves it there and adds the info ``:2,``), then lists
``cur/`` in delivery order. Messages are deleted only when the session
commits (RFC 1939 §6, the UPDATE state), with one directory fsync for all.

Other readers (IMAP sessions, tools) may rename or delete files at any
moment: a rename or open that hits ENOENT rescans ``cur/`` for the same base
name and goes on (DESIGN §4).

The folder's uid list is shared with IMAP (issue 3): after opening (the
server runs that sync while the session goes on, ``sync_uid_list``), and
after deleting at QUIT, the drop syncs the INBOX ``Folder``, which gives
uids to the messages POP3 moved into ``cur/`` and records the deletions
(with their mod-sequence, for QRESYNC), under the folder lock. POP3's own
UIDLs stay the base names (``uidl_for``), as before. QUIT also takes the
deleted octets off the Maildir++ quota (``maildirsize``). If keeping the uid
list fails, POP3 goes on and the failure is logged: the next IMAP or POP3
sync records what this one could not.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import BinaryIO, Final

from mailyard import fsio, log
from mailyard.maildir.deliver import ensure_maildir
from mailyard.maildir.errors import StoreError
from mailyard.maildir.folder import Folder
from mailyard.maildir.names import (
    delivery_stamp,
    size_from_name,
    split_info,
    uidl_for,
    with_info,
)
from mailyard.maildir.quota import Quota

__all__ = ["LOCK_NAME", "DropEntry", "Maildrop", "MaildropBusy"]

# Not a dot name: in a Maildir++ root those are folders.
LOCK_NAME: Final = "mailyard-pop3.lock"

# RFC 1939 §7: a unique-id is 1 to 70 characters.
_UIDL_MAX: Final = 70

# An S= larger than this is not believed; the file is stat'ed instead.
_MAX_PLAUSIBLE_SIZE: Final = 1 << 40

# (st_dev, st_ino) of every lock file this process holds.
_held: set[tuple[int, int]] = set()
_held_lock = threading.Lock()


class MaildropBusy(Exception):
    """Another session holds the maildrop's lock (RFC 2449 §8: [IN-USE])."""


@dataclass(frozen=True, slots=True)
class DropEntry:
    """One message of the drop: its current name in ``cur/``, UIDL and size in octets."""

    name: str
    uid: str
    size: int


def _acquire(path: str) -> tuple[int, tuple[int, int]]:
    # O_NOFOLLOW: a symlink planted in the Maildir must not make us create
    # or lock some other file.
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(os.path.join(path, LOCK_NAME), flags, 0o600)
    try:
        info = os.fstat(fd)
        key = (info.st_dev, info.st_ino)
        with _held_lock:
            if key in _held:
                raise MaildropBusy(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise MaildropBusy(path) from None
            _held.add(key)
    except BaseException:
        os.close(fd)
        raise
    return fd, key


def _release(fd: int, key: tuple[int, int]) -> None:
    # Closing the descriptor drops the flock; doing both under the registry
    # lock means another thread never sees one without the other.
    with _held_lock:
        os.close(fd)
        _held.discard(key)


def _move_new_to_cur(path: str) -> None:
    new_dir = os.path.join(path, "new")
    cur_dir = os.path.join(path, "cur")
    with os.scandir(new_dir) as listing:
        found = [e.name for e in listing if _is_message(e)]
    for name in found:
        # Maildir spec: a file in new/ has no info; keep one if it does.
        target = name if ":" in name else with_info(name, "")
        try:
            fsio.rename_into(os.path.join(new_dir, name), os.path.join(cur_dir, target))
        except FileNotFoundError:
            continue  # another reader moved it first; the cur/ scan finds it
    # No directory fsync: if a crash undoes a move, the file is back in new/
    # with the same base name (so the same UIDL) and is moved again.


def _is_message(entry: os.DirEntry[str]) -> bool:
    # Dot files are never messages (maildir spec); neither are symlinks,
    # which could point a session at files outside the Maildir.
    return not entry.name.startswith(".") and entry.is_file(follow_symlinks=False)


def _scan_cur(cur_dir: str) -> list[DropEntry]:
    ranked: list[tuple[tuple[int, int, int, str], DropEntry]] = []
    with os.scandir(cur_dir) as listing:
        for entry in listing:
            if not _is_message(entry):
                continue
            base = split_info(entry.name)[0]
            stamp = delivery_stamp(base)
            size = size_from_name(entry.name)
            if size is not None and size > _MAX_PLAUSIBLE_SIZE:
                size = None
            mtime = 0
            if stamp is None or size is None:
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted by another reader since the listing
                mtime = info.st_mtime_ns
                size = info.st_size if size is None else size
            # Delivery order: our names by their time, then the rest by mtime.
            order = (0, *stamp, entry.name) if stamp else (1, mtime, 0, entry.name)
            ranked.append((order, DropEntry(name=entry.name, uid=_uidl(base), size=size)))
    ranked.sort(key=lambda pair: pair[0])
    # RFC 1939 §7: a unique-id is unique within the maildrop. Two files with
    # one base name are copies of one message; the older one stands for it.
    seen: set[str] = set()
    entries: list[DropEntry] = []
    for _, drop_entry in ranked:
        if drop_entry.uid not in seen:
            seen.add(drop_entry.uid)
            entries.append(drop_entry)
    return entries


def _uidl(base: str) -> str:
    """``uidl_for(base)``, with the common case decided by C string methods.

    Printable ASCII without the space is exactly 0x21-0x7E, the characters
    RFC 1939 §7 allows; anything else goes to ``uidl_for`` itself, which
    stays the one definition (a test checks the two agree).
    """
    if (0 < len(base) <= _UIDL_MAX and base.isascii() and base.isprintable()
            and " " not in base):
        return base
    return uidl_for(base)


def _sync_uid_list(path: str) -> None:
    """Bring the shared uid list up to date (never fatal to POP3)."""
    try:
        Folder.shared(path).sync(claim=False)
    except (OSError, StoreError) as exc:
        log.event("pop3.uidlist_failed", level=logging.WARNING, path=path, error=str(exc))


def _open_nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)


class Maildrop:
    """A locked Maildir as one POP3 session sees it. Use ``Maildrop.open``."""

    __slots__ = ("__weakref__", "_cur_dir", "_finalizer", "entries", "path")

    def __init__(self, path: str, lock_fd: int, lock_key: tuple[int, int],
                 entries: list[DropEntry]) -> None:
        self.path = path
        self.entries = entries
        self._cur_dir = os.path.join(path, "cur")
        # A session that forgets close() must not keep the user locked out
        # until the process ends: the lock goes when the object does.
        self._finalizer = weakref.finalize(self, _release, lock_fd, lock_key)

    @classmethod
    def open(cls, path: str, *, sync_uid_list: bool = True) -> Maildrop:
        """Lock the Maildir at ``path`` (creating it if missing) and list it.

        Raises MaildropBusy if any session, in this process or another,
        holds it. With ``sync_uid_list=False`` the caller runs
        ``sync_uid_list()`` itself (the POP3 server does, after answering
        the login) before any ``delete``.
        """
        ensure_maildir(path)
        lock_fd, lock_key = _acquire(path)
        try:
            _move_new_to_cur(path)
            entries = _scan_cur(os.path.join(path, "cur"))
        except BaseException:
            _release(lock_fd, lock_key)
            raise
        if sync_uid_list:
            _sync_uid_list(path)
        return cls(path, lock_fd, lock_key, entries)

    def sync_uid_list(self) -> None:
        """Give uids to the messages ``open`` moved into ``cur/`` (never fatal).

        It only reads the Maildir and writes the uid list, under the folder
        lock, so it may run while messages are being read.
        """
        _sync_uid_list(self.path)

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def open_message(self, index: int) -> BinaryIO:
        """The message file, for reading; OSError if it is gone."""
        entry = self._entry(index)
        try:
            return open(os.path.join(self._cur_dir, entry.name), "rb", opener=_open_nofollow)
        except FileNotFoundError:
            # Another reader may only have renamed it (new flags).
            current = self._current_names().get(split_info(entry.name)[0])
            if current is None:
                raise
            self.entries[index] = replace(entry, name=current)
            return open(os.path.join(self._cur_dir, current), "rb", opener=_open_nofollow)

    def read_start(self, index: int, limit: int) -> tuple[bytes, BinaryIO | None]:
        """Open the message and read up to ``limit`` octets of it, in one call.

        Returns the octets and the still-open file when more may follow, or
        ``None`` in its place once the whole message is in the octets (the
        file is then closed). POP3 runs this as one thread-pool call per RETR
        instead of one to open and one per read. OSError if the message is gone.
        """
        if limit <= 0:
            raise ValueError("limit must be > 0")
        handle = self.open_message(index)
        try:
            # A buffered read(n) returns fewer than n octets only at end of
            # file (io.BufferedReader), and Maildir files are never appended to.
            data = handle.read(limit)
        except BaseException:
            handle.close()
            raise
        if len(data) < limit:
            handle.close()
            return data, None
        return data, handle

    def read_ahead(self, indices: Sequence[int], budget: int) -> dict[int, bytes]:
        """The whole contents of the messages at ``indices``, in turn, while
        their listed sizes fit in ``budget`` octets (a POP3 client reading
        the drop in order then needs no disk call per RETR).

        A message gone since the listing is left out; so is one larger than
        its listed size (its name lies), which is read the normal way.
        """
        ahead: dict[int, bytes] = {}
        for index in indices:
            size = self._entry(index).size
            if size > budget:
                break
            try:
                data, handle = self.read_start(index, size + 1)
            except OSError:
                continue
            if handle is not None:
                handle.close()
                continue
            budget -= len(data)
            ahead[index] = data
        return ahead

    def delete(self, indices: Sequence[int]) -> None:
        """Unlink the messages at ``indices``, then make that durable with one fsync.

        A message already gone is not an error. Other failures are raised
        after every other message has been tried and the directory synced.
        """
        targets = [self._entry(index) for index in indices]
        if not targets:
            return
        failure: OSError | None = None
        current: dict[str, str] | None = None
        freed = removed = 0
        for entry in targets:
            try:
                if self._unlink(entry.name):
                    freed, removed = freed + entry.size, removed + 1
                    continue
                # Gone, or renamed by another reader (new flags): one rescan
                # of cur/ serves every message of this call.
                if current is None:
                    current = self._current_names()
                renamed = current.pop(split_info(entry.name)[0], None)
                if renamed is not None and self._unlink(renamed):
                    freed, removed = freed + entry.size, removed + 1
            except OSError as exc:
                failure = failure or exc
        fsio.fsync_dir(self._cur_dir)
        _sync_uid_list(self.path)
        try:
            Quota(self.path).record(-freed, -removed)
        except OSError as exc:
            log.event("pop3.quota_failed", level=logging.WARNING, path=self.path, error=str(exc))
        if failure is not None:
            raise failure

    def close(self) -> None:
        """Release the lock. Idempotent."""
        self._finalizer()

    def __enter__(self) -> Maildrop:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _entry(self, index: int) -> DropEntry:
        if self.closed:
            raise ValueError("the maildrop is closed")
        # A negative index would silently pick from the end of the list.
        if not 0 <= index < len(self.entries):
            raise IndexError(f"no message {index} in the maildrop")
        return self.entries[index]

    def _unlink(self, name: str) -> bool:
        """Unlink ``cur/name``; False if it was not there."""
        try:
            os.unlink(os.path.join(self._cur_dir, name))
        except FileNotFoundError:
            return False
        return True

    def _current_names(self) -> dict[str, str]:
        """Base name -> current name of every message in ``cur/`` now."""
        with os.scandir(self._cur_dir) as listing:
            return {split_info(e.name)[0]: e.name for e in listing if _is_message(e)}
