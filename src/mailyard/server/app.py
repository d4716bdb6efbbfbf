"""One worker's server: the listeners of its role on sockets the supervisor bound.

``mailyard serve`` runs a supervisor (``supervisor.py``) that binds every
listening socket and starts one process per job (MODELS §7.3e): the SMTP
side (SMTP, submission, SMTPS, QMTP, QMQP), N mailbox workers (IMAP and
POP3 sharing their listening sockets, so every core serves clients) and
the delivery worker. Each of the first two runs a ``RoleServer`` on its
own event loop, with blocking disk work (queue commits, maildrop access,
password hashing) in thread pools.

Listeners are ``listener.Service`` values, plain or implicit TLS. With N
workers on one socket the kernel hands each connection to one of them;
a worker's connection limits are its share of the configured ones.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import ipaddress
import math
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from mailyard import fsio
from mailyard.config import Config
from mailyard.directory.store import Directory
from mailyard.log import event
from mailyard.proto.pop3 import Pop3Features, Pop3Limits, Pop3ServerConfig
from mailyard.proto.smtp import Features, SmtpLimits, SmtpServerConfig
from mailyard.queue.store import Queue
from mailyard.server.context import IngestQueue, ServerContext
from mailyard.server.imapd import ImapService
from mailyard.server.limits import ConnectionLimiter
from mailyard.server.listener import Connection, ListenerKind, Service, bind
from mailyard.server.pop3d import Pop3Session
from mailyard.server.qmtpd import qmtp_listeners
from mailyard.server.smtpd import SmtpRole, SmtpSession
from mailyard.server.throttle import LoginThrottle
from mailyard.server.tls import TlsError, TlsManager

__all__ = ["ROLE_OF", "Role", "RoleServer", "listen_addresses", "load_tls"]

IO_THREADS: Final = 8
# Directory changes made by the CLI reach RCPT checks within this many seconds.
SNAPSHOT_REFRESH: Final = 0.25

_SMTP_REFUSE: Final = b"421 4.7.0 too many connections; try again later\r\n"
_SMTP_ERROR: Final = b"421 4.3.0 internal error\r\n"
_POP3_REFUSE: Final = b"-ERR [SYS/TEMP] too many connections; try again later\r\n"
_POP3_ERROR: Final = b"-ERR [SYS/TEMP] internal error\r\n"
# RFC 9051 §7.1.5 BYE, RFC 5530 codes.
_IMAP_REFUSE: Final = b"* BYE [UNAVAILABLE] too many connections; try again later\r\n"
_IMAP_ERROR: Final = b"* BYE [SERVERBUG] internal error\r\n"


class Role(enum.Enum):
    """A worker's job; each runs as the user of its side (privileges.py)."""

    SMTP = "smtp"  # the network-facing receiving side
    MAILBOX = "mailbox"  # IMAP and POP3: mailbox access
    QUEUE = "queue"  # the queue writer (injector.py), when it has a process


ROLE_OF: Final[Mapping[str, Role]] = {
    "smtp": Role.SMTP, "submission": Role.SMTP, "smtps": Role.SMTP,
    "qmtp": Role.SMTP, "qmqp": Role.SMTP,
    "pop3": Role.MAILBOX, "pop3s": Role.MAILBOX, "imap": Role.MAILBOX, "imaps": Role.MAILBOX,
}


def listen_addresses(config: Config) -> dict[str, tuple[str, ...]]:
    """Every configured listener: service name -> its addresses (none left out)."""
    c = config
    table = {
        "smtp": c.smtp.listen, "submission": c.submission.listen,
        "smtps": c.submission.listen_tls, "pop3": c.pop3.listen, "pop3s": c.pop3.listen_tls,
        "imap": c.imap.listen, "imaps": c.imap.listen_tls,
        "qmtp": c.qmtp.listen, "qmqp": c.qmqp.listen,
    }
    return {name: addresses for name, addresses in table.items() if addresses}


def _share(limit: int, workers: int) -> int:
    """One worker's part of a limit that all ``workers`` serve together."""
    return max(1, math.ceil(limit / workers))


class RoleServer:
    """The sessions of one worker, on the listening sockets it was handed."""

    def __init__(self, config: Config, tls: TlsManager | None,
                 notify_queue: Callable[[str], None], queue: IngestQueue | None = None) -> None:
        """``queue``: where messages go when another process writes ``queue/``
        (``injector_client.RemoteQueue``); None = the queue itself."""
        self.config = config
        self.tls = tls
        self.directory = Directory.open(
            config.path("directory.sqlite"), refresh_interval=SNAPSHOT_REFRESH
        )
        self.syncer = fsio.DirSyncer()
        self.queue: IngestQueue = queue or Queue(config.path("queue"), syncer=self.syncer)
        # Enough threads to overlap the fsyncs of concurrent commits (and to
        # let DirSyncer share directory syncs), few enough to keep the GIL
        # hand-offs cheap: measured with bench/smtp_ingest.py.
        self.io_pool = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="io")
        self.auth_pool = ThreadPoolExecutor(2, thread_name_prefix="auth")
        login = config.login
        self.ctx = ServerContext(
            config=config,
            directory=self.directory,
            queue=self.queue,
            io_pool=self.io_pool,
            auth_pool=self.auth_pool,
            throttle=LoginThrottle(login.max_failures, login.failure_window, login.failure_delay),
            account_throttle=LoginThrottle(
                login.max_account_failures, login.failure_window, login.failure_delay
            ),
            notify_queue=notify_queue,
            tls=tls,
            relay_networks=tuple(
                ipaddress.ip_network(n, strict=False) for n in config.smtp.relay_networks
            ),
        )
        self._sessions: set[asyncio.Task[None]] = set()
        self._services: list[Service] = []
        self._smtp_sessions: set[SmtpSession] = set()
        self.imap = ImapService(self.ctx)
        self.on_sessions_changed: Callable[[], None] = lambda: None
        self._closed = False
        self.started = time.time()

    # -- configuration of the cores ----------------------------------------------------

    def _smtp_config(self) -> SmtpServerConfig:
        s = self.config.smtp
        return SmtpServerConfig(
            hostname=self.config.hostname,
            limits=SmtpLimits(
                max_message_size=s.max_message_size,
                max_recipients=s.max_recipients,
                max_line_length=s.max_line_length,
                max_command_line=s.max_command_line,
                max_commands=s.max_commands,
                max_bad_commands=s.max_bad_commands,
            ),
            features=Features(),
        )

    def _pop3_config(self) -> Pop3ServerConfig:
        p = self.config.pop3
        return Pop3ServerConfig(
            hostname=self.config.hostname,
            limits=Pop3Limits(
                max_line_length=p.max_line_length,
                max_commands=p.max_commands,
                max_bad_commands=p.max_bad_commands,
            ),
            features=Pop3Features(),
        )

    # -- sessions ------------------------------------------------------------------------

    def _tracked(self, run: Callable[[Connection], Awaitable[None]]
                 ) -> Callable[[Connection], Awaitable[None]]:
        """Tell the supervisor when a session starts and (after its slot is
        given back, hence call_soon) when it ends: ``status`` counts are live."""

        async def tracked(conn: Connection) -> None:
            self.on_sessions_changed()
            try:
                await run(conn)
            finally:
                asyncio.get_running_loop().call_soon(self.on_sessions_changed)

        return tracked

    def _smtp_handler(self, role: SmtpRole) -> Callable[[Connection], Awaitable[None]]:
        smtp_config = self._smtp_config()

        async def run(conn: Connection) -> None:
            session = SmtpSession(self.ctx, role, smtp_config, conn)
            self._smtp_sessions.add(session)
            try:
                await session.run()
            finally:
                self._smtp_sessions.discard(session)

        return run

    def _pop3_handler(self) -> Callable[[Connection], Awaitable[None]]:
        pop3_config = self._pop3_config()

        async def run(conn: Connection) -> None:
            await Pop3Session(self.ctx, pop3_config, conn).run()

        return run

    def _services_of(self, names: set[str]) -> list[Service]:
        """The services named: plain and implicit-TLS listeners of a section
        share its limiter, which is this worker's share of the section's limits."""
        c, sub, srv = self.config, self.config.submission, self.config.server
        mx = SmtpRole("smtp", auth=c.smtp.auth)
        msa = SmtpRole("submission", submission=True, auth=True,
                       sender_check=sub.sender_check == "strict",
                       max_header_size=sub.max_header_size)
        smtp_limits = ConnectionLimiter(c.smtp.max_connections, c.smtp.max_connections_per_ip)
        sub_limits = ConnectionLimiter(sub.max_connections, sub.max_connections_per_ip)
        pop3_limits = ConnectionLimiter(_share(c.pop3.max_connections, srv.pop3_workers),
                                        c.pop3.max_connections_per_ip)
        imap_limits = ConnectionLimiter(_share(c.imap.max_connections, srv.imap_workers),
                                        c.imap.max_connections_per_ip)
        plain, implicit = ListenerKind.PLAIN, ListenerKind.IMPLICIT_TLS
        smtp, pop3 = (_SMTP_REFUSE, _SMTP_ERROR), (_POP3_REFUSE, _POP3_ERROR)
        imap = (_IMAP_REFUSE, _IMAP_ERROR)
        rows = [
            ("smtp", plain, smtp_limits, self._smtp_handler(mx), smtp),
            ("submission", plain, sub_limits, self._smtp_handler(msa), smtp),
            ("smtps", implicit, sub_limits,
             self._smtp_handler(dataclasses.replace(msa, service="smtps")), smtp),
            ("pop3", plain, pop3_limits, self._pop3_handler(), pop3),
            ("pop3s", implicit, pop3_limits, self._pop3_handler(), pop3),
            ("imap", plain, imap_limits, self.imap.serve, imap),
            ("imaps", implicit, imap_limits, self.imap.serve, imap),
        ]
        services = [
            Service(name, kind, limiter, refuse=refuse, internal_error=error,
                    session=session, tls=self.tls, access=self.ctx.access)
            for name, kind, limiter, session, (refuse, error) in rows
            if name in names
        ]
        # QMTP and QMQP (off unless their listen lists are set).
        services += [s for s, _ in qmtp_listeners(self.ctx, c.qmtp, c.qmqp) if s.name in names]
        for service in services:
            service.session = self._tracked(service.session)
        return services

    async def start(self, sockets: Mapping[str, list[socket.socket]]) -> None:
        """Serve every socket handed over, each by its service."""
        for service in self._services_of(set(sockets)):
            self._services.append(service)
            for sock in sockets[service.name]:
                await bind(service, sock, self._sessions)

    def close_listeners(self) -> None:
        """Stop accepting; the sockets stay open in the supervisor and the other workers."""
        for service in self._services:
            for server in service.servers:
                server.close()

    async def stop(self, grace: float) -> None:
        """Stop accepting, let sessions finish within ``grace``, then cut them off."""
        event("worker.stopping", pid=os.getpid(), sessions=len(self._sessions))
        self.close_listeners()
        for session in list(self._smtp_sessions):
            session.shutdown_notice()
        self.imap.shutdown_notice()
        if self._sessions:
            _, pending = await asyncio.wait(list(self._sessions), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2.0)
        await self._close()

    async def retire(self) -> None:
        """A reload replaced this worker: accept nothing new, and end when the
        sessions under way have ended by themselves (none is cut off)."""
        event("worker.retired", pid=os.getpid(), sessions=len(self._sessions))
        self.close_listeners()
        while self._sessions:
            await asyncio.wait(list(self._sessions))
        await self._close()

    async def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.imap.stop()
        self.io_pool.shutdown(wait=True)
        self.auth_pool.shutdown(wait=True)
        self.directory.close()
        event("worker.stopped", pid=os.getpid())

    @property
    def counters(self) -> dict[str, int]:
        """This worker's figures (``status``)."""
        return self.ctx.counters

    def connection_counts(self) -> dict[str, int]:
        """Open sessions per section (its first service's name)."""
        counts: dict[str, int] = {}
        seen: set[int] = set()
        for service in self._services:
            if id(service.limiter) not in seen:
                seen.add(id(service.limiter))
                counts[service.name] = service.limiter.active
        return counts


def load_tls(config: Config) -> TlsManager | None:
    """The certificate for every listener; TlsError when it is unusable or
    when a listener that cannot work without TLS has none."""
    tls = TlsManager.from_config(config)
    if tls is None:
        needing = [
            key for key, addresses in (
                ("submission.listen", config.submission.listen),
                ("submission.listen_tls", config.submission.listen_tls),
                ("pop3.listen_tls", config.pop3.listen_tls),
                ("imap.listen_tls", config.imap.listen_tls),
            ) if addresses
        ]
        if needing:
            raise TlsError(
                f"{', '.join(needing)} need a TLS certificate; none at "
                f"{config.tls_path(config.tls.cert)} (mailyard init creates one)"
            )
    return tls
