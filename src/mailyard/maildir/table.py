"""A folder's messages in memory: parallel arrays sorted by uid, no object per message.

For 100,000 messages this is about 3 MB of arrays plus the file names,
shared by every session of the process that has the folder open. The
``uids`` array is never changed in place: a change publishes a new array,
so a session view can keep a reference to it instead of a copy (a session
costs a pointer, not 400 KB). The other arrays change in place under the
folder's mutex.

``apply`` replays journal records (journal.py) onto the table; the same
code serves a cold load, the tail another process appended, and the
records a writer has just appended itself, so every process derives the
same state from the same file.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from mailyard.maildir.flags import bits_from_info
from mailyard.maildir.journal import (
    MODSEQ_BLOCK,
    Added,
    Expunged,
    FlagsSet,
    Header,
    Record,
    Reserved,
    boot_id,
)
from mailyard.maildir.names import split_info

__all__ = ["IN_CUR", "IN_NEW", "XLOG_KEEP", "Applied", "MessageTable", "split_name"]

IN_CUR: Final = 0
IN_NEW: Final = 1
# Expunges remembered for QRESYNC (RFC 7162 §3.2.5.1). Older ones are
# forgotten at a rewrite and the floor rises; a client asking from below
# the floor gets every missing uid instead (allowed: VANISHED may list
# uids that no longer exist).
XLOG_KEEP: Final = 50_000


def split_name(name: str) -> tuple[str, str]:
    """``(base, suffix)``: the name cut at its first ``:``."""
    cut = name.find(":")
    return (name, "") if cut < 0 else (name[:cut], name[cut:])


@dataclass(frozen=True, slots=True)
class Applied:
    """What a batch of records changed, for callers that keep derived state."""

    added: tuple[int, ...]
    changed: tuple[int, ...]
    expunged: tuple[int, ...]


class MessageTable:
    """The folder state the journal describes, plus where each file is now."""

    __slots__ = ("boot", "ceiling", "dates", "flags", "floor", "highest", "last_added",
                 "modseqs", "names", "sizes", "uidnext", "uids", "uidvalidity", "where", "xmods",
                 "xuids")

    def __init__(self, header: Header) -> None:
        self.uidvalidity = header.uidvalidity
        self.uidnext = header.uidnext
        self.highest = header.highest_modseq
        self.floor = header.expunge_floor
        # The mod-sequences reserved by the last R record, and its boot.
        self.ceiling = 0
        self.boot = 0
        # The largest uid an A record gave so far: A records must ascend. A
        # table built from a header starts at 0 (a rewritten file lists its
        # messages, all below N); one loaded from an index, at N - 1.
        self.last_added = 0
        self.uids = array("I")
        self.modseqs = array("Q")
        self.flags = array("I")
        self.sizes = array("Q")
        self.dates = array("q")
        self.names: list[str] = []
        self.where = bytearray()
        self.xuids = array("I")
        self.xmods = array("Q")

    def __len__(self) -> int:
        return len(self.uids)

    def position(self, uid: int) -> int:
        """Index of ``uid`` in the arrays, or -1."""
        pos = bisect_left(self.uids, uid)
        return pos if pos < len(self.uids) and self.uids[pos] == uid else -1

    def set_name(self, pos: int, name: str, where: int) -> None:
        self.names[pos] = name
        self.where[pos] = where
        self.flags[pos] = bits_from_info(split_info(name)[1])

    def apply(self, records: Iterable[Record]) -> Applied:
        added: list[int] = []
        changed: list[int] = []
        gone: dict[int, int] = {}
        new_uids = array("I")
        for record in records:
            if isinstance(record, Reserved):
                self.reserve(record.ceiling, record.boot)
                continue
            self.highest = max(self.highest, record.modseq)
            if isinstance(record, Added):
                # RFC 3501 §2.3.1.1: uids strictly ascend; an out-of-order
                # record is not believed.
                if record.uid <= self.last_added:
                    continue
                self.last_added = record.uid
                self.uidnext = max(self.uidnext, record.uid + 1)
                new_uids.append(record.uid)
                self._append_row(record)
                added.append(record.uid)
            elif isinstance(record, FlagsSet):
                pos = self._find(record.uid, new_uids)
                if pos >= 0 and record.uid not in gone:
                    base = split_name(self.names[pos])[0]
                    self.set_name(pos, base + record.suffix, IN_CUR)
                    self.modseqs[pos] = record.modseq
                    changed.append(record.uid)
            elif self._find(record.uid, new_uids) >= 0:
                gone.setdefault(record.uid, record.modseq)
            elif record.uid < self.uidnext:
                # A rewritten journal keeps recent expunges of uids it no
                # longer lists: they go straight to the expunge log.
                self.xuids.append(record.uid)
                self.xmods.append(record.modseq)
        if new_uids:
            self.uids = self.uids + new_uids
        if gone:
            self._remove(gone)
        return Applied(tuple(added), tuple(changed), tuple(gone))

    def reserve(self, ceiling: int, boot: int) -> None:
        """Take in a reservation (an R record, or a saved index's).

        One written in another boot may have been followed by lines a power
        loss took: whatever they held, a client saw no mod-sequence above
        the ceiling, so HIGHESTMODSEQ goes there (RFC 7162 §3.1.2.1).
        """
        self.ceiling = max(self.ceiling, ceiling)
        self.boot = boot
        if boot != boot_id():
            self.highest = max(self.highest, ceiling)

    def reservation(self, top: int) -> Reserved | None:
        """The R record a batch using mod-sequences up to ``top`` must carry,
        if any: the first in this boot, or one past the ceiling."""
        current = boot_id()
        if top <= self.ceiling and self.boot == current:
            return None
        return Reserved(max(top, self.highest) + MODSEQ_BLOCK, current)

    def _find(self, uid: int, pending: array[int]) -> int:
        pos = self.position(uid)
        if pos >= 0 or not pending or uid < pending[0]:
            return pos
        # Rows added earlier in this batch are not in self.uids yet.
        offset = bisect_left(pending, uid)
        if offset < len(pending) and pending[offset] == uid:
            return len(self.uids) + offset
        return -1

    def _append_row(self, record: Added) -> None:
        name = record.base + record.suffix
        self.modseqs.append(record.modseq)
        self.sizes.append(record.size)
        self.dates.append(record.date)
        self.names.append(name)
        self.where.append(IN_CUR if record.suffix else IN_NEW)
        self.flags.append(bits_from_info(split_info(name)[1]))

    def _remove(self, gone: dict[int, int]) -> None:
        keep = [i for i, uid in enumerate(self.uids) if uid not in gone]
        self.uids = array("I", (self.uids[i] for i in keep))
        self.modseqs = array("Q", (self.modseqs[i] for i in keep))
        self.flags = array("I", (self.flags[i] for i in keep))
        self.sizes = array("Q", (self.sizes[i] for i in keep))
        self.dates = array("q", (self.dates[i] for i in keep))
        self.names = [self.names[i] for i in keep]
        self.where = bytearray(self.where[i] for i in keep)
        for uid in sorted(gone, key=gone.__getitem__):
            self.xuids.append(uid)
            self.xmods.append(gone[uid])

    def header(self, generation: str) -> Header:
        return Header(self.uidvalidity, self.uidnext, self.highest, self.floor, generation)

    def compacted(self) -> Iterator[Record]:
        """Records that rebuild this table: the reservation, one ``A`` per
        message, the recent expunges.

        Forgets expunges beyond ``XLOG_KEEP`` and raises the floor to match.
        """
        drop = max(len(self.xuids) - XLOG_KEEP, 0)
        if drop:
            self.floor = max(self.floor, max(self.xmods[:drop]))
            self.xuids = self.xuids[drop:]
            self.xmods = self.xmods[drop:]
        if self.ceiling:
            yield Reserved(self.ceiling, self.boot)
        for i, uid in enumerate(self.uids):
            base, suffix = split_name(self.names[i])
            yield Added(uid, self.modseqs[i], self.sizes[i], self.dates[i], suffix, base)
        for uid, modseq in zip(self.xuids, self.xmods, strict=True):
            yield Expunged(uid, modseq)

    def expunged_since(self, modseq: int) -> list[int] | None:
        """Uids expunged with a mod-sequence above ``modseq``; None below the floor."""
        if modseq < self.floor:
            return None
        start = bisect_left(self.xmods, modseq + 1)
        return sorted(set(self.xuids[start:]))

    def missing_ranges(self) -> list[tuple[int, int]]:
        """Every uid below UIDNEXT that is not a message now, as inclusive ranges."""
        ranges: list[tuple[int, int]] = []
        expected = 1
        for uid in self.uids:
            if uid > expected:
                ranges.append((expected, uid - 1))
            expected = uid + 1
        if expected < self.uidnext:
            ranges.append((expected, self.uidnext - 1))
        return ranges
