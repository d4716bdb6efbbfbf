"""The delivery process: qmail-send's loop and qmail-lspawn's deliveries.

``python -m mailyard.dispatch.worker --state DIR`` runs the queue manager
in a process of its own, started and supervised by the server
(``server/delivery.py``). Two reasons for a process: the receiving side and
the delivery side each get an interpreter (and a core) to themselves, and
the seam is where privilege separation goes (MODELS §7.3e: delivery runs as
the mail user, the network side never touches mailboxes).

The server talks to it through the worker's stdin, one ASCII line per
command, and reads answers on its stdout:

* ``new <id>``  a message was just committed: deliver it now (the trigger);
* ``flush``     retry every scheduled message now;
* ``status``    answer one JSON line with the manager's figures;
* ``stop``      finish deliveries in flight, then exit 0.

End of file on stdin means the server is gone (even a SIGKILLed one): the
worker stops the same way. SIGTERM too; SIGINT is ignored, since a Ctrl-C
reaches the whole process group and the server decides the order of the
stop. Only one worker runs per state folder: it holds an exclusive lock on
``run/delivery.lock``, so a worker started while an orphaned one finishes
its last deliveries waits for it rather than delivering twice.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from mailyard import fsio
from mailyard.config import Config, ConfigError, load_config
from mailyard.directory.store import Directory
from mailyard.dispatch import eventloop
from mailyard.dispatch.channel import DeliveryPasses, RemoteChannel
from mailyard.dispatch.lspawn import LocalDeliveryPool
from mailyard.dispatch.manager import QueueManager
from mailyard.dispatch.process import MessageProcessor
from mailyard.dispatch.remote import RemoteDelivery
from mailyard.dispatch.routes import SettingsError
from mailyard.dispatch.settings import RemoteMode, RemoteSettings, settings_from_config
from mailyard.log import event
from mailyard.observe.recorder import setup_process
from mailyard.queue.ids import is_id
from mailyard.queue.store import Queue

__all__ = ["LOCK_NAME", "DeliveryWorker", "main"]

LOCK_NAME: Final = "delivery.lock"
STOP_TIMEOUT: Final = 30.0  # seconds deliveries in flight get to finish
PASS_WINDOW: Final = 10000  # passes under way at once (Postfix's active queue, in small)
REMOTE_THREADS: Final = 4
_MAX_COMMAND: Final = 1024


class DeliveryWorker:
    """The queue manager with everything it needs, for one state folder.

    ``remote`` overrides the remote-delivery settings read from the
    configuration (benchmarks and tests; the server passes none).
    """

    def __init__(self, config: Config, remote: RemoteSettings | None = None) -> None:
        self.config = config
        settings = remote or settings_from_config(config)
        self.local = LocalDeliveryPool(config.state_dir, config.delivery.local_concurrency,
                                       remote_mode=settings.mode.value)
        # First: the children's zygote is forked before any database is
        # open or any thread runs (lspawn.py).
        self.local.prepare()
        self.syncer = fsio.DirSyncer()
        self.directory = Directory.open(config.path("directory.sqlite"))
        self.queue = Queue(config.path("queue"), syncer=self.syncer)
        self.queue.ensure_layout()
        fsio.ensure_dir(config.path("mail"))
        # The manager's own disk work (recovery, rescans) and the remote
        # channel's (load, read, record) need no more threads than this.
        self.pool = ThreadPoolExecutor(REMOTE_THREADS, thread_name_prefix="queue")
        processor = MessageProcessor.from_config(config, self.directory, self.queue, self.syncer,
                                                 settings)
        channel = None
        if settings.mode is RemoteMode.DELIVER:
            delivery = RemoteDelivery(settings, config.hostname, clock=time.time)
            channel = RemoteChannel(processor, delivery, self.pool, time.time)
        self.passes = DeliveryPasses(self.local.run_pass, channel)
        self.manager = QueueManager(
            processor,
            self.pool,
            # Every stage bounds itself (the children, the SMTP sessions, the
            # destinations); this only bounds the passes under way at once.
            concurrency=PASS_WINDOW,
            rescan_interval=config.queue.rescan_interval,
            debris_age=float(config.queue.debris_age),
            run_pass=self.passes.run,
        )

    def command(self, line: str) -> str | None:
        """Run one command line; the reply line, if the command has one."""
        verb, _, arg = line.strip().partition(" ")
        if verb == "new" and is_id(arg):
            self.manager.notify(arg)
        elif verb == "flush":
            self.passes.flush()
            self.manager.flush()
            event("queue.flush")
        elif verb == "status":
            stats = self.manager.stats()
            return json.dumps({
                "pid": os.getpid(),
                "in_flight": stats.in_flight,
                "scheduled": stats.scheduled,
                "passes": stats.delivered_passes,
            })
        elif verb != "stop":
            event("delivery.bad_command", command=line[:80])
        return None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_MAX_COMMAND * 4)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await self.local.start()
        manager_task = asyncio.create_task(self.manager.run())
        commands = asyncio.create_task(self._read_commands(reader, stop))
        event("delivery.started", pid=os.getpid())
        await stop.wait()
        commands.cancel()
        self.local.stopping = True
        self.passes.stop()
        await self.manager.stop(timeout=STOP_TIMEOUT)
        manager_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await manager_task
        await self.local.stop()
        self.pool.shutdown(wait=True)
        self.directory.close()
        event("delivery.stopped", pid=os.getpid())

    async def _read_commands(self, reader: asyncio.StreamReader, stop: asyncio.Event) -> None:
        try:
            while True:
                try:
                    raw = await reader.readline()
                except ValueError:  # a line over the limit: not from our server
                    continue
                if not raw:
                    break  # EOF: the server is gone
                line = raw[:_MAX_COMMAND].decode("ascii", "replace")
                if line.strip() == "stop":
                    break
                reply = self.command(line)
                if reply is not None:
                    try:
                        sys.stdout.write(reply + "\n")
                        sys.stdout.flush()
                    except BrokenPipeError:
                        break  # the server is gone

        finally:
            stop.set()


def _take_lock(config: Config) -> int:
    """Block until no other delivery worker runs for this state folder."""
    fsio.ensure_dir(config.path("run"))
    fd = os.open(config.path("run", LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        event("delivery.waiting", reason="another delivery worker is finishing")
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def main(argv: list[str] | None = None, on_logging: Callable[[], None] | None = None) -> int:
    """The delivery worker's process; ``on_logging`` runs once its logging is
    set up (the supervisor's child reports what it did before the drop)."""
    parser = argparse.ArgumentParser(prog="mailyard.dispatch.worker")
    parser.add_argument("--state", required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGHUP is the server's "reload certificates"; sent to the whole group
    # (a closed terminal) it must not kill the delivery side.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        config = load_config(args.state)
        remote = settings_from_config(config)
    except (ConfigError, SettingsError) as exc:
        sys.stderr.write(f"mailyard delivery: configuration: {exc}\n")
        return 2
    setup_process(config, "delivery")  # logs as [log] says; metrics (observe/recorder.py)
    if on_logging is not None:
        on_logging()
    lock = _take_lock(config)
    try:
        eventloop.run(DeliveryWorker(config, remote).run(), config.server.event_loop)
    finally:
        os.close(lock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
