"""An IMAP session in-process, over a loopback socket: a bug in one handler
(planted through the dispatch table, our own seam) is logged, answered
NO [SERVERBUG] and BYE [SERVERBUG], and the next session is served."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mailyard.config import ListenAddress, load_config
from mailyard.directory.store import Directory
from mailyard.proto.imap import commands as c
from mailyard.proto.imap.events import Command
from mailyard.queue.store import Queue
from mailyard.server.context import ServerContext
from mailyard.server.imap import dispatch
from mailyard.server.imap.state import Session
from mailyard.server.imapd import ImapService
from mailyard.server.limits import ConnectionLimiter
from mailyard.server.listener import ListenerKind, Service, bind
from mailyard.server.throttle import LoginThrottle
from tests.e2e.server import PASSWORD, imap_state

USER = "i1@example.test"


@pytest.fixture
def context(tmp_path: Path) -> Iterator[ServerContext]:
    state = imap_state(tmp_path / "state", users=(USER,))
    config = load_config(str(state))
    directory = Directory.open(config.path("directory.sqlite"))
    io_pool, auth_pool = ThreadPoolExecutor(2), ThreadPoolExecutor(1)
    yield ServerContext(
        config=config, directory=directory, queue=Queue(config.path("queue")),
        io_pool=io_pool, auth_pool=auth_pool, throttle=LoginThrottle(5, 300, 0.0),
        account_throttle=LoginThrottle(5, 300, 0.0), notify_queue=lambda qid: None)
    io_pool.shutdown()
    auth_pool.shutdown()
    directory.close()


async def _talk(port: int, lines: list[bytes], until: bytes) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    got = [await reader.readline()]
    writer.write(b"".join(lines))
    while True:
        line = await asyncio.wait_for(reader.readline(), 20)
        got.append(line)
        if not line or line.startswith(until):
            break
    rest = await asyncio.wait_for(reader.read(), 20)
    writer.close()
    return [*got, rest]


def test_a_bug_ends_only_its_own_session(context: ServerContext, monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:
    async def broken(s: Session, cmd: Command) -> None:
        raise RuntimeError("planted bug")

    monkeypatch.setitem(dispatch.HANDLERS, c.Check, broken)

    async def scenario() -> tuple[list[bytes], list[bytes]]:
        service = ImapService(context)
        listener = Service("imap", ListenerKind.PLAIN, ConnectionLimiter(10, 10),
                           refuse=b"", internal_error=b"", session=service.serve)
        server = await bind(listener, ListenAddress("127.0.0.1", 0), set())
        port = server.sockets[0].getsockname()[1]
        login = f'a LOGIN {USER} "{PASSWORD}"\r\nb SELECT INBOX\r\n'.encode()
        first = await _talk(port, [login, b"c CHECK\r\n"], b"* BYE")
        second = await _talk(port, [login, b"c NOOP\r\nd LOGOUT\r\n"], b"d OK")
        server.close()
        await server.wait_closed()
        await service.stop()
        return first, second

    first, second = asyncio.run(scenario())
    assert first[-3:] == [b"c NO [SERVERBUG] internal error\r\n",
                          b"* BYE [SERVERBUG] internal server error\r\n", b""]
    bye = b"* BYE " + context.config.hostname.encode() + b" logging out\r\n"
    assert second[-3:-1] == [bye, b"d OK LOGOUT completed\r\n"]
    errors = [r for r in caplog.records if getattr(r, "event_name", "") == "imap.error"]
    assert len(errors) == 1 and errors[0].exc_info is not None  # logged with its stack
