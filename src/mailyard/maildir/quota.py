"""Maildir++ quota: the ``maildirsize`` file in the Maildir root (Courier's README.maildirquota).

The first line defines the quota, ``<bytes>S,<count>C`` (either part may be
missing); every further line is ``<bytes> <count>``, a change in usage
(negative for removals). Usage is the sum of those lines. Writers append
one line with one ``write`` on an O_APPEND descriptor and take no lock, as
Courier's tools do; the file is approximate by design and put right by a
recalculation:

* when it has grown past 5,120 octets, after an update;
* when its sums say the quota is exceeded and the file is more than 15
  minutes old (it may be stale), before refusing anything;
* when its lines cannot be read.

A recalculation counts every message in ``new/`` and ``cur/`` of the root
and of each folder, except Trash and its inferiors (Courier's rule:
emptying Trash must never be blocked by quota), sizes from ``S=`` else
stat, and replaces the file with the definition and one total line
(``fsio.write_file_atomic``; under the root lock so that two processes do
not both recalculate). No ``maildirsize`` means no quota.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Final

from mailyard import fsio
from mailyard.maildir.errors import OverQuota
from mailyard.maildir.lock import root_lock
from mailyard.maildir.names import size_from_name

__all__ = [
    "FILE_NAME",
    "Quota",
    "QuotaLimits",
    "QuotaUsage",
    "count_maildir",
    "count_messages",
    "format_delta",
    "format_limits",
    "parse_limits",
    "parse_maildirsize",
]

FILE_NAME: Final = "maildirsize"
RECALC_SIZE: Final = 5120
STALE_SECONDS: Final = 15 * 60
_TRASH_DIR: Final = ".Trash"
_MAX_FILE: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    """The definition line: octets and messages allowed (None: no limit)."""

    storage: int | None = None
    messages: int | None = None


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """GETQUOTA's answer (RFC 9208 §4.2): what is used, and the limits."""

    storage: int
    messages: int
    limits: QuotaLimits


def parse_limits(line: str) -> QuotaLimits:
    """``10000000S,1000C`` -> limits; parts that are not ``<digits>S|C`` are ignored."""
    storage: int | None = None
    messages: int | None = None
    for part in line.strip().split(","):
        part = part.strip()
        if len(part) < 2 or not part[:-1].isdigit():
            continue
        if part[-1] == "S" and storage is None:
            storage = int(part[:-1])
        elif part[-1] == "C" and messages is None:
            messages = int(part[:-1])
    return QuotaLimits(storage, messages)


def format_limits(limits: QuotaLimits) -> str:
    parts = []
    if limits.storage is not None:
        parts.append(f"{limits.storage}S")
    if limits.messages is not None:
        parts.append(f"{limits.messages}C")
    return ",".join(parts)


def format_delta(storage: int, messages: int) -> bytes:
    return f"{storage} {messages}\n".encode("ascii")


def _signed(text: str) -> int:
    digits = text[1:] if text[:1] == "-" else text
    if not digits.isdigit():
        raise ValueError("not a number")
    return int(text)


def parse_maildirsize(data: bytes) -> tuple[QuotaLimits, int, int] | None:
    """``(limits, bytes, messages)``; None if a complete usage line is unreadable.

    A last line without its newline is being written (or was torn) and is
    not counted.
    """
    text = data.decode("ascii", "replace")
    first, _, rest = text.partition("\n")
    lines = rest.split("\n")[:-1] if rest else []
    storage = messages = 0
    for line in lines:
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            return None
        try:
            storage += _signed(fields[0])
            messages += _signed(fields[1])
        except ValueError:
            return None
    return parse_limits(first), storage, messages


def count_messages(directory: str) -> tuple[int, int]:
    """Octets and number of the messages in one ``new/`` or ``cur/``."""
    storage = messages = 0
    try:
        listing = os.scandir(directory)
    except FileNotFoundError:
        return 0, 0
    with listing:
        for entry in listing:
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            size = size_from_name(entry.name)
            if size is None:
                try:
                    size = entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    continue
            storage += size
            messages += 1
    return storage, messages


def _counted_dirs(root: str) -> list[str]:
    found = [root]
    with os.scandir(root) as listing:
        for entry in listing:
            name = entry.name
            if not name.startswith(".") or name in {".", ".."}:
                continue
            if name == _TRASH_DIR or name.startswith(_TRASH_DIR + "."):
                continue
            if entry.is_dir(follow_symlinks=False):
                found.append(entry.path)
    return found


def count_maildir(root: str) -> tuple[int, int]:
    """Octets and number of the messages a recalculation would count, read only."""
    storage = messages = 0
    for directory in _counted_dirs(root):
        for sub in ("new", "cur"):
            size, count = count_messages(os.path.join(directory, sub))
            storage += size
            messages += count
    return storage, messages


class Quota:
    """One Maildir's ``maildirsize``."""

    __slots__ = ("path", "root")

    def __init__(self, root: str) -> None:
        self.root = root
        self.path = os.path.join(root, FILE_NAME)

    def _read(self) -> tuple[tuple[QuotaLimits, int, int] | None, int, float] | None:
        """(parsed, file size, mtime), or None without a file."""
        try:
            with open(self.path, "rb", opener=_nofollow) as handle:
                info = os.fstat(handle.fileno())
                data = handle.read(_MAX_FILE)
        except FileNotFoundError:
            return None
        return parse_maildirsize(data), info.st_size, info.st_mtime

    def usage(self) -> QuotaUsage | None:
        """Current usage and limits; None when the Maildir has no quota."""
        found = self._read()
        if found is None:
            return None
        parsed, size, _ = found
        if parsed is None or size > RECALC_SIZE:
            return self.recalculate()
        limits, storage, messages = parsed
        return QuotaUsage(storage, messages, limits)

    def check(self, storage: int, messages: int) -> None:
        """Raise OverQuota if adding ``storage`` octets in ``messages`` would exceed it."""
        found = self._read()
        if found is None:
            return
        parsed, size, mtime = found
        usage = None
        if parsed is not None and size <= RECALC_SIZE:
            usage = QuotaUsage(parsed[1], parsed[2], parsed[0])
            if _exceeds(usage, storage, messages) and time.time() - mtime > STALE_SECONDS:
                usage = None  # maybe stale: count again before refusing
        if usage is None:
            usage = self.recalculate()
        if usage is not None and _exceeds(usage, storage, messages):
            raise OverQuota("quota exceeded")

    def limits(self) -> QuotaLimits | None:
        """The definition line as it is now; None without a ``maildirsize``."""
        try:
            with open(self.path, "rb", opener=_nofollow) as handle:
                first = handle.readline(_MAX_FILE)
        except FileNotFoundError:
            return None
        return parse_limits(first.decode("ascii", "replace"))

    def append(self, storage: int, messages: int) -> int | None:
        """Append one usage line with one O_APPEND write, never recalculating;
        the file's size after it, or None without a ``maildirsize``."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        try:
            fsio.write_all(fd, format_delta(storage, messages))
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    def record(self, storage: int, messages: int) -> None:
        """Append one usage line (if there is a quota); recalculate when the file is big."""
        if storage == 0 and messages == 0:
            return
        size = self.append(storage, messages)
        if size is not None and size > RECALC_SIZE:
            self.recalculate()

    def recalculate(self) -> QuotaUsage | None:
        """Count the Maildir and rewrite ``maildirsize``; None if it has none."""
        with root_lock(self.root):
            found = self._read()
            if found is None:
                return None
            if found[0] is not None:
                limits = found[0][0]
            else:
                with open(self.path, "rb", opener=_nofollow) as handle:
                    limits = parse_limits(handle.readline().decode("ascii", "replace"))
            return self._rewrite(limits)

    def set_limits(self, limits: QuotaLimits) -> QuotaUsage:
        """Define (or change) the quota, counting the Maildir afresh."""
        with root_lock(self.root):
            return self._rewrite(limits)

    def _rewrite(self, limits: QuotaLimits) -> QuotaUsage:
        storage, messages = count_maildir(self.root)
        text = f"{format_limits(limits)}\n".encode("ascii") + format_delta(storage, messages)
        fsio.write_file_atomic(self.root, FILE_NAME, [text])
        return QuotaUsage(storage, messages, limits)


def _exceeds(usage: QuotaUsage, storage: int, messages: int) -> bool:
    limits = usage.limits
    if limits.storage is not None and storage > 0 and usage.storage + storage > limits.storage:
        return True
    return (limits.messages is not None and messages > 0
            and usage.messages + messages > limits.messages)


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)
