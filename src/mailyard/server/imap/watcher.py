"""One watcher per process wakes the sessions idling on a folder (RFC 2177).

IDLE costs a session no thread and no loop of its own: it registers a
wake-up callback here and waits for the client. A single task stats
``new/``, ``cur/`` and the uid list of every folder that has idling
sessions, every ``interval`` seconds (0.25 by default), in the io pool;
when a stamp moved it calls the callbacks of that folder, and the
sessions sync their views and tell their clients. A delivery, another
session's STORE or EXPUNGE, POP3's deletions: each changes one of these.

Directory mtimes tick coarsely: two changes within one tick leave the
mtime as the first one set it. So a stamp less than a second old when it
was read is not trusted: its folder's sessions are woken once more on the
next round (a sync that finds nothing costs a few ``stat`` calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeAlias

from mailyard.log import event

__all__ = ["INTERVAL", "FolderWatcher", "Stamp", "folder_stamp"]

INTERVAL: Final = 0.25
_SETTLE_NS: Final = 1_000_000_000
_WATCHED: Final = ("new", "cur", "mailyard-uidlist")

Stamp: TypeAlias = tuple[int, ...]
Runner: TypeAlias = Callable[[Callable[[], dict[str, tuple[Stamp, bool]]]],
                             Awaitable[dict[str, tuple[Stamp, bool]]]]


def folder_stamp(path: str, now_ns: int) -> tuple[Stamp, bool]:
    """What the folder's directories and uid list look like, and whether
    that is settled (every mtime at least a second older than ``now_ns``)."""
    values: list[int] = []
    settled = True
    for name in _WATCHED:
        try:
            info = os.stat(os.path.join(path, name))
        except FileNotFoundError:
            values += (0, 0, 0)  # deleted or renamed: the sessions find out when they sync
            continue
        values += (info.st_mtime_ns, info.st_ino, info.st_size)
        if now_ns - info.st_mtime_ns < _SETTLE_NS:
            settled = False
    return tuple(values), settled


class FolderWatcher:
    """See the module doc. ``run`` executes the stat round off the event loop."""

    def __init__(self, run: Runner, interval: float = INTERVAL) -> None:
        self._run = run
        self.interval = interval
        self._wakers: dict[str, set[Callable[[], None]]] = {}
        self._stamps: dict[str, tuple[Stamp, bool]] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def watched(self) -> int:
        return len(self._wakers)

    def watch(self, path: str, wake: Callable[[], None]) -> None:
        self._wakers.setdefault(path, set()).add(wake)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())

    def unwatch(self, path: str, wake: Callable[[], None]) -> None:
        wakers = self._wakers.get(path)
        if wakers is None:
            return
        wakers.discard(wake)
        if not wakers:
            del self._wakers[path]
            self._stamps.pop(path, None)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _stat_all(self, paths: list[str]) -> dict[str, tuple[Stamp, bool]]:
        now = time.time_ns()
        return {path: folder_stamp(path, now) for path in paths}

    async def _loop(self) -> None:
        while self._wakers:
            await asyncio.sleep(self.interval)
            paths = list(self._wakers)
            try:
                stamps = await self._run(functools.partial(self._stat_all, paths))
            except OSError as exc:
                event("imap.watch_failed", level=logging.ERROR, error=str(exc))
                continue
            for path, (stamp, settled) in stamps.items():
                before = self._stamps.get(path)
                if path not in self._wakers:
                    continue
                self._stamps[path] = (stamp, settled)
                # On the first look only a recent change may have come after
                # the sessions synced (they sync when they begin to idle).
                changed = not settled if before is None else before[0] != stamp or not before[1]
                if changed:
                    for wake in list(self._wakers.get(path, ())):
                        wake()
