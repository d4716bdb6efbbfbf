"""``mailyard serve``: the supervisor (daemontools' supervise and svc, in one).

The supervisor binds every listening socket (port 0 in tests becomes a
real port, recorded in ``run/ready.json``), then starts the workers, each
with one job (MODELS §7.3e) and the sockets of its job:

* ``smtp``: SMTP, submission, SMTPS, QMTP, QMQP (``server.user``);
* ``mailbox`` ×N: IMAP and POP3 (``server.mail_user``); the N workers
  share the listening sockets, the kernel gives each connection to one of
  them, so every core serves clients and a worker's crash ends only its
  own sessions;
* ``queue``: the queue writer (``injector.py``, ``server.mail_user``), the
  only writer of ``queue/`` when ``server.queue_writer`` gives it a
  process: the SMTP side sends it each message over ``run/queue.sock``,
  which the supervisor binds like the other listening sockets (so the
  writer can be restarted while SMTP workers wait in its backlog);
* ``delivery``: the queue manager and local delivery (``delivery.py``).

Started as root, it stays root (it parses nothing from the network) and
the workers run as the configured users; started as anyone else, every
process runs as that user.

A worker that exits is restarted after 1 s, then 2, 4 … up to 60 s while
it keeps failing; one that ran for a minute counts as healthy again. Each
worker sends a heartbeat on its channel (``child.py``); one silent for
``server.watchdog`` seconds is killed and so restarted. The supervisor
never exits because a worker failed.

Signals: SIGTERM and SIGINT stop (the listeners close at once, sessions
get ``server.stop_grace`` seconds, deliveries in flight finish); SIGHUP
reloads: configuration, users and certificate are checked, then a new
set of workers starts on the same sockets and the old ones retire (they
accept nothing new and end when their sessions have), so no connection is
dropped. ``run/control.sock`` answers ``mailyard ctl``; under systemd
``$NOTIFY_SOCKET`` hears READY=1 once every worker serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Final

from mailyard import fsio
from mailyard.config import Config, ConfigError, ListenAddress, load_config, parse_listen
from mailyard.directory.errors import StorageError
from mailyard.directory.store import Directory
from mailyard.log import event
from mailyard.queue.store import Queue
from mailyard.server.app import ROLE_OF, Role, listen_addresses, load_tls
from mailyard.server.control import ControlServer
from mailyard.server.delivery import DeliveryProcess
from mailyard.server.injector import QUEUE_SOCKET
from mailyard.server.metrics import MetricsHandle, start_metrics_server
from mailyard.server.privileges import (
    PrivilegeError,
    RunAs,
    identity_args,
    plan_identities,
    prepare_state,
    queue_writer_separate,
)
from mailyard.server.sdnotify import notify as sd_notify
from mailyard.server.tls import TlsError, TlsManager
from mailyard.server.workers import StartError, Worker, WorkerSpec

__all__ = ["PID_FILE", "READY_FILE", "StartError", "Supervisor", "bind_address", "run_server"]

PID_FILE: Final = "mailyard.pid"
READY_FILE: Final = "ready.json"
BACKLOG: Final = 128
DELIVERY_STOP: Final = 40.0  # seconds the delivery worker gets (its own limit is 30)
START_TIMEOUT: Final = 60.0  # seconds a new set of workers gets to be ready


def bind_address(address: ListenAddress) -> list[socket.socket]:
    """Listening sockets for one configured address, as asyncio would bind them:
    one per address the host resolves to, IPv6 ones IPv6-only, SO_REUSEADDR."""
    infos = socket.getaddrinfo(address.host or None, address.port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, sockaddr in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


@dataclass
class _Figures:
    """What ``status`` reports as counters: every worker's, summed."""

    workers: list[Worker]
    base: dict[str, int] = field(default_factory=dict)  # of workers gone

    @property
    def counters(self) -> dict[str, int]:
        total = dict(self.base)
        for worker in self.workers:
            for key, value in worker.counters.items():
                total[key] = total.get(key, 0) + value
        return total


class Supervisor:
    """The server as a whole: sockets, workers, delivery, control socket."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.started = time.time()
        self._tls = load_tls(config)  # first: a bad certificate must not start anything
        self.run_as: RunAs = plan_identities(config)
        if os.geteuid() == 0 and self.run_as.smtp is None:
            event("privileges.root", level=logging.WARNING,
                  reason="no server.user: the workers run as root")
        self.separate = queue_writer_separate(config)  # fixed until the next start
        Queue(config.path("queue")).ensure_layout()
        fsio.ensure_dir(config.path("mail"))
        fsio.ensure_dir(config.path("run"))
        self._hold = self._hold_directory(self.run_as)
        if self._hold is None:
            self._create_directory()
        prepare_state(config, self.run_as.mail, self.run_as.group)
        self.sockets: dict[str, list[socket.socket]] = {}
        self.bound: dict[str, list[str]] = {}
        try:
            self._bind_all()
            if self.separate:
                self.sockets["queue"] = [self._bind_queue_socket()]
        except OSError:
            self._close_sockets()
            raise
        self.delivery = DeliveryProcess(config.state_dir, identity_args(self.run_as.mail),
                                        watchdog=config.server.watchdog)
        self._workers: list[Worker] = []
        self.ctx = _Figures(self._workers)
        self._control: ControlServer | None = None
        self._metrics: MetricsHandle | None = None
        self._stopping = False
        self._stopped = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[object]] = set()

    def _bind_all(self) -> None:
        for name, addresses in listen_addresses(self.config).items():
            self.sockets[name], self.bound[name] = [], []
            for text in addresses:
                for sock in bind_address(parse_listen(text)):
                    self.sockets[name].append(sock)
                    host, port = sock.getsockname()[:2]
                    self.bound[name].append(str(ListenAddress(host, port)))

    def _hold_directory(self, run_as: RunAs) -> Directory | None:
        """With two users, keep the directory database open for the server's life.

        The SMTP side reads it without write permission, which SQLite
        allows only while its -wal and -shm files exist; a connection held
        here (created as root, SQLite gives them the database's owner)
        keeps them, whichever worker opens or closes it last.
        """
        if run_as.group is None:
            return None
        try:
            return Directory.open(self.config.path("directory.sqlite"))
        except StorageError as exc:
            raise PrivilegeError(str(exc)) from exc

    def _create_directory(self) -> None:
        """Create (or migrate) the directory database before any worker opens
        it: one process making a new database, not four at once; a database
        that cannot be opened stops the start here, with its reason."""
        try:
            Directory.open(self.config.path("directory.sqlite")).close()
        except StorageError as exc:
            raise PrivilegeError(str(exc)) from exc

    def _bind_queue_socket(self) -> socket.socket:
        """``run/queue.sock``: the queue writer's, reachable by the SMTP side only
        (mode 0660, the mail user's, in the shared group)."""
        path = self.config.path("run", QUEUE_SOCKET)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # left by a server that was killed
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            self._own_queue_socket(self.run_as)
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    def _own_queue_socket(self, run_as: RunAs) -> None:
        """The socket's owner and mode for ``run_as`` (again at a reload)."""
        path = self.config.path("run", QUEUE_SOCKET)
        mail, group = run_as.mail, run_as.group
        os.chmod(path, 0o660 if group is not None else 0o600)
        if mail is not None and os.geteuid() == 0:
            os.lchown(path, mail.uid, group if group is not None else mail.gid)

    def _close_sockets(self) -> None:
        for sockets in self.sockets.values():
            for sock in sockets:
                sock.close()

    # -- workers -----------------------------------------------------------------------

    def _specs(self, config: Config) -> list[WorkerSpec]:
        """The workers of ``config``: one SMTP side, max(imap, pop3) mailbox workers."""
        smtp = tuple(n for n in self.sockets if ROLE_OF.get(n) is Role.SMTP)
        specs = [WorkerSpec(Role.QUEUE, 0, ("queue",))] if self.separate else []
        specs += [WorkerSpec(Role.SMTP, 0, smtp)] if smtp else []
        srv = config.server
        for index in range(max(srv.imap_workers, srv.pop3_workers)):
            names = tuple(
                n for n in self.sockets if ROLE_OF.get(n) is Role.MAILBOX
                and index < (srv.imap_workers if n.startswith("imap") else srv.pop3_workers))
            if names:
                specs.append(WorkerSpec(Role.MAILBOX, index, names))
        return specs

    def _new_worker(self, spec: WorkerSpec) -> Worker:
        identity = self.run_as.smtp if spec.role is Role.SMTP else self.run_as.mail
        extra: tuple[str, ...] = ()
        if spec.role is Role.SMTP and self.separate:
            extra = ("--queue-socket", self.config.path("run", QUEUE_SOCKET))
        return Worker(spec, self.config, identity,
                      {n: self.sockets[n] for n in spec.services},
                      on_notify=self._notify, on_gone=self._worker_gone, extra_args=extra)

    def _notify(self, qid: str) -> None:
        self.delivery.notify(qid)

    def _forget(self, worker: Worker) -> None:
        if worker in self._workers:
            self._workers.remove(worker)

    def _worker_gone(self, worker: Worker) -> None:
        for key, value in worker.counters.items():
            self.ctx.base[key] = self.ctx.base.get(key, 0) + value
        worker.counters = {}

    async def _start_set(self, specs: list[WorkerSpec]) -> list[Worker]:
        """Start workers and wait until each serves; StartError if one cannot."""
        workers = [self._new_worker(spec) for spec in specs]
        self._workers.extend(workers)
        for worker in workers:
            worker.start(lambda: self._stopping, self._forget)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                for worker in workers:
                    await worker.wait_ready()
        except (StartError, TimeoutError) as exc:
            for worker in workers:
                await worker.finish(0.0)
                self._forget(worker)
            raise StartError(str(exc) or "the workers did not start in time") from exc
        return workers

    def _spawn_task(self, work: Callable[[], Coroutine[Any, Any, object]]) -> None:
        task = asyncio.get_running_loop().create_task(work())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- start, reload, stop -----------------------------------------------------------

    async def start(self) -> dict[str, list[str]]:
        """Start everything; the addresses listened on, once every worker serves."""
        try:
            await self._start_set(self._specs(self.config))
        except StartError:
            self._close_sockets()
            raise
        self._control = ControlServer(self.config.path("run", "control.sock"), self)
        await self._control.start()
        self._metrics = await start_metrics_server(self.config, self.started)
        await self.delivery.start()
        self._spawn_task(self._watchdog)
        pid = f"{os.getpid()}\n".encode()
        fsio.write_file_atomic(self.config.path("run"), PID_FILE, [pid], mode=0o644)
        payload = json.dumps({"pid": os.getpid(), "listeners": self.bound}).encode()
        fsio.write_file_atomic(self.config.path("run"), READY_FILE, [payload])
        for name, where in self.bound.items():
            event("listen", service=name, addresses=",".join(where))
        if self._tls is not None:
            info = self._tls.info
            event("tls.ready", subject=info.subject, serial=f"{info.serial:x}",
                  not_after=info.not_after.isoformat())
        else:
            event("tls.off", reason="no certificate", cert=self.config.tls.cert)
        event("supervisor.ready", pid=os.getpid(), workers=len(self._workers),
              user=self.run_as.smtp.name if self.run_as.smtp else None,
              mail_user=self.run_as.mail.name if self.run_as.mail else None)
        sd_notify("READY=1", f"MAINPID={os.getpid()}", "STATUS=serving")
        return self.bound

    async def _watchdog(self) -> None:
        """Kill every worker silent for longer than ``server.watchdog``."""
        while not self._stopping:
            watchdog = self.config.server.watchdog
            await asyncio.sleep(min(1.0, watchdog / 4))
            for worker in list(self._workers):
                worker.check_heartbeat(watchdog)

    def request_reload(self) -> None:
        """SIGHUP or ``mailyard ctl reload``."""
        if not self._stopping:
            self._spawn_task(self.reload)

    async def reload(self) -> bool:
        """New configuration, users and certificate, without dropping a connection."""
        async with self._reload_lock:
            if self._stopping:
                return False
            sd_notify("RELOADING=1")
            try:
                ok = await self._reload()
            finally:
                sd_notify("READY=1", "STATUS=serving")
            return ok

    def _load_new(self) -> tuple[Config, TlsManager | None, RunAs] | None:
        """The configuration, certificate and users a reload would switch to;
        None (and logged) when one of them is unusable."""
        try:
            config = load_config(self.config.state_dir)
            tls = load_tls(config)
        except TlsError as exc:
            # The workers under way keep the certificate they loaded.
            kept = f"{self._tls.info.serial:x}" if self._tls is not None else None
            event("tls.reload_failed", level=logging.ERROR, error=str(exc), kept_serial=kept)
            return None
        except ConfigError as exc:
            event("reload.failed", level=logging.ERROR, error=str(exc))
            return None
        try:
            run_as = plan_identities(config)
            if self._hold is None:
                self._hold = self._hold_directory(run_as)
            prepare_state(config, run_as.mail, run_as.group)
        except (PrivilegeError, OSError) as exc:
            event("reload.failed", level=logging.ERROR, error=str(exc) or type(exc).__name__)
            return None
        return config, tls, run_as

    async def _reload(self) -> bool:
        old_config, old_run_as = self.config, self.run_as
        loaded = self._load_new()
        if loaded is None:
            return False
        config, tls, run_as = loaded
        if listen_addresses(config) != listen_addresses(old_config):
            event("reload.listen_unchanged", level=logging.WARNING,
                  reason="listen addresses change at the next start")
        old = [w for w in self._workers if not w.retiring]
        old_separate = self.separate
        self.config, self.run_as = config, run_as
        self.separate = queue_writer_separate(config)
        try:
            self._queue_socket_for(run_as)
            await self._start_set(self._specs(config))
        except (StartError, OSError) as exc:
            self.config, self.run_as, self.separate = old_config, old_run_as, old_separate
            event("reload.failed", level=logging.ERROR, error=str(exc) or type(exc).__name__)
            return False
        for worker in old:
            worker.retire()
        self._tls = tls
        if tls is not None:
            event("tls.reloaded", subject=tls.info.subject, serial=f"{tls.info.serial:x}",
                  not_after=tls.info.not_after.isoformat())
        if self._stopping:
            return False  # stop() stops the delivery worker; no restart behind its back
        if config != old_config or run_as != old_run_as:
            await self.delivery.restart(identity_args(run_as.mail), DELIVERY_STOP)
        event("reloaded", workers=len(self._workers) - len(old),
              user=run_as.smtp.name if run_as.smtp else None)
        return True

    def _queue_socket_for(self, run_as: RunAs) -> None:
        """A reload that gives the queue a writer process binds its socket
        (once: it stays for the next reloads); one that changes users re-owns it."""
        if not self.separate:
            return
        if "queue" in self.sockets:
            self._own_queue_socket(run_as)
        else:
            self.sockets["queue"] = [self._bind_queue_socket()]

    def request_stop(self) -> None:
        """SIGTERM, SIGINT or ``mailyard ctl stop``."""
        if not self._stopping:
            self._stopping = True
            asyncio.get_running_loop().create_task(self.stop())

    async def stop(self) -> None:
        """Close the listeners, let the workers finish their sessions, stop delivery."""
        self._stopping = True
        sd_notify("STOPPING=1")
        event("stopping", workers=len(self._workers))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.config.path("run", READY_FILE))
        # The kernel closes a listener when its last descriptor goes: ours
        # first, the workers' as they stop, so new clients are refused at once.
        self._close_sockets()
        if self._control is not None:
            await self._control.stop()
        if self._metrics is not None:
            await self._metrics.stop()
        grace = self.config.server.stop_grace
        writers = [w for w in self._workers if w.spec.role is Role.QUEUE]
        await asyncio.gather(*(w.finish(grace) for w in list(self._workers) if w not in writers))
        # The queue writer after the SMTP side: its sessions' last commits go through it.
        await asyncio.gather(*(w.finish(grace) for w in writers))
        for task in list(self._tasks):
            task.cancel()
        # Last: deliveries in flight finish; what was not started yet stays
        # in the queue for the next start (qmail-send's way of stopping).
        await self.delivery.stop(timeout=DELIVERY_STOP)
        if self._hold is not None:
            self._hold.close()
        for name in (PID_FILE, QUEUE_SOCKET if "queue" in self.sockets else ""):
            with contextlib.suppress(FileNotFoundError):
                if name:
                    os.unlink(self.config.path("run", name))
        self._stopped.set()
        event("stopped")

    async def wait_stopped(self) -> None:
        """Until ``stop`` has finished."""
        await self._stopped.wait()

    def connection_counts(self) -> dict[str, int]:
        """Open sessions per section, summed over the workers."""
        counts: dict[str, int] = {}
        for worker in self._workers:
            for name, value in worker.connections.items():
                counts[name] = counts.get(name, 0) + value
        return counts

    def workers(self) -> list[dict[str, object]]:
        """Each worker: role, index, pid, restarts, user, whether it is retiring."""
        return [w.describe() for w in self._workers]


def run_server(config: Config, on_ready: Callable[[dict[str, list[str]]], None]) -> None:
    """Run until SIGINT or SIGTERM; ``on_ready`` is told where it listens."""

    async def main() -> None:
        server = Supervisor(config)
        bound = await server.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.request_stop)
        loop.add_signal_handler(signal.SIGHUP, server.request_reload)
        on_ready(bound)
        await server.wait_stopped()

    asyncio.run(main())
