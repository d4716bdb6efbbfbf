"""A folder's state and how it is kept current: load, replay, scan, reconcile, commit.

``FolderCore`` is the part of ``Folder`` (folder.py) that knows where
things are; ``Folder`` adds the operations (STORE, EXPUNGE, APPEND, COPY,
MOVE). One object per folder per process, shared by every session
(``Folder.shared``); its methods are thread-safe (one mutex), and every
change to the folder's files happens under the folder lock (lock.py), so
any number of processes can work on one folder.

Opening: the journal's header (journal.py; created with a new UIDVALIDITY
if it is missing or unreadable), then the saved index (index.py) if it
describes this journal, else a replay of the whole journal; then the
journal records appended since. ``sync`` then replays new records, and
lists ``new/`` and ``cur/`` only if their stamps moved (scan.py).

Reconciling a listing with the table: files nobody has given a uid get one
(in delivery order), files whose flag letters differ from the table
(renamed by other software) get an ``F`` record, and uids whose file is
gone get an ``X`` record; each batch gets one new mod-sequence (RFC 7162
§3.1.1: every change bumps it). That is decided twice: once without the
lock (usually nothing changed, and the lock is not taken), and again
under it after a replay, since another process may have recorded the same
changes meanwhile. Before a uid is declared expunged the directories are
listed again under the lock: a ``readdir`` that runs while another program
renames a file can miss the file altogether.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, Self

from mailyard import fsio
from mailyard.maildir.cache import BlobCache
from mailyard.maildir.deliver import ensure_maildir
from mailyard.maildir.errors import NoSuchFolder
from mailyard.maildir.flags import KeywordTable, bits_from_info, parse_keywords
from mailyard.maildir.folders import INBOX, is_trash
from mailyard.maildir.index import load_index, save_index
from mailyard.maildir.journal import (
    Added,
    Expunged,
    FlagsSet,
    Header,
    Journal,
    JournalCorrupt,
    Record,
    Reserved,
)
from mailyard.maildir.lock import FileLock
from mailyard.maildir.names import split_info, with_info
from mailyard.maildir.quota import Quota
from mailyard.maildir.scan import Stamps, file_facts, list_messages
from mailyard.maildir.table import IN_CUR, IN_NEW, MessageTable, split_name
from mailyard.maildir.uidvalidity import next_uidvalidity

__all__ = ["KEYWORDS_FILE", "FolderCore"]

KEYWORDS_FILE: Final = "mailyard-keywords"
# Dovecot's keyword letters mean the same; read once if ours is absent.
_DOVECOT_KEYWORDS: Final = "dovecot-keywords"
_SAVE_INTERVAL: Final = 5.0
_SAVE_BACKLOG: Final = 1 << 20
# Rewrite the journal once it is three times what its messages need (about
# 80 octets a line) and past a megabyte: dead F and X records go.
_COMPACT_MIN: Final = 1 << 20
_COMPACT_FACTOR: Final = 3 * 80

@dataclass(slots=True)
class _Listing:
    """File names of new/ and cur/; None for a directory that was not listed."""

    new: list[str] | None
    cur: list[str] | None


@dataclass(slots=True)
class _Diff:
    fresh: list[tuple[str, str, int]] = field(default_factory=list)
    moved: list[tuple[int, str, int]] = field(default_factory=list)
    flagged: list[tuple[int, str, int]] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)


class FolderCore:
    """State, replay, scan and commit of one folder. See the module doc."""

    def __init__(self, path: str, *, root: str, name: str, hostname: str) -> None:
        self.path = path
        self.root = root
        self.name = name
        self.hostname = hostname
        self.quota = Quota(root)
        # Courier's quota does not count Trash (quota.py).
        self.counted = not is_trash(name)
        self._mutex = threading.RLock()
        self._lock = FileLock(path)
        self._journal = Journal(path)
        self._table = MessageTable(Header(1, 1, 1, 0, ""))
        self._stamps = Stamps()
        self._keywords = KeywordTable()
        self._keywords_key: tuple[int, int, int] | None = None
        self._dirty = False
        self._saved_offset = -1
        self._last_save = 0.0
        self._cache: BlobCache | None = None
        self._closed = False

    @classmethod
    def open(cls, path: str, *, root: str | None = None, name: str = INBOX,
             hostname: str | None = None) -> Self:
        """Open the folder at ``path`` (creating tmp/ new/ cur/ if missing); no sync yet."""
        ensure_maildir(path)
        folder = cls(path, root=root or path, name=name,
                     hostname=hostname or os.uname().nodename)
        with folder._mutex:
            folder._load()
        return folder

    # -- loading and replay ------------------------------------------------------------

    def _open_journal(self) -> Header:
        if not os.path.isdir(os.path.join(self.path, "cur")):
            raise NoSuchFolder("the mailbox was deleted or renamed")
        try:
            header = self._journal.open()
        except JournalCorrupt:
            header = None
        if header is not None:
            return header
        uidvalidity = next_uidvalidity(self.root)
        with self._lock:
            try:
                header = self._journal.open()
            except JournalCorrupt:
                header = None
            if header is None:
                # RFC 3501 §2.3.1.1: the uid list is lost, so are its uids.
                header = self._journal.rewrite(Header(uidvalidity, 1, 1, 0, ""), [])
        return header

    def _load(self) -> None:
        header = self._open_journal()
        saved = load_index(self.path)
        if (saved is not None and saved.generation == header.generation
                and saved.table.uidvalidity == header.uidvalidity
                and self._journal.seek(saved.offset)):
            self._table = saved.table
            self._stamps = Stamps(saved.new_stamp, saved.cur_stamp)
            self._saved_offset = saved.offset
        else:
            self._table = MessageTable(header)
            self._stamps = Stamps()
            self._saved_offset = -1
            self._dirty = True
        self._apply(self._journal.read())

    def _reload(self) -> None:
        """The journal was rewritten (or lost): rebuild the table from it."""
        old = self._table
        header = self._open_journal()
        table = MessageTable(header)
        table.apply(self._journal.read())
        if header.uidvalidity == old.uidvalidity:
            for pos, uid in enumerate(table.uids):
                was = old.position(uid)
                if was >= 0 and split_name(old.names[was])[0] == split_name(table.names[pos])[0]:
                    same_flags = old.flags[was] == table.flags[pos]
                    if same_flags:
                        table.names[pos], table.where[pos] = old.names[was], old.where[was]
        else:
            self._stamps = Stamps()
            self._drop_cache()
        self._table = table
        self._dirty = True

    def _refresh(self) -> None:
        """Take in what other processes appended to the journal."""
        if self._journal.replaced():
            self._reload()
            return
        records = self._journal.read()
        if records:
            self._apply(records)

    def _apply(self, records: list[Record]) -> None:
        if not records:
            return
        applied = self._table.apply(records)
        self._dirty = True
        if applied.expunged and self._cache is not None:
            self._cache.forget(frozenset(applied.expunged), len(self._table))

    def _refresh_keywords(self) -> None:
        path = os.path.join(self.path, KEYWORDS_FILE)
        try:
            info = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            if self._keywords_key is None:
                self._keywords_key = (0, 0, 0)
                self._keywords = _read_keywords(os.path.join(self.path, _DOVECOT_KEYWORDS))
            return
        key = (info.st_ino, info.st_size, info.st_mtime_ns)
        if key != self._keywords_key:
            self._keywords_key = key
            self._keywords = _read_keywords(path)

    def _set_keywords(self, table: KeywordTable) -> None:
        """Write a new keywords file. The caller holds the folder lock."""
        if table == self._keywords:
            return
        fsio.write_file_atomic(self.path, KEYWORDS_FILE, [table.encode()])
        self._keywords_key = None
        self._refresh_keywords()

    # -- scanning ------------------------------------------------------------------------

    def sync(self, *, claim: bool = False) -> tuple[int, ...]:
        """Bring the folder up to date; with ``claim``, move new/ to cur/.

        Returns the uids this call moved out of ``new/``: RFC 3501 §2.3.2,
        they are \\Recent in the calling session and in no other.
        """
        with self._mutex:
            self._check_open()
            self._refresh()
            self._refresh_keywords()
            claimed = self._rescan(claim)
            self._maybe_save()
            return claimed

    def _dir(self, where: int) -> str:
        return os.path.join(self.path, "new" if where == IN_NEW else "cur")

    def _rescan(self, claim: bool) -> tuple[int, ...]:
        try:
            now, stamps = Stamps.read(self.path)
        except FileNotFoundError:
            raise NoSuchFolder("the mailbox was deleted or renamed") from None
        scan_new = self._stamps.stale("new", stamps["new"], now) or (
            claim and IN_NEW in self._table.where)
        scan_cur = self._stamps.stale("cur", stamps["cur"], now)
        if not scan_new and not scan_cur:
            return ()
        listing = self._list(scan_new, scan_cur)
        diff = self._diff(listing)
        if diff.fresh or diff.flagged or diff.missing or (claim and listing.new):
            claimed = self._reconcile(listing, claim)
        else:
            self._adopt_names(diff)
            claimed = ()
        for sub, scanned in (("new", listing.new is not None), ("cur", listing.cur is not None)):
            if scanned:
                self._stamps.listed(sub, stamps[sub], now)
        self._dirty = True
        return claimed

    @contextlib.contextmanager
    def own_change(self) -> Iterator[None]:
        """Around this process's own change to the files, under the folder lock: it
        keeps the table in step, so no listing is needed for it (Stamps.record_own)."""
        before = None
        with contextlib.suppress(FileNotFoundError):  # gone: the operation will say so
            before = Stamps.read(self.path)
        yield
        # Only after success: a failed operation may have left the table behind.
        with contextlib.suppress(FileNotFoundError):
            if before is not None:
                self._stamps.record_own(before, Stamps.read(self.path)[1])

    def _list(self, scan_new: bool, scan_cur: bool) -> _Listing:
        try:
            new = list_messages(self._dir(IN_NEW)) if scan_new else None
            if new is not None and not scan_cur and IN_NEW in self._table.where:
                # A message the table has in new/ and new/ has not: it moved
                # to cur/ (or went), so cur/ must be listed too.
                table = self._table
                present = set(new)
                scan_cur = any(where == IN_NEW and name not in present
                               for name, where in zip(table.names, table.where, strict=True))
            cur = list_messages(self._dir(IN_CUR)) if scan_cur else None
        except FileNotFoundError:
            raise NoSuchFolder("the mailbox was deleted or renamed") from None
        return _Listing(new, cur)

    def _diff(self, listing: _Listing) -> _Diff:
        """Compare a listing with the table: exact names first, base names for the rest."""
        table = self._table
        by_name = dict(zip(table.names, range(len(table)), strict=True))
        diff = _Diff()
        matched: set[int] = set()
        leftovers: dict[str, tuple[str, int]] = {}
        for where, names in ((IN_NEW, listing.new), (IN_CUR, listing.cur)):
            for name in names or ():
                pos = by_name.get(name, -1)
                if pos >= 0 and table.where[pos] == where:
                    matched.add(pos)
                    continue
                base = name.partition(":")[0]
                prev = leftovers.get(base)
                # One base, two files: cur/ (0) wins, then the smaller name.
                if prev is None or (where, name) < (prev[1], prev[0]):
                    leftovers[base] = (name, where)
        if leftovers:
            known = {table.names[pos].partition(":")[0]: pos for pos in range(len(table))
                     if pos not in matched}
            taken = {table.names[pos].partition(":")[0] for pos in matched}
            for base, (name, where) in leftovers.items():
                pos = known.pop(base, -1)
                if pos >= 0:
                    if bits_from_info(split_info(name)[1]) != table.flags[pos]:
                        diff.flagged.append((pos, name, where))
                    else:
                        diff.moved.append((pos, name, where))
                    matched.add(pos)
                elif base not in taken:
                    diff.fresh.append((base, name, where))
        scope = {IN_NEW} if listing.new is not None else set()
        if listing.cur is not None:
            scope.add(IN_CUR)
        if len(matched) < len(table):
            diff.missing = [pos for pos in range(len(table))
                            if pos not in matched and table.where[pos] in scope]
        return diff

    def _adopt_names(self, diff: _Diff) -> None:
        for pos, name, where in diff.moved:
            self._table.set_name(pos, name, where)

    def _reconcile(self, listing: _Listing, claim: bool) -> tuple[int, ...]:
        with self._lock:
            self._refresh()
            claimed = self._claim(listing) if claim else set()
            diff = self._diff(listing)
            if diff.missing:
                # Verify under the lock before declaring anything expunged.
                listing = self._list(True, True)
                diff = self._diff(listing)
            table = self._table
            renamed = diff.moved + diff.flagged
            claimed_uids = [table.uids[pos] for pos, name, _ in renamed if name in claimed]
            placed = [(table.uids[pos], name, where) for pos, name, where in renamed]
            modseq = table.highest + 1
            records: list[Record] = [FlagsSet(table.uids[pos], modseq, split_name(name)[1])
                                     for pos, name, _ in diff.flagged]
            records.extend(Expunged(table.uids[pos], modseq) for pos in diff.missing)
            fresh = self._new_records(diff.fresh, modseq)
            records.extend(record for record, _ in fresh)
            self._commit(records)
            placed.extend((r.uid, r.base + r.suffix, where) for r, where in fresh)
            claimed_uids.extend(r.uid for r, _ in fresh if r.base + r.suffix in claimed)
            table = self._table
            for uid, name, where in placed:
                pos = table.position(uid)
                if pos >= 0:
                    table.set_name(pos, name, where)
            return tuple(sorted(claimed_uids))

    def _claim(self, listing: _Listing) -> set[str]:
        """Move every listed new/ file to cur/ (maildir spec: a reader that saw it).

        Returns the names the files have in cur/ now; ``listing`` is updated.
        """
        claimed: set[str] = set()
        cur_dir = self._dir(IN_CUR)
        new_dir = self._dir(IN_NEW)
        cur = listing.cur
        for name in listing.new or ():
            target = name if ":" in name else with_info(name, "")
            try:
                fsio.rename_into(os.path.join(new_dir, name), os.path.join(cur_dir, target))
            except FileNotFoundError:
                continue  # another reader moved it first: not ours to claim
            claimed.add(target)
        listing.new = []
        if cur is None:
            listing.cur = list_messages(cur_dir)
        else:
            cur.extend(claimed)
        return claimed

    def _new_records(self, fresh: list[tuple[str, str, int]],
                     modseq: int) -> list[tuple[Added, int]]:
        found = []
        for _, name, where in fresh:
            facts = file_facts(self._dir(where), name)
            if facts is not None:
                found.append((facts, name, where))
        found.sort(key=lambda item: item[0].order)
        uid = self._table.uidnext
        records: list[tuple[Added, int]] = []
        for facts, name, where in found:
            base, suffix = split_name(name)
            records.append((Added(uid, modseq, facts.size, facts.date, suffix, base), where))
            uid += 1
        return records

    def _everything(self) -> dict[str, tuple[str, int]]:
        """Base name -> (name, where) of every file now (the slow, sure way)."""
        listing = self._list(True, True)
        found: dict[str, tuple[str, int]] = {}
        for where, names in ((IN_NEW, listing.new), (IN_CUR, listing.cur)):
            for name in names or ():
                found[name.partition(":")[0]] = (name, where)
        return found

    # -- committing --------------------------------------------------------------------

    def _commit(self, records: Sequence[Record]) -> None:
        """Make ``records`` durable in the journal, then part of the table.

        The caller holds the folder lock and has replayed the journal.
        """
        if not records:
            return
        # Mod-sequences are reserved in fsync'd blocks (journal.py): HIGHESTMODSEQ
        # must not go back under what a client saw when a power loss takes
        # the unsynced tail.
        top = max((r.modseq for r in records if not isinstance(r, Reserved)), default=0)
        reservation = self._table.reservation(top)
        batch = [reservation, *records] if reservation is not None else list(records)
        journal = self._journal
        if journal.torn():
            # A crash tore the last append: never write after it; rewrite.
            self._apply_then_rewrite(batch)
            return
        journal.append(batch)
        self._apply(journal.read())
        live = len(self._table) + len(self._table.xuids)
        if journal.offset > max(_COMPACT_MIN, _COMPACT_FACTOR * live):
            self._apply_then_rewrite([])

    def compact(self) -> None:
        """Rewrite the journal now (it is also done when it has grown three times too big)."""
        with self._mutex, self._lock:
            self._check_open()
            self._refresh()
            self._apply_then_rewrite([])

    def _apply_then_rewrite(self, records: list[Record]) -> None:
        self._apply(records)
        try:
            self._journal.rewrite(self._table.header(""), self._table.compacted())
        except BaseException:
            # Memory may now be ahead of the disk: start again from the disk.
            self._reload()
            raise
        self._dirty = True
        self.flush()

    # -- index and cache ---------------------------------------------------------------

    def _maybe_save(self) -> None:
        if not self._dirty:
            return
        settled = self._stamps.settled()
        backlog = self._journal.offset - self._saved_offset
        due = time.monotonic() - self._last_save >= _SAVE_INTERVAL
        if self._saved_offset < 0 or backlog > _SAVE_BACKLOG or (settled and due):
            self.flush()

    def flush(self) -> None:
        """Save the index now if anything changed since it was saved."""
        with self._mutex:
            header = self._journal.header
            if not self._dirty or header is None:
                return
            # The index names a journal offset: what lies before it must be durable.
            self._journal.sync()
            if save_index(self.path, header.generation, self._journal.offset, self._table,
                          self._stamps.recorded["new"], self._stamps.recorded["cur"]):
                self._saved_offset = self._journal.offset
            self._dirty = False
            self._last_save = time.monotonic()

    def _blob_cache(self) -> BlobCache:
        cache = self._cache
        if cache is None or cache.uidvalidity != self._table.uidvalidity:
            self._drop_cache()
            cache = self._cache = BlobCache(self.path, self._table.uidvalidity)
        return cache

    def _drop_cache(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def close(self) -> None:
        """Save the index and release the files. The object is unusable afterwards."""
        with self._mutex:
            if self._closed:
                return
            try:
                if os.path.isdir(self.path):
                    self.flush()
            finally:
                self._closed = True
                self._journal.close()
                self._drop_cache()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("the folder is closed")


def _read_keywords(path: str) -> KeywordTable:
    try:
        with open(path, "rb") as handle:
            return KeywordTable.from_mapping(parse_keywords(handle.read(1 << 16)))
    except FileNotFoundError:
        return KeywordTable()
