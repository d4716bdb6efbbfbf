"""Start-up scan of the queue (qmail-send's cleanup of S2/S3 debris).

``recover()`` removes receive debris from ``tmp/`` once it is old, removes
state files whose message is gone, makes the entries of ``mess/`` and
``state/`` durable, and lists every committed message. It never removes
anything from ``mess/`` (docs/design/queue.md, "What a crash leaves").
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from mailyard import fsio
from mailyard.log import event
from mailyard.queue.ids import is_id
from mailyard.queue.layout import Layout

__all__ = ["RecoveryReport", "committed_ids", "recover"]


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    pending: tuple[str, ...]  # every committed id, oldest first
    removed_debris: int  # old tmp/ files (interrupted receptions)
    removed_orphans: int  # state/ files without a message


def _names(directory: str) -> list[str]:
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []  # layout not created yet: an empty queue


def committed_ids(layout: Layout) -> list[str]:
    """Ids in ``mess/``, oldest first (ids sort by creation time)."""
    return sorted(name for name in _names(layout.mess) if is_id(name))


def _remove_debris(layout: Layout, now: float, debris_age: float) -> int:
    removed = 0
    for name in _names(layout.tmp):
        path = os.path.join(layout.tmp, name)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue  # committed or aborted meanwhile
        # A younger file may be a live reception in another process (a CLI
        # injector); the mtime moves with every body write.
        if stat.S_ISDIR(info.st_mode) or now - info.st_mtime <= debris_age:
            continue
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        fsio.crash_point("queue.recover.unlink_debris")
        removed += 1
    return removed


def _remove_orphans(layout: Layout) -> int:
    removed = 0
    for name in _names(layout.state):
        if not is_id(name) or os.path.lexists(layout.mess_file(name)):
            continue
        # The message was completed or deleted and the process died before
        # the state unlink (S5); nothing refers to this file any more.
        try:
            os.unlink(layout.state_file(name))
        except FileNotFoundError:
            continue
        fsio.crash_point("queue.recover.unlink_orphan")
        removed += 1
    return removed


def recover(layout: Layout, now: float, debris_age: float) -> RecoveryReport:
    removed_debris = _remove_debris(layout, now, debris_age)
    removed_orphans = _remove_orphans(layout)
    # A process that died between a rename into mess/ (or the creation of a
    # state file) and its directory sync left entries whose durability is
    # unknown; one sync each makes them durable before anything relies on them.
    for directory in (layout.mess, layout.state):
        if os.path.isdir(directory):
            fsio.fsync_dir(directory)
    pending = tuple(committed_ids(layout))
    if removed_debris or removed_orphans:
        event("queue.recover", pending=len(pending), debris=removed_debris,
              orphans=removed_orphans)
    return RecoveryReport(pending, removed_debris, removed_orphans)
