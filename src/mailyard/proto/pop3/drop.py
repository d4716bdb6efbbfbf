"""The session's view of the maildrop: numbering, deletion marks, listings.

RFC 1939 §5: once the maildrop is opened its messages are numbered from 1
and keep their numbers for the whole session; a message marked deleted is
left out of STAT, LIST and UIDL but its number is never reused, and any
reference to it is an error. RSET clears the marks; only QUIT (the UPDATE
state, §6) hands them to the adapter. Sizes are the adapter's (the exact
octet count of the message as RETR sends it, before dot-stuffing).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from mailyard.proto.pop3.commands import CommandError
from mailyard.proto.pop3.replies import (
    ERR_ALREADY_DELETED,
    ERR_MESSAGE_DELETED,
    ERR_NO_SUCH_MESSAGE,
)

__all__ = ["DropEntry", "Maildrop"]

# RFC 1939 §7 UIDL: 1 to 70 characters in the range 0x21 to 0x7E.
_UID_RE: Final = re.compile(r"[\x21-\x7e]{1,70}")


@dataclass(frozen=True, slots=True)
class DropEntry:
    """One message as the adapter found it at login. Invalid values raise
    ``ValueError``: a negative size, or a uid that RFC 1939 §7 forbids."""

    size: int
    uid: str

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError("message size must be >= 0")
        if not _UID_RE.fullmatch(self.uid):
            raise ValueError(f"invalid POP3 unique-id {self.uid!r}")


class Maildrop:
    """Messages numbered from 1, with this session's deletion marks."""

    def __init__(self, entries: Sequence[DropEntry]) -> None:
        self._entries = tuple(entries)
        # RFC 1939 §7: a unique-id names one message within the maildrop.
        if len({entry.uid for entry in self._entries}) != len(self._entries):
            raise ValueError("duplicate unique-id in the maildrop")
        self._deleted: set[int] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def index(self, number: int) -> int:
        """The 0-based index of live message ``number``; raises ``CommandError``."""
        if not 1 <= number <= len(self._entries):
            raise CommandError(ERR_NO_SUCH_MESSAGE)
        if number - 1 in self._deleted:
            raise CommandError(ERR_MESSAGE_DELETED)
        return number - 1

    def entry(self, number: int) -> DropEntry:
        return self._entries[self.index(number)]

    def delete(self, number: int) -> None:
        """Mark message ``number`` (RFC 1939 §5 DELE)."""
        if 1 <= number <= len(self._entries) and number - 1 in self._deleted:
            raise CommandError(ERR_ALREADY_DELETED)
        self._deleted.add(self.index(number))

    def reset(self) -> None:
        """RFC 1939 §5 RSET: unmark everything."""
        self._deleted.clear()

    @property
    def deleted(self) -> tuple[int, ...]:
        """0-based indices of the marked messages, ascending."""
        return tuple(sorted(self._deleted))

    def _live(self) -> list[tuple[int, DropEntry]]:
        return [(i + 1, entry) for i, entry in enumerate(self._entries) if i not in self._deleted]

    def totals(self) -> tuple[int, int]:
        """(count, octets) of the messages not marked (RFC 1939 §5 STAT)."""
        live = self._live()
        return len(live), sum(entry.size for _, entry in live)

    def scan_listing(self) -> list[str]:
        """RFC 1939 §5 LIST: "number size" per message not marked."""
        return [f"{number} {entry.size}" for number, entry in self._live()]

    def uid_listing(self) -> list[str]:
        """RFC 1939 §7 UIDL: "number unique-id" per message not marked."""
        return [f"{number} {entry.uid}" for number, entry in self._live()]
