"""The only durability code in mailyard.

Every file that must survive a crash (queue files, Maildir deliveries, the
directory's side files) is written through these functions, in the straight
paper path order: create exclusively in a temporary place, write, fsync the
file, link or rename it into its final directory, fsync that directory.

Two things here exist for tests and speed, not for correctness:

* ``crash_point(step)`` is a seam for crash-injection tests. When the
  environment variable ``MAILYARD_CRASH_AT`` is ``"<step>"`` or
  ``"<step>:<n>"`` the process dies with ``os._exit(99)`` the n-th time
  (default: first) it passes that step. It is never a mock: the real
  syscalls up to that point have happened.
* ``DirSyncer`` shares directory fsyncs between threads (group commit): a
  caller that renamed a file into a directory needs *a* directory sync that
  started after its rename; several callers can be satisfied by one sync.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterable
from typing import Final

__all__ = [
    "DirSyncer",
    "UnsafePathError",
    "crash_point",
    "create_excl",
    "ensure_dir",
    "fsync_dir",
    "fsync_file",
    "is_disk_full",
    "link_into",
    "open_append",
    "rename_into",
    "safe_component",
    "safe_join",
    "write_all",
    "write_file_atomic",
]

_CRASH_ENV: Final = "MAILYARD_CRASH_AT"
_crash_counts: dict[str, int] = {}
_crash_lock = threading.Lock()


def _crash_spec() -> tuple[str, int] | None:
    raw = os.environ.get(_CRASH_ENV)
    if not raw:
        return None
    step, _, count = raw.partition(":")
    return step, int(count) if count else 1


def crash_point(step: str) -> None:
    """Die here, abruptly, if a crash test asked for it (see module doc)."""
    spec = _crash_spec()
    if spec is None or spec[0] != step:
        return
    with _crash_lock:
        seen = _crash_counts.get(step, 0) + 1
        _crash_counts[step] = seen
    if seen >= spec[1]:
        os._exit(99)


class UnsafePathError(ValueError):
    """A name that could escape its directory was refused."""


_MAX_COMPONENT: Final = 255


def safe_component(name: str) -> str:
    """Return ``name`` if it is one harmless path component, else raise.

    Refused: empty, ``.``, ``..``, anything with ``/`` or NUL or a control
    character, and names longer than a filesystem allows.
    """
    if not name or name in {".", ".."}:
        raise UnsafePathError(f"unsafe path component {name!r}")
    if len(name.encode("utf-8", "surrogateescape")) > _MAX_COMPONENT:
        raise UnsafePathError("path component too long")
    for ch in name:
        if ch == "/" or ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise UnsafePathError(f"unsafe path component {name!r}")
    return name


def safe_join(base: str, *parts: str) -> str:
    """Join validated components below ``base``; no part may climb out."""
    path = base
    for part in parts:
        for piece in part.split("/"):
            path = os.path.join(path, safe_component(piece))
    return path


def ensure_dir(path: str, mode: int = 0o700) -> None:
    """Create ``path`` (and parents) if missing, syncing each new entry's parent."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(os.path.abspath(path))
    ensure_dir(parent, mode)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return
    fsync_dir(parent)


def create_excl(directory: str, name: str, mode: int = 0o600) -> int:
    """Open a new file exclusively; fails with FileExistsError if it exists."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    return os.open(os.path.join(directory, safe_component(name)), flags, mode)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte (os.write may write less than asked)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_file(fd: int) -> None:
    """Make an open file's data durable before the caller acts on it."""
    os.fsync(fd)


def open_append(directory: str, name: str, mode: int = 0o600) -> tuple[int, bool]:
    """Open ``directory/name`` for reading and appending, creating it if absent.

    Returns ``(fd, created)``. A file this call created has a directory entry
    that is not durable yet: the caller syncs ``directory`` after the first
    write (a file's fsync does not cover its name).
    """
    path = os.path.join(directory, safe_component(name))
    flags = os.O_RDWR | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags), False
    except FileNotFoundError:
        pass
    try:
        return os.open(path, flags | os.O_CREAT | os.O_EXCL, mode), True
    except FileExistsError:
        return os.open(path, flags), False


def fsync_dir(path: str) -> None:
    """Make the directory's entries (creations, renames, links) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def link_into(src: str, dst: str) -> None:
    """Hard-link ``src`` to ``dst`` (fails if ``dst`` exists)."""
    os.link(src, dst)


def rename_into(src: str, dst: str) -> None:
    """Atomically move ``src`` to ``dst`` (same filesystem)."""
    os.rename(src, dst)


def is_disk_full(exc: OSError) -> bool:
    """Out of space or quota: a temporary condition, answered with 4xx."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def write_file_atomic(
    directory: str,
    name: str,
    chunks: Iterable[bytes],
    *,
    mode: int = 0o600,
    syncer: DirSyncer | None = None,
) -> str:
    """Replace ``directory/name`` with ``chunks``, durably and atomically.

    The temporary file sits in the same directory (a rename never crosses a
    filesystem), is fsync'd, renamed over the target, and the directory is
    fsync'd.
    """
    safe_component(name)
    tmp_name = f".{name}.tmp.{os.getpid()}.{threading.get_ident()}"
    tmp_path = os.path.join(directory, tmp_name)
    final = os.path.join(directory, name)
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        for chunk in chunks:
            write_all(fd, chunk)
        fsync_file(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp_path)
        raise
    os.close(fd)
    rename_into(tmp_path, final)
    if syncer is not None:
        syncer.sync(directory)
    else:
        fsync_dir(directory)
    return final


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return


class _DirState:
    __slots__ = ("completed", "running", "started")

    def __init__(self) -> None:
        self.started = 0
        self.completed = 0
        self.running = False


class DirSyncer:
    """Group commit for directory fsyncs, shared by threads.

    ``sync(path)`` returns once a directory fsync of ``path`` that *began
    after this call began* has completed. If a sync is already running it
    may have started before the caller's rename, so the caller waits for it
    and then for (or runs) the next one; everyone who arrived meanwhile is
    covered by that next sync. This turns N concurrent directory syncs into
    about two, without ever skipping one.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._dirs: dict[str, _DirState] = {}
        self.syncs_done = 0

    def sync(self, path: str) -> None:
        with self._cond:
            state = self._dirs.get(path)
            if state is None:
                state = self._dirs[path] = _DirState()
            # A sync numbered `needed` or later starts after this point.
            needed = state.started + 1
            while state.completed < needed:
                if state.running:
                    self._cond.wait()
                    continue
                state.running = True
                state.started += 1
                ticket = state.started
                self._cond.release()
                try:
                    fsync_dir(path)
                finally:
                    self._cond.acquire()
                    state.running = False
                    self._cond.notify_all()
                state.completed = ticket
                self.syncs_done += 1
