"""The running server: listeners, the delivery process, and an orderly stop.

Two processes for this milestone (MODELS §7.3e): this one runs the SMTP,
submission, POP3 and IMAP listeners and a local control socket on one event loop,
with blocking disk work (queue commits, maildrop access, password hashing)
in thread pools; the delivery worker (``dispatch/worker.py``, supervised by
``server/delivery.py``) runs the queue manager and local delivery. Each gets
an interpreter and a core of its own.

Listeners are ``listener.Service`` values, plain or implicit TLS; the TLS
certificate is loaded once (``tls.TlsManager``) and reloaded on SIGHUP.

``run/ready.json`` is written once every listener is bound, with the
real addresses (port 0 in tests becomes a real port), so tests and scripts
wait on readiness instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from mailyard import fsio
from mailyard.config import Config, ListenAddress, parse_listen
from mailyard.directory.store import Directory
from mailyard.log import event
from mailyard.proto.pop3 import Pop3Features, Pop3Limits, Pop3ServerConfig
from mailyard.proto.smtp import Features, SmtpLimits, SmtpServerConfig
from mailyard.queue.store import Queue
from mailyard.server.context import ServerContext
from mailyard.server.control import ControlServer
from mailyard.server.delivery import DeliveryProcess
from mailyard.server.imapd import ImapService
from mailyard.server.limits import ConnectionLimiter
from mailyard.server.qmtpd import qmtp_listeners
from mailyard.server.listener import Connection, ListenerKind, Service, bind
from mailyard.server.pop3d import Pop3Session
from mailyard.server.smtpd import SmtpRole, SmtpSession
from mailyard.server.throttle import LoginThrottle
from mailyard.server.tls import TlsError, TlsManager

__all__ = ["MailServer", "load_tls", "run_server"]

STOP_GRACE: Final = 10.0  # seconds sessions get to finish on SIGTERM/SIGINT
DELIVERY_STOP: Final = 40.0  # seconds the delivery worker gets (its own limit is 30)
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


class MailServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.tls = load_tls(config)  # first: a bad certificate must not start anything
        self.directory = Directory.open(
            config.path("directory.sqlite"), refresh_interval=SNAPSHOT_REFRESH
        )
        self.syncer = fsio.DirSyncer()
        self.queue = Queue(config.path("queue"), syncer=self.syncer)
        self.queue.ensure_layout()
        fsio.ensure_dir(config.path("mail"))
        fsio.ensure_dir(config.path("run"))
        # Enough threads to overlap the fsyncs of concurrent commits (and to
        # let DirSyncer share directory syncs), few enough to keep the GIL
        # hand-offs cheap: measured with bench/smtp_ingest.py.
        self.io_pool = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="io")
        self.auth_pool = ThreadPoolExecutor(2, thread_name_prefix="auth")
        self.delivery = DeliveryProcess(config.state_dir)
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
            notify_queue=self.delivery.notify,
            tls=self.tls,
            relay_networks=tuple(
                ipaddress.ip_network(n, strict=False) for n in config.smtp.relay_networks
            ),
        )
        self._sessions: set[asyncio.Task[None]] = set()
        self._services: list[Service] = []
        self._smtp_sessions: set[SmtpSession] = set()
        self.imap = ImapService(self.ctx)
        self._control: ControlServer | None = None
        self._stopped = asyncio.Event()
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

    # -- start / stop ----------------------------------------------------------------------

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

    def _listeners(self) -> list[tuple[Service, tuple[str, ...]]]:
        """Every listener: (service, its addresses).

        The plain and implicit-TLS listeners of a section share its limiter.
        """
        c, sub = self.config, self.config.submission
        mx = SmtpRole("smtp", auth=c.smtp.auth)
        msa = SmtpRole("submission", submission=True, auth=True,
                       sender_check=sub.sender_check == "strict",
                       max_header_size=sub.max_header_size)
        smtp_limits = ConnectionLimiter(c.smtp.max_connections, c.smtp.max_connections_per_ip)
        sub_limits = ConnectionLimiter(sub.max_connections, sub.max_connections_per_ip)
        pop3_limits = ConnectionLimiter(c.pop3.max_connections, c.pop3.max_connections_per_ip)
        imap_limits = ConnectionLimiter(c.imap.max_connections, c.imap.max_connections_per_ip)
        plain, implicit = ListenerKind.PLAIN, ListenerKind.IMPLICIT_TLS
        smtp, pop3 = (_SMTP_REFUSE, _SMTP_ERROR), (_POP3_REFUSE, _POP3_ERROR)
        imap = (_IMAP_REFUSE, _IMAP_ERROR)
        rows = [
            ("smtp", plain, smtp_limits, self._smtp_handler(mx), smtp, c.smtp.listen),
            ("submission", plain, sub_limits, self._smtp_handler(msa), smtp, sub.listen),
            ("smtps", implicit, sub_limits,
             self._smtp_handler(dataclasses.replace(msa, service="smtps")), smtp, sub.listen_tls),
            ("pop3", plain, pop3_limits, self._pop3_handler(), pop3, c.pop3.listen),
            ("pop3s", implicit, pop3_limits, self._pop3_handler(), pop3, c.pop3.listen_tls),
            ("imap", plain, imap_limits, self.imap.serve, imap, c.imap.listen),
            ("imaps", implicit, imap_limits, self.imap.serve, imap, c.imap.listen_tls),
        ]
        services = [
            (Service(name, kind, limiter, refuse=refuse, internal_error=error,
                     session=session, tls=self.tls), addresses)
            for name, kind, limiter, session, (refuse, error), addresses in rows
            if addresses
        ]
        # QMTP and QMQP (off unless their listen lists are set).
        return services + qmtp_listeners(self.ctx, c.qmtp, c.qmqp)

    async def start(self) -> dict[str, list[str]]:
        bound: dict[str, list[str]] = {}
        for service, addresses in self._listeners():
            self._services.append(service)
            bound[service.name] = []
            for text in addresses:
                server = await bind(service, parse_listen(text), self._sessions)
                for sock in server.sockets:
                    host, port = sock.getsockname()[:2]
                    bound[service.name].append(str(ListenAddress(host, port)))
        self._control = ControlServer(self.config.path("run", "control.sock"), self)
        await self._control.start()
        await self.delivery.start()
        self._write_ready(bound)
        for name, where in bound.items():
            event("listen", service=name, addresses=",".join(where))
        if self.tls is not None:
            info = self.tls.info
            event("tls.ready", subject=info.subject, serial=f"{info.serial:x}",
                  not_after=info.not_after.isoformat())
        else:
            event("tls.off", reason="no certificate", cert=self.config.tls.cert)
        return bound

    def reload_tls(self) -> None:
        """SIGHUP: new handshakes use the renewed certificate (tls.py)."""
        if self.tls is None:
            event("tls.reload_failed", error="TLS is off: no certificate at start")
            return
        self.tls.reload()

    def _write_ready(self, bound: dict[str, list[str]]) -> None:
        payload = json.dumps({"pid": os.getpid(), "listeners": bound}).encode()
        fsio.write_file_atomic(self.config.path("run"), "ready.json", [payload])

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop accepting, let sessions finish within ``grace``, then cut them off."""
        event("stopping", sessions=len(self._sessions))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.config.path("run", "ready.json"))
        for service in self._services:
            for server in service.servers:
                server.close()
        if self._control is not None:
            await self._control.stop()
        for session in list(self._smtp_sessions):
            session.shutdown_notice()
        self.imap.shutdown_notice()
        if self._sessions:
            _, pending = await asyncio.wait(list(self._sessions), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2.0)
        await self.imap.stop()
        # Last: deliveries in flight finish; what was not started yet stays
        # in the queue for the next start (qmail-send's way of stopping).
        await self.delivery.stop(timeout=DELIVERY_STOP)
        self.io_pool.shutdown(wait=True)
        self.auth_pool.shutdown(wait=True)
        self.directory.close()
        self._stopped.set()
        event("stopped")

    def connection_counts(self) -> dict[str, int]:
        # Plain and implicit-TLS listeners of one section share a limiter.
        counts: dict[str, int] = {}
        seen: set[int] = set()
        for service in self._services:
            if id(service.limiter) not in seen:
                seen.add(id(service.limiter))
                counts[service.name] = service.limiter.active
        return counts

    def request_stop(self) -> None:
        if not self._stopping:
            self._stopping = True
            asyncio.get_running_loop().create_task(self.stop())

    _stopping = False

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


def run_server(config: Config, on_ready: Callable[[dict[str, list[str]]], None]) -> None:
    """Run until SIGINT or SIGTERM; ``on_ready`` is told where it listens."""

    async def main() -> None:
        server = MailServer(config)
        bound = await server.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.request_stop)
        loop.add_signal_handler(signal.SIGHUP, server.reload_tls)
        on_ready(bound)
        await server.wait_stopped()

    asyncio.run(main())


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
