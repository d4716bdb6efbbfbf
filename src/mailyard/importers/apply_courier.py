"""Courier-IMAP's UIDs, keywords and subscriptions written into mailyard's store.

For each folder (INBOX = the Maildir root, and every Maildir++ ``.Folder``
with a ``cur/``) that has a ``courierimapuiddb``, under the folder lock:

1. the keywords (``courierimapkeywords/``) get letters in the folder's
   ``mailyard-keywords`` table (at most 26 a folder, store.md), written
   before any file carries the letters, so a letter never shows without
   its meaning;
2. each message with keywords is renamed to carry their letters in its
   ``:2,`` info (a message still in ``new/`` moves to ``cur/``, as Courier
   does when it scans);
3. the uid list (``mailyard-uidlist``, journal.py) is written atomically
   with Courier's UIDVALIDITY and next uid and one ``A`` record per
   message Courier numbered that is still there, in uid order; files
   Courier never numbered get the next uids at mailyard's first sync, as
   they would have at Courier's. The saved index and blob cache are
   removed: they describe an older uid list.

The root's ``mailyard-uidvalidity`` is raised to the largest imported
value, so a folder created later never reuses one (RFC 3501 §2.3.1.1).
A folder that already has a mailyard uid list is left alone unless
``force``: replacing it changes the UIDs clients have seen.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from mailyard import fsio
from mailyard.importers.courier import (
    COURIER_KEYWORDS_DIR,
    COURIER_SUBSCRIBED,
    COURIER_UIDDB,
    KEYWORD_LIST,
    CourierError,
    KeywordList,
    UidDb,
    apply_keyword_updates,
    parse_keyword_list,
    parse_subscribed,
    parse_uiddb,
)
from mailyard.importers.report import Created, ImportReport, Progress, Unmapped, no_progress
from mailyard.maildir import cache, index, journal
from mailyard.maildir.core import KEYWORDS_FILE
from mailyard.maildir.errors import KeywordLimit, StoreError
from mailyard.maildir.flags import (
    SYSTEM_MASK,
    KeywordTable,
    bits_from_info,
    info_from_bits,
    parse_keywords,
)
from mailyard.maildir.folders import INBOX, name_from_dirname
from mailyard.maildir.lock import FileLock, root_lock
from mailyard.maildir.mailstore import Mailstore
from mailyard.maildir.names import split_info, with_info
from mailyard.maildir.scan import file_facts, list_messages
from mailyard.maildir.table import split_name
from mailyard.maildir.uidvalidity import UIDVALIDITY_FILE

__all__ = ["CourierFolder", "courier_folders", "import_courier"]

_MAX_READ: Final = 64 << 20
_IMPORT_MODSEQ: Final = 1


@dataclass(frozen=True, slots=True)
class CourierFolder:
    """A folder of the Maildir: its API name and its directory."""

    name: str
    path: str


@dataclass(slots=True)
class _Outcome:
    created: list[Created] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def courier_folders(root: str) -> list[CourierFolder]:
    """INBOX and every Maildir++ folder below ``root`` (not following links)."""
    found = [CourierFolder(INBOX, root)]
    with os.scandir(root) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    for entry in entries:
        if not entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        name = name_from_dirname(entry.name)
        if name is not None and os.path.isdir(os.path.join(entry.path, "cur")):
            found.append(CourierFolder(name, entry.path))
    return found


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(_MAX_READ)
    except FileNotFoundError:
        return None


def _keywords(path: str) -> KeywordList:
    directory = os.path.join(path, COURIER_KEYWORDS_DIR)
    data = _read(os.path.join(directory, KEYWORD_LIST))
    keywords = parse_keyword_list(data) if data is not None else KeywordList((), {})
    updates: dict[str, bytes] = {}
    with contextlib.suppress(FileNotFoundError, NotADirectoryError), os.scandir(directory) as it:
        for entry in it:
            if entry.name != KEYWORD_LIST and entry.is_file(follow_symlinks=False):
                content = _read(entry.path)
                if content is not None:
                    updates[entry.name] = content
    return apply_keyword_updates(keywords, updates) if updates else keywords


def _files(path: str) -> dict[str, tuple[str, str]]:
    """Base name -> (subdirectory, file name) of every message; cur/ wins over new/."""
    found: dict[str, tuple[str, str]] = {}
    for sub in ("new", "cur"):
        for name in list_messages(os.path.join(path, sub)):
            found[split_name(name)[0]] = (sub, name)
    return found


def _table(path: str, keywords: KeywordList, out: _Outcome, label: str) -> KeywordTable:
    data = _read(os.path.join(path, KEYWORDS_FILE))
    table = KeywordTable.from_mapping(parse_keywords(data or b""))
    for name in keywords.names:
        try:
            table = table.with_keywords([name])
        except KeywordLimit:
            out.unmapped.append(Unmapped(f"{label}: keyword {name}", "more than 26 keywords "
                                         "in one folder; messages lose it"))
        except StoreError as exc:
            out.unmapped.append(Unmapped(f"{label}: keyword {name!r}", exc.reason))
    return table


def _target_name(name: str, keyword_bits: int) -> str:
    base, info = split_info(name)
    bits = bits_from_info(info) | keyword_bits
    return with_info(base, info_from_bits(bits, keep=info))


def _place_keywords(path: str, files: dict[str, tuple[str, str]], keywords: KeywordList,
                    table: KeywordTable) -> int:
    """Rename the files whose keywords add letters; returns how many moved."""
    moved = 0
    touched: set[str] = set()
    for base, carried in keywords.messages.items():
        if base not in files:
            continue
        sub, name = files[base]
        bits = table.bits([k for k in carried if table.index(k) is not None]) & ~SYSTEM_MASK
        if not bits:
            continue
        target = _target_name(name, bits)
        if sub == "cur" and target == name:
            continue
        fsio.rename_into(os.path.join(path, sub, name), os.path.join(path, "cur", target))
        files[base] = ("cur", target)
        touched.update({sub, "cur"})
        moved += 1
    for sub in sorted(touched):
        fsio.fsync_dir(os.path.join(path, sub))
    return moved


def _records(path: str, db: UidDb, files: dict[str, tuple[str, str]]) -> list[journal.Record]:
    records: list[journal.Record] = []
    for uid, base in db.entries:
        if base not in files:
            continue  # expunged since Courier listed it
        sub, name = files[base]
        facts = file_facts(os.path.join(path, sub), name)
        if facts is None:
            continue
        suffix = split_name(name)[1]
        records.append(journal.Added(uid, _IMPORT_MODSEQ, facts.size, facts.date, suffix, base))
    return records


def _write_uidlist(path: str, db: UidDb, records: list[journal.Record]) -> None:
    header = journal.Header(db.uidvalidity, db.nextuid, _IMPORT_MODSEQ, 0, "")
    log = journal.Journal(path)
    try:
        log.rewrite(header, records)
    finally:
        log.close()
    # Caches of an older uid list (they are rebuilt from the journal).
    for stale in (index.FILE_NAME, cache.FILE_NAME):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(path, stale))


def _import_folder(folder: CourierFolder, *, dry_run: bool, force: bool, out: _Outcome) -> int:
    """Import one folder; returns its UIDVALIDITY (0 if nothing was imported)."""
    label = folder.name
    data = _read(os.path.join(folder.path, COURIER_UIDDB))
    if data is None:
        out.notes.append(f"{label}: no {COURIER_UIDDB}; mailyard gives its messages new UIDs")
        return 0
    try:
        db = parse_uiddb(data)
    except CourierError as exc:
        out.unmapped.append(Unmapped(f"{label}: {COURIER_UIDDB}", str(exc)))
        return 0
    if os.path.exists(os.path.join(folder.path, journal.FILE_NAME)) and not force:
        out.unmapped.append(Unmapped(label, "already has a mailyard uid list (use --force to "
                                     "replace it: clients then see Courier's UIDs again)"))
        return 0
    keywords = _keywords(folder.path)
    with FileLock(folder.path):
        files = _files(folder.path)
        table = _table(folder.path, keywords, out, label)
        kept = sum(1 for _, base in db.entries if base in files)
        if not dry_run:
            if table.names != KeywordTable().names:
                fsio.write_file_atomic(folder.path, KEYWORDS_FILE, [table.encode()])
            _place_keywords(folder.path, files, keywords, table)
            _write_uidlist(folder.path, db, _records(folder.path, db, files))
    unnumbered = len(files) - kept
    detail = f"UIDVALIDITY {db.uidvalidity}, {kept} UIDs, next {db.nextuid}"
    if keywords.names:
        detail += f", {len(keywords.names)} keywords"
    out.created.append(Created("uidlist", label, detail))
    if unnumbered:
        out.notes.append(f"{label}: {unnumbered} message(s) Courier had not numbered get new UIDs")
    if db.skipped or keywords.skipped:
        out.notes.append(f"{label}: {db.skipped + keywords.skipped} unreadable line(s) skipped")
    return db.uidvalidity


def _raise_uidvalidity(root: str, values: Iterable[int]) -> None:
    highest = max(values, default=0)
    if not highest:
        return
    with root_lock(root):
        data = _read(os.path.join(root, UIDVALIDITY_FILE)) or b""
        text = data.strip()
        last = int(text) if text.isdigit() else 0
        if highest > last:
            fsio.write_file_atomic(root, UIDVALIDITY_FILE, [f"{highest}\n".encode("ascii")])


def _subscriptions(root: str, folders: list[CourierFolder], dry_run: bool,
                   out: _Outcome) -> None:
    data = _read(os.path.join(root, COURIER_SUBSCRIBED))
    if data is None:
        return
    dirnames, skipped = parse_subscribed(data)
    by_dir = {os.path.basename(f.path) if f.name != INBOX else "": f.name for f in folders}
    names = []
    for dirname in dirnames:
        name = by_dir.get(dirname) or (name_from_dirname(dirname) if dirname else INBOX)
        if name is None:
            out.unmapped.append(Unmapped(f"subscription {dirname}", "not a folder name"))
        else:
            names.append(name)
    if skipped:
        out.notes.append(f"{COURIER_SUBSCRIBED}: {skipped} line(s) outside INBOX skipped")
    if not dry_run:
        store = Mailstore(root)
        for name in names:
            store.subscribe(name)
    if names:
        out.created.append(Created("subscriptions", ", ".join(names)))


def import_courier(root: str, *, dry_run: bool = False, force: bool = False,
                   progress: Progress = no_progress) -> ImportReport:
    """Carry Courier's UIDs, keywords and subscriptions of the Maildir ``root`` over."""
    out = _Outcome()
    folders = courier_folders(root)
    values = []
    for done, folder in enumerate(folders, 1):
        values.append(_import_folder(folder, dry_run=dry_run, force=force, out=out))
        progress(done, len(folders))
    if not dry_run:
        _raise_uidvalidity(root, values)
    _subscriptions(root, folders, dry_run, out)
    return ImportReport(tuple(out.created), tuple(out.unmapped), tuple(out.notes), dry_run)
