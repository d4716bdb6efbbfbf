"""STORE and EXPUNGE make one trip to the io pool each: the store work and the view's sync
that ``complete`` needs run in the same hop (updates.sync_view), and the answers stay the
ones RFC 9051 asks for (FETCH for the STORE, EXPUNGE for the removed message)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mailyard.config import ListenAddress, load_config
from mailyard.directory.store import Directory
from mailyard.queue.store import Queue
from mailyard.server.context import ServerContext
from mailyard.server.imapd import ImapService
from mailyard.server.limits import ConnectionLimiter
from mailyard.server.listener import ListenerKind, Service, bind
from mailyard.server.throttle import LoginThrottle
from tests.e2e.server import PASSWORD, imap_state

USER = "t1@example.test"


class _CountingPool(ThreadPoolExecutor):
    """A real pool that counts the work handed to it."""

    submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
def context(tmp_path: Path) -> Iterator[ServerContext]:
    state = imap_state(tmp_path / "state", users=(USER,))
    config = load_config(str(state))
    directory = Directory.open(config.path("directory.sqlite"))
    io_pool, auth_pool = _CountingPool(2), ThreadPoolExecutor(1)
    yield ServerContext(
        config=config, directory=directory, queue=Queue(config.path("queue")),
        io_pool=io_pool, auth_pool=auth_pool, throttle=LoginThrottle(5, 300, 0.0),
        account_throttle=LoginThrottle(5, 300, 0.0), notify_queue=lambda qid: None)
    io_pool.shutdown()
    auth_pool.shutdown()
    directory.close()


async def _command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   line: bytes) -> list[bytes]:
    writer.write(line + b"\r\n")
    return await _until(reader, line.split(b" ", 1)[0] + b" ")


async def _until(reader: asyncio.StreamReader, tag: bytes) -> list[bytes]:
    got: list[bytes] = []
    while True:
        answer = await asyncio.wait_for(reader.readline(), 20)
        assert answer, got
        got.append(answer)
        if answer.startswith(tag):
            return got


def test_store_and_expunge_take_one_trip_each(context: ServerContext) -> None:
    pool = context.io_pool
    assert isinstance(pool, _CountingPool)
    message = b"Subject: hello\r\n\r\nbody\r\n"

    async def scenario() -> dict[str, tuple[int, list[bytes]]]:
        service = ImapService(context)
        listener = Service("imap", ListenerKind.PLAIN, ConnectionLimiter(10, 10),
                           refuse=b"", internal_error=b"", session=service.serve)
        server = await bind(listener, ListenAddress("127.0.0.1", 0), set())
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()
        await _command(reader, writer, f'a LOGIN {USER} "{PASSWORD}"'.encode())
        await _command(reader, writer, b"b SELECT INBOX")
        writer.write(b"c APPEND INBOX (\\Seen) {%d}\r\n" % len(message))
        assert (await reader.readline()).startswith(b"+")
        writer.write(message + b"\r\n")
        await _until(reader, b"c ")
        await _command(reader, writer, b"d NOOP")
        seen: dict[str, tuple[int, list[bytes]]] = {}
        for name, line in (("store", b"e STORE 1 +FLAGS (\\Deleted)"),
                           ("expunge", b"f EXPUNGE")):
            before = pool.submitted
            answers = await _command(reader, writer, line)
            seen[name] = (pool.submitted - before, answers)
        await _command(reader, writer, b"g LOGOUT")
        writer.close()
        server.close()
        await server.wait_closed()
        await service.stop()
        return seen

    seen = asyncio.run(scenario())
    trips, answers = seen["store"]
    assert trips == 1
    assert answers[0].startswith(b"* 1 FETCH (FLAGS (") and b"\\Deleted" in answers[0]
    assert answers[-1].startswith(b"e OK")
    trips, answers = seen["expunge"]
    assert trips == 1
    assert answers == [b"* 1 EXPUNGE\r\n", answers[-1]] and answers[-1].startswith(b"f OK")
