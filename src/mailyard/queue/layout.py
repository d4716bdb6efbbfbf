"""Where a queue's files live: one root with tmp/, mess/, state/ and free/.

``mess/`` is deliberately flat: ``fsio.DirSyncer`` can share one directory
fsync only among renames into the same directory (docs/design/queue.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

from mailyard.queue.ids import check_id

__all__ = ["FREE", "MESS", "STATE", "TMP", "Layout"]

TMP: Final = "tmp"
MESS: Final = "mess"
STATE: Final = "state"
FREE: Final = "free"  # emptied files of completed messages, reused (queue/recycle.py)


@dataclass(frozen=True, slots=True)
class Layout:
    root: str
    tmp: str
    mess: str
    state: str
    free: str

    @classmethod
    def at(cls, root: str) -> Layout:
        def sub(name: str) -> str:
            return os.path.join(root, name)

        return cls(root, sub(TMP), sub(MESS), sub(STATE), sub(FREE))

    # Each path helper re-checks the id: no path is ever built from an
    # unchecked string, whichever method asks.
    def tmp_file(self, qid: str) -> str:
        return os.path.join(self.tmp, check_id(qid))

    def mess_file(self, qid: str) -> str:
        return os.path.join(self.mess, check_id(qid))

    def state_file(self, qid: str) -> str:
        return os.path.join(self.state, check_id(qid))

    def free_file(self, qid: str) -> str:
        return os.path.join(self.free, check_id(qid))
