"""A worker process: ``python -m mailyard.server.child --role smtp|mailbox|queue|delivery``.

The supervisor starts it with the listening sockets of its role already
bound (inherited descriptors, ``--listen NAME=FD``), a channel to itself
(``--channel FD``: a Unix stream socket, one JSON object per line) and
the identity to drop to (``--user/--uid/--gid/--groups``). Started as
root, the worker loads its code, its configuration and the TLS key (which
stays readable by root only), then drops to that identity for good before
it opens a store or accepts a connection (privileges.py). The
``delivery`` role is the same trampoline around ``dispatch/worker.py``:
load, drop, run. The ``queue`` role is the queue writer (``injector.py``);
an SMTP worker told ``--queue-socket PATH`` sends its messages there
instead of writing ``queue/`` (``injector_client.py``).

On the channel the worker says ``ready`` once it serves, then a ``beat``
every second or so (the watchdog's heartbeat, carrying its connection
counts and counters), ``sessions`` when a session starts or ends, and
``notify`` with the ids of the messages it queued (the supervisor wakes
the delivery worker). The supervisor says ``stop`` (SIGTERM: finish within
the grace time) or ``retire`` (SIGHUP replaced this worker: accept nothing
new, end when the sessions under way have ended).

End of file on the channel means the supervisor is gone, even a SIGKILLed
one: the worker stops as on ``stop``. SIGTERM does the same; SIGINT and
SIGHUP are ignored, as the supervisor decides what they mean (a Ctrl-C or
a closed terminal reaches the whole process group).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from mailyard.config import Config, ConfigError, load_config
from mailyard.log import event
from mailyard.observe.recorder import setup_process
from mailyard.dispatch import eventloop
from mailyard.server.app import RoleServer
from mailyard.server.injector import QueueServer
from mailyard.server.injector_client import RemoteQueue
from mailyard.server.preload import preload_for
from mailyard.server.privileges import Identity, PrivilegeError, drop_to
from mailyard.server.tls import TlsError, TlsManager

__all__ = ["CHANNEL_LIMIT", "ChildArgs", "Serving", "beat_interval", "decode", "encode", "main"]

CHANNEL_LIMIT: Final = 1 << 20  # octets of one channel line
EXIT_CONFIG: Final = 2  # a configuration the worker cannot use: restarting will not help


def beat_interval(watchdog: float) -> float:
    """Seconds between heartbeats: several per watchdog period, at most one a second."""
    return min(1.0, watchdog / 4)


def encode(message: dict[str, Any]) -> bytes:
    """One channel line."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any] | None:
    """A channel line's object, or None when it is not one."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True, slots=True)
class ChildArgs:
    """What the supervisor tells a worker on its command line."""

    state: str
    role: str
    index: int
    channel: int
    identity: Identity | None
    listen: tuple[tuple[str, int], ...]
    queue_socket: str = ""  # SMTP role: the queue writer's socket ("" = write queue/)


class Serving(Protocol):
    """What a worker's channel needs of the server it runs (``RoleServer``,
    ``QueueServer``)."""

    config: Config
    on_sessions_changed: Callable[[], None]

    @property
    def counters(self) -> dict[str, int]:
        """The figures ``status`` sums."""

    def connection_counts(self) -> dict[str, int]:
        """Open sessions per section."""

    async def start(self, sockets: Mapping[str, list[socket.socket]]) -> None:
        """Serve the sockets handed over."""

    async def stop(self, grace: float) -> None:
        """Stop; sessions get ``grace`` seconds."""

    async def retire(self) -> None:
        """Accept nothing new; end when the sessions have."""


def _parse(argv: list[str] | None) -> ChildArgs:
    parser = argparse.ArgumentParser(prog="mailyard.server.child")
    parser.add_argument("--state", required=True)
    parser.add_argument("--role", required=True,
                        choices=("smtp", "mailbox", "queue", "delivery"))
    parser.add_argument("--queue-socket", default="")
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--channel", type=int, default=-1)
    parser.add_argument("--user", default="")
    parser.add_argument("--uid", type=int, default=None)
    parser.add_argument("--gid", type=int, default=None)
    parser.add_argument("--groups", default="")
    parser.add_argument("--listen", action="append", default=[])
    ns = parser.parse_args(argv)
    listen = []
    for item in ns.listen:
        name, _, fd = item.partition("=")
        listen.append((name, int(fd)))
    identity = None
    if ns.uid is not None and ns.gid is not None:
        groups = tuple(int(g) for g in ns.groups.split(",") if g)
        identity = Identity(ns.user or str(ns.uid), ns.uid, ns.gid, groups)
    return ChildArgs(ns.state, ns.role, ns.index, ns.channel, identity, tuple(listen),
                     ns.queue_socket)


class _Worker:
    """The worker's side of the channel around its server."""

    def __init__(self, args: ChildArgs, make: Callable[[Callable[[str], None]], Serving],
                 sockets: dict[str, list[socket.socket]]) -> None:
        self._args = args
        self._make = make  # the server, given where committed ids go
        self._server: Serving | None = None
        self._sockets = sockets
        self._writer: asyncio.StreamWriter | None = None
        self._triggers: list[str] = []
        self._done = asyncio.Event()
        self._work: asyncio.Task[None] | None = None
        self._retiring = False

    def _send(self, message: dict[str, Any]) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            return
        # A supervisor that stopped reading is stuck or gone: drop, never buffer without end.
        if writer.transport.get_write_buffer_size() > CHANNEL_LIMIT:
            return
        writer.write(encode(message))

    def _figures(self, kind: str) -> dict[str, Any]:
        return {"t": kind, "pid": os.getpid(),
                "connections": self.server.connection_counts(),
                "counters": dict(self.server.counters)}

    def notify(self, qid: str) -> None:
        """A message was committed: tell the supervisor, a loop turn's ids at once."""
        if not self._triggers:
            asyncio.get_running_loop().call_soon(self._send_triggers)
        self._triggers.append(qid)

    def _send_triggers(self) -> None:
        ids, self._triggers = self._triggers, []
        self._send({"t": "notify", "ids": ids})

    @property
    def server(self) -> Serving:
        assert self._server is not None, "the worker runs"
        return self._server

    async def run(self) -> None:
        """Serve, talk to the supervisor, and return once stopped."""
        loop = asyncio.get_running_loop()
        self._server = self._make(self.notify)
        channel = socket.socket(fileno=self._args.channel)
        reader, self._writer = await asyncio.open_connection(sock=channel, limit=CHANNEL_LIMIT)
        self.server.on_sessions_changed = lambda: self._send(self._figures("sessions"))
        await self.server.start(self._sockets)
        loop.add_signal_handler(signal.SIGTERM, self._begin, "stop", None)
        self._send(self._figures("ready"))
        event("worker.ready", role=self._args.role, index=self._args.index, pid=os.getpid())
        beats = asyncio.create_task(self._beat())
        commands = asyncio.create_task(self._read(reader))
        await self._done.wait()
        beats.cancel()
        commands.cancel()
        with contextlib.suppress(ConnectionError):
            self._writer.close()

    def _begin(self, how: str, grace: float | None) -> None:
        """``retire`` or ``stop``; a stop overrides a retirement under way
        (its remaining sessions then get the grace), and nothing else does."""
        loop = asyncio.get_running_loop()
        if how == "retire":
            if self._work is None:
                self._retiring = True
                self._work = loop.create_task(self._finish(self.server.retire()))
            return
        if self._work is not None and not self._retiring:
            return  # already stopping
        if self._work is not None:
            self._work.cancel()
        self._retiring = False
        grace = grace if grace is not None else self.server.config.server.stop_grace
        self._work = loop.create_task(self._finish(self.server.stop(grace)))

    async def _finish(self, work: Coroutine[Any, Any, None]) -> None:
        await work
        self._done.set()

    async def _beat(self) -> None:
        interval = beat_interval(self.server.config.server.watchdog)
        while True:
            await asyncio.sleep(interval)
            self._send(self._figures("beat"))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await reader.readline()
            except (ValueError, ConnectionError):
                line = b""
            if not line:
                event("worker.orphaned", level=logging.WARNING, pid=os.getpid())
                self._begin("stop", None)
                return
            message = decode(line) or {}
            if message.get("t") in {"stop", "retire"}:
                grace = message.get("grace")
                self._begin(str(message["t"]), float(grace) if grace is not None else None)


def _delivery(args: ChildArgs) -> int:
    """The delivery worker, loaded as root and run as the mail user."""
    from mailyard.dispatch import worker

    if args.identity is not None:
        done = preload_for(args.identity, _loop_modules(args.state))
        drop_to(args.identity)
        return worker.main(["--state", args.state],
                           on_logging=lambda: done.report(args.role, args.identity))
    return worker.main(["--state", args.state])


def _loop_modules(state: str) -> tuple[str, ...]:
    """The event loop's module, when the configuration opts into uvloop."""
    try:
        return ("uvloop",) if load_config(state).server.event_loop == "uvloop" else ()
    except ConfigError:
        return ()  # the worker reports it itself


def main(argv: list[str] | None = None) -> int:
    """Run one worker until told to stop; its exit status for the supervisor."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    args = _parse(argv)
    if args.role == "delivery":
        return _delivery(args)
    try:
        config = load_config(args.state)
        setup_process(config, args.role)  # logs as [log] says; metrics (observe/recorder.py)
        tls = TlsManager.from_config(config)  # as root: the key may be root's alone
        if args.identity is not None:
            # Code loaded on first use must be loaded while it can be read.
            loop = ("uvloop",) if config.server.event_loop == "uvloop" else ()
            preload_for(args.identity, loop).report(args.role, args.identity)
            drop_to(args.identity)
    except (PrivilegeError, ConfigError, TlsError, OSError) as exc:
        sys.stderr.write(f"mailyard {args.role} worker: {exc}\n")
        return EXIT_CONFIG
    sockets: dict[str, list[socket.socket]] = {}
    for name, fd in args.listen:
        sockets.setdefault(name, []).append(socket.socket(fileno=fd))
    remote = RemoteQueue(args.queue_socket) if args.queue_socket else None

    def make(notify: Callable[[str], None]) -> Serving:
        if args.role == "queue":
            return QueueServer(config, notify)
        if remote is not None:
            # The queue writer tells the supervisor of each commit itself.
            return RoleServer(config, tls, lambda _qid: None, remote)
        return RoleServer(config, tls, notify)

    try:
        # [server] event_loop: uvloop is an opt-in speed-up for the workers.
        eventloop.run(_Worker(args, make, sockets).run(), config.server.event_loop)
    finally:
        if remote is not None:
            remote.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
