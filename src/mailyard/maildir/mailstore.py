"""One user's Maildir++ as a tree of folders: list, create, delete, rename, subscribe.

The root is INBOX; folder ``A/B`` is the root's directory ``.A.B`` with
``tmp/ new/ cur/`` and a ``maildirfolder`` marker (Maildir++). Names are
checked and encoded by folders.py before they become paths. Every change
to the tree holds the root lock (lock.py), so processes do not interleave
their renames; none of them opens a folder meanwhile (opening one may take
the root lock for a new UIDVALIDITY, and the lock order is root, then
folder).

RFC rules implemented (RFC 3501; RFC 9051 keeps them):

* §6.3.3 CREATE creates the superiors a name needs; a trailing ``/`` only
  declares that inferiors will follow, and is dropped.
* §6.3.4 DELETE of a folder with inferiors removes it (its messages and
  its directory) and leaves the inferiors: the name stays listed, without
  being selectable (\\Noselect, \\NonExistent for RFC 5258), since
  Maildir++ keeps each level apart. A name that is not a folder, with or
  without inferiors, cannot be deleted; nor can INBOX.
* §6.3.5 RENAME moves the inferiors along and creates missing superiors of
  the new name. Renaming INBOX moves its messages into a new folder and
  leaves INBOX empty (its inferiors stay where they are). Subscriptions and
  special-use attributes follow a renamed folder. A crash in the middle of
  a rename with inferiors can leave some renamed and some not: each
  directory is renamed atomically, the set is not.

A new folder is built in the root's ``tmp/`` and renamed into place, so no
reader ever sees half of one. A deleted folder is renamed into ``tmp/``
first (atomic, then the root is synced), and removed from there.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from mailyard import fsio, log
from mailyard.maildir.deliver import ensure_maildir
from mailyard.maildir.errors import FolderExists, NoSuchFolder, StoreError
from mailyard.maildir.folder import Folder
from mailyard.maildir.folders import (
    DELIMITER,
    INBOX,
    ancestors,
    canonical,
    dirname_for,
    format_special_use,
    format_subscriptions,
    is_trash,
    name_from_dirname,
    parse_special_use,
    parse_subscriptions,
    special_use_attribute,
)
from mailyard.maildir.lock import root_lock
from mailyard.maildir.quota import Quota, count_messages
from mailyard.maildir.scan import list_messages

__all__ = [
    "DEFAULT_FOLDERS",
    "MAILDIRFOLDER",
    "SPECIAL_USE_FILE",
    "SUBSCRIPTIONS_FILE",
    "FolderEntry",
    "Mailstore",
    "create_default_folders",
]

SUBSCRIPTIONS_FILE: Final = "subscriptions"
SPECIAL_USE_FILE: Final = "mailyard-specialuse"
MAILDIRFOLDER: Final = "maildirfolder"
_KEYWORDS_FILE: Final = "mailyard-keywords"
_DELETED_PREFIX: Final = "mailyard-deleted-"
_NEW_PREFIX: Final = "mailyard-new-"
# RFC 6154 §5 and issue 3: what every new user gets.
DEFAULT_FOLDERS: Final = (
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)


@dataclass(frozen=True, slots=True)
class FolderEntry:
    """One LIST line: ``exists`` False means only a superior of existing folders."""

    name: str
    exists: bool
    has_children: bool
    special_use: tuple[str, ...]
    subscribed: bool


class Mailstore:
    """The folders of the Maildir++ at ``root``."""

    __slots__ = ("_held", "hostname", "quota", "root")

    def __init__(self, root: str, *, hostname: str | None = None) -> None:
        self.root = os.path.abspath(root)
        self.hostname = hostname
        self.quota = Quota(self.root)
        # The last folder handed out stays referenced (Folder.shared keeps
        # only weak references and a few recent ones): a session that selects
        # the same mailbox again reuses the open object, not a fresh load.
        self._held: Folder | None = None

    # -- finding folders ---------------------------------------------------------------

    def _dirs(self) -> dict[str, str]:
        """Folder name -> directory, for every folder on disk (INBOX excluded)."""
        found: dict[str, str] = {}
        with os.scandir(self.root) as listing:
            for entry in listing:
                if not entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                    continue
                name = name_from_dirname(entry.name)
                if name is None or not os.path.isdir(os.path.join(entry.path, "cur")):
                    continue
                # The encoded spelling wins over others that decode alike.
                if name not in found or dirname_for(name) == entry.name:
                    found[name] = entry.path
        return found

    def path_of(self, name: str) -> str | None:
        """The directory of folder ``name``, or None if it does not exist."""
        canon = canonical(name)
        if canon == INBOX:
            return self.root
        path = os.path.join(self.root, fsio.safe_component(dirname_for(canon)))
        if os.path.isdir(os.path.join(path, "cur")) and not os.path.islink(path):
            return path
        # A directory another tool spelled differently (raw UTF-8, say).
        return self._dirs().get(canon)

    def exists(self, name: str) -> bool:
        return self.path_of(name) is not None

    def folder(self, name: str) -> Folder:
        """The process's shared ``Folder`` for ``name``; NoSuchFolder if there is none."""
        canon = canonical(name)
        path = self.path_of(canon)
        if path is None:
            raise NoSuchFolder(f"mailbox {canon!r} does not exist")
        folder = Folder.shared(path, root=self.root, name=canon, hostname=self.hostname)
        self._held = folder
        return folder

    def list_folders(self) -> list[FolderEntry]:
        """Every folder, and every superior of one (RFC 5258 \\NonExistent), sorted."""
        existing = {*self._dirs(), INBOX}
        names = set(existing)
        for name in existing:
            names.update(ancestors(name))
        parents = {parent for name in names for parent in ancestors(name)}
        subscribed = set(self.subscriptions())
        special = self.special_use()
        return [
            FolderEntry(name, name in existing, name in parents, special.get(name, ()),
                        name in subscribed)
            for name in sorted(names, key=lambda n: (n != INBOX, n))
        ]

    # -- changing the tree -------------------------------------------------------------

    def create(self, name: str, *, special_use: Iterable[str] = ()) -> None:
        """RFC 3501 §6.3.3 CREATE (RFC 6154 §5.2 CREATE with USE)."""
        if name.endswith(DELIMITER):
            name = name[:-1]
        canon = canonical(name)
        attrs = tuple(special_use_attribute(a) for a in special_use)
        if canon == INBOX:
            raise FolderExists("INBOX always exists")
        with root_lock(self.root):
            if self.path_of(canon) is not None:
                raise FolderExists(f"mailbox {canon!r} exists already")
            for parent in ancestors(canon):
                if parent != INBOX and self.path_of(parent) is None:
                    self._make(parent)
            self._make(canon)
            if attrs:
                table = self.special_use()
                table[canon] = attrs
                self._write(SPECIAL_USE_FILE, format_special_use(table))

    def _make(self, name: str) -> None:
        final = os.path.join(self.root, fsio.safe_component(dirname_for(name)))
        staging = os.path.join(self.root, "tmp", _NEW_PREFIX + os.urandom(8).hex())
        ensure_maildir(staging)
        fsio.write_file_atomic(staging, MAILDIRFOLDER, [b""])
        try:
            fsio.rename_into(staging, final)
        except OSError:
            shutil.rmtree(staging, onerror=_log_rmtree)
            raise FolderExists(f"mailbox {name!r} exists already") from None
        fsio.fsync_dir(self.root)

    def delete(self, name: str) -> None:
        """RFC 3501 §6.3.4 DELETE (see the module doc for inferiors)."""
        canon = canonical(name)
        if canon == INBOX:
            raise StoreError("INBOX cannot be deleted")
        with root_lock(self.root):
            path = self.path_of(canon)
            if path is None:
                if any(n.startswith(canon + DELIMITER) for n in self._dirs()):
                    raise StoreError(f"{canon!r} has inferiors and is not a mailbox")
                raise NoSuchFolder(f"mailbox {canon!r} does not exist")
            freed = _count(path) if not is_trash(canon) else (0, 0)
            aside = os.path.join(self.root, "tmp", _DELETED_PREFIX + os.urandom(8).hex())
            fsio.rename_into(path, aside)
            fsio.fsync_dir(self.root)
            table = self.special_use()
            if table.pop(canon, None) is not None:
                self._write(SPECIAL_USE_FILE, format_special_use(table))
        # Outside the root lock: a folder's mutex may be waiting for it (lock.py).
        Folder.forget(path)
        shutil.rmtree(aside, onerror=_log_rmtree)
        self.quota.record(-freed[0], -freed[1])

    def rename(self, old: str, new: str) -> None:
        """RFC 3501 §6.3.5 RENAME, with inferiors; INBOX's messages move, INBOX stays."""
        src, dst = canonical(old), canonical(new)
        if dst == INBOX:
            raise FolderExists("INBOX always exists")
        if dst == src or dst.startswith(src + DELIMITER):
            raise StoreError("a mailbox cannot be renamed into itself")
        with root_lock(self.root):
            if self.path_of(dst) is not None:
                raise FolderExists(f"mailbox {dst!r} exists already")
            if src == INBOX:
                self._rename_inbox(dst)
                return
            dirs = self._dirs()
            if src not in dirs:
                raise NoSuchFolder(f"mailbox {src!r} does not exist")
            moves = [(n, dst + n[len(src):]) for n in sorted(dirs)
                     if n == src or n.startswith(src + DELIMITER)]
            for _, target in moves:
                if target in dirs:
                    raise FolderExists(f"mailbox {target!r} exists already")
            for parent in ancestors(dst):
                if parent != INBOX and parent not in dirs:
                    self._make(parent)
            for before, after in moves:
                target = os.path.join(self.root, fsio.safe_component(dirname_for(after)))
                fsio.rename_into(dirs[before], target)
            fsio.fsync_dir(self.root)
            self._follow(dict(moves))
        for before, _ in moves:
            Folder.forget(dirs[before])

    def _rename_inbox(self, dst: str) -> None:
        self.create(dst)
        target = self.path_of(dst)
        if target is None:
            raise NoSuchFolder(f"mailbox {dst!r} could not be created")
        keywords = os.path.join(self.root, _KEYWORDS_FILE)
        if os.path.isfile(keywords):
            with open(keywords, "rb") as handle:
                # The letters must mean in the new folder what they meant here.
                fsio.write_file_atomic(target, _KEYWORDS_FILE, [handle.read(1 << 16)])
        for sub in ("new", "cur"):
            source = os.path.join(self.root, sub)
            for file_name in list_messages(source):
                try:
                    fsio.rename_into(os.path.join(source, file_name),
                                     os.path.join(target, sub, file_name))
                except FileNotFoundError:
                    continue  # expunged (or claimed) meanwhile by someone else
            fsio.fsync_dir(os.path.join(target, sub))
            fsio.fsync_dir(source)

    def _follow(self, renamed: dict[str, str]) -> None:
        """Subscriptions and special-use attributes follow renamed folders."""
        subscriptions = self.subscriptions()
        if any(n in renamed for n in subscriptions):
            self._write(SUBSCRIPTIONS_FILE,
                        format_subscriptions(renamed.get(n, n) for n in subscriptions))
        table = self.special_use()
        if any(n in renamed for n in table):
            self._write(SPECIAL_USE_FILE,
                        format_special_use({renamed.get(n, n): v for n, v in table.items()}))

    # -- subscriptions and special use -------------------------------------------------

    def _read(self, file_name: str) -> bytes:
        try:
            with open(os.path.join(self.root, file_name), "rb") as handle:
                return handle.read(1 << 20)
        except FileNotFoundError:
            return b""

    def _write(self, file_name: str, data: bytes) -> None:
        fsio.write_file_atomic(self.root, file_name, [data])

    def subscriptions(self) -> list[str]:
        """RFC 3501 §6.3.9 LSUB's names (which need not exist, §6.3.6)."""
        return parse_subscriptions(self._read(SUBSCRIPTIONS_FILE))

    def subscribe(self, name: str) -> None:
        canon = canonical(name)
        with root_lock(self.root):
            names = self.subscriptions()
            if canon not in names:
                self._write(SUBSCRIPTIONS_FILE, format_subscriptions([*names, canon]))

    def unsubscribe(self, name: str) -> None:
        canon = canonical(name)
        with root_lock(self.root):
            names = self.subscriptions()
            if canon in names:
                self._write(SUBSCRIPTIONS_FILE,
                            format_subscriptions(n for n in names if n != canon))

    def special_use(self) -> dict[str, tuple[str, ...]]:
        """Folder name -> RFC 6154 attributes."""
        return parse_special_use(self._read(SPECIAL_USE_FILE))

    def set_special_use(self, name: str, attributes: Iterable[str]) -> None:
        canon = canonical(name)
        attrs = tuple(special_use_attribute(a) for a in attributes)
        with root_lock(self.root):
            table = self.special_use()
            if attrs:
                table[canon] = attrs
            else:
                table.pop(canon, None)
            self._write(SPECIAL_USE_FILE, format_special_use(table))


def create_default_folders(root: str, *, hostname: str | None = None) -> None:
    """Give a new mailbox Drafts, Sent, Trash, Junk and Archive, subscribed, with their
    RFC 6154 attributes. Idempotent; the directory calls it after creating the Maildir."""
    ensure_maildir(root)
    store = Mailstore(root, hostname=hostname)
    for name, attribute in DEFAULT_FOLDERS:
        if not store.exists(name):
            store.create(name, special_use=[attribute])
        store.subscribe(name)


def _count(path: str) -> tuple[int, int]:
    new = count_messages(os.path.join(path, "new"))
    cur = count_messages(os.path.join(path, "cur"))
    return new[0] + cur[0], new[1] + cur[1]


def _log_rmtree(function: object, path: str, exc_info: object) -> None:
    # The folder is already gone from the tree; leftovers in tmp/ are debris.
    log.event("maildir.cleanup_failed", path=path, error=str(exc_info))
