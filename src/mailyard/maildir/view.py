"""One session's view of a selected folder: what it has been told, and what to tell it next.

RFC 3501 §7.4.1 and §5.2: a session numbers messages by sequence, learns of
new ones through EXISTS, of expunged ones through EXPUNGE (or VANISHED,
RFC 7162 §3.2.10), and of flag changes by others through FETCH FLAGS. The
view keeps only what that needs: the uids the session knows (sequence
number n is ``uids[n - 1]``), the mod-sequence it has been brought up to,
and its \\Recent uids. ``uids`` is usually the folder's own array, shared
(the folder never changes that array in place), so an idle session costs a
few pointers whatever the folder's size.

``sync(expunges_allowed=False)`` is for the moments RFC 3501 §7.4.1 forbids
EXPUNGE (during FETCH, STORE, SEARCH by sequence number): expunged
messages then stay in the view as ghosts, keeping the numbering, until a
later sync may report them; ``Folder.info`` answers None for a ghost.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailyard.maildir.errors import FolderReset

if TYPE_CHECKING:
    from mailyard.maildir.folder import Folder, StoreMode, StoreResult

__all__ = ["View", "ViewUpdate"]


@dataclass(frozen=True, slots=True)
class ViewUpdate:
    """What to send, in this order: EXPUNGE per number (or VANISHED), EXISTS, RECENT, FETCH.

    ``expunged`` holds sequence numbers in descending order, so each is
    right when sent one after the other; ``vanished`` the same messages'
    uids. ``changed``: uids whose flags others changed.
    """

    expunged: tuple[int, ...] = ()
    vanished: tuple[int, ...] = ()
    exists: int | None = None
    recent: int | None = None
    changed: tuple[int, ...] = ()

    @property
    def empty(self) -> bool:
        return (not self.expunged and self.exists is None and self.recent is None
                and not self.changed)


class View:
    """A session's numbering of one folder. See the module doc."""

    __slots__ = ("_recent", "_recent_told", "_told", "folder", "modseq", "readonly", "uids",
                 "uidvalidity")

    def __init__(self, folder: Folder, *, readonly: bool = False) -> None:
        self.folder = folder
        self.readonly = readonly
        claimed = folder.sync(claim=not readonly)
        with folder.mutex:
            self.uids = folder.uids
            self.modseq = folder.highest_modseq
            self.uidvalidity = folder.uidvalidity
            self._recent = folder.unclaimed() if readonly else array("I", sorted(claimed))
        self._recent_told = len(self._recent)
        # Our own STOREs: uid -> the mod-sequence they got, not echoed back.
        self._told: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.uids)

    @property
    def recent(self) -> int:
        return len(self._recent)

    def seq_of(self, uid: int) -> int | None:
        pos = bisect_left(self.uids, uid)
        return pos + 1 if pos < len(self.uids) and self.uids[pos] == uid else None

    def uid_of(self, seq: int) -> int:
        if not 1 <= seq <= len(self.uids):
            raise IndexError(f"no message {seq}")
        return self.uids[seq - 1]

    def is_recent(self, uid: int) -> bool:
        pos = bisect_left(self._recent, uid)
        return pos < len(self._recent) and self._recent[pos] == uid

    def store(self, uids: Iterable[int], mode: StoreMode, flag_names: Iterable[str], *,
              unchanged_since: int | None = None) -> StoreResult:
        """STORE through the folder; the session answers its own STORE, so no echo later."""
        result = self.folder.store(uids, mode, flag_names, unchanged_since=unchanged_since)
        for uid in result.changed:
            self._told[uid] = result.modseq
        return result

    def sync(self, *, expunges_allowed: bool = True) -> ViewUpdate:
        """Catch up with the folder; what the session must be told."""
        folder = self.folder
        claimed = folder.sync(claim=not self.readonly)
        with folder.mutex:
            if folder.uidvalidity != self.uidvalidity:
                raise FolderReset("the mailbox's UIDVALIDITY changed")
            current = folder.uids
            old = self.uids
            gone, added = _difference(old, current)
            last = old[-1] if old else 0
            gone_set = set(gone)
            changed = tuple(uid for uid, modseq in folder.changes_since(self.modseq)
                            if uid <= last and uid not in gone_set
                            and self._told.get(uid) != modseq)
            self._update_recent(claimed, gone_set, folder)
            recent = self._recent_update()
            if gone and not expunges_allowed:
                self.uids = old + added if added else old
                exists = len(self.uids) if added else None
                return ViewUpdate(exists=exists, recent=recent, changed=changed)
            seqs = tuple(sorted((bisect_left(old, uid) + 1 for uid in gone), reverse=True))
            self.uids = current
            self.modseq = folder.highest_modseq
            self._told.clear()
            exists = len(current) if added else None
            return ViewUpdate(seqs, tuple(gone), exists, recent, changed)

    def _update_recent(self, claimed: tuple[int, ...], gone: set[int], folder: Folder) -> None:
        if self.readonly:
            self._recent = folder.unclaimed()
        elif claimed or (gone and self._recent):
            kept = [uid for uid in self._recent if uid not in gone]
            self._recent = array("I", sorted({*kept, *claimed}))

    def _recent_update(self) -> int | None:
        count = len(self._recent)
        if count == self._recent_told:
            return None
        self._recent_told = count
        return count


def _difference(old: array[int], current: array[int]) -> tuple[list[int], array[int]]:
    """(uids of ``old`` no longer in ``current``, uids of ``current`` above ``old``'s last)."""
    if current is old:
        return [], array("I")
    size = len(old)
    if len(current) >= size and current[:size] == old:
        return [], current[size:]
    present = set(current)
    gone = [uid for uid in old if uid not in present]
    start = bisect_right(current, old[-1]) if old else 0
    return gone, current[start:]
