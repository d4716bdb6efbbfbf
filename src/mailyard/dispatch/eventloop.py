"""Which asyncio event loop a process runs: the standard one or uvloop.

uvloop is an optional speed-up (``pip install 'mailyard[uvloop]'``) chosen
with ``[server] event_loop = "uvloop"``; every process that runs a loop
(the supervisor, its workers, the delivery worker) starts it through
``run``, so they all follow the same setting. Asking for uvloop where it is
not installed is refused at start (``serve --check`` says so) rather than
silently ignored: an operator who measured with it must not get the other
loop unawares.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

__all__ = ["EVENT_LOOPS", "EventLoopError", "check_event_loop", "run"]

EVENT_LOOPS: Final = ("asyncio", "uvloop")

_T = TypeVar("_T")


class EventLoopError(ValueError):
    """The configured event loop cannot be used here."""


def check_event_loop(kind: str) -> None:
    """Raise EventLoopError unless ``kind`` names a loop this machine has."""
    if kind not in EVENT_LOOPS:
        raise EventLoopError(f"server.event_loop must be one of {', '.join(EVENT_LOOPS)}")
    if kind == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise EventLoopError(
            'server.event_loop = "uvloop" but uvloop is not installed '
            "(pip install 'mailyard[uvloop]')"
        )


def run(main: Coroutine[Any, Any, _T], kind: str = "asyncio") -> _T:
    """``asyncio.run(main)`` on the chosen loop."""
    check_event_loop(kind)
    if kind == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
