"""Maildir delivery: qmail-local's order, plus the directory sync Linux needs.

One delivery is, in this order (maildir spec; DESIGN §4)::

    create tmp/NAME exclusively -> write prefix + body -> fsync the file
    -> rename to new/NAME -> fsync new/ (shared between threads by DirSyncer)

Only after the last step has the message been delivered. A crash before the
rename leaves debris in ``tmp/`` that no reader looks at; a crash after it
leaves the complete message in ``new/``. Nothing partial ever shows in
``new/``, because a file only gets there by an atomic rename after its data
was fsync'd.

This runs about a thousand times a second in worker threads, so it makes as
few system calls as it can: the size is known beforehand (the name carries
it, so no fstat), the pid is cached, and the body is copied inside the
kernel (copy_file_range, else sendfile) when it is a real file.
"""

from __future__ import annotations

import errno
import os
import re
import threading
import time
from collections.abc import Callable
from typing import BinaryIO, Final

from mailyard import fsio
from mailyard.maildir import names

__all__ = ["SUBDIRS", "deliver", "ensure_maildir", "extension_folder"]

SUBDIRS: Final = ("tmp", "new", "cur")
_CHUNK: Final = 65536
# What an address extension may name as a folder: the Maildir++ directory
# name without its leading dot, so "lists.python" is folder lists/python.
_EXTENSION: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", re.ASCII)
_TRASH: Final = ".trash"

# A kernel copy may be refused for reasons that say nothing about the data:
# different filesystems (EXDEV), an old kernel (ENOSYS), a file type the
# call does not handle (EINVAL), a platform where sendfile wants a socket
# (ENOTSOCK). Then the next method is tried, and at last a plain read loop.
_FALL_BACK: Final = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOTSOCK}
)


def _copy_file_range(src: int, dst: int, offset: int, count: int) -> int:
    return os.copy_file_range(src, dst, count, offset)


def _sendfile(src: int, dst: int, offset: int, count: int) -> int:
    return os.sendfile(dst, src, offset, count)


_KERNEL_COPIES: Final[tuple[Callable[[int, int, int, int], int], ...]] = tuple(
    copy
    for copy, call in ((_copy_file_range, "copy_file_range"), (_sendfile, "sendfile"))
    if hasattr(os, call)
)

# Maildir spec: the pid is part of the unique name. getpid() is a real
# system call on current glibc, so it is read once and again after fork.
_pid = os.getpid()


def _after_fork() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork)

# The Q<n> part: unique per process, shared by every delivering thread.
_counter_lock = threading.Lock()
_counter = 0


def _next_counter() -> int:
    global _counter
    with _counter_lock:
        _counter += 1
        return _counter


def ensure_maildir(path: str) -> None:
    """Make ``path`` a Maildir (tmp/ new/ cur/, parents too), durably, mode 0700.

    Called before every delivery, so the usual case (all three exist) costs
    three stat calls and nothing else.
    """
    missing = [sub for sub in SUBDIRS if not os.path.isdir(os.path.join(path, sub))]
    for sub in missing:
        target = os.path.join(path, sub)
        # fsio.ensure_dir creates missing parents and syncs each new entry's
        # parent directory, so a fresh Maildir survives a crash.
        fsio.ensure_dir(target, 0o700)
        if not os.path.isdir(target):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", target)


def extension_folder(root: str, extension: str) -> str | None:
    """The Maildir of the existing folder an address extension names, or None.

    ``user+lists@`` files into folder ``lists`` when the mailbox has one
    (matched without case against the root's ``.name`` directories); only
    ``[A-Za-z0-9._-]``, no leading dot and no ``..``, so the extension a
    sender chose can never reach outside the mailbox. Trash is never
    chosen: Courier's quota does not count it, and a sender must not be
    able to put mail where it escapes the quota.
    """
    if not _EXTENSION.fullmatch(extension) or ".." in extension or extension.endswith("."):
        return None
    wanted = "." + extension.lower()
    if wanted == _TRASH or wanted.startswith(_TRASH + "."):
        return None
    try:
        listing = os.scandir(root)
    except (FileNotFoundError, NotADirectoryError):
        return None
    with listing:
        for entry in listing:
            if entry.name.lower() == wanted and entry.is_dir(follow_symlinks=False):
                return fsio.safe_join(root, entry.name)
    return None


def deliver(
    path: str,
    prefix: bytes,
    body: BinaryIO,
    size: int,
    *,
    hostname: str,
    syncer: fsio.DirSyncer | None = None,
) -> str:
    """Deliver ``prefix`` and the next ``size`` bytes of ``body`` to the Maildir.

    ``body`` is positioned at its first byte to copy; it is left just past
    the last one. Returns the file's name in ``new/``. On any failure the
    exception propagates and neither ``tmp/`` nor ``new/`` keeps anything.
    A body shorter than ``size`` fails with ``OSError(EIO)``.
    """
    if size < 0:
        raise ValueError("size must not be negative")
    name = names.delivery_name(
        now=time.time(), pid=_pid, counter=_next_counter(), hostname=hostname,
        size=len(prefix) + size,
    )
    tmp_path = os.path.join(path, "tmp", name)
    new_dir = os.path.join(path, "new")
    new_path = os.path.join(new_dir, name)
    fd = fsio.create_excl(os.path.join(path, "tmp"), name)
    fsio.crash_point("maildir.create")
    try:
        try:
            _write_message(fd, prefix, body, size)
        finally:
            os.close(fd)
        fsio.rename_into(tmp_path, new_path)
    except BaseException:
        _discard(tmp_path)
        raise
    fsio.crash_point("maildir.rename")
    try:
        if syncer is None:
            fsio.fsync_dir(new_dir)
        else:
            syncer.sync(new_dir)
    except BaseException:
        # Not durable means not delivered: the queue will retry, so the file
        # must not stay behind to be read (and then delivered a second time).
        _discard(new_path)
        raise
    fsio.crash_point("maildir.dirsync")
    return name


def _write_message(fd: int, prefix: bytes, body: BinaryIO, size: int) -> None:
    if prefix:
        fsio.write_all(fd, prefix)
    _copy_body(body, fd, size)
    fsio.crash_point("maildir.write")
    # Data durable before the name appears in new/ (the maildir spec's order).
    fsio.fsync_file(fd)
    fsio.crash_point("maildir.fsync")


def _copy_body(body: BinaryIO, fd: int, size: int) -> None:
    copied = 0
    source = _file_position(body) if size else None
    if source is not None:
        src, start = source
        copied = _copy_in_kernel(src, fd, start, size)
        # The kernel copy used an explicit offset and left the file object
        # alone; move it past what was copied, where a read loop would be.
        body.seek(start + copied)
    remaining = size - copied
    while remaining:
        chunk = body.read(min(remaining, _CHUNK))
        if not chunk:
            raise OSError(errno.EIO, "message body is shorter than its recorded size")
        fsio.write_all(fd, chunk)
        remaining -= len(chunk)


def _file_position(body: BinaryIO) -> tuple[int, int] | None:
    """The OS file and offset behind ``body``, or None when it is not a real file."""
    try:
        src = body.fileno()
        # Bytes still in a Python write buffer are invisible to the kernel.
        body.flush()
        return src, body.tell()
    except (OSError, ValueError):
        # io.UnsupportedOperation (BytesIO) is both; ESPIPE for a pipe.
        return None


def _copy_in_kernel(src: int, dst: int, offset: int, size: int) -> int:
    """Copy up to ``size`` bytes from ``src`` at ``offset``; return how many were copied.

    Stops early at end of file (0 returned), leaving the read loop to decide
    whether the body is really short: some files report 0 without being at
    their end (procfs), and a read tells the truth.
    """
    copied = 0
    for copy in _KERNEL_COPIES:
        try:
            while copied < size:
                done = copy(src, dst, offset + copied, size - copied)
                if done == 0:
                    return copied
                copied += done
        except OSError as exc:
            if exc.errno not in _FALL_BACK:
                raise
            continue
        return copied
    return copied


def _discard(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
