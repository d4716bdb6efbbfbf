"""The per-folder index: the message table saved as arrays, so a warm open reads no journal.

``mailyard-index`` is a cache, rebuildable from the journal and the
directories alone; losing it costs one cold open. It records which journal
it describes (the journal's generation and the byte offset it had read to)
and the directory stamps of the last listing; an open loads the arrays,
replays the journal from that offset and lists ``new/`` and ``cur/`` only
if their stamps moved (scan.py). Layout, native byte order (the file never
leaves the machine; another order or item size is simply not used)::

    magic "MYIDX" 0x02, byte order ("l"/"b"), itemsize of 'I', pad
    header   struct _HEAD (uidvalidity … lengths)
    generation (ASCII)
    uids I*n · modseqs Q*n · flags I*n · sizes Q*n · dates q*n · where B*n
    expunged uids I*x · their modseqs Q*x
    names, UTF-8 (surrogateescape), joined by "\\n"
    crc32 of everything before it (4 octets, little-endian)

It is replaced with ``fsio.write_file_atomic``: a crash leaves the old
index or the new one, and a damaged file fails its checksum.
"""

from __future__ import annotations

import os
import struct
import sys
import zlib
from array import array
from dataclasses import dataclass
from typing import Final

from mailyard import fsio
from mailyard.maildir.journal import Header
from mailyard.maildir.scan import DirStamp
from mailyard.maildir.table import MessageTable

__all__ = ["FILE_NAME", "SavedIndex", "load_index", "save_index"]

FILE_NAME: Final = "mailyard-index"
_MAGIC: Final = b"MYIDX\x02" + (b"l" if sys.byteorder == "little" else b"b") + bytes(
    [array("I").itemsize])
# uidvalidity uidnext highest floor offset | new: mtime ino state | cur: mtime ino state
# | count xcount names_len gen_len | reservation: ceiling boot (journal.py's R)
_HEAD: Final = struct.Struct("<QQQQQ qQB qQB QQQH QQ")
_NO_STAMP: Final = 2
_MAX_FILE: Final = 1 << 32


@dataclass(frozen=True, slots=True)
class SavedIndex:
    """A loaded index: the table, and what it was saved against."""

    generation: str
    offset: int
    table: MessageTable
    new_stamp: DirStamp | None
    cur_stamp: DirStamp | None


def _stamp_fields(stamp: DirStamp | None) -> tuple[int, int, int]:
    if stamp is None:
        return 0, 0, _NO_STAMP
    return stamp.mtime_ns, stamp.ino, int(stamp.settled)


def _stamp(mtime: int, ino: int, state: int) -> DirStamp | None:
    return None if state == _NO_STAMP else DirStamp(mtime, ino, bool(state))


def save_index(directory: str, generation: str, offset: int, table: MessageTable,
               new_stamp: DirStamp | None, cur_stamp: DirStamp | None) -> bool:
    """Write the index; False (nothing written) if a name cannot be stored."""
    blob = "\n".join(table.names).encode("utf-8", "surrogateescape")
    if len(table.names) > 1 and blob.count(b"\n") != len(table.names) - 1:
        return False  # a name with a newline: no index, cold opens instead
    gen = generation.encode("ascii")
    head = _HEAD.pack(
        table.uidvalidity, table.uidnext, table.highest, table.floor, offset,
        *_stamp_fields(new_stamp), *_stamp_fields(cur_stamp),
        len(table.uids), len(table.xuids), len(blob), len(gen), table.ceiling, table.boot,
    )
    parts = [_MAGIC, head, gen, table.uids.tobytes(), table.modseqs.tobytes(),
             table.flags.tobytes(), table.sizes.tobytes(), table.dates.tobytes(),
             bytes(table.where), table.xuids.tobytes(), table.xmods.tobytes(), blob]
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    parts.append(struct.pack("<I", crc))
    fsio.crash_point("maildir.index.write")
    fsio.write_file_atomic(directory, FILE_NAME, parts)
    fsio.crash_point("maildir.index.written")
    return True


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise ValueError("index is truncated")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def array(self, code: str, count: int) -> array[int]:
        values = array(code)
        values.frombytes(self.take(values.itemsize * count))
        return values


def load_index(directory: str) -> SavedIndex | None:
    """The saved index, or None if it is absent, foreign or damaged."""
    path = os.path.join(directory, FILE_NAME)
    try:
        with open(path, "rb", opener=_nofollow) as handle:
            data = handle.read(_MAX_FILE)
    except (FileNotFoundError, IsADirectoryError, OSError):
        return None
    if len(data) < len(_MAGIC) + _HEAD.size + 4 or not data.startswith(_MAGIC):
        return None
    body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
    if zlib.crc32(body) != crc:
        return None
    try:
        return _parse(body)
    except (ValueError, UnicodeDecodeError, struct.error):
        return None


def _parse(body: bytes) -> SavedIndex:
    (uidvalidity, uidnext, highest, floor, offset, new_mtime, new_ino, new_state,
     cur_mtime, cur_ino, cur_state, count, xcount, names_len, gen_len, ceiling,
     boot) = _HEAD.unpack_from(body, len(_MAGIC))
    reader = _Reader(body, len(_MAGIC) + _HEAD.size)
    generation = reader.take(gen_len).decode("ascii")
    table = MessageTable(Header(uidvalidity, uidnext, highest, floor, generation))
    table.last_added = uidnext - 1
    # Saved before a power loss, the index's HIGHESTMODSEQ may be under one a
    # client saw: its reservation (of another boot then) raises it.
    table.reserve(ceiling, boot)
    table.uids = reader.array("I", count)
    table.modseqs = reader.array("Q", count)
    table.flags = reader.array("I", count)
    table.sizes = reader.array("Q", count)
    table.dates = reader.array("q", count)
    table.where = bytearray(reader.take(count))
    table.xuids = reader.array("I", xcount)
    table.xmods = reader.array("Q", xcount)
    blob = reader.take(names_len)
    table.names = blob.decode("utf-8", "surrogateescape").split("\n") if count else []
    if len(table.names) != count or reader.pos != len(body):
        raise ValueError("index lengths disagree")
    return SavedIndex(generation, offset, table, _stamp(new_mtime, new_ino, new_state),
                      _stamp(cur_mtime, cur_ino, cur_state))


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)
