"""The running server: listeners, the delivery process, and an orderly stop.

Two processes for this milestone (MODELS §7.3e): this one runs the SMTP and
POP3 listeners and a local control socket on one event loop, with blocking
disk work (queue commits, maildrop access, password hashing) in thread
pools; the delivery worker (``dispatch/worker.py``, supervised by
``server/delivery.py``) runs the queue manager and local delivery. Each gets
an interpreter and a core of its own.

``run/ready.json`` is written once every listener is bound, with the
real addresses (port 0 in tests becomes a real port), so tests and scripts
wait on readiness instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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
from mailyard.server.limits import ConnectionLimiter
from mailyard.server.pop3d import Pop3Session
from mailyard.server.smtpd import SmtpSession
from mailyard.server.stream import ClientTooSlow
from mailyard.server.throttle import LoginThrottle

__all__ = ["MailServer", "run_server"]

STOP_GRACE: Final = 10.0  # seconds sessions get to finish on SIGTERM/SIGINT
DELIVERY_STOP: Final = 40.0  # seconds the delivery worker gets (its own limit is 30)
IO_THREADS: Final = 8
# Directory changes made by the CLI reach RCPT checks within this many seconds.
SNAPSHOT_REFRESH: Final = 0.25


@dataclass
class _Service:
    name: str
    limiter: ConnectionLimiter
    refuse: bytes
    session: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    servers: list[asyncio.Server] = field(default_factory=list)


class MailServer:
    def __init__(self, config: Config) -> None:
        self.config = config
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
            notify_queue=self.delivery.notify,
            relay_networks=tuple(
                ipaddress.ip_network(n, strict=False) for n in config.smtp.relay_networks
            ),
        )
        self._sessions: set[asyncio.Task[None]] = set()
        self._services: list[_Service] = []
        self._smtp_sessions: set[SmtpSession] = set()
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

    async def start(self) -> dict[str, list[str]]:
        smtp_config = self._smtp_config()
        pop3_config = self._pop3_config()

        async def smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            session = SmtpSession(self.ctx, smtp_config, reader, writer)
            self._smtp_sessions.add(session)
            try:
                await session.run()
            finally:
                self._smtp_sessions.discard(session)

        async def pop3(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await Pop3Session(self.ctx, pop3_config, reader, writer).run()

        s, p = self.config.smtp, self.config.pop3
        self._services = [
            _Service("smtp", ConnectionLimiter(s.max_connections, s.max_connections_per_ip),
                     b"421 4.7.0 too many connections; try again later\r\n", smtp),
            _Service("pop3", ConnectionLimiter(p.max_connections, p.max_connections_per_ip),
                     b"-ERR [SYS/TEMP] too many connections; try again later\r\n", pop3),
        ]
        listens = {"smtp": s.listen, "pop3": p.listen}
        bound: dict[str, list[str]] = {}
        for service in self._services:
            bound[service.name] = []
            for text in listens[service.name]:
                server = await self._bind(service, parse_listen(text))
                service.servers.append(server)
                for sock in server.sockets:
                    host, port = sock.getsockname()[:2]
                    bound[service.name].append(str(ListenAddress(host, port)))
        self._control = ControlServer(self.config.path("run", "control.sock"), self)
        await self._control.start()
        await self.delivery.start()
        self._write_ready(bound)
        for name, addresses in bound.items():
            event("listen", service=name, addresses=",".join(addresses))
        return bound

    async def _bind(self, service: _Service, address: ListenAddress) -> asyncio.Server:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._sessions.add(task)
            try:
                await self._connection(service, reader, writer)
            finally:
                self._sessions.discard(task)

        return await asyncio.start_server(
            handle, address.host, address.port, reuse_address=True, limit=65536
        )

    async def _connection(
        self, service: _Service, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername") or ("unknown", 0)
        ip = str(peer[0])
        started = time.monotonic()
        if not service.limiter.acquire(ip):
            event(f"{service.name}.refused", ip=ip, reason="connection limit")
            with contextlib.suppress(OSError):
                writer.write(service.refuse)
                await writer.drain()
            writer.close()
            return
        event(f"{service.name}.connect", ip=ip, port=peer[1] if len(peer) > 1 else None)
        reason = "closed"
        try:
            await service.session(reader, writer)
        except ClientTooSlow:
            reason = "write timeout"
        except (ConnectionError, asyncio.IncompleteReadError):
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
                writer.write(
                    b"421 4.3.0 internal error\r\n"
                    if service.name == "smtp"
                    else b"-ERR [SYS/TEMP] internal error\r\n"
                )
                await writer.drain()
        finally:
            service.limiter.release(ip)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            event(f"{service.name}.close", ip=ip, reason=reason,
                  seconds=round(time.monotonic() - started, 3))

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
        if self._sessions:
            _, pending = await asyncio.wait(list(self._sessions), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2.0)
        # Last: deliveries in flight finish; what was not started yet stays
        # in the queue for the next start (qmail-send's way of stopping).
        await self.delivery.stop(timeout=DELIVERY_STOP)
        self.io_pool.shutdown(wait=True)
        self.auth_pool.shutdown(wait=True)
        self.directory.close()
        self._stopped.set()
        event("stopped")

    def connection_counts(self) -> dict[str, int]:
        return {s.name: s.limiter.active for s in self._services}

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
        on_ready(bound)
        await server.wait_stopped()

    asyncio.run(main())
