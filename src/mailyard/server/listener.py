"""Listeners: binding, connection limits, implicit TLS, and TLS upgrades.

A ``Service`` is one kind of listener: its name (log prefix, ready.json
key), its kind (plain, or implicit TLS: RFC 8314 §3, TLS from the first
byte), its connection limiter and its session handler. Every connection is
a ``Connection`` whose reader and writer are replaced when TLS starts, so
sessions and the accept loop always talk through the current pair.

``Connection.start_tls`` is the one upgrade path, for STARTTLS/STLS and for
implicit-TLS listeners alike: ``loop.start_tls(transport, protocol,
context, server_side=True)`` with a handshake timeout, onto a *new* stream
reader. Bytes the client sent in plaintext and the old reader still holds
are abandoned with it; they can never be read as if they had come over TLS
(the STARTTLS command-injection class, CVE-2011-0411). The cores drop
their own buffered plaintext in ``start_tls()`` as well.

Access rules (``access.py``, tcprules' role) are applied here, at accept
time and before any slot is taken: a denied client gets its protocol's
refusal and the close; an allowing rule's own connection limit is counted
in the section's limiter, and its greeting delay is waited out before the
session starts (after the handshake on an implicit-TLS port). Over SMTP a
client that talks during that wait is refused, as Postfix's postscreen
does: a real client waits for the greeting (RFC 5321 §3.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from mailyard.config import ListenAddress
from mailyard.log import event
from mailyard.server.access import AccessAction, AccessPolicy, AccessRule, Protocol, protocol_of
from mailyard.server.limits import ConnectionLimiter
from mailyard.server.stream import ClientTooSlow
from mailyard.server.tls import TlsManager

__all__ = [
    "READ_LIMIT",
    "Connection",
    "ListenerKind",
    "Service",
    "TlsHandshakeFailed",
    "bind",
]

READ_LIMIT: Final = 65536  # StreamReader buffer limit of every connection
# A TLS close waits for the client's close_notify; a client that never
# answers must not hold its connection slot for asyncio's 30 s default.
CLOSE_TIMEOUT: Final = 5.0


class ListenerKind(enum.Enum):
    PLAIN = "plain"  # STARTTLS/STLS where the protocol offers it
    IMPLICIT_TLS = "implicit-tls"  # RFC 8314 §3: TLS first, then the protocol


class TlsHandshakeFailed(ConnectionError):
    """The client did not complete a TLS handshake (in time)."""


@dataclass
class Connection:
    """One accepted connection; ``reader``/``writer`` change at STARTTLS."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    client_ip: str
    client_port: int
    local_ip: str
    tls_version: str | None = None
    # True while the writer's protocol no longer owns the transport (during
    # and after a failed upgrade): nothing would ever report it closed.
    _detached: bool = field(default=False, init=False, repr=False)

    @classmethod
    def accepted(cls, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Connection:
        peer = writer.get_extra_info("peername") or ("unknown", 0)
        local = writer.get_extra_info("sockname") or ("", 0)
        port = int(peer[1]) if len(peer) > 1 else 0
        return cls(reader, writer, str(peer[0]), port, str(local[0]))

    @property
    def tls_active(self) -> bool:
        return self.tls_version is not None

    async def start_tls(self, context: ssl.SSLContext, timeout: float) -> None:
        """Upgrade in place (server side); TlsHandshakeFailed if it fails.

        Whatever is queued for the client (the 220/+OK that accepted
        STARTTLS) is written first; after the handshake the session reads
        from a fresh reader, so nothing sent before it is ever read.
        """
        loop = asyncio.get_running_loop()
        old = self.writer
        with contextlib.suppress(ConnectionError):
            await old.drain()
        if old.transport.is_closing():
            raise TlsHandshakeFailed("the client closed the connection")
        reader = asyncio.StreamReader(limit=READ_LIMIT, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        self._detached = True
        try:
            transport = await loop.start_tls(
                old.transport, protocol, context, server_side=True,
                ssl_handshake_timeout=timeout,
            )
        except (OSError, TimeoutError, ConnectionError) as exc:
            # loop.start_tls closes the transport when the handshake fails.
            raise TlsHandshakeFailed(str(exc) or type(exc).__name__) from exc
        if transport is None:
            raise TlsHandshakeFailed("connection closed during the handshake")
        # loop.start_tls does not announce the new transport to the protocol.
        protocol.connection_made(transport)
        self.reader = reader
        self.writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        self._detached = False
        ssl_object = transport.get_extra_info("ssl_object")
        self.tls_version = ssl_object.version() if ssl_object is not None else "TLS"
        cipher = ssl_object.cipher() if ssl_object is not None else None
        event("tls.established", level=logging.DEBUG, ip=self.client_ip,
              version=self.tls_version, cipher=cipher[0] if cipher else None)

    async def close(self) -> None:
        """Close (with TLS, after close_notify), within CLOSE_TIMEOUT."""
        self.writer.close()
        if self._detached:
            return  # loop.start_tls closed the transport itself
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.writer.wait_closed()
        except TimeoutError:
            self.writer.transport.abort()
        except OSError:
            return  # the connection ended with an error: it is closed all the same


@dataclass
class Service:
    """One kind of listener and the sessions it runs."""

    name: str
    kind: ListenerKind
    limiter: ConnectionLimiter
    refuse: bytes  # said to a connection over the limit
    internal_error: bytes  # said when a session fails unexpectedly
    session: Callable[[Connection], Awaitable[None]]
    tls: TlsManager | None = None  # needed for IMPLICIT_TLS
    servers: list[asyncio.Server] = field(default_factory=list)
    access: AccessPolicy | None = None  # [[access]] rules; None: every client allowed

    def __post_init__(self) -> None:
        if self.kind is ListenerKind.IMPLICIT_TLS and self.tls is None:
            raise ValueError(f"{self.name}: an implicit-TLS listener needs a certificate")


async def bind(service: Service, address: ListenAddress | socket.socket,
               sessions: set[asyncio.Task[None]]) -> asyncio.Server:
    """Listen on ``address`` (or serve a socket bound already: a supervisor's
    workers share it); each connection's task is kept in ``sessions``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        sessions.add(task)
        try:
            await _serve_connection(service, Connection.accepted(reader, writer))
        finally:
            sessions.discard(task)

    if isinstance(address, socket.socket):
        server = await asyncio.start_server(handle, sock=address, limit=READ_LIMIT)
    else:
        server = await asyncio.start_server(
            handle, address.host, address.port, reuse_address=True, limit=READ_LIMIT
        )
    service.servers.append(server)
    return server



@dataclass(frozen=True, slots=True)
class _Admission:
    """What an admitted connection holds: its rule and whether it took a rule slot."""

    rule: AccessRule | None
    counted: bool

    def release(self, service: Service, ip: str) -> None:
        service.limiter.release(ip)
        if self.counted and self.rule is not None:
            service.limiter.release_rule(self.rule.number)


async def _refuse(service: Service, conn: Connection, line: bytes) -> None:
    # On an implicit-TLS port nothing can be said in the clear; the
    # connection is just closed.
    if line and service.kind is ListenerKind.PLAIN:
        with contextlib.suppress(OSError):
            conn.writer.write(line)
            await conn.writer.drain()
    await conn.close()


async def _admit(service: Service, conn: Connection) -> _Admission | None:
    """Apply the access rules and the limits; None: refused (and closed)."""
    ip = conn.client_ip
    policy = service.access
    rule = policy.lookup(ip, service.name) if policy is not None else None
    if policy is not None and rule is not None and rule.action is AccessAction.DENY:
        event(f"{service.name}.access_denied", ip=ip, rule=rule.label)
        await _refuse(service, conn, policy.refusal(service.name))
        return None
    counted = rule is not None and rule.max_connections > 0
    if rule is not None and counted and not service.limiter.acquire_rule(
            rule.number, rule.max_connections):
        event(f"{service.name}.refused", ip=ip, reason="rule connection limit", rule=rule.label)
        await _refuse(service, conn, service.refuse)
        return None
    if not service.limiter.acquire(ip):
        if rule is not None and counted:
            service.limiter.release_rule(rule.number)
        event(f"{service.name}.refused", ip=ip, reason="connection limit")
        await _refuse(service, conn, service.refuse)
        return None
    return _Admission(rule, counted)


async def _greeting_delay(service: Service, conn: Connection, rule: AccessRule) -> str | None:
    """Wait out the rule's greeting delay; a reason to close instead, or None."""
    if protocol_of(service.name) is not Protocol.SMTP:
        await asyncio.sleep(rule.greeting_delay)
        return None
    try:
        async with asyncio.timeout(rule.greeting_delay):
            early = await conn.reader.read(1)
    except TimeoutError:
        return None  # silence all along: the session may begin
    if not early:
        return "dropped"
    # RFC 5321 §3.1: the client waits for the 220; one that talks first is
    # a bot pushing its commands blind (postscreen's pregreet test).
    event(f"{service.name}.pregreet", ip=conn.client_ip, rule=rule.label)
    assert service.access is not None  # a rule came from it
    with contextlib.suppress(OSError):
        conn.writer.write(service.access.pregreet_refusal())
        await conn.writer.drain()
    return "pregreet"


async def _serve_connection(service: Service, conn: Connection) -> None:
    admission = await _admit(service, conn)
    if admission is None:
        return
    ip = conn.client_ip
    started = time.monotonic()
    event(f"{service.name}.connect", ip=ip, port=conn.client_port)
    reason = "closed"
    try:
        if service.kind is ListenerKind.IMPLICIT_TLS:
            assert service.tls is not None
            await conn.start_tls(service.tls.context, service.tls.handshake_timeout)
        rule = admission.rule
        early = None
        if rule is not None and rule.greeting_delay > 0:
            early = await _greeting_delay(service, conn, rule)
        if early is not None:
            reason = early
        else:
            await service.session(conn)
    except ClientTooSlow:
        reason = "write timeout"
    except TlsHandshakeFailed as exc:
        reason = "tls handshake failed"
        event("tls.handshake_failed", ip=ip, service=service.name, error=str(exc))
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
        reason = "dropped"
    except asyncio.CancelledError:
        reason = "shutdown"
        raise
    except Exception:
        # A bug in one session: log it with its stack, tell the client
        # something temporary, and keep serving everyone else.
        reason = "error"
        event(f"{service.name}.error", level=logging.ERROR, exc_info=True, ip=ip)
        with contextlib.suppress(Exception):
            conn.writer.write(service.internal_error)
            await conn.writer.drain()
    finally:
        admission.release(service, ip)
        await conn.close()
        event(f"{service.name}.close", ip=ip, reason=reason,
              seconds=round(time.monotonic() - started, 3))
