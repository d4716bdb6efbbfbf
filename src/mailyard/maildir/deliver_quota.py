"""Delivery with Maildir++ quota accounting that stays exact (README.maildirquota).

``maildirsize`` is a definition line and a list of deltas, each appended with
one ``write`` on an O_APPEND descriptor, so concurrent deliveries never lose
or tear each other's lines. What could make it wrong is a recalculation
running meanwhile: if a delivery's file is counted by the recount and its
delta is then appended to the fresh file, the message counts twice; if the
file is renamed into ``new/`` after the count and the delta goes to the old
file, it counts not at all. So a delivery holds the root lock *shared* from
before the rename until its delta is written, and a recalculation holds it
exclusively (``Quota.recalculate`` takes ``root_lock``): deliveries run side
by side, a recount sees either all of a delivery or none of it.

Lock order (maildir/lock.py): nothing else is taken while the shared lock is
held; a recalculation that the delta made due runs after it is released,
otherwise a process would wait on its own shared lock.

The quota warning marker is Courier's ``quotawarn`` in the root: its mtime
is when the user was last warned.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from typing import BinaryIO, Final

from mailyard import fsio
from mailyard.maildir.deliver import deliver
from mailyard.maildir.lock import ROOT_LOCK, root_lock
from mailyard.maildir.quota import RECALC_SIZE, Quota, QuotaLimits

__all__ = [
    "WARN_FILE",
    "claim_warning",
    "deliver_counted",
    "ensure_limits",
    "shared_root_lock",
]

WARN_FILE: Final = "quotawarn"


@contextlib.contextmanager
def shared_root_lock(root: str) -> Iterator[None]:
    """``flock(LOCK_SH)`` on the root lock file: excludes recalculations only."""
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(os.path.join(root, ROOT_LOCK), flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        # Closing the descriptor releases the lock.
        os.close(fd)


def ensure_limits(root: str, limits: QuotaLimits, *, track: bool) -> Quota:
    """Make the ``maildirsize`` definition say ``limits``.

    A Maildir without the file gets one (counted afresh) only when there is
    a limit or ``track`` asks for usage to be kept (a per-domain total); a
    file whose definition differs is rewritten with a recount, so a quota
    the administrator changed takes effect at the next delivery.
    """
    quota = Quota(root)
    current = quota.limits()
    if current is None:
        if track or limits != QuotaLimits():
            quota.set_limits(limits)
    elif current != limits:
        quota.set_limits(limits)
    return quota


def deliver_counted(
    root: str,
    folder: str,
    prefix: bytes,
    body: BinaryIO,
    size: int,
    *,
    hostname: str,
    syncer: fsio.DirSyncer | None = None,
) -> str:
    """Deliver into the Maildir ``folder`` (the root or one of its folders)
    and add the message to the root's ``maildirsize``; the name in ``new/``."""
    quota = Quota(root)
    with shared_root_lock(root):
        name = deliver(folder, prefix, body, size, hostname=hostname, syncer=syncer)
        grown = quota.append(len(prefix) + size, 1)
    if grown is not None and grown > RECALC_SIZE:
        quota.recalculate()
    return name


def claim_warning(root: str, now: float, interval: float) -> bool:
    """True (and the marker set to ``now``) when no warning was given within
    ``interval`` seconds; decided under the root lock, so two deliveries do
    not both warn."""
    path = os.path.join(root, WARN_FILE)
    with root_lock(root):
        try:
            last = os.stat(path, follow_symlinks=False).st_mtime
        except FileNotFoundError:
            last = None
        # A marker from the future (a clock set back) counts as stale.
        if last is not None and 0 <= now - last < interval:
            return False
        fsio.write_file_atomic(root, WARN_FILE, [b""])
        os.utime(path, (now, now), follow_symlinks=False)
    return True
