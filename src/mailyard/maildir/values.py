"""The values the folder API returns (folder.py), and STORE's modes."""

from __future__ import annotations

import enum
from array import array
from dataclasses import dataclass

__all__ = ["Columns", "FolderStatus", "MessageInfo", "StoreMode", "StoreResult"]


class StoreMode(enum.Enum):
    """RFC 3501 §6.4.6: FLAGS (replace), +FLAGS (add), -FLAGS (remove)."""

    REPLACE = "FLAGS"
    ADD = "+FLAGS"
    REMOVE = "-FLAGS"


@dataclass(frozen=True, slots=True)
class MessageInfo:
    uid: int
    flags: int
    size: int
    internal_date: int
    modseq: int


@dataclass(frozen=True, slots=True)
class Columns:
    """FETCH metadata for many messages at once, as parallel arrays."""

    uids: array[int]
    flags: array[int]
    sizes: array[int]
    dates: array[int]
    modseqs: array[int]


@dataclass(frozen=True, slots=True)
class FolderStatus:
    """RFC 3501 §6.3.10 / RFC 8438 / RFC 7162 STATUS items, plus the first unseen uid."""

    messages: int
    recent: int
    uidnext: int
    uidvalidity: int
    unseen: int
    size: int
    highest_modseq: int
    first_unseen: int | None


@dataclass(frozen=True, slots=True)
class StoreResult:
    """``modseq``: given to every changed message (0 if none changed).

    ``changed``: uids whose flags changed. ``modified``: uids refused by
    UNCHANGEDSINCE (RFC 7162 §3.1.3, the MODIFIED response code).
    """

    modseq: int
    changed: tuple[int, ...]
    modified: tuple[int, ...]
