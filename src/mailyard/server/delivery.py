"""The server's side of the delivery process (daemontools' supervise, in small).

``DeliveryProcess`` starts the delivery worker (``dispatch/worker.py``,
through ``server/child.py``'s ``delivery`` role), feeds it
the ids of new messages (the trigger), forwards ``flush`` and ``status``,
restarts it with a growing delay if it dies or stops answering (the
watchdog: a ``status`` that gets no answer for ``watchdog`` seconds), and
stops it last at shutdown, after the listeners, so nothing accepted waits
for a delivery that will not happen. Started as root, the supervisor has it
run as the mail user (``identity``: arguments for ``server/child.py``'s
``delivery`` role, which loads the worker as root and then drops).

The trigger is lossy by design (qmail's triggerpull): if the worker is
between restarts, a notification is dropped, and the worker's start-up
rescan of the queue finds the message anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from typing import Any, Final

from mailyard.log import event

__all__ = ["DeliveryProcess"]

RESTART_DELAYS: Final = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # seconds, then stays at the last
STABLE_AFTER: Final = 60.0  # a worker that ran this long resets the delay
_STATUS_TIMEOUT: Final = 5.0
# A worker that stops reading must not make the server buffer without end;
# beyond this, triggers are dropped (the worker's rescan is the backstop).
_MAX_PENDING_TRIGGERS: Final = 1 << 20  # octets


class DeliveryProcess:
    """The delivery worker, kept running."""

    def __init__(self, state_dir: str, identity: list[str] | None = None,
                 watchdog: float | None = None) -> None:
        self._state_dir = state_dir
        self._identity = list(identity or [])
        self._watchdog = watchdog
        self._watch: asyncio.Task[None] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._status_lock = asyncio.Lock()
        self._failures = 0
        self._triggers: list[str] = []
        self.restarts = 0
        self.started_at = 0.0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        """Start the worker and keep it running."""
        self._stopping = False
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise())
        if self._watchdog is not None:
            self._watch = asyncio.create_task(self._watch_loop(self._watchdog))

    async def restart(self, identity: list[str] | None, timeout: float) -> None:
        """A reload: stop the worker as at shutdown, start a new one (maybe as a new user)."""
        await self.stop(timeout)
        self._identity = list(identity or [])
        self._failures = 0
        await self.start()

    async def _spawn(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mailyard.server.child", "--role", "delivery",
            "--state", self._state_dir, *self._identity,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        self.started_at = time.monotonic()

    async def _watch_loop(self, watchdog: float) -> None:
        """Kill a worker that has not answered ``status`` for ``watchdog`` seconds;
        the supervising task restarts it."""
        answered, watched = time.monotonic(), self.pid
        while not self._stopping:
            await asyncio.sleep(min(watchdog / 4, 5.0))
            if self.pid != watched:  # restarted meanwhile: its silence starts now
                answered, watched = time.monotonic(), self.pid
            if await self.status() is not None:
                answered = time.monotonic()
            elif time.monotonic() - answered > watchdog:
                proc = self._proc
                if proc is not None and proc.returncode is None and not self._stopping:
                    event("delivery.watchdog", level=logging.ERROR, pid=proc.pid,
                          silent=round(time.monotonic() - answered, 1))
                    proc.send_signal(signal.SIGKILL)
                answered = time.monotonic()

    async def _supervise(self) -> None:
        while not self._stopping:
            proc = self._proc
            assert proc is not None
            code = await proc.wait()
            if self._stopping:
                return
            ran = time.monotonic() - self.started_at
            self._failures = 0 if ran >= STABLE_AFTER else self._failures + 1
            delay = RESTART_DELAYS[min(self._failures, len(RESTART_DELAYS) - 1)]
            event("delivery.exited", level=logging.ERROR, pid=proc.pid, code=code,
                  restart_in=delay)
            await asyncio.sleep(delay)
            if self._stopping:
                return
            self.restarts += 1
            await self._spawn()

    def _send(self, line: str) -> bool:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            return False
        if proc.stdin.transport.get_write_buffer_size() > _MAX_PENDING_TRIGGERS:
            return False
        try:
            proc.stdin.write(line.encode("ascii") + b"\n")
        except (ConnectionError, RuntimeError):
            return False  # the worker is going away; its restart rescans the queue
        return True

    def notify(self, qid: str) -> None:
        """A message was committed: wake the worker (lossy, see the module doc).

        Triggers of one turn of the event loop go out in one write: under
        load several commits finish together, and a pipe write each was a
        visible share of the loop's time.
        """
        if not self._triggers:
            asyncio.get_running_loop().call_soon(self._send_triggers)
        self._triggers.append(f"new {qid}")

    def _send_triggers(self) -> None:
        lines, self._triggers = self._triggers, []
        self._send("\n".join(lines))

    def flush(self) -> bool:
        return self._send("flush")

    async def status(self) -> dict[str, Any] | None:
        """The worker's figures, or None when it does not answer."""
        async with self._status_lock:
            proc = self._proc
            if proc is None or proc.stdout is None or not self._send("status"):
                return None
            try:
                async with asyncio.timeout(_STATUS_TIMEOUT):
                    line = await proc.stdout.readline()
                reply: dict[str, Any] = json.loads(line)
            except (TimeoutError, ValueError):
                return None
            return reply

    async def stop(self, timeout: float) -> None:
        """Ask the worker to finish its deliveries in flight and exit."""
        self._stopping = True
        proc = self._proc
        for task in (self._supervisor, self._watch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._supervisor = self._watch = None
        if proc is None or proc.returncode is not None:
            return
        if self._send("stop") and proc.stdin is not None:
            with contextlib.suppress(ConnectionError):
                proc.stdin.close()
        try:
            async with asyncio.timeout(timeout):
                await proc.wait()
        except TimeoutError:
            event("delivery.kill", level=logging.WARNING, pid=proc.pid)
            proc.kill()
            await proc.wait()
