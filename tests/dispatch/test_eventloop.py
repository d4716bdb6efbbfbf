"""The [server] event_loop choice: both loops run a coroutine; unknown or
missing loops are refused with a clear message."""

from __future__ import annotations

import asyncio

import pytest

from mailyard.dispatch.eventloop import EventLoopError, check_event_loop, run


async def _loop_name() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_the_standard_loop() -> None:
    assert run(_loop_name(), "asyncio").startswith("asyncio")


def test_uvloop_when_installed() -> None:
    pytest.importorskip("uvloop")
    assert run(_loop_name(), "uvloop").startswith("uvloop")


def test_unknown_loop_is_refused() -> None:
    with pytest.raises(EventLoopError, match="one of asyncio, uvloop"):
        check_event_loop("trio")
