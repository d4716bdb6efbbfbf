"""Reusing the files of completed messages (docs/design/queue.md, "free/").

A completed message's file is not unlinked: it is renamed into ``free/``
and emptied, and the next message to arrive takes it over (rename into
``tmp/``, then truncate). A busy queue then allocates and frees no inodes at
all. Why it matters: on ext4 without a journal, every inode allocation
skips the inodes freed in the last minute or more (``recently_deleted``), and
at a thousand deletions a second that scan became the largest single cost of
the whole server (measured with perf under bench/smtp_ingest.py: ingest fell
from about 1,000 to about 720 messages/s as deletions accumulated). On any
filesystem it saves the inode bitmap updates.

Nothing in ``free/`` is ever read as mail: a file there is garbage at any
moment, so a crash anywhere in this module loses nothing. ``trim`` keeps the
folder bounded (``recover`` calls it).
"""

from __future__ import annotations

import collections
import os
import threading
import time
from typing import Final

from mailyard import fsio
from mailyard.queue.ids import is_id
from mailyard.queue.layout import Layout

__all__ = ["FREE_KEEP", "Recycler"]

FREE_KEEP: Final = 4096  # free files kept at most: inodes only, they hold no data
_REFILL_EVERY: Final = 1.0  # seconds between listings of an empty free/


class Recycler:
    """Hands out free queue files; shared by the threads of one process,
    and safe against other processes claiming from the same folder."""

    def __init__(self, layout: Layout) -> None:
        self._layout = layout
        self._lock = threading.Lock()
        self._names: collections.deque[str] = collections.deque()
        self._listed_at = -_REFILL_EVERY

    def release(self, qid: str) -> bool:
        """Move ``mess/qid`` into free/ and empty it; False if it was gone.

        Renamed first and truncated after: a crash in between leaves only a
        stale file in free/, never an emptied message in mess/.
        """
        free = self._layout.free_file(qid)
        mess = self._layout.mess_file(qid)
        try:
            fsio.rename_into(mess, free)
        except FileNotFoundError:
            if not os.path.lexists(mess):
                return False  # completed or deleted already
            os.unlink(mess)  # no free/ folder (made by an older version): plain removal
            return True
        fsio.crash_point("queue.complete.recycle")
        try:
            os.truncate(free, 0)
        except FileNotFoundError:
            return True  # already claimed by a new message: it truncates too
        fsio.crash_point("queue.complete.truncate")
        with self._lock:
            self._names.append(qid)  # this process may reuse it without a listing
        return True

    def claim(self, target: str) -> int | None:
        """A free file renamed to ``target`` and opened empty for writing,
        or None when there is none (the caller creates a new file)."""
        while (name := self._next_name()) is not None:
            try:
                # The rename is the claim: of two claimants only one succeeds.
                fsio.rename_into(os.path.join(self._layout.free, name), target)
            except FileNotFoundError:
                continue  # another process took it
            fsio.crash_point("queue.begin.claim")
            flags = os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                return os.open(target, flags)
            except FileNotFoundError:
                continue  # a recovery took it for debris in that instant
        return None

    def _next_name(self) -> str | None:
        with self._lock:
            if not self._names:
                now = time.monotonic()
                if now - self._listed_at < _REFILL_EVERY:
                    return None
                self._listed_at = now
                self._names.extend(_free_names(self._layout))
            return self._names.popleft() if self._names else None

    def trim(self, keep: int = FREE_KEEP) -> int:
        """Unlink free files beyond ``keep``; the number removed."""
        removed = 0
        for name in _free_names(self._layout)[keep:]:
            try:
                os.unlink(os.path.join(self._layout.free, name))
            except FileNotFoundError:
                continue
            removed += 1
        return removed


def _free_names(layout: Layout) -> list[str]:
    try:
        return [name for name in os.listdir(layout.free) if is_id(name)]
    except FileNotFoundError:
        return []
