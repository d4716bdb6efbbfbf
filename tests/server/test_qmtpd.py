"""server.qmtpd: QMTP and QMQP over real loopback sockets, into a real queue.

The context is built the way server/app.py builds it (directory, queue with
a DirSyncer, I/O pool); the services come from ``qmtp_listeners`` and are
bound with ``listener.bind``. The client is a few lines over asyncio
streams using the core's own encoders. 127.0.0.2 is the "other" client
address: loopback too, so nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mailyard import fsio
from mailyard.config import ListenAddress, load_config
from mailyard.directory.admin import create_user
from mailyard.directory.store import Directory
from mailyard.message.address import parse_address
from mailyard.proto.qmtp import (
    LineEnding,
    encode_qmqp_request,
    encode_qmtp_package,
    split_netstrings,
)
from mailyard.queue.store import Queue
from mailyard.server.context import ServerContext
from mailyard.server.listener import Connection, Service, bind
from mailyard.server.qmtpd import qmtp_listeners
from mailyard.server.spool import FLUSH_AT
from mailyard.server.throttle import LoginThrottle

HOST = "mx.example.test"
OTHER = "127.0.0.2"  # in relay_networks; not a QMQP client
MAX_SIZE = 1024 * 1024
MESSAGE = b"From: sender@example.org\r\nSubject: test\r\n\r\nHello,\r\nworld.\r\n"


@dataclass(frozen=True)
class Section:
    """What config.py's [qmtp]/[qmqp] sections provide."""

    listen: tuple[str, ...] = ("127.0.0.1:0",)
    max_connections: int = 20
    max_connections_per_ip: int = 10
    timeout: float = 10.0
    clients: tuple[str, ...] = ("127.0.0.1/32",)


@dataclass
class Server:
    ctx: ServerContext
    ports: dict[str, int]
    notified: list[str]
    ended: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    log: list[logging.LogRecord] = field(default_factory=list)

    @property
    def queue(self) -> Queue:
        return self.ctx.queue

    def events(self, name: str) -> list[dict[str, object]]:
        return [getattr(r, "event_fields", {}) for r in self.log
                if getattr(r, "event_name", None) == name]

    def tmp(self) -> list[str]:
        return os.listdir(Path(self.queue.root, "tmp"))

    def stored(self, qid: str) -> tuple[bytes, bytes]:
        """(Received field, the rest) of a queued message."""
        with self.queue.open_body(qid) as body:
            data = body.read()
        head, sep, rest = data.partition(b"\r\n")
        while rest.startswith(b"\t"):  # the folded Received field
            more, sep, rest = rest.partition(b"\r\n")
            head += sep + more
        return head, rest


class _Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.INFO)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


@pytest.fixture
def context(tmp_path: Path) -> Iterator[tuple[ServerContext, list[str]]]:
    state = tmp_path / "state"
    state.mkdir()
    (state / "mailyard.toml").write_text(
        f'hostname = "{HOST}"\n[smtp]\nmax_message_size = {MAX_SIZE}\n'
        f'relay_networks = ["{OTHER}/32"]\n')
    config = load_config(str(state))
    directory = Directory.open(config.path("directory.sqlite"))
    directory.add_domain("example.test")
    for user in ("alice", "bob"):
        create_user(directory, config.path("mail"), parse_address(f"{user}@example.test"),
                    "!no-login")
    queue = Queue(config.path("queue"), syncer=fsio.DirSyncer())
    queue.ensure_layout()
    pool = ThreadPoolExecutor(4)
    notified: list[str] = []
    try:
        yield ServerContext(
            config=config, directory=directory, queue=queue, io_pool=pool, auth_pool=pool,
            throttle=LoginThrottle(5, 300.0, 0.0), account_throttle=LoginThrottle(5, 300.0, 0.0),
            notify_queue=notified.append,
            relay_networks=tuple(ipaddress.ip_network(n) for n in config.smtp.relay_networks),
        ), notified
    finally:
        pool.shutdown()
        directory.close()


Scenario = Callable[[Server], Awaitable[None]]
Runner = Callable[[Scenario], None]


async def _serve(ctx: ServerContext, notified: list[str], scenario: Scenario) -> None:
    running = Server(ctx, {}, notified)
    handler = _Collect(running.log)
    logging.getLogger("mailyard").addHandler(handler)
    logging.getLogger("mailyard").setLevel(logging.INFO)
    sessions: set[asyncio.Task[None]] = set()
    services: list[Service] = []
    try:
        for service, addresses in qmtp_listeners(ctx, Section(), Section()):
            service.session = _announce_end(service.session, service.name, running.ended)
            services.append(service)
            for text in addresses:
                host, _, port = text.rpartition(":")
                bound = await bind(service, ListenAddress(host, int(port)), sessions)
                running.ports[service.name] = bound.sockets[0].getsockname()[1]
        await scenario(running)
    finally:
        for service in services:
            for srv in service.servers:
                srv.close()
        if sessions:
            await asyncio.wait(list(sessions), timeout=10)
        logging.getLogger("mailyard").removeHandler(handler)


def _announce_end(inner: Callable[[Connection], Awaitable[None]], name: str,
                  ended: asyncio.Queue[str]) -> Callable[[Connection], Awaitable[None]]:
    async def session(conn: Connection) -> None:
        try:
            await inner(conn)
        finally:
            ended.put_nowait(name)

    return session


@pytest.fixture
def run(context: tuple[ServerContext, list[str]]) -> Runner:
    """Run one async scenario against freshly bound QMTP and QMQP listeners."""
    ctx, notified = context
    return lambda scenario: asyncio.run(_serve(ctx, notified, scenario))


async def _read(reader: asyncio.StreamReader, size: int = -1) -> bytes:
    # A server closing with client data still unread makes the kernel reset
    # the connection: for the client that is a close as well.
    try:
        return await asyncio.wait_for(reader.read(size), 10)
    except ConnectionResetError:
        return b""


async def exchange(port: int, data: bytes, answers: int, *, source: str = "127.0.0.1",
                   close: bool = True) -> tuple[list[bytes], bytes]:
    """Send ``data``; read until ``answers`` netstrings came (or EOF); then,
    unless ``close``, read until the server closes (the tail it sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(data)
        await writer.drain()
    except ConnectionResetError:
        pass
    received = b""
    found: list[bytes] = []
    while len(found) < answers:
        chunk = await _read(reader, 65536)
        if not chunk:
            break
        received += chunk
        found, _ = split_netstrings(received)
    tail = b"" if close else await _read(reader)
    writer.close()
    return found, tail


def qmtp(*recipients: str, message: bytes = MESSAGE, sender: str = "sender@example.org",
         ending: LineEnding = LineEnding.CRLF) -> bytes:
    return encode_qmtp_package(message, sender.encode(), [r.encode() for r in recipients],
                               line_ending=ending)


def queued_as(answer: bytes) -> str:
    assert answer.startswith(b"Kok queued as "), answer
    return answer.removeprefix(b"Kok queued as ").decode()


def test_two_accepted_one_unknown(run: Runner) -> None:
    async def scenario(server: Server) -> None:
        package = qmtp("alice@example.test", "bob@example.test", "nobody@example.test")
        answers, _ = await exchange(server.ports["qmtp"], package, 3)
        assert answers[2] == b"Dno such user here (#5.1.1)"
        qid = queued_as(answers[0])
        assert answers[1] == answers[0]
        message = server.queue.load(qid)
        assert message.envelope.sender == "sender@example.org"
        assert message.envelope.recipients == ("alice@example.test", "bob@example.test")
        head, rest = server.stored(qid)
        assert head.startswith(b"Received: from unknown ([127.0.0.1])")
        assert b"with QMTP id " + qid.encode() in head
        assert rest == MESSAGE
        assert server.notified == [qid]
        (accept,) = server.events("qmtp.accept")
        assert accept["id"] == qid and accept["rcpts"] == 2
        assert accept["sender"] == "sender@example.org"

    run(scenario)


def test_several_packages_on_one_connection(run: Runner) -> None:
    async def scenario(server: Server) -> None:
        packages = (qmtp("alice@example.test")
                    + qmtp("bob@example.test", "alice@example.test", ending=LineEnding.LF)
                    + qmtp("postmaster@example.test", sender=""))
        answers, _ = await exchange(server.ports["qmtp"], packages, 4)
        assert len(answers) == 4
        ids = [queued_as(a) for a in answers]
        assert ids[1] == ids[2] and len({ids[0], ids[1], ids[3]}) == 3
        assert server.queue.list_ids() == sorted({ids[0], ids[1], ids[3]})
        # RFC 5321 §4.5.1 through the shared policy: postmaster reaches the configured one.
        postmaster = server.queue.load(ids[3]).envelope
        assert postmaster.recipients == (f"postmaster@{HOST}",) and postmaster.sender == ""

    run(scenario)


@pytest.mark.parametrize("ending", list(LineEnding))
def test_both_conventions_are_stored_as_the_same_crlf_bytes(run: Runner,
                                                            ending: LineEnding) -> None:
    async def scenario(server: Server) -> None:
        message = MESSAGE + b"a line with a bare\rCR\r\n.\r\nlast line, partial"
        answers, _ = await exchange(server.ports["qmtp"],
                                    qmtp("alice@example.test", message=message, ending=ending), 1)
        assert server.stored(queued_as(answers[0]))[1] == message

    run(scenario)


def test_large_message_is_spooled_and_stored_exactly(run: Runner) -> None:
    async def scenario(server: Server) -> None:
        body = b"".join(b"line %07d of a large message\r\n" % n for n in range(30000))
        message = MESSAGE + body
        assert FLUSH_AT < len(message) < MAX_SIZE
        answers, _ = await exchange(server.ports["qmtp"],
                                    qmtp("alice@example.test", message=message,
                                         ending=LineEnding.LF), 1)
        assert server.stored(queued_as(answers[0]))[1] == message
        assert server.tmp() == []

    run(scenario)


def test_over_the_size_limit_is_refused_and_the_session_goes_on(run: Runner) -> None:
    async def scenario(server: Server) -> None:
        big = b"x" * MAX_SIZE  # + the convention octet: one over the limit
        data = (qmtp("alice@example.test", "bob@example.test", message=big)
                + qmtp("bob@example.test"))
        answers, _ = await exchange(server.ports["qmtp"], data, 3)
        assert answers[:2] == [b"Dmessage too large (#5.3.4)"] * 2
        assert server.queue.list_ids() == [queued_as(answers[2])]
        assert server.events("qmtp.refused")[0]["reason"] == "message too large (#5.3.4)"

    run(scenario)


def test_connection_dropped_mid_message_leaves_nothing(run: Runner) -> None:
    async def scenario(server: Server) -> None:
        data = qmtp("alice@example.test", message=MESSAGE + b"y" * (3 * FLUSH_AT))
        answers, _ = await exchange(server.ports["qmtp"], data[: len(data) // 2], 0)
        assert answers == []
        assert await asyncio.wait_for(server.ended.get(), 10) == "qmtp"
        assert server.queue.list_ids() == []
        assert server.tmp() == []
        assert server.notified == []
        assert server.events("qmtp.incomplete")

    run(scenario)


def test_garbage_closes_cleanly_and_the_server_keeps_serving(run: Runner) -> None:
    async def scenario(server: Server) -> None:
        answers, tail = await exchange(server.ports["qmtp"], b"HELO garbage\r\n", 1, close=False)
        assert answers == [] and tail == b""  # closed, nothing said
        (error,) = server.events("qmtp.protocol_error")
        assert error["ip"] == "127.0.0.1"
        answers, _ = await exchange(server.ports["qmtp"], qmtp("alice@example.test"), 1)
        assert server.queue.list_ids() == [queued_as(answers[0])]

    run(scenario)


def test_answers_due_are_sent_before_a_protocol_error_closes(run: Runner) -> None:
    async def scenario(server: Server) -> None:
        data = qmtp("alice@example.test") + b"99999999999999999999:"
        answers, tail = await exchange(server.ports["qmtp"], data, 1, close=False)
        assert server.queue.list_ids() == [queued_as(answers[0])]
        assert tail == b""

    run(scenario)


def test_relay_only_for_relay_networks(run: Runner) -> None:
    async def scenario(server: Server) -> None:
        data = qmtp("someone@elsewhere.example", "alice@example.test")
        answers, _ = await exchange(server.ports["qmtp"], data, 2)
        assert answers[0] == b"Drelay access denied (#5.7.1)"
        assert server.queue.load(queued_as(answers[1])).envelope.recipients == (
            "alice@example.test",)
        assert server.events("qmtp.relay_denied")[0]["rcpt"] == "someone@elsewhere.example"
        answers, _ = await exchange(server.ports["qmtp"], qmtp("someone@elsewhere.example"), 1,
                                    source=OTHER)
        assert server.queue.load(queued_as(answers[0])).envelope.recipients == (
            "someone@elsewhere.example",)

    run(scenario)


def test_bad_addresses_are_refused(run: Runner) -> None:
    async def scenario(server: Server) -> None:
        package = qmtp("not an address", "alice@example.test", sender="bad sender")
        answers, _ = await exchange(server.ports["qmtp"], package, 2)
        assert answers == [b"Dunacceptable sender address (#5.1.7)"] * 2
        package = qmtp("no-at-sign", "alice@example.test")
        answers, _ = await exchange(server.ports["qmtp"], package, 2)
        assert answers[0] == b"Dbad recipient address syntax (#5.1.3)"
        assert len(server.queue.list_ids()) == 1

    run(scenario)


def test_storage_error_is_temporary_and_leaves_nothing(run: Runner) -> None:
    async def scenario(server: Server) -> None:
        mess = Path(server.queue.root, "mess")
        mess.rmdir()
        mess.write_bytes(b"")  # the rename into mess/ now fails
        answers, _ = await exchange(server.ports["qmtp"], qmtp("alice@example.test"), 1)
        assert answers == [b"Zlocal error in processing; try again later (#4.3.0)"]
        assert server.tmp() == []
        assert server.events("qmtp.storage_error")

    run(scenario)


def test_qmqp_from_a_client(run: Runner) -> None:
    async def scenario(server: Server) -> None:
        request = encode_qmqp_request(MESSAGE, b"sender@example.org",
                                      [b"alice@example.test", b"far@elsewhere.example"])
        answers, tail = await exchange(server.ports["qmqp"], request, 1, close=False)
        qid = queued_as(answers[0])
        assert tail == b""  # one request per connection: the server closes
        envelope = server.queue.load(qid).envelope
        # QMQP clients are a cluster's hosts: they may relay.
        assert envelope.recipients == ("alice@example.test", "far@elsewhere.example")
        head, rest = server.stored(qid)
        assert b"with QMQP id" in head and rest == MESSAGE  # LF on the wire, CRLF stored
        assert server.notified == [qid]

    run(scenario)


def test_qmqp_refused_recipient_refuses_the_message(run: Runner) -> None:
    async def scenario(server: Server) -> None:
        request = encode_qmqp_request(MESSAGE, b"", [b"alice@example.test", b"nobody@example.test"])
        answers, _ = await exchange(server.ports["qmqp"], request, 1)
        assert answers == [b"Dno such user here (#5.1.1)"]
        assert server.queue.list_ids() == []

    run(scenario)


def test_qmqp_from_an_address_not_configured(run: Runner) -> None:
    async def scenario(server: Server) -> None:
        request = encode_qmqp_request(MESSAGE, b"", [b"alice@example.test"])
        answers, tail = await exchange(server.ports["qmqp"], request, 1, source=OTHER, close=False)
        assert answers == [] and tail == b""
        assert server.queue.list_ids() == []
        assert server.events("qmqp.denied")[0]["ip"] == OTHER

    run(scenario)
