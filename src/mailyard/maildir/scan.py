"""Reading a folder's ``new/`` and ``cur/``: directory stamps, listings, file facts.

A folder is rescanned only when a directory changed (DESIGN §4). A change
shows as a new mtime, but mtimes tick coarsely (a jiffy on Linux, a second
on some filesystems): a second change within the same tick leaves the mtime
as the first one made it. So a stamp counts as *settled* only if its mtime
was at least ``SETTLE_NS`` older than the clock when it was read; a
listing made while the stamp was not settled is trusted for now, but the
next sync lists the directory again, whatever its mtime then says (the
stamp left by this process's own change is the exception: core.py
``own_change``, docs/design/store.md).

Listings skip what is not a message: dot files (maildir spec), symlinks
(they could point a reader outside the Maildir), directories, and names
with control characters (they could not be written into the journal's
line format safely, and no delivery agent makes them).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Final

from mailyard.maildir.names import delivery_stamp, size_from_name, split_info

__all__ = [
    "SETTLE_NS",
    "SUBDIRS",
    "DirStamp",
    "FileFacts",
    "Stamps",
    "delivery_order",
    "file_facts",
    "list_messages",
    "needs_scan",
    "read_stamp",
]

SETTLE_NS: Final = 1_000_000_000
SUBDIRS: Final = ("new", "cur")
# An S= larger than this is not believed; the file is stat'ed instead.
_MAX_PLAUSIBLE_SIZE: Final = 1 << 40


@dataclass(frozen=True, slots=True)
class DirStamp:
    """What a directory looked like when it was listed."""

    mtime_ns: int
    ino: int
    settled: bool


@dataclass(frozen=True, slots=True)
class FileFacts:
    """The immutable facts of a message file: octets and internal date (seconds)."""

    size: int
    date: int
    order: tuple[int, int, int, str]


def read_stamp(path: str, now_ns: int | None = None) -> DirStamp:
    """The stamp of directory ``path``; FileNotFoundError if it is gone."""
    now = time.time_ns() if now_ns is None else now_ns
    info = os.stat(path)
    return DirStamp(info.st_mtime_ns, info.st_ino, info.st_mtime_ns <= now - SETTLE_NS)


def needs_scan(recorded: DirStamp | None, current: DirStamp) -> bool:
    """True unless ``current`` is the settled stamp recorded at the last listing."""
    if recorded is None or not recorded.settled:
        return True
    return (recorded.mtime_ns, recorded.ino) != (current.mtime_ns, current.ino)


def _same(a: DirStamp, b: DirStamp) -> bool:
    return (a.mtime_ns, a.ino) == (b.mtime_ns, b.ino)


class Stamps:
    """The stamps recorded for a folder's ``new/`` and ``cur/``, and how far to trust them.

    A stamp comes from a listing, or from this process's own change
    (``record_own``): an operation under the folder lock that keeps the
    table in step with what it renames, links or unlinks. Such a stamp is
    trusted while the directory was last really listed less than SETTLE_NS
    ago, so a foreign change made during ours (or hidden in the same mtime
    tick) is found at the first sync a second after that listing.
    """

    __slots__ = ("listed_at", "own", "recorded")

    def __init__(self, new: DirStamp | None = None, cur: DirStamp | None = None) -> None:
        self.recorded: dict[str, DirStamp | None] = {"new": new, "cur": cur}
        self.own: dict[str, bool] = dict.fromkeys(SUBDIRS, False)
        self.listed_at: dict[str, int] = dict.fromkeys(SUBDIRS, 0)  # time_ns

    @staticmethod
    def read(folder: str) -> tuple[int, dict[str, DirStamp]]:
        """(now, the current stamps of ``new/`` and ``cur/``); FileNotFoundError if gone."""
        now = time.time_ns()
        return now, {sub: read_stamp(os.path.join(folder, sub), now) for sub in SUBDIRS}

    def stale(self, sub: str, current: DirStamp, now: int) -> bool:
        """Whether ``sub`` must be listed: its stamp moved, or is not settled yet."""
        recorded = self.recorded[sub]
        if (self.own[sub] and recorded is not None and now - self.listed_at[sub] < SETTLE_NS
                and _same(recorded, current)):
            return False
        return needs_scan(recorded, current)

    def listed(self, sub: str, stamp: DirStamp, now: int) -> None:
        """``sub`` was listed; ``stamp`` was read just before the listing."""
        self.recorded[sub] = stamp
        self.own[sub] = False
        self.listed_at[sub] = now

    def record_own(self, before: tuple[int, dict[str, DirStamp]],
                   after: dict[str, DirStamp]) -> None:
        """An own change ran between the two readings: adopt the stamps it left.

        Only for a directory whose stamp matched the recorded one before; one
        that had moved already (another program) stays stale.
        """
        when, stamps = before
        for sub in SUBDIRS:
            recorded, was, now = self.recorded[sub], stamps[sub], after[sub]
            if recorded is None or not _same(recorded, was) or _same(was, now):
                continue
            if recorded.settled:
                # Settled and unmoved: the table matched the directory then, as
                # good as a listing made at that moment.
                self.listed_at[sub] = when
            # Never settled: a same-tick change would not show in the mtime.
            self.recorded[sub] = DirStamp(now.mtime_ns, now.ino, False)
            self.own[sub] = True

    def settled(self) -> bool:
        return all(s is not None and s.settled for s in self.recorded.values())


def _is_message(entry: os.DirEntry[str]) -> bool:
    name = entry.name
    if name.startswith(".") or not name.isprintable():
        return False
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def list_messages(directory: str) -> list[str]:
    """The message file names in ``directory`` now."""
    with os.scandir(directory) as listing:
        try:
            # The type comes from readdir (d_type), so this makes no stat call.
            names = [entry.name for entry in listing if entry.is_file(follow_symlinks=False)]
        except OSError:
            return _checked(directory)
    # The name rules checked for all names at once ("/" is in no name): one
    # pass in C rather than one Python call per file.
    joined = "/".join(names)
    if joined.isprintable() and not joined.startswith(".") and "/." not in joined:
        return names
    return [name for name in names if not name.startswith(".") and name.isprintable()]


def _checked(directory: str) -> list[str]:
    """The slow listing: each entry checked on its own (an is_file call may fail)."""
    with os.scandir(directory) as listing:
        return [entry.name for entry in listing if _is_message(entry)]


def delivery_order(name: str, mtime_ns: int) -> tuple[int, int, int, str]:
    """Sort key for uid assignment: our names by their time, then the rest by mtime.

    The same order as the POP3 maildrop (drop.py), so UIDs follow delivery.
    """
    base = split_info(name)[0]
    stamp = delivery_stamp(base)
    if stamp is not None:
        return (0, stamp[0], stamp[1], base)
    return (1, mtime_ns, 0, base)


def file_facts(directory: str, name: str) -> FileFacts | None:
    """Size, internal date and delivery order of one file; None if it is gone.

    The name answers when it can (``S=``, the delivery stamp) so a cold scan
    of our own names makes no stat call; other names are stat'ed.
    """
    base = split_info(name)[0]
    size = size_from_name(name)
    if size is not None and size > _MAX_PLAUSIBLE_SIZE:
        size = None
    stamp = delivery_stamp(base)
    mtime_ns = 0
    if size is None or stamp is None:
        try:
            info = os.stat(os.path.join(directory, name), follow_symlinks=False)
        except FileNotFoundError:
            return None
        mtime_ns = info.st_mtime_ns
        if size is None:
            size = info.st_size
    date = stamp[0] if stamp is not None else mtime_ns // 1_000_000_000
    return FileFacts(size, date, delivery_order(name, mtime_ns))
