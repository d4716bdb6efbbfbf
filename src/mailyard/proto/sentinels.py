"""What a core's ``next_event()`` returns when it has no event to give.

Shared by every protocol core (h11's pull model), so an adapter reads the
same three values whatever it serves:

* ``NEED_DATA`` — write ``data_to_send()``, then feed more bytes;
* ``AWAITING_REPLY`` — the last event still needs its answer;
* ``CLOSED`` — the session is over; write ``data_to_send()`` and close.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["AWAITING_REPLY", "CLOSED", "NEED_DATA", "Sentinel"]


class Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"
    AWAITING_REPLY = "AWAITING_REPLY"
    CLOSED = "CLOSED"

    def __repr__(self) -> str:
        return self.value


NEED_DATA: Final = Sentinel.NEED_DATA
AWAITING_REPLY: Final = Sentinel.AWAITING_REPLY
CLOSED: Final = Sentinel.CLOSED
