"""The per-folder uid list: an append-only journal of uids, flags and expunges.

RFC 3501 §2.3.1.1 asks for UIDs that ascend strictly, are never reused
and survive everything short of a new UIDVALIDITY; RFC 7162 asks for a
mod-sequence per message that never goes backwards. Both live in one text
file per folder, ``mailyard-uidlist`` (the role of Dovecot's
``dovecot-uidlist``, in a format of our own)::

    mailyard-uidlist 1 V<uidvalidity> N<uidnext> M<highestmodseq> E<floor> G<generation>
    A <uid> <modseq> <size> <date> <suffix> <base>     a uid was given to a file
    F <uid> <modseq> <suffix>                          its flags changed (new name suffix)
    X <uid> <modseq>                                   it was expunged
    R <ceiling> <boot>                                 mod-sequences up to <ceiling> may be shown

``<base>`` is the file's base name (everything before the first ``:``),
``<suffix>`` the rest of its name (``:2,RS``, or nothing while it is in
``new/``), ``<date>`` its internal date in seconds. Fields are
percent-escaped so that any file name fits (``-`` is the empty field).
``E`` is the expunge floor: expunges with a mod-sequence up to it are no
longer listed (QRESYNC answers below it conservatively). ``G`` changes at
every rewrite, so a saved index knows whether it describes this file.

Writers hold the folder lock and append whole lines with one ``write``.
A batch holding an ``A`` record is fsync'd before any of its uids is shown
to anyone: RFC 3501 §2.3.1.1, a uid a client saw must never be given to
another message after a crash (the header, with UIDVALIDITY, is only ever
written by ``rewrite``, atomically and fsync'd). ``F`` and ``X`` batches are
not fsync'd: the flags live in the file names (renamed atomically) and an
expunged file is unlinked (and its directory synced) before its ``X`` is
written, so a crash that loses them is repaired by the next rescan, which
records the same facts again. What such a loss must not do is lower
HIGHESTMODSEQ under a value a client saw (RFC 7162 §3.1.2.1). So mod-sequences
are reserved in blocks: before a batch uses one above the last ``R``
ceiling, or is the first batch written since the machine booted, it
carries a new ``R`` line and is fsync'd. Losing unsynced lines takes a
power loss or a kernel crash, and both change the boot id
(``/proc/sys/kernel/random/boot_id``): an ``R`` of another boot raises the
replayed HIGHESTMODSEQ to its ceiling, above anything shown before the
loss (docs/design/store.md). ``sync`` fsyncs what is pending,
and is called before an index that names the journal's offset is saved,
so a saved offset never points past what is durable. Readers consume
complete lines only; a line that does not parse, or an ``A`` whose uid is
not above every earlier one, is skipped. A torn tail is never appended
after: the next writer rewrites the file instead (``write_file_atomic``,
the same directory), as compaction does when dead records pile up.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from mailyard import fsio

__all__ = [
    "FILE_NAME",
    "MODSEQ_BLOCK",
    "Added",
    "Expunged",
    "FlagsSet",
    "Header",
    "Journal",
    "JournalCorrupt",
    "Record",
    "Reserved",
    "boot_id",
    "escape",
    "format_header",
    "format_record",
    "new_generation",
    "parse_header",
    "parse_record",
    "unescape",
]

FILE_NAME: Final = "mailyard-uidlist"
_MAGIC: Final = b"mailyard-uidlist"
_VERSION: Final = b"1"
MAX_UID: Final = 2**32 - 1
MAX_MODSEQ: Final = 2**63 - 1
_MAX_NUMBER: Final = 2**63 - 1
_EMPTY: Final = "-"
_READ_CHUNK: Final = 1 << 20
_SAFE: Final = frozenset(chr(c) for c in range(0x21, 0x7F)) - {"%"}
# Mod-sequences one fsync'd R line reserves: one fsync per this many
# flag changes and expunges at most, and the jump after a power loss.
MODSEQ_BLOCK: Final = 10_000
_BOOT_ID_FILE: Final = "/proc/sys/kernel/random/boot_id"
_boot: int | None = None


class JournalCorrupt(ValueError):
    """The journal's header is unreadable: its uids cannot be trusted."""


@dataclass(frozen=True, slots=True)
class Header:
    uidvalidity: int
    uidnext: int
    highest_modseq: int
    expunge_floor: int
    generation: str


@dataclass(frozen=True, slots=True)
class Added:
    uid: int
    modseq: int
    size: int
    date: int
    suffix: str
    base: str


@dataclass(frozen=True, slots=True)
class FlagsSet:
    uid: int
    modseq: int
    suffix: str


@dataclass(frozen=True, slots=True)
class Expunged:
    uid: int
    modseq: int


@dataclass(frozen=True, slots=True)
class Reserved:
    """Mod-sequences up to ``ceiling`` may be shown to clients; written in boot ``boot``."""

    ceiling: int
    boot: int


Record = Added | FlagsSet | Expunged | Reserved


def boot_id() -> int:
    """This boot of the machine, as 64 bits of the kernel's boot id (read once).

    0 where the kernel does not say (not Linux): then no boot differs from
    another, and a power loss may lower HIGHESTMODSEQ, as before reservations.
    """
    global _boot
    if _boot is None:
        try:
            with open(_BOOT_ID_FILE, "rb") as handle:
                _boot = int(handle.read(64).strip().replace(b"-", b"")[:16], 16)
        except (OSError, ValueError):
            _boot = 0
    return _boot


def escape(text: str) -> str:
    """One journal field: printable ASCII but ``%`` kept, the rest ``%XX`` (UTF-8 octets)."""
    if not text:
        return _EMPTY
    if text == _EMPTY:
        return "%2D"
    if all(ch in _SAFE for ch in text):
        return text
    out: list[str] = []
    for ch in text:
        if ch in _SAFE:
            out.append(ch)
        else:
            out.extend(f"%{octet:02X}" for octet in ch.encode("utf-8", "surrogateescape"))
    return "".join(out)


def unescape(field: str) -> str:
    """The inverse of ``escape``; ValueError on a malformed escape."""
    if field == _EMPTY:
        return ""
    if "%" not in field:
        return field
    raw = bytearray()
    i = 0
    while i < len(field):
        ch = field[i]
        if ch == "%":
            digits = field[i + 1:i + 3]
            if len(digits) != 2 or not all(c in "0123456789ABCDEFabcdef" for c in digits):
                raise ValueError("malformed escape in journal field")
            raw.append(int(digits, 16))
            i += 3
        else:
            raw.extend(ch.encode("ascii"))
            i += 1
    return raw.decode("utf-8", "surrogateescape")


def new_generation() -> str:
    return os.urandom(8).hex()


def format_header(header: Header) -> bytes:
    return (
        f"mailyard-uidlist 1 V{header.uidvalidity} N{header.uidnext} M{header.highest_modseq}"
        f" E{header.expunge_floor} G{header.generation}\n"
    ).encode("ascii")


def _number(text: bytes, low: int = 0, high: int = _MAX_NUMBER) -> int:
    if not text or not (text.isdigit() or (text[:1] == b"-" and text[1:].isdigit())):
        raise ValueError("not a number")
    value = int(text)
    if not low <= value <= high:
        raise ValueError("number out of range")
    return value


def parse_header(line: bytes) -> Header:
    """The header line (without or with its newline); JournalCorrupt if it is not one."""
    parts = line.rstrip(b"\n").split(b" ")
    if len(parts) < 2 or parts[0] != _MAGIC or parts[1] != _VERSION:
        raise JournalCorrupt("not a mailyard uid list")
    fields = {part[:1]: part[1:] for part in parts[2:] if part}
    try:
        generation = fields[b"G"].decode("ascii")
        if not generation or not generation.isalnum():
            raise ValueError("bad generation")
        return Header(
            uidvalidity=_number(fields[b"V"], 1, MAX_UID),
            uidnext=_number(fields[b"N"], 1, MAX_UID + 1),
            highest_modseq=_number(fields[b"M"], 1, MAX_MODSEQ),
            expunge_floor=_number(fields[b"E"], 0, MAX_MODSEQ),
            generation=generation,
        )
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise JournalCorrupt(f"bad uid list header: {exc}") from None


def parse_record(line: bytes) -> Record | None:
    """One record line (newline optional), or None if it does not parse."""
    parts = line.rstrip(b"\n").split(b" ")
    try:
        kind = parts[0]
        if kind == b"R":
            if len(parts) != 3 or not 1 <= len(parts[2]) <= 16 or not all(
                    c in b"0123456789abcdef" for c in parts[2]):
                return None
            return Reserved(_number(parts[1], 1, MAX_MODSEQ), int(parts[2], 16))
        uid = _number(parts[1], 1, MAX_UID)
        modseq = _number(parts[2], 1, MAX_MODSEQ)
        if kind == b"A" and len(parts) == 7:
            base = unescape(parts[6].decode("ascii"))
            if not base:
                return None
            return Added(uid, modseq, _number(parts[3]), _number(parts[4], -_MAX_NUMBER),
                         unescape(parts[5].decode("ascii")), base)
        if kind == b"F" and len(parts) == 4:
            return FlagsSet(uid, modseq, unescape(parts[3].decode("ascii")))
        if kind == b"X" and len(parts) == 3:
            return Expunged(uid, modseq)
    except (IndexError, ValueError):
        return None
    return None


def format_record(record: Record) -> bytes:
    if isinstance(record, Added):
        text = (f"A {record.uid} {record.modseq} {record.size} {record.date}"
                f" {escape(record.suffix)} {escape(record.base)}\n")
    elif isinstance(record, FlagsSet):
        text = f"F {record.uid} {record.modseq} {escape(record.suffix)}\n"
    elif isinstance(record, Reserved):
        text = f"R {record.ceiling} {record.boot:x}\n"
    else:
        text = f"X {record.uid} {record.modseq}\n"
    return text.encode("ascii")


def _open_existing(path: str) -> int:
    # O_NOFOLLOW: a symlink planted in the Maildir must not make us append
    # to some other file.
    return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW)


class Journal:
    """One folder's journal file: read incrementally, appended under the folder lock.

    Not thread-safe by itself; the folder serialises its use.
    """

    __slots__ = ("__weakref__", "_closer", "_fd", "_ino", "_unsynced", "directory", "header",
                 "offset", "path")

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, FILE_NAME)
        self._fd: int | None = None
        # Closes the descriptor if the journal is dropped without close().
        self._closer: weakref.finalize[[int], Journal] | None = None
        self._ino = 0
        self._unsynced = False  # appended without fsync (F and X records only)
        self.header: Header | None = None
        self.offset = 0

    def open(self) -> Header | None:
        """(Re)open the file and read its header; None if there is no journal."""
        self.close()
        try:
            fd = _open_existing(self.path)
        except FileNotFoundError:
            return None
        first = os.pread(fd, 4096, 0)
        end = first.find(b"\n")
        try:
            if end < 0:
                raise JournalCorrupt("uid list header is incomplete")
            header = parse_header(first[:end])
        except JournalCorrupt:
            os.close(fd)
            raise
        self._fd, self._ino = fd, os.fstat(fd).st_ino
        self._closer = weakref.finalize(self, os.close, fd)
        self.header, self.offset = header, end + 1
        return header

    def seek(self, offset: int) -> bool:
        """Continue reading at ``offset`` (a saved index's); False if it is not a line start."""
        fd = self._require()
        if offset < self.offset or offset > os.fstat(fd).st_size:
            return False
        if os.pread(fd, 1, offset - 1) != b"\n":
            return False
        self.offset = offset
        return True

    def read(self) -> list[Record]:
        """The complete records appended since the last read (bad lines skipped)."""
        fd = self._require()
        records: list[Record] = []
        size = os.fstat(fd).st_size
        while self.offset < size:
            chunk = os.pread(fd, min(_READ_CHUNK, size - self.offset), self.offset)
            if not chunk:
                break
            end = chunk.rfind(b"\n")
            if end < 0:
                if len(chunk) < _READ_CHUNK:
                    break  # an unfinished (or torn) last line: not consumed
                end = len(chunk) - 1  # an absurdly long line: skip it whole
            for line in chunk[:end].split(b"\n"):
                record = parse_record(line)
                if record is not None:
                    records.append(record)
            self.offset += end + 1
        return records

    def replaced(self) -> bool:
        """True if the file on disk is no longer the one open (rewritten or removed)."""
        if self._fd is None:
            return True
        try:
            return os.stat(self.path, follow_symlinks=False).st_ino != self._ino
        except FileNotFoundError:
            return True

    def torn(self) -> bool:
        """True if bytes follow the last complete line (a crash tore an append)."""
        return os.fstat(self._require()).st_size > self.offset

    def append(self, records: Sequence[Record]) -> bool:
        """Append whole lines; fsync them if they assign uids or reserve
        mod-sequences. The caller holds the folder lock.

        Returns True if the lines were fsync'd (see the module doc for why
        flag and expunge records alone need not be).
        """
        if not records:
            return False
        data = b"".join(format_record(r) for r in records)
        fd = self._require()
        fsio.write_all(fd, data)
        fsio.crash_point("maildir.uidlist.append")
        if not any(type(r) is Added or type(r) is Reserved for r in records):
            self._unsynced = True
            return False
        fsio.fsync_file(fd)
        self._unsynced = False
        fsio.crash_point("maildir.uidlist.fsync")
        return True

    def sync(self) -> None:
        """Fsync the lines appended without it, if any (before an index names the offset)."""
        if self._unsynced and self._fd is not None:
            fsio.fsync_file(self._fd)
            self._unsynced = False

    def rewrite(self, header: Header, records: Iterable[Record]) -> Header:
        """Replace the file atomically with ``header`` (new generation) and ``records``.

        Returns the header written; afterwards the journal is open on the
        new file, positioned at its end.
        """
        fresh = Header(header.uidvalidity, header.uidnext, header.highest_modseq,
                       header.expunge_floor, new_generation())

        def chunks() -> Iterable[bytes]:
            yield format_header(fresh)
            batch: list[bytes] = []
            for record in records:
                batch.append(format_record(record))
                if len(batch) >= 4096:
                    yield b"".join(batch)
                    batch.clear()
            yield b"".join(batch)

        fsio.crash_point("maildir.uidlist.rewrite")
        fsio.write_file_atomic(self.directory, FILE_NAME, chunks())
        fsio.crash_point("maildir.uidlist.rewritten")
        self.open()
        fd = self._require()
        self.offset = os.fstat(fd).st_size
        return fresh

    def close(self) -> None:
        """Release the descriptor (lines not yet fsync'd stay in the page cache)."""
        self._unsynced = False
        if self._closer is not None:
            self._closer()
            self._closer = None
        self._fd = None
        self.header = None

    def _require(self) -> int:
        if self._fd is None:
            raise FileNotFoundError(2, "the uid list is not open", self.path)
        return self._fd
