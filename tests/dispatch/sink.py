"""A sink SMTP server for remote-delivery tests, on loopback only.

It runs our own server core (proto.smtp) behind a small asyncio adapter and
records everything: each connection's raw reads (to see what one packet
held), every transaction, TLS and AUTH use. Replies are scripted per
recipient (a list consumed in order, the last one repeating), so a test can
say "451 first, then 250".
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field

from mailyard.proto.smtp import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    Authenticate,
    DataChunk,
    DataEnd,
    DataStart,
    Features,
    Hello,
    MailFrom,
    RcptTo,
    Reply,
    Reset,
    SmtpLimits,
    SmtpServer,
    SmtpServerConfig,
    StartTls,
)

OK = Reply(250, "2.0.0", "ok")


@dataclass
class Transaction:
    sender: str
    recipients: list[str]
    data: bytes
    tls: bool
    user: str | None
    params: dict[str, str | None]


@dataclass
class Connection:
    reads: list[bytes] = field(default_factory=list)
    tls: bool = False


@dataclass
class Sink:
    host: str = "127.0.0.1"
    port: int = 0
    hostname: str = "sink.test"
    features: Features = field(default_factory=lambda: Features(chunking=False))
    limits: SmtpLimits = field(default_factory=SmtpLimits)
    tls: ssl.SSLContext | None = None
    users: dict[str, str] = field(default_factory=dict)
    rcpt: dict[str, list[Reply]] = field(default_factory=dict)  # address -> replies in turn
    data_replies: list[Reply] = field(default_factory=list)  # per DataEnd, in turn
    transactions: list[Transaction] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    _server: asyncio.Server | None = None

    async def start(self) -> Sink:
        features = self.features
        if self.tls is not None and not features.starttls:
            features = Features(starttls=True, auth_mechanisms=features.auth_mechanisms,
                                smtputf8=features.smtputf8, chunking=features.chunking)
        self.features = features
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def delivered_to(self) -> list[str]:
        return [r for t in self.transactions for r in t.recipients]

    def _next(self, replies: list[Reply]) -> Reply:
        if not replies:
            return OK
        return replies.pop(0) if len(replies) > 1 else replies[0]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        core = SmtpServer(SmtpServerConfig(self.hostname, self.limits, self.features))
        conn = Connection()
        self.connections.append(conn)
        state: dict[str, object] = {"rcpts": [], "data": bytearray(), "user": None}
        core.greeting()
        try:
            await self._loop(core, conn, state, reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _loop(self, core: SmtpServer, conn: Connection, state: dict[str, object],
                    reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            writer.write(core.data_to_send())
            await writer.drain()
            event = core.next_event()
            if event is NEED_DATA:
                writer.write(core.data_to_send())  # replies the core chose itself
                await writer.drain()
                data = await reader.read(65536)
                conn.reads.append(data)
                core.receive_data(data)
                continue
            if event is CLOSED:
                writer.write(core.data_to_send())
                await writer.drain()
                return
            assert event is not AWAITING_REPLY
            if isinstance(event, StartTls):
                core.send(Reply(220, "2.0.0", "go ahead"))
                writer.write(core.data_to_send())
                await writer.drain()
                assert self.tls is not None
                await writer.start_tls(self.tls)
                core.start_tls()
                conn.tls = True
                continue
            reply = self._answer(event, state, conn)
            if reply is not None:
                core.send(reply)

    def _answer(self, event: object, state: dict[str, object], conn: Connection) -> Reply | None:
        rcpts = state["rcpts"]
        data = state["data"]
        assert isinstance(rcpts, list) and isinstance(data, bytearray)
        if isinstance(event, Hello):
            return Reply(250, None, self.hostname)
        if isinstance(event, MailFrom):
            state["sender"] = "" if event.sender is None else str(event.sender)
            state["params"] = dict(event.params)
            rcpts.clear()
            data.clear()
            return OK
        if isinstance(event, RcptTo):
            address = str(event.recipient)
            reply = self._next(self.rcpt.get(address, []))
            if reply.positive:
                rcpts.append(address)
            return reply
        if isinstance(event, DataStart):
            return OK if event.bdat else Reply(354, None, "go ahead")
        if isinstance(event, DataChunk):
            data += event.data
            return None
        if isinstance(event, DataEnd):
            reply = self._next(self.data_replies)
            if reply.positive:
                params = state.get("params", {})
                assert isinstance(params, dict)
                user = state["user"]
                self.transactions.append(Transaction(
                    str(state["sender"]), list(rcpts), bytes(data), conn.tls,
                    user if isinstance(user, str) else None, params))
            return reply
        if isinstance(event, Authenticate):
            if self.users.get(event.username) == event.password:
                state["user"] = event.username
                return Reply(235, "2.7.0", "authenticated")
            return Reply(535, "5.7.8", "bad credentials")
        if isinstance(event, Reset):
            rcpts.clear()
            data.clear()
        return None


async def sinks_on_one_port(hosts: Sequence[str], **options: object) -> list[Sink]:
    """Sinks on several loopback addresses sharing one port (MX hosts all
    listen on the same SMTP port)."""
    for _ in range(20):
        first = await Sink(hosts[0], 0, **options).start()  # type: ignore[arg-type]
        started = [first]
        try:
            for host in hosts[1:]:
                started.append(await Sink(host, first.port, **options).start())  # type: ignore[arg-type]
        except OSError:
            for sink in started:
                await sink.stop()
            continue
        return started
    raise RuntimeError("no common free port on the loopback addresses")
