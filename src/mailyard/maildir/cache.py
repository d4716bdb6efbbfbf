"""Per-folder cache of parsed message data (ENVELOPE, BODYSTRUCTURE …) as opaque blobs.

The store does not know what the blobs mean: the IMAP side parses a message
once (mailyard.message) and hands the result here under a small ``kind``
number; later FETCHes read it back instead of the message. Messages never
change, so an entry stays valid for the life of its uid.

``mailyard-cache`` is append-only: a file header (magic and the folder's
UIDVALIDITY, so entries never outlive their uids), then records::

    crc32 (of the rest of the record) · uid · kind · length · blob

Appends are one ``write`` on an O_APPEND descriptor and are not fsync'd:
a cache may lose its tail in a crash, and a torn or damaged record simply
ends what is read. Several processes may append at once. When the file is
unreadable, belongs to another UIDVALIDITY, or holds mostly expunged
messages, it is rewritten (``fsio.write_file_atomic``).
"""

from __future__ import annotations

import itertools
import os
import struct
import weakref
import zlib
from collections.abc import Container, Iterable, Iterator
from typing import Final

from mailyard import fsio

__all__ = ["FILE_NAME", "BlobCache"]

FILE_NAME: Final = "mailyard-cache"
_MAGIC: Final = b"MYCACHE1"
_FILE_HEAD: Final = struct.Struct("<8sQ")
_RECORD: Final = struct.Struct("<IIBI")
_MAX_BLOB: Final = 1 << 24
_COMPACT_MIN: Final = 4 << 20
# get_many reads neighbouring blobs with one pread of at most this much:
# SEARCH and SORT over 100,000 messages then cost ~100 reads, not 100,000.
_WINDOW: Final = 1 << 20


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)


class BlobCache:
    """Read and append one folder's cache file. The folder serialises calls."""

    __slots__ = ("__weakref__", "_closer", "_entries", "_fd", "_live_bytes", "_scanned",
                 "directory", "path", "uidvalidity")

    def __init__(self, directory: str, uidvalidity: int) -> None:
        self.directory = directory
        self.path = os.path.join(directory, FILE_NAME)
        self.uidvalidity = uidvalidity
        self._fd: int | None = None
        self._closer: weakref.finalize[[int], BlobCache] | None = None
        # (uid << 8 | kind) -> (offset << 32 | length): ints, not tuples.
        self._entries: dict[int, int] = {}
        self._scanned = 0
        self._live_bytes = 0

    def get(self, uid: int, kind: int) -> bytes | None:
        fd = self._open()
        key = uid << 8 | kind
        found = self._entries.get(key)
        if found is None:
            self._scan(fd)
            found = self._entries.get(key)
            if found is None:
                return None
        offset, length = found >> 32, found & 0xFFFFFFFF
        data = os.pread(fd, length, offset)
        return data if len(data) == length else None

    def get_many(self, uids: Iterable[int], kind: int) -> dict[int, bytes]:
        """The blobs of ``kind`` the cache has for ``uids`` (uid -> blob)."""
        fd = self._open()
        self._scan(fd)
        wanted = sorted((found >> 32, found & 0xFFFFFFFF, uid) for uid in uids
                        if (found := self._entries.get(uid << 8 | kind)) is not None)
        out: dict[int, bytes] = {}
        start = 0
        while start < len(wanted):
            first = wanted[start][0]
            stop = start + 1
            while stop < len(wanted) and wanted[stop][0] + wanted[stop][1] - first <= _WINDOW:
                stop += 1
            last = wanted[stop - 1]
            data = os.pread(fd, last[0] + last[1] - first, first)
            for offset, length, uid in wanted[start:stop]:
                blob = data[offset - first : offset - first + length]
                if len(blob) == length:
                    out[uid] = blob
            start = stop
        return out

    def put(self, uid: int, kind: int, blob: bytes) -> None:
        if not 0 <= kind <= 0xFF or len(blob) > _MAX_BLOB:
            raise ValueError("cache kind must be 0-255 and a blob at most 16 MB")
        fd = self._open()
        self._scan(fd)
        key = uid << 8 | kind
        if key in self._entries:
            return
        tail = struct.pack("<IBI", uid, kind, len(blob)) + blob
        fsio.write_all(fd, struct.pack("<I", zlib.crc32(tail)) + tail)
        self._scan(fd)

    def forget(self, uids: Container[int], live: int) -> None:
        """Drop expunged uids; rewrite the file once it is mostly dead space."""
        if self._fd is None:
            return
        self._entries = {k: v for k, v in self._entries.items() if (k >> 8) not in uids}
        self._live_bytes = sum(v & 0xFFFFFFFF for v in self._entries.values())
        size = os.fstat(self._fd).st_size
        if size > _COMPACT_MIN and size > 2 * (self._live_bytes + live * _RECORD.size):
            self._rewrite(keep=True)

    def close(self) -> None:
        self._release()
        self._entries = {}
        self._scanned = 0

    def _adopt_fd(self, fd: int) -> int:
        self._release()
        self._fd = fd
        # Closes the descriptor if the cache is dropped without close().
        self._closer = weakref.finalize(self, os.close, fd)
        return fd

    def _release(self) -> None:
        if self._closer is not None:
            self._closer()
            self._closer = None
        self._fd = None

    def _open(self) -> int:
        if self._fd is not None:
            return self._fd
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return self._rewrite(keep=False)
        head = os.pread(fd, _FILE_HEAD.size, 0)
        if len(head) != _FILE_HEAD.size or _FILE_HEAD.unpack(head) != (_MAGIC, self.uidvalidity):
            os.close(fd)
            return self._rewrite(keep=False)
        self._scanned = _FILE_HEAD.size
        return self._adopt_fd(fd)

    def _scan(self, fd: int) -> None:
        """Index the records appended since the last scan, read ``_WINDOW``
        octets at a time (a warm server's first look at a 100,000-message
        cache is a few dozen reads, not two per record)."""
        size = os.fstat(fd).st_size
        while self._scanned + _RECORD.size <= size:
            base = self._scanned
            chunk = os.pread(fd, min(size - base, _WINDOW), base)
            if not self._index_chunk(chunk, base):
                return  # damaged: nothing after it is trusted
            if self._scanned > base:
                continue
            # The next record is larger than a window, torn, or being written.
            length = _RECORD.unpack_from(chunk)[3] if len(chunk) >= _RECORD.size else 0
            if length > _MAX_BLOB or base + _RECORD.size + length > size:
                return  # torn, or still being written by another process
            record = os.pread(fd, _RECORD.size + length, base)
            if not self._index_chunk(record, base) or self._scanned == base:
                return

    def _index_chunk(self, chunk: bytes, base: int) -> bool:
        """Index the whole records at the start of ``chunk`` (read at offset
        ``base``) and move ``_scanned`` past them; False at a damaged one."""
        at = 0
        entries = self._entries
        try:
            while at + _RECORD.size <= len(chunk):
                crc, uid, kind, length = _RECORD.unpack_from(chunk, at)
                start = at + _RECORD.size
                if length > _MAX_BLOB:
                    return False
                if start + length > len(chunk):
                    return True  # continues past the chunk
                if zlib.crc32(chunk[at + 4 : start + length]) != crc:
                    return False
                entries.setdefault(uid << 8 | kind, (base + start) << 32 | length)
                self._live_bytes += length
                at = start + length
            return True
        finally:
            self._scanned = base + at

    def _live_records(self, fd: int) -> Iterator[bytes]:
        for key, found in sorted(self._entries.items(), key=lambda kv: kv[1]):
            offset, length = found >> 32, found & 0xFFFFFFFF
            blob = os.pread(fd, length, offset)
            tail = struct.pack("<IBI", key >> 8, key & 0xFF, length) + blob
            yield struct.pack("<I", zlib.crc32(tail)) + tail

    def _rewrite(self, *, keep: bool) -> int:
        old = self._fd
        records: Iterator[bytes] = iter(())
        if keep and old is not None:
            records = self._live_records(old)
        head = _FILE_HEAD.pack(_MAGIC, self.uidvalidity)
        fsio.write_file_atomic(self.directory, FILE_NAME, itertools.chain([head], records))
        self._release()
        self._entries, self._scanned, self._live_bytes = {}, _FILE_HEAD.size, 0
        fd = self._adopt_fd(os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
                                    | os.O_NOFOLLOW))
        self._scan(fd)
        return fd
