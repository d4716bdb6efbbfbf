"""server.listener with access rules: real loopback sockets, an echo session.

Two client networks on one machine: a client binds 127.0.0.2 (all of
127.0.0.0/8 is loopback on Linux) before connecting to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from mailyard.config import ListenAddress
from mailyard.server.access import AccessPolicy, compile_rules
from mailyard.server.limits import ConnectionLimiter
from mailyard.server.listener import Connection, ListenerKind, Service, bind
from mailyard.server.tls import TlsManager, generate_self_signed
from tests.server.test_access import load

HOST = "mx.example.test"
REFUSE = b"421 4.7.0 too many connections; try again later\r\n"
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Events(logging.Handler):
    """The event lines the listener logs, as text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def events() -> Iterator[Events]:
    handler = Events()
    logger = logging.getLogger("mailyard")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def rules(text: str) -> AccessPolicy:
    return AccessPolicy(compile_rules(load(text).access), HOST)


async def echo_session(conn: Connection) -> None:
    """Greets, then answers each line with its echo until QUIT."""
    conn.writer.write(b"220 hello\r\n")
    await conn.writer.drain()
    while line := await conn.reader.readline():
        conn.writer.write(b"echo " + line)
        await conn.writer.drain()
        if line.startswith(b"QUIT"):
            return


async def start(name: str, policy: AccessPolicy | None, *, limiter: ConnectionLimiter | None = None,
                kind: ListenerKind = ListenerKind.PLAIN, tls: TlsManager | None = None,
                session: Callable[[Connection], Awaitable[None]] = echo_session,
                ) -> tuple[Service, int]:
    service = Service(name, kind, limiter or ConnectionLimiter(10, 10), refuse=REFUSE,
                      internal_error=b"421 oops\r\n", session=session, tls=tls, access=policy)
    server = await bind(service, ListenAddress("127.0.0.1", 0), set())
    return service, server.sockets[0].getsockname()[1]


async def connect(port: int, source: str) -> Streams:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), 10)


def test_deny_by_network_per_protocol(events: Events) -> None:
    policy = rules('[[access]]\nnetwork = "127.0.0.2/32"\naction = "deny"\n')

    async def main() -> None:
        for name, refusal in (("smtp", b"554 5.7.1 mx.example.test access denied\r\n"),
                              ("pop3", b"-ERR access denied\r\n"),
                              ("imap", b"* BYE access denied\r\n"), ("qmtp", b"")):
            service, port = await start(name, policy)
            reader, writer = await connect(port, "127.0.0.2")
            assert await until_closed(reader) == refusal, name
            writer.close()
            reader, writer = await connect(port, "127.0.0.1")
            assert await reader.readline() == b"220 hello\r\n"
            writer.close()
            assert service.limiter.active <= 1  # the denied one never took a slot

    asyncio.run(main())
    denied = [line for line in events.lines if ".access_denied" in line]
    assert denied[0] == "smtp.access_denied ip=127.0.0.2 rule=1:127.0.0.2/32"
    assert [line.split()[0] for line in denied] == [
        "smtp.access_denied", "pop3.access_denied", "imap.access_denied", "qmtp.access_denied"]


def test_rules_name_their_services() -> None:
    policy = rules('[[access]]\nnetwork = "127.0.0.0/8"\nservices = ["pop3"]\naction = "deny"\n')

    async def main() -> None:
        _, smtp_port = await start("smtp", policy)
        _, pop3_port = await start("pop3", policy)
        reader, writer = await connect(smtp_port, "127.0.0.2")
        assert await reader.readline() == b"220 hello\r\n"
        writer.close()
        reader, writer = await connect(pop3_port, "127.0.0.2")
        assert await until_closed(reader) == b"-ERR access denied\r\n"
        writer.close()

    asyncio.run(main())


def test_implicit_tls_denial_is_a_close(tmp_path: Path) -> None:
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    generate_self_signed(HOST, cert, key)
    tls = TlsManager(cert, key, "1.2", 10.0)
    policy = rules('[[access]]\nnetwork = "127.0.0.2"\naction = "deny"\n')

    async def main() -> None:
        _, port = await start("imaps", policy, kind=ListenerKind.IMPLICIT_TLS, tls=tls)
        reader, writer = await connect(port, "127.0.0.2")
        assert await until_closed(reader) == b""  # no plaintext on a TLS port
        writer.close()
        client = ssl.create_default_context(cafile=cert)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname=HOST, local_addr=("127.0.0.1", 0))
        assert await reader.readline() == b"220 hello\r\n"
        writer.close()

    asyncio.run(main())


def test_rule_connection_limit_counts_the_whole_rule(events: Events) -> None:
    policy = rules('[[access]]\nnetwork = ["127.0.0.2", "127.0.0.3"]\nmax_connections = 2\n')
    limiter = ConnectionLimiter(10, 10)

    async def main() -> None:
        _, port = await start("smtp", policy, limiter=limiter)
        held = [await connect(port, source) for source in ("127.0.0.2", "127.0.0.3")]
        for reader, _ in held:
            assert await reader.readline() == b"220 hello\r\n"
        assert limiter.rule_active(1) == 2
        reader, writer = await connect(port, "127.0.0.2")  # a third from the rule's networks
        assert await until_closed(reader) == REFUSE
        writer.close()
        reader, writer = await connect(port, "127.0.0.4")  # no rule: the listener's limits
        assert await reader.readline() == b"220 hello\r\n"
        writer.close()
        first_reader, first_writer = held[0]
        first_writer.write(b"QUIT\r\n")
        assert await until_closed(first_reader) == b"echo QUIT\r\n"  # slot released before EOF
        first_writer.close()
        reader, writer = await connect(port, "127.0.0.3")
        assert await reader.readline() == b"220 hello\r\n"
        writer.close()
        held[1][1].close()

    asyncio.run(main())
    assert any("smtp.refused" in line and 'reason="rule connection limit"' in line
               and "rule=1:127.0.0.2/32,127.0.0.3/32" in line for line in events.lines)


def test_listener_limit_gives_back_the_rule_slot() -> None:
    policy = rules('[[access]]\nnetwork = "127.0.0.0/8"\nmax_connections = 5\n')
    limiter = ConnectionLimiter(1, 1)

    async def main() -> None:
        _, port = await start("pop3", policy, limiter=limiter)
        reader, writer = await connect(port, "127.0.0.2")
        assert await reader.readline() == b"220 hello\r\n"
        second_reader, second_writer = await connect(port, "127.0.0.2")
        assert await until_closed(second_reader) == REFUSE
        second_writer.close()
        assert limiter.rule_active(1) == 1  # only the connection that got in holds one
        writer.write(b"QUIT\r\n")
        assert await until_closed(reader) == b"echo QUIT\r\n"
        writer.close()
        assert limiter.rule_active(1) == 0 and limiter.active == 0

    asyncio.run(main())


def test_smtp_client_talking_before_the_delayed_greeting_is_refused(events: Events) -> None:
    policy = rules('[[access]]\nnetwork = "127.0.0.2"\ngreeting_delay = 30\n')
    ran: list[bool] = []

    async def session(conn: Connection) -> None:
        ran.append(True)

    async def main() -> None:
        service, port = await start("smtp", policy, session=session)
        reader, writer = await connect(port, "127.0.0.2")
        writer.write(b"EHLO bot.example\r\n")  # blind, without waiting for the 220
        assert await until_closed(reader) == (
            b"554 5.5.1 mx.example.test protocol error: talked before the greeting\r\n")
        writer.close()
        assert service.limiter.active == 0

    asyncio.run(main())
    assert not ran
    assert any(line.startswith("smtp.pregreet ip=127.0.0.2 rule=1:") for line in events.lines)
    assert any(line.startswith("smtp.close ip=127.0.0.2 reason=pregreet") for line in events.lines)


def test_patient_client_gets_the_greeting_after_the_delay() -> None:
    policy = rules('[[access]]\nnetwork = "127.0.0.2"\ngreeting_delay = 0.2\n')

    async def main() -> None:
        _, port = await start("smtp", policy)
        began = time.monotonic()
        reader, writer = await connect(port, "127.0.0.2")
        assert await reader.readline() == b"220 hello\r\n"
        assert time.monotonic() - began >= 0.19
        writer.write(b"QUIT\r\n")
        assert await reader.readline() == b"echo QUIT\r\n"
        writer.close()
        reader, writer = await connect(port, "127.0.0.1")  # another network: no delay
        assert await reader.readline() == b"220 hello\r\n"
        writer.close()

    asyncio.run(main())


def test_pop3_delay_keeps_what_the_client_sent_early() -> None:
    policy = rules('[[access]]\nnetwork = "127.0.0.0/8"\ngreeting_delay = 0.1\n')

    async def main() -> None:
        _, port = await start("pop3", policy)
        reader, writer = await connect(port, "127.0.0.2")
        writer.write(b"CAPA\r\n")  # not refused: only SMTP has the pregreet test
        assert await reader.readline() == b"220 hello\r\n"
        assert await reader.readline() == b"echo CAPA\r\n"
        writer.close()

    asyncio.run(main())


def test_no_policy_means_no_rules() -> None:
    async def main() -> None:
        _, port = await start("smtp", None)
        reader, writer = await connect(port, "127.0.0.2")
        assert await reader.readline() == b"220 hello\r\n"
        writer.close()

    asyncio.run(main())
