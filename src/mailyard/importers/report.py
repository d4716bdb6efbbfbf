"""What an import did: created items, items it could not map, and notes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

__all__ = ["Created", "ImportReport", "Progress", "Unmapped", "no_progress"]

# Called as progress(done, total) while an applier works through its items.
Progress: TypeAlias = Callable[[int, int], None]


def no_progress(done: int, total: int) -> None:
    """The default progress callback: says nothing."""


@dataclass(frozen=True, slots=True)
class Created:
    """Something the import created (or, in a dry run, would create)."""

    kind: str  # "domain", "owner", "mailbox", "alias", "folder" …
    item: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Unmapped:
    """A source item mailyard has no place for, and why."""

    item: str
    reason: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    """The outcome of one import; ``dry_run`` means nothing was changed."""

    created: tuple[Created, ...] = ()
    unmapped: tuple[Unmapped, ...] = ()
    notes: tuple[str, ...] = ()
    dry_run: bool = False

    def to_json(self) -> dict[str, object]:
        """A plain structure for ``--json``."""
        return {
            "dry_run": self.dry_run,
            "created": [
                {"kind": c.kind, "item": c.item, "detail": c.detail} for c in self.created
            ],
            "unmapped": [{"item": u.item, "reason": u.reason} for u in self.unmapped],
            "notes": list(self.notes),
        }
