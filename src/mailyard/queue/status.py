"""Per-recipient outcomes and the append-only state file that records them.

One line per outcome, ``<index> <code> <text>\\n`` (docs/design/queue.md,
"State file"). The latest line per recipient wins; a torn last line (a crash
mid-append) and complete lines that do not parse are ignored, because
ignoring a record can only repeat an attempt (at-least-once), never lose one.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from mailyard.queue.errors import QueueCorrupt

__all__ = [
    "Outcome",
    "RecipientState",
    "RecipientStatus",
    "encode_records",
    "parse_records",
    "summarize",
]

_CODES: Final = frozenset({"D", "T", "B"})
_CODE_OF: Final[dict[bytes, Literal["D", "T", "B"]]] = {b"D": "D", b"T": "T", b"B": "B"}
# Index without leading zeros (so one number has one spelling), one code
# letter, optional text; nine digits is far beyond any recipient limit.
_LINE: Final = re.compile(rb"(0|[1-9][0-9]{0,8}) ([DTB])(?: (.*))?", re.DOTALL)
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


class RecipientState(enum.Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


_STATE_OF: Final = {
    "D": RecipientState.DELIVERED,
    "T": RecipientState.PENDING,
    "B": RecipientState.FAILED,
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One delivery attempt's result for one recipient (qmail-local's 0/111/100)."""

    code: Literal["D", "T", "B"]  # delivered / temporary failure (still pending) / bounced
    text: str

    def __post_init__(self) -> None:
        if self.code not in _CODES:
            raise ValueError(f"outcome code must be D, T or B, not {self.code!r}")
        if not isinstance(self.text, str):
            raise ValueError("outcome text must be a string")


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    index: int
    address: str
    state: RecipientState
    attempts: int  # lines recorded for this recipient: every T plus a final D or B
    last_error: str | None  # text of the latest line if it is T or B


def encode_records(outcomes: Iterable[tuple[int, Outcome]]) -> bytes:
    """The lines to append for ``outcomes``.

    Control characters in a text become spaces: a remote server's multi-line
    reply must not be able to forge or split a record.
    """
    lines = []
    for index, outcome in outcomes:
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"bad recipient index {index!r}")
        text = _CONTROL.sub(" ", outcome.text)
        line = f"{index} {outcome.code} {text}\n"
        lines.append(line.encode("utf-8", "backslashreplace"))
    return b"".join(lines)


def parse_records(data: bytes, count: int) -> list[tuple[int, Outcome]]:
    """Every intact record in file order, for a message with ``count`` recipients.

    Raises QueueCorrupt only for a well-formed line naming a recipient the
    envelope does not have: tearing cannot produce one (docs/design/queue.md).
    """
    lines = data.split(b"\n")
    # The piece after the last newline is empty or a torn append: ignored.
    records = []
    for line in lines[:-1]:
        match = _LINE.fullmatch(line)
        if match is None:
            continue
        index = int(match.group(1))
        if index >= count:
            raise QueueCorrupt(f"state record for recipient {index} of {count}")
        text = (match.group(3) or b"").decode("utf-8", "replace")
        records.append((index, Outcome(_CODE_OF[match.group(2)], text)))
    return records


def summarize(
    recipients: Sequence[str], records: Iterable[tuple[int, Outcome]]
) -> tuple[RecipientStatus, ...]:
    """Fold records into one status per recipient: the latest record wins."""
    attempts = [0] * len(recipients)
    latest: list[Outcome | None] = [None] * len(recipients)
    for index, outcome in records:
        attempts[index] += 1
        latest[index] = outcome
    statuses = []
    for index, address in enumerate(recipients):
        last = latest[index]
        if last is None:
            statuses.append(RecipientStatus(index, address, RecipientState.PENDING, 0, None))
            continue
        error = None if last.code == "D" else last.text
        statuses.append(
            RecipientStatus(index, address, _STATE_OF[last.code], attempts[index], error)
        )
    return tuple(statuses)
