"""The last hour, minute by minute: deliveries and accepted messages.

Prometheus counters only grow; "how many deliveries failed in the last
hour" needs a window. Each process keeps a ring of 60 one-minute slots in
a small memory-mapped file of its own (``recent_<pid>.bin`` beside the
multiprocess metric files), so counting is a few stores into memory, with
no system call; ``mailyard status`` sums the slots of the last 60 minutes
over every file. The figures are for display: a slot read while another
process rewrites it may be off by one.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
from typing import Final

__all__ = ["FIELDS", "SLOTS", "WINDOW", "RecentWriter", "read_recent"]

FIELDS: Final = ("accepted", "ok", "deferred", "failed")
SLOTS: Final = 60  # one per minute
WINDOW: Final = SLOTS * 60  # seconds covered
_RECORD: Final = struct.Struct("<" + "q" * (1 + len(FIELDS)))  # minute, then the counts
_SIZE: Final = SLOTS * _RECORD.size
_PREFIX: Final = "recent_"
_SUFFIX: Final = ".bin"
_MAX_FILES: Final = 10000  # a folder with more is not ours to sum


class RecentWriter:
    """This process's ring in ``directory``; safe to share between threads."""

    def __init__(self, directory: str, pid: int | None = None) -> None:
        name = f"{_PREFIX}{os.getpid() if pid is None else pid}{_SUFFIX}"
        fd = os.open(os.path.join(directory, name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if os.fstat(fd).st_size != _SIZE:
                os.ftruncate(fd, _SIZE)
            self._map = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)
        self._lock = threading.Lock()

    def add(self, what: str, now: float, count: int = 1) -> None:
        """Count ``count`` of ``what`` (one of FIELDS) in the minute of ``now``."""
        index = FIELDS.index(what)
        minute = int(now // 60)
        offset = (minute % SLOTS) * _RECORD.size
        with self._lock:
            stamp, *counts = _RECORD.unpack_from(self._map, offset)
            if stamp != minute:
                counts = [0] * len(FIELDS)  # the slot held a minute an hour old or more
            counts[index] += count
            _RECORD.pack_into(self._map, offset, minute, *counts)

    def close(self) -> None:
        with self._lock:
            self._map.close()


def _sum_file(data: bytes, first: int, last: int, totals: dict[str, int]) -> None:
    for offset in range(0, min(len(data), _SIZE) - _RECORD.size + 1, _RECORD.size):
        stamp, *counts = _RECORD.unpack_from(data, offset)
        if first <= stamp <= last:
            for name, value in zip(FIELDS, counts, strict=True):
                totals[name] += max(value, 0)


def read_recent(directory: str, now: float) -> dict[str, int]:
    """Totals over the last WINDOW seconds (this minute included), every process."""
    totals = dict.fromkeys(FIELDS, 0)
    last = int(now // 60)
    first = last - SLOTS + 1
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return totals
    names = [e.name for e in entries if e.name.startswith(_PREFIX) and e.name.endswith(_SUFFIX)]
    for name in names[:_MAX_FILES]:
        try:
            with open(os.path.join(directory, name), "rb") as file:
                data = file.read(_SIZE)
        except FileNotFoundError:
            continue  # a server start is wiping the folder
        _sum_file(data, first, last, totals)
    return totals
