"""Reading a folder's ``new/`` and ``cur/``: directory stamps, listings, file facts.

A folder is rescanned only when a directory changed (DESIGN §4). A change
shows as a new mtime, but mtimes tick coarsely (a jiffy on Linux, a second
on some filesystems): a second change within the same tick leaves the mtime
as the first one made it. So a stamp counts as *settled* only if its mtime
was at least ``SETTLE_NS`` older than the clock when it was read; a
listing made while the stamp was not settled is trusted for now, but the
next sync lists the directory again, whatever its mtime then says.

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
    "DirStamp",
    "FileFacts",
    "delivery_order",
    "file_facts",
    "list_messages",
    "needs_scan",
    "read_stamp",
]

SETTLE_NS: Final = 1_000_000_000
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
