"""The folder API the IMAP adapter and the POP3 maildrop use (docs/design/store.md).

Reads (``info``, ``columns``, ``status`` …) answer from the table in
memory; writes go through the folder lock and the journal (core.py).
``STORE`` renames files in ``cur/`` (the flags live in the names) and
records the new names with one new mod-sequence (RFC 7162 §3.1.1); a
rename that finds its file gone (another program renamed or deleted it)
lists the folder once and carries on with what it finds. ``EXPUNGE``
unlinks, syncs the directory, then records the expunges: in that order a
crash can leave an expunge unrecorded (the next sync records it), never a
recorded one whose file comes back.

Renames for flags are not followed by a directory fsync: if a crash undoes
one, the next sync sees the old letters and records them with a new
mod-sequence, so every client learns of it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from array import array
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO, Final

from mailyard import fsio
from mailyard.maildir.core import FolderCore
from mailyard.maildir.errors import MessageGone, NoSuchFolder
from mailyard.maildir.flags import DELETED, SEEN, SYSTEM_MASK, KeywordTable, info_from_bits
from mailyard.maildir.folders import INBOX
from mailyard.maildir.journal import Added, Expunged, FlagsSet, Record
from mailyard.maildir.names import split_info, with_info
from mailyard.maildir.table import IN_CUR, IN_NEW, split_name
from mailyard.maildir.transfer import AppendWriter, CopyResult, Source, copy_messages
from mailyard.maildir.values import Columns, FolderStatus, MessageInfo, StoreMode, StoreResult
from mailyard.maildir.view import View

__all__ = ["Columns", "Folder", "FolderStatus", "MessageInfo", "StoreMode", "StoreResult"]

_KEEP_RECENT: Final = 4


_shared: weakref.WeakValueDictionary[str, Folder] = weakref.WeakValueDictionary()
_recent: deque[Folder] = deque(maxlen=_KEEP_RECENT)
_shared_lock = threading.Lock()


class Folder(FolderCore):
    """One Maildir++ folder: see the module doc and docs/design/store.md."""

    @classmethod
    def shared(cls, path: str, *, root: str | None = None, name: str = INBOX,
               hostname: str | None = None) -> Folder:
        """The process's one object for the folder at ``path`` (opened if needed)."""
        key = os.path.abspath(path)
        with _shared_lock:
            folder = _shared.get(key)
            if folder is None or folder._closed:
                folder = cls.open(key, root=root, name=name, hostname=hostname)
                _shared[key] = folder
            if folder not in _recent:
                _recent.append(folder)
            return folder

    @staticmethod
    def forget(path: str) -> None:
        """The folder at ``path`` was deleted or renamed: its object answers NoSuchFolder."""
        key = os.path.abspath(path)
        with _shared_lock:
            folder = _shared.pop(key, None)
            if folder is not None and folder in _recent:
                _recent.remove(folder)
        if folder is not None:
            with folder._mutex:
                folder._journal.close()
                folder._drop_cache()
                folder._closed = True

    # -- reading ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise NoSuchFolder("the mailbox was deleted or renamed")

    @property
    def uidvalidity(self) -> int:
        return self._table.uidvalidity

    @property
    def uidnext(self) -> int:
        return self._table.uidnext

    @property
    def highest_modseq(self) -> int:
        return self._table.highest

    @property
    def uids(self) -> array[int]:
        """The uids now, ascending. Never changed in place: keep it, do not copy it."""
        return self._table.uids

    @property
    def keywords(self) -> KeywordTable:
        return self._keywords

    def __len__(self) -> int:
        return len(self._table)

    def flag_names(self, bits: int) -> tuple[str, ...]:
        return self._keywords.flag_names(bits)

    def permanent_flags(self) -> tuple[str, ...]:
        """RFC 3501 §7.1 PERMANENTFLAGS: ``\\*`` while keyword letters are left."""
        defined = self._keywords.defined()
        return defined if self._keywords.full else (*defined, "\\*")

    def info(self, uid: int) -> MessageInfo | None:
        with self._mutex:
            table = self._table
            pos = table.position(uid)
            if pos < 0:
                return None
            return MessageInfo(uid, table.flags[pos], table.sizes[pos], table.dates[pos],
                               table.modseqs[pos])

    def columns(self, uids: Sequence[int] | None = None) -> Columns:
        """Metadata of ``uids`` (all when None) that still exist, in uid order."""
        with self._mutex:
            table = self._table
            if uids is None or uids is table.uids:
                return Columns(table.uids, array("I", table.flags), array("Q", table.sizes),
                               array("q", table.dates), array("Q", table.modseqs))
            found = [pos for pos in map(table.position, sorted(set(uids))) if pos >= 0]
            return Columns(array("I", (table.uids[p] for p in found)),
                           array("I", (table.flags[p] for p in found)),
                           array("Q", (table.sizes[p] for p in found)),
                           array("q", (table.dates[p] for p in found)),
                           array("Q", (table.modseqs[p] for p in found)))

    def changed_since(self, modseq: int) -> array[int]:
        """Uids whose mod-sequence is above ``modseq`` (RFC 7162 CHANGEDSINCE)."""
        with self._mutex:
            table = self._table
            return array("I", (uid for uid, seq in zip(table.uids, table.modseqs, strict=True)
                               if seq > modseq))

    def changes_since(self, modseq: int) -> list[tuple[int, int]]:
        """(uid, mod-sequence) of every message changed (or added) after ``modseq``."""
        with self._mutex:
            table = self._table
            if modseq >= table.highest:
                return []
            return [(uid, seq) for uid, seq in zip(table.uids, table.modseqs, strict=True)
                    if seq > modseq]

    def unclaimed(self) -> array[int]:
        """Uids whose files are still in ``new/`` (no session has claimed them)."""
        with self._mutex:
            table = self._table
            if IN_NEW not in table.where:
                return array("I")
            return array("I", (uid for uid, where in zip(table.uids, table.where, strict=True)
                               if where == IN_NEW))

    @property
    def mutex(self) -> threading.RLock:
        """Hold it to read several values consistently (the folder's methods take it too)."""
        return self._mutex

    def vanished_since(self, modseq: int) -> list[tuple[int, int]]:
        """Uid ranges expunged since ``modseq`` (RFC 7162 §3.2.5.1 VANISHED (EARLIER)).

        Below the remembered expunges this is every uid that is not a message
        now: more than asked, which the RFC allows, never less.
        """
        with self._mutex:
            table = self._table
            found = table.expunged_since(modseq)
            if found is None:
                return table.missing_ranges()
            return _ranges(found)

    def status(self) -> FolderStatus:
        """Sync (without claiming new/), then count."""
        self.sync(claim=False)
        with self._mutex:
            table = self._table
            unseen = [i for i, bits in enumerate(table.flags) if not bits & SEEN]
            return FolderStatus(
                messages=len(table), recent=table.where.count(IN_NEW), uidnext=table.uidnext,
                uidvalidity=table.uidvalidity, unseen=len(unseen), size=sum(table.sizes),
                highest_modseq=table.highest,
                first_unseen=table.uids[unseen[0]] if unseen else None,
            )

    def open_message(self, uid: int) -> BinaryIO:
        """The message file of ``uid`` for reading; MessageGone if it was expunged."""
        with self._mutex:
            self._check_open()
            pos = self._table.position(uid)
            if pos < 0:
                self._refresh()
                pos = self._table.position(uid)
            if pos < 0:
                raise MessageGone(f"message {uid} has been expunged")
            for where, name in self._candidates(pos):
                try:
                    return open(os.path.join(self._dir(where), name), "rb", opener=_nofollow)
                except FileNotFoundError:
                    continue
            found = self._relocate(pos)
            if found is None:
                raise MessageGone(f"message {uid} has been expunged")
            return open(os.path.join(self._dir(found[1]), found[0]), "rb", opener=_nofollow)

    def _candidates(self, pos: int) -> list[tuple[int, str]]:
        """Where row ``pos``'s file should be: the table's guess, then the claim's name."""
        table = self._table
        name = table.names[pos]
        places = [(table.where[pos], name)]
        if table.where[pos] == IN_NEW:
            # Claimed by another session meanwhile: the claim's usual name.
            places.append((IN_CUR, name if ":" in name else with_info(name, "")))
        return places

    def _relocate(self, pos: int) -> tuple[str, int] | None:
        """Find the file of row ``pos`` by listing the folder; None if it is gone."""
        base = split_name(self._table.names[pos])[0]
        entry = self._everything().get(base)
        if entry is not None:
            self._table.set_name(pos, *entry)
        return entry

    # -- cache -----------------------------------------------------------------------------

    def cached(self, uid: int, kind: int) -> bytes | None:
        """A blob the caller stored for ``uid`` under ``kind`` (0-255), if any."""
        with self._mutex:
            return self._blob_cache().get(uid, kind)

    def cached_many(self, uids: Iterable[int], kind: int) -> dict[int, bytes]:
        """``cached`` for many uids at once (neighbouring blobs share reads)."""
        with self._mutex:
            return self._blob_cache().get_many(uids, kind)

    def cache(self, uid: int, kind: int, blob: bytes) -> None:
        with self._mutex:
            if self._table.position(uid) >= 0:
                self._blob_cache().put(uid, kind, blob)

    # -- STORE -----------------------------------------------------------------------------

    def store(self, uids: Iterable[int], mode: StoreMode, flag_names: Iterable[str], *,
              unchanged_since: int | None = None) -> StoreResult:
        """RFC 3501 §6.4.6 STORE, with RFC 7162 §3.1.3 UNCHANGEDSINCE."""
        names = list(flag_names)
        wanted = sorted(set(uids))
        with self._mutex, self._lock:
            self._check_open()
            self._refresh()
            self._refresh_keywords()
            if mode is not StoreMode.REMOVE:
                self._set_keywords(self._keywords.with_keywords(
                    n for n in names if not n.startswith("\\")))
            bits = self._keywords.bits(names)
            named = SYSTEM_MASK | self._keywords.bits(self._keywords.defined())
            table = self._table
            modseq = table.highest + 1
            modified: list[int] = []
            plans: list[tuple[int, int]] = []
            for uid in wanted:
                pos = table.position(uid)
                if pos < 0:
                    continue
                if unchanged_since is not None and table.modseqs[pos] > unchanged_since:
                    modified.append(uid)
                    continue
                plans.append((pos, _apply_mode(mode, table.flags[pos], bits, named)))
            with self.own_change():
                records = self._rename_all(plans, (mode, bits, named), modseq, retry=True)
                self._commit(records)
            changed = tuple(r.uid for r in records)
            return StoreResult(modseq if changed else 0, changed, tuple(modified))

    def _rename_all(self, plans: list[tuple[int, int]], change: tuple[StoreMode, int, int],
                    modseq: int, *, retry: bool) -> list[FlagsSet]:
        table = self._table
        cur_dir = self._dir(IN_CUR)
        records: list[FlagsSet] = []
        lost: list[int] = []
        for pos, new_bits in plans:
            if new_bits == table.flags[pos]:
                continue
            target = self._flag_name(pos, new_bits)
            try:
                fsio.rename_into(os.path.join(self._dir(table.where[pos]), table.names[pos]),
                                 os.path.join(cur_dir, target))
            except FileNotFoundError:
                lost.append(pos)
                continue
            records.append(FlagsSet(table.uids[pos], modseq, split_name(target)[1]))
        if lost and retry:
            # Renamed or deleted by another program: list once, retry on what is there.
            listing = self._everything()
            mode, bits, named = change
            again: list[tuple[int, int]] = []
            for pos in lost:
                entry = listing.get(split_name(table.names[pos])[0])
                if entry is not None:  # else gone: the next sync records the expunge
                    table.set_name(pos, *entry)
                    again.append((pos, _apply_mode(mode, table.flags[pos], bits, named)))
            records.extend(self._rename_all(again, change, modseq, retry=False))
        return records

    def _flag_name(self, pos: int, bits: int) -> str:
        base, info = split_info(self._table.names[pos])
        return with_info(base, info_from_bits(bits, keep=info))

    # -- EXPUNGE ---------------------------------------------------------------------------

    def expunge(self, uids: Iterable[int] | None = None) -> tuple[int, ...]:
        """RFC 3501 §6.4.3 EXPUNGE, or RFC 4315 UID EXPUNGE with ``uids``: the uids removed."""
        return self.remove(uids, only_deleted=True)

    def remove(self, uids: Iterable[int] | None, *, only_deleted: bool) -> tuple[int, ...]:
        """Unlink messages (``\\Deleted`` ones only, or all of ``uids`` for MOVE)."""
        with self._mutex:
            gone, freed = self._remove(uids, only_deleted)
        if gone and self.counted:
            # After the folder lock: the quota may take the root lock (lock.py's order).
            self.quota.record(-freed, -len(gone))
        return gone

    def _remove(self, uids: Iterable[int] | None,
                only_deleted: bool) -> tuple[tuple[int, ...], int]:
        with self._lock, self.own_change():
            self._check_open()
            self._refresh()
            table = self._table
            chosen = (range(len(table)) if uids is None
                      else [p for p in map(table.position, sorted(set(uids))) if p >= 0])
            targets = [p for p in chosen if not only_deleted or table.flags[p] & DELETED]
            removed: list[int] = []
            freed = 0
            touched: set[int] = set()
            for pos in targets:
                where = self._unlink(pos, only_deleted)
                if where is None:
                    continue
                removed.append(pos)
                freed += table.sizes[pos]
                if where >= 0:
                    touched.add(where)
            for where in touched:
                fsio.fsync_dir(self._dir(where))
            if removed:
                fsio.crash_point("maildir.expunge.unlinked")
            modseq = table.highest + 1
            gone = tuple(table.uids[pos] for pos in removed)
            self._commit([Expunged(uid, modseq) for uid in gone])
            return gone, freed

    def _unlink(self, pos: int, only_deleted: bool) -> int | None:
        """Unlink row ``pos``'s file: the directory it was in, -1 if already gone, None if kept."""
        for where, name in self._candidates(pos):
            try:
                os.unlink(os.path.join(self._dir(where), name))
            except FileNotFoundError:
                continue
            return where
        entry = self._relocate(pos)
        if entry is None:
            return -1
        if only_deleted and not self._table.flags[pos] & DELETED:
            return None  # another program took \Deleted away meanwhile
        try:
            os.unlink(os.path.join(self._dir(entry[1]), entry[0]))
        except FileNotFoundError:
            return -1
        return entry[1]

    # -- building blocks for transfer.py ----------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the mutex and the folder lock, with the journal and keywords replayed."""
        with self._mutex, self._lock:
            self._check_open()
            self._refresh()
            self._refresh_keywords()
            with self.own_change():
                yield

    def directory(self, where: int) -> str:
        """``new/`` (IN_NEW) or ``cur/`` (IN_CUR) of this folder."""
        return self._dir(where)

    def keyword_bits(self, flag_names: Iterable[str]) -> int:
        """The bits of ``flag_names``, giving new keywords letters. Inside ``transaction``."""
        names = list(flag_names)
        self._set_keywords(self._keywords.with_keywords(
            n for n in names if not n.startswith("\\")))
        return self._keywords.bits(names)

    def sources(self, uids: Iterable[int]) -> list[Source]:
        """The files of the ``uids`` that exist, for copying out of this folder."""
        with self._mutex:
            self._check_open()
            table = self._table
            found: list[Source] = []
            for pos in map(table.position, sorted(set(uids))):
                if pos >= 0:
                    path = os.path.join(self._dir(table.where[pos]), table.names[pos])
                    found.append(Source(table.uids[pos], path, table.sizes[pos], table.dates[pos],
                                        self._keywords.flag_names(table.flags[pos])))
            return found

    def adopt(self, placed: Sequence[tuple[str, int, int, int]]) -> list[int]:
        """Give uids to files this process just put here: ``(name, where, size, date)``.

        Inside ``transaction``, and the files must have been placed inside it
        too, so that no other process gives them a uid first.
        """
        table = self._table
        modseq = table.highest + 1
        first = table.uidnext
        records: list[Record] = []
        for offset, (name, _, size, date) in enumerate(placed):
            base, suffix = split_name(name)
            records.append(Added(first + offset, modseq, size, date, suffix, base))
        self._commit(records)
        table = self._table
        uids = [first + offset for offset in range(len(placed))]
        for uid, (name, where, _, _) in zip(uids, placed, strict=True):
            pos = table.position(uid)
            if pos >= 0:
                table.set_name(pos, name, where)
        return uids

    # -- APPEND, COPY, MOVE and views (transfer.py, view.py) -------------------------------

    def append(self, flag_names: Iterable[str] = (), internal_date: float | None = None, *,
               size: int | None = None) -> AppendWriter:
        """RFC 3501 §6.3.11 APPEND: a writer to stream the message into; see transfer.py."""
        return AppendWriter(self, flag_names, internal_date, size=size)

    def copy(self, uids: Iterable[int], target: Folder) -> CopyResult:
        """RFC 3501 §6.4.7 COPY (RFC 4315 COPYUID pairs in the result)."""
        return copy_messages(self, uids, target, move=False)

    def move(self, uids: Iterable[int], target: Folder) -> CopyResult:
        """RFC 6851 MOVE: copy, then expunge the originals."""
        return copy_messages(self, uids, target, move=True)

    def view(self, *, readonly: bool = False) -> View:
        """A session's view of this folder (SELECT, or EXAMINE with ``readonly``)."""
        return View(self, readonly=readonly)


def _apply_mode(mode: StoreMode, old: int, bits: int, named: int) -> int:
    if mode is StoreMode.ADD:
        return old | bits
    if mode is StoreMode.REMOVE:
        return old & ~bits
    # Letters without a keyword name cannot be named by a client: kept.
    return bits | (old & ~named)


def _ranges(uids: Iterable[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for uid in sorted(uids):
        if ranges and ranges[-1][1] + 1 == uid:
            ranges[-1] = (ranges[-1][0], uid)
        else:
            ranges.append((uid, uid))
    return ranges


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)
