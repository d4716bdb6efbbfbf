"""The supervisor's side of one worker: spawn, channel, restart, watchdog.

A ``Worker`` is a slot: it keeps one ``python -m mailyard.server.child``
process running with the sockets of its role, restarting it with a
growing delay when it exits (daemontools' supervise: 1 s, 2 s, 4 s … 60 s;
a process that ran a minute resets the delay), until it is told to
``finish`` or ``retire``. What the process reports on its channel (its
connection counts and counters, the ids it queued) is kept here for the
supervisor's ``status`` and handed to the delivery worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from mailyard.config import Config
from mailyard.log import event
from mailyard.queue.ids import is_id
from mailyard.server.app import Role
from mailyard.server.child import CHANNEL_LIMIT, decode, encode
from mailyard.server.privileges import Identity, identity_args

__all__ = ["RESTART_MAX", "STABLE_AFTER", "StartError", "Worker", "WorkerSpec", "restart_delay"]

RESTART_MAX: Final = 60.0  # seconds: the longest wait before a restart
STABLE_AFTER: Final = 60.0  # a process that ran this long resets the delay
KILL_AFTER: Final = 5.0  # seconds past the grace before a stopping worker is killed


class StartError(Exception):
    """A worker could not start serving; the message says which and why."""


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """One worker's job: its role, its number among its role, its services."""

    role: Role
    index: int
    services: tuple[str, ...]


def restart_delay(failures: int) -> float:
    """Seconds before the restart after ``failures`` quick failures in a row (1 = first)."""
    return min(RESTART_MAX, math.pow(2, max(failures, 1) - 1))


class Worker:
    """One worker slot of the supervisor."""

    def __init__(self, spec: WorkerSpec, config: Config, identity: Identity | None,
                 sockets: dict[str, list[socket.socket]], *,
                 on_notify: Callable[[str], None], on_gone: Callable[[Worker], None],
                 extra_args: tuple[str, ...] = ()) -> None:
        self.spec = spec
        self._extra_args = extra_args  # e.g. the SMTP side's --queue-socket
        self.identity = identity
        self._config = config
        self._sockets = sockets
        self._on_notify = on_notify
        self._on_gone = on_gone
        self.proc: asyncio.subprocess.Process | None = None
        self.connections: dict[str, int] = {}
        self.counters: dict[str, int] = {}
        self.retiring = False
        self.restarts = 0
        self.started_at = 0.0
        self._writer: asyncio.StreamWriter | None = None
        self._last_beat = 0.0
        self._ready = asyncio.Event()
        self._failed = asyncio.Event()  # the first process ended without serving
        self._wake = asyncio.Event()  # cuts a restart delay short
        self._finishing = False
        self._task: asyncio.Task[None] | None = None
        self._last_code: int | None = None

    @property
    def pid(self) -> int | None:
        """The current process, if one runs."""
        proc = self.proc
        return proc.pid if proc is not None and proc.returncode is None else None

    def start(self, stopping: Callable[[], bool], done: Callable[[Worker], None]) -> None:
        """Start the process and keep it running until told otherwise;
        ``done`` hears when this slot has ended for good."""
        self._task = asyncio.get_running_loop().create_task(self._keep(stopping))
        self._task.add_done_callback(lambda _: done(self))

    async def wait_ready(self) -> None:
        """Until the first process serves; StartError if it ended before."""
        ready = asyncio.ensure_future(self._ready.wait())
        failed = asyncio.ensure_future(self._failed.wait())
        await asyncio.wait((ready, failed), return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        failed.cancel()
        if not self._ready.is_set():
            raise StartError(f"the {self.spec.role.value} worker exited (status "
                             f"{self._last_code}) before serving; its reason is in the log")

    async def _keep(self, stopping: Callable[[], bool]) -> None:
        failures = 0
        while True:
            try:
                reader = await self._spawn()
                self._last_code = await self._serve(reader)
            except OSError as exc:
                event("worker.spawn_failed", level=logging.ERROR, role=self.spec.role.value,
                      error=str(exc))
            self.connections = {}
            self._on_gone(self)
            if not self._ready.is_set():
                self._failed.set()
                return
            if self._finishing or self.retiring or stopping():
                return
            ran = time.monotonic() - self.started_at
            failures = 1 if ran >= STABLE_AFTER else failures + 1
            delay = restart_delay(failures)
            event("worker.exited", level=logging.ERROR, role=self.spec.role.value,
                  index=self.spec.index, pid=self.proc.pid if self.proc else None,
                  code=self._last_code, restart_in=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            if self._finishing or stopping():
                return
            self.restarts += 1

    def _argv(self, channel: int) -> tuple[list[str], list[int]]:
        argv = [sys.executable, "-m", "mailyard.server.child",
                "--state", self._config.state_dir, "--role", self.spec.role.value,
                "--index", str(self.spec.index), "--channel", str(channel)]
        fds = [channel]
        for name, sockets in self._sockets.items():
            for sock in sockets:
                argv += ["--listen", f"{name}={sock.fileno()}"]
                fds.append(sock.fileno())
        return argv + list(self._extra_args) + identity_args(self.identity), fds

    async def _spawn(self) -> asyncio.StreamReader:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            argv, fds = self._argv(theirs.fileno())
            # The worker drops to its identity itself, once loaded (privileges.py).
            self.proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, pass_fds=fds)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        reader, self._writer = await asyncio.open_connection(sock=ours, limit=CHANNEL_LIMIT)
        self.started_at = self._last_beat = time.monotonic()
        event("worker.started", role=self.spec.role.value, index=self.spec.index,
              pid=self.proc.pid, user=self.identity.name if self.identity else None)
        return reader

    async def _serve(self, reader: asyncio.StreamReader) -> int:
        """Read the channel until the process closes it; its exit status."""
        proc = self.proc
        assert proc is not None
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # over CHANNEL_LIMIT: not our worker's doing
                    continue
                if not line:
                    break
                message = decode(line)
                if message is not None:
                    self._handle(message)
        except ConnectionError:
            pass  # the worker died: its exit status says how
        finally:
            if self._writer is not None:
                self._writer.close()
            self._writer = None
        return await proc.wait()

    def _handle(self, message: dict[str, Any]) -> None:
        """One message from the worker; a worker is not trusted with more than its figures."""
        self._last_beat = time.monotonic()
        kind = message.get("t")
        if kind in {"ready", "beat", "sessions"}:
            self.connections = _counts(message.get("connections"))
            self.counters = _counts(message.get("counters"))
            if kind == "ready":
                self._ready.set()
        elif kind == "notify":
            ids = message.get("ids")
            for qid in ids if isinstance(ids, list) else ():
                if isinstance(qid, str) and is_id(qid):
                    self._on_notify(qid)

    def _send(self, message: dict[str, Any]) -> None:
        writer = self._writer
        if writer is not None and not writer.is_closing():
            writer.write(encode(message))

    def retire(self) -> None:
        """A reload replaced this worker: it ends when its sessions have."""
        self.retiring = True
        self._send({"t": "retire"})
        event("worker.retiring", role=self.spec.role.value, index=self.spec.index, pid=self.pid)

    def check_heartbeat(self, watchdog: float) -> None:
        """Kill the process if it has been silent for more than ``watchdog`` seconds."""
        proc = self.proc
        silent = time.monotonic() - self._last_beat
        if proc is None or proc.returncode is not None or silent <= watchdog:
            return
        event("worker.watchdog", level=logging.ERROR, role=self.spec.role.value,
              index=self.spec.index, pid=proc.pid, silent=round(silent, 1))
        self._last_beat = time.monotonic()  # one kill per silence
        with contextlib.suppress(ProcessLookupError):
            proc.kill()

    async def finish(self, grace: float) -> None:
        """Stop for good: sessions get ``grace`` seconds, then the process is killed."""
        self._finishing = True
        self._wake.set()
        self._send({"t": "stop", "grace": grace})
        task = self._task
        if task is None:
            return
        try:
            async with asyncio.timeout(grace + KILL_AFTER):
                await asyncio.shield(task)
        except TimeoutError:
            proc = self.proc
            if proc is not None and proc.returncode is None:
                event("worker.kill", level=logging.WARNING, role=self.spec.role.value,
                      pid=proc.pid)
                proc.kill()
            await task

    def describe(self) -> dict[str, object]:
        """For ``status``: what this slot runs."""
        return {"role": self.spec.role.value, "index": self.spec.index, "pid": self.pid,
                "restarts": self.restarts, "retiring": self.retiring,
                "user": self.identity.name if self.identity else None,
                "services": list(self.spec.services)}


def _counts(value: object) -> dict[str, int]:
    """A worker's name -> number table, with anything else left out."""
    if not isinstance(value, dict):
        return {}
    return {str(k)[:64]: v for k, v in list(value.items())[:256]
            if isinstance(v, int) and not isinstance(v, bool)}
