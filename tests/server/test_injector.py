"""The queue writer and its client: the wire protocol, commits, aborts, failures.

The writer (``QueueServer``) runs on the test's event loop on a real Unix
socket; the client (``RemoteQueue``) makes its blocking calls from a
thread, as the SMTP side's io pool does.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.config import load_config
from mailyard.queue.store import Envelope, Queue
from mailyard.server.injector import FLUSH_AT, QueueServer
from mailyard.server.injector_client import RemoteQueue
from mailyard.server.injector_wire import (
    MAX_FRAME,
    Request,
    Verb,
    WriterError,
    encode_reply,
    encode_request,
    parse_reply,
    parse_request,
)

T = TypeVar("T")
ENVELOPE = Envelope("sender@example.org", ("alice@example.test", "bob@example.test"),
                    time.time())

# -- the wire ------------------------------------------------------------------------

ids = st.builds(lambda _: Queue.new_id(), st.integers())
lengths = st.integers(0, MAX_FRAME)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    verb = draw(st.sampled_from(list(Verb)))
    qid = draw(ids) if verb in (Verb.BEGIN, Verb.BODY) else ""
    count = {Verb.BEGIN: 1, Verb.BODY: 0, Verb.DATA: 1, Verb.COMMIT: 3, Verb.ABORT: 0}[verb]
    return Request(verb, qid, tuple(draw(lengths) for _ in range(count)))


@given(requests())
def test_requests_round_trip(request: Request) -> None:
    line = encode_request(request)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert parse_request(line) == request


@given(st.binary(max_size=300))
def test_garbage_requests_raise_value_error_only(line: bytes) -> None:
    try:
        parse_request(line)
    except ValueError:
        pass


@given(st.binary(max_size=300))
def test_garbage_replies_raise_value_or_writer_error_only(line: bytes) -> None:
    try:
        parse_reply(line)
    except (ValueError, WriterError):
        pass


@given(ids)
def test_replies_round_trip(qid: str) -> None:
    assert parse_reply(encode_reply(qid)) == qid
    assert parse_reply(encode_reply("")) == ""


@given(st.text(max_size=400))
def test_an_error_reply_is_one_line_and_raises(text: str) -> None:
    line = encode_reply(None, text)
    assert line.count(b"\n") == 1
    with pytest.raises(WriterError):
        parse_reply(line)


@pytest.mark.parametrize("line", [
    b"BEGIN\n", b"BEGIN x\n", b"BEGIN x 1 2\n", b"DATA -1\n", b"DATA 1e3\n",
    b"COMMIT 1 2\n", b"ABORT 1\n", b"DATA 99999999999\n", b"begin x 1\n", b"DATA  1\n",
    b"DATA 17000000\n",
])
def test_malformed_requests_are_refused(line: bytes) -> None:
    with pytest.raises(ValueError):
        parse_request(line)


# -- the writer and its client ----------------------------------------------------------


class Site:
    """A state folder with a running queue writer."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        (root / "mailyard.toml").write_text("")
        self.config = load_config(str(root))
        self.path = str(root / "queue.sock")
        self.notified: list[str] = []
        self.queue = Queue(self.config.path("queue"))
        self.client = RemoteQueue(self.path, timeout=30)
        self.server: QueueServer | None = None

    async def start(self) -> QueueServer:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        listener.listen(16)
        listener.setblocking(False)
        self.server = QueueServer(self.config, self.notified.append)
        await self.server.start({"queue": [listener]})
        return self.server

    def files(self, part: str) -> list[str]:
        return sorted(p.name for p in Path(self.config.path("queue", part)).iterdir())


@asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[Site]:
    site = Site(tmp_path / "state")
    server = await site.start()
    try:
        yield site
    finally:
        await asyncio.to_thread(site.client.close)
        await server.stop(1.0)


def blocking(func: Callable[[], T]) -> asyncio.Future[T] | asyncio.Task[T]:
    return asyncio.ensure_future(asyncio.to_thread(func))


def body_of(site: Site, qid: str) -> bytes:
    with site.queue.open_body(qid) as file:
        return file.read()


def test_a_message_is_on_disk_when_the_commit_returns(tmp_path: Path) -> None:
    big = b"x" * (FLUSH_AT + 1000) + b"\r\n"

    async def scenario() -> None:
        async with running(tmp_path) as site:
            def send() -> str:
                writer = site.client.begin(ENVELOPE, site.client.new_id())
                writer.write(b"Subject: hi\r\n\r\n")
                writer.write(big)
                return writer.commit()

            qid = await blocking(send)
            assert site.queue.list_ids() == [qid]
            assert site.queue.load(qid).envelope == ENVELOPE
            assert body_of(site, qid) == b"Subject: hi\r\n\r\n" + big
            assert site.notified == [qid]
            assert site.server is not None
            assert site.server.counters["queue_writer_committed"] == 1

    asyncio.run(scenario())


def test_body_first_messages_get_their_envelope_at_the_commit(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as site:
            def send(parts: list[bytes]) -> str:
                writer = site.client.begin_body_first()
                for part in parts:
                    writer.write(part)
                return writer.commit(ENVELOPE, b"Received: head\r\n", b"tail\r\n")

            small = await blocking(lambda: send([]))
            large = await blocking(lambda: send([b"a" * FLUSH_AT, b"b" * 10]))
            assert body_of(site, small) == b"Received: head\r\ntail\r\n"
            assert body_of(site, large) == b"Received: head\r\n" + b"a" * FLUSH_AT + \
                b"b" * 10 + b"tail\r\n"
            assert sorted(site.notified) == sorted([small, large])

    asyncio.run(scenario())


def test_an_aborted_message_leaves_nothing_and_the_link_is_reused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as site:
            def abandon() -> None:
                writer = site.client.begin(ENVELOPE)
                writer.write(b"y" * (2 * FLUSH_AT))
                writer.abort()
                writer.abort()  # idempotent

            await blocking(abandon)
            assert site.queue.list_ids() == [] and site.files("tmp") == []
            assert site.notified == []
            untouched = site.client.begin_body_first()
            untouched.abort()  # nothing sent yet: no I/O at all
            qid = await blocking(lambda: _commit_small(site.client))
            assert site.queue.list_ids() == [qid]
            assert site.server is not None
            assert site.server.connection_counts() == {"queue": 1}  # one link, kept

    asyncio.run(scenario())


def _commit_small(client: RemoteQueue, qid: str | None = None) -> str:
    writer = client.begin(ENVELOPE, qid)
    writer.write(b"Subject: small\r\n\r\nbody\r\n")
    return writer.commit()


def test_a_failed_commit_is_an_os_error_and_nothing_is_acknowledged(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as site:
            qid = await blocking(lambda: _commit_small(site.client))
            # The same id again: the queue refuses to replace a committed message.
            with pytest.raises(OSError, match="queue writer"):
                await blocking(lambda: _commit_small(site.client, qid))
            assert site.queue.list_ids() == [qid]
            assert site.notified == [qid]
            again = await blocking(lambda: _commit_small(site.client))  # the link still works
            assert sorted(site.queue.list_ids()) == sorted([qid, again])

    asyncio.run(scenario())


def test_a_restarted_writer_is_found_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as site:
            first = await blocking(lambda: _commit_small(site.client))
            assert site.server is not None
            await site.server.stop(1.0)  # closes the kept link too
            Path(site.path).unlink()
            await site.start()
            second = await blocking(lambda: _commit_small(site.client))
            assert sorted(site.queue.list_ids()) == sorted([first, second])

    asyncio.run(scenario())


def test_a_client_breaking_the_protocol_is_cut_off_alone(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as site:
            def garbage() -> bytes:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.settimeout(30)
                    sock.connect(site.path)
                    sock.sendall(b"BEGIN ../../etc 3\nabc")
                    return sock.recv(100)

            assert await blocking(garbage) == b""  # closed, nothing queued
            qid = await blocking(lambda: _commit_small(site.client))
            assert site.queue.list_ids() == [qid]
            assert site.files("tmp") == []

    asyncio.run(scenario())


def test_a_retiring_writer_finishes_the_transaction_under_way(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as site:
            writer = site.client.begin(ENVELOPE)
            await blocking(lambda: writer.write(b"x" * (FLUSH_AT + 1)))
            assert site.server is not None
            retired = asyncio.ensure_future(site.server.retire())
            await asyncio.sleep(0)
            assert not retired.done()
            qid = await blocking(writer.commit)
            await asyncio.wait_for(retired, 10)
            assert site.queue.list_ids() == [qid]

    asyncio.run(scenario())
