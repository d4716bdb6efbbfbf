"""APPEND, COPY and MOVE: putting messages into a folder with their uids at once.

APPEND (RFC 3501 §6.3.11) streams the message into ``tmp/`` as the client
sends it, so a large literal is never whole in memory; ``commit`` then
takes the path every delivery takes (fsync the file, link it into place,
fsync the directory) and, still under the folder lock, records its uid, so
that APPENDUID (RFC 4315) can be answered and no other process can give the
file a uid first. The file lands in ``new/`` when it has no flags (so a
session will see it as \\Recent, RFC 3501 §6.3.11) and in ``cur/`` with its
flags otherwise (Dovecot's rule: the maildir spec keeps info out of new/).

Its base name is a fresh delivery name whose time is the message's
internal date, so the date survives any index rebuild (the internal date
is read back from the name), and whose ``S=`` is its size.

COPY (RFC 3501 §6.4.7) hard-links each file into the target under a new
base name (the same internal date and size), or copies it when a link is
refused, then records all the new uids at once; any failure removes what
was placed, so the target is as before (RFC 3501: a failed COPY leaves no
trace). MOVE (RFC 6851) is COPY followed by the removal of the originals.
"""

from __future__ import annotations

import errno
import itertools
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, Final

from mailyard import fsio
from mailyard.maildir.errors import MessageGone
from mailyard.maildir.flags import info_from_bits
from mailyard.maildir.names import delivery_name, with_info
from mailyard.maildir.table import IN_CUR, IN_NEW

if TYPE_CHECKING:
    from mailyard.maildir.folder import Folder

__all__ = ["AppendWriter", "CopyResult", "Source", "copy_messages"]

# Distinct from deliver.py's counter (which starts at 1), so a name made
# here never equals a delivery's even at the same microsecond.
_counter: Final = itertools.count(1 << 32)
_pid = os.getpid()
_CHUNK: Final = 1 << 16
_ATTEMPTS: Final = 3
# A link may be refused for reasons that say nothing about the message:
# then the bytes are copied.
_NO_LINK: Final = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP,
                             errno.EOPNOTSUPP, errno.EACCES})


def _after_fork() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork)


@dataclass(frozen=True, slots=True)
class Source:
    """A message to copy: its uid, file, size, internal date and flag names."""

    uid: int
    path: str
    size: int
    date: int
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CopyResult:
    """RFC 4315 COPYUID: the target's UIDVALIDITY and (source uid, new uid) pairs."""

    uidvalidity: int
    pairs: tuple[tuple[int, int], ...]


def _base(folder: Folder, when: float, size: int) -> str:
    return delivery_name(now=max(when, 0.0), pid=_pid, counter=next(_counter),
                         hostname=folder.hostname, size=size)


def _placement(folder: Folder, bits: int, when: float, size: int) -> tuple[str, int]:
    base = _base(folder, when, size)
    if bits:
        return with_info(base, info_from_bits(bits)), IN_CUR
    return base, IN_NEW


class AppendWriter:
    """One APPEND in progress: ``write`` chunks, then ``commit`` (or ``abort``)."""

    __slots__ = ("_date", "_fd", "_flags", "_tmp", "folder", "size", "uid")

    def __init__(self, folder: Folder, flag_names: Iterable[str], internal_date: float | None,
                 *, size: int | None = None) -> None:
        if size is not None and folder.counted:
            # RFC 9208 §4.4: refuse before reading the literal, not after.
            folder.quota.check(size, 1)
        self.folder = folder
        self._flags = tuple(flag_names)
        self._date = time.time() if internal_date is None else internal_date
        tmp_dir = os.path.join(folder.path, "tmp")
        name = _base(folder, time.time(), 0)
        self._fd: int | None = fsio.create_excl(tmp_dir, name)
        self._tmp = os.path.join(tmp_dir, name)
        self.size = 0
        self.uid = 0

    def write(self, data: bytes | memoryview) -> None:
        fsio.write_all(self._require(), data)
        self.size += len(data)

    def commit(self) -> int:
        """Make the message durable in the folder; returns its uid (APPENDUID)."""
        fd = self._require()
        try:
            fsio.fsync_file(fd)
        finally:
            os.close(fd)
            self._fd = None
        try:
            os.utime(self._tmp, (self._date, self._date))
            folder = self.folder
            if folder.counted:
                folder.quota.check(self.size, 1)
            with folder.transaction():
                name, where = _placement(folder, folder.keyword_bits(self._flags),
                                         self._date, self.size)
                target = os.path.join(folder.directory(where), name)
                fsio.link_into(self._tmp, target)
                fsio.crash_point("maildir.append.linked")
                try:
                    fsio.fsync_dir(folder.directory(where))
                    self.uid = folder.adopt([(name, where, self.size, int(self._date))])[0]
                except BaseException:
                    _unlink_quietly(target)
                    raise
        finally:
            _unlink_quietly(self._tmp)
        if folder.counted:
            folder.quota.record(self.size, 1)
        return self.uid

    def abort(self) -> None:
        """Throw the message away. Idempotent; a no-op once committed."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            _unlink_quietly(self._tmp)

    def __enter__(self) -> AppendWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.abort()

    def _require(self) -> int:
        if self._fd is None:
            raise ValueError("the append is finished")
        return self._fd


class _SourceMoved(Exception):
    """A source file was renamed (or removed) while it was being linked."""


def copy_messages(source: Folder, uids: Iterable[int], target: Folder, *,
                  move: bool) -> CopyResult:
    """COPY (or MOVE) the existing ``uids`` of ``source`` into ``target``."""
    wanted = sorted(set(uids))
    files = source.sources(wanted)
    present = {f.uid for f in files}
    for _ in range(_ATTEMPTS):
        if {f.uid for f in files} != present:
            raise MessageGone("a message was expunged while it was being copied")
        size = sum(f.size for f in files)
        # RFC 9208 §4.4: moving within what the quota counts takes nothing;
        # only what enters the counted part is checked.
        if files and target.counted and not (move and source.counted):
            target.quota.check(size, len(files))
        try:
            pairs = _place_all(files, target)
        except _SourceMoved:
            source.sync()
            files = source.sources(wanted)
            continue
        if target.counted and pairs:
            target.quota.record(size, len(pairs))
        if move and pairs:
            # Records the removal in maildirsize too, if the source counts.
            source.remove([old for old, _ in pairs], only_deleted=False)
        return CopyResult(target.uidvalidity, tuple(pairs))
    raise MessageGone("a message kept moving while it was being copied")


def _place_all(files: list[Source], target: Folder) -> list[tuple[int, int]]:
    if not files:
        return []
    placed: list[tuple[str, str, int, int, int]] = []
    with target.transaction():
        try:
            for source in files:
                name, where = _placement(target, target.keyword_bits(source.flags),
                                         source.date, source.size)
                path = os.path.join(target.directory(where), name)
                _link_or_copy(source.path, path, target)
                placed.append((path, name, where, source.size, source.date))
            for where in {p[2] for p in placed}:
                fsio.fsync_dir(target.directory(where))
            fsio.crash_point("maildir.copy.linked")
            uids = target.adopt([(name, where, size, date)
                                 for _, name, where, size, date in placed])
        except BaseException:
            for path, *_ in placed:
                _unlink_quietly(path)
            raise
    return list(zip((f.uid for f in files), uids, strict=True))


def _link_or_copy(src: str, dst: str, target: Folder) -> None:
    try:
        fsio.link_into(src, dst)
        return
    except FileNotFoundError:
        raise _SourceMoved(src) from None
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
    tmp_dir = os.path.join(target.path, "tmp")
    tmp_name = os.path.basename(dst).partition(":")[0]
    fd = fsio.create_excl(tmp_dir, tmp_name)
    tmp_path = os.path.join(tmp_dir, tmp_name)
    try:
        try:
            with open(src, "rb", opener=_nofollow) as handle:
                for chunk in _chunks(handle):
                    fsio.write_all(fd, chunk)
            fsio.fsync_file(fd)
        except FileNotFoundError:
            raise _SourceMoved(src) from None
        finally:
            os.close(fd)
        fsio.link_into(tmp_path, dst)
    finally:
        _unlink_quietly(tmp_path)


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(_CHUNK):
        yield chunk


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)
