"""Local control socket (``run/control.sock``): what svc did for daemontools.

One line in, one JSON line out. Commands: ``flush`` (retry every queued
message now), ``status`` (pids, uptimes and restarts of the server, its
workers and the delivery worker; open connections per service), ``stop``,
``reload``, ``notify <id>`` (a message was just queued by a local
injector). The socket is mode 0600 inside the state folder: whoever can
reach it can already read the state.

The server side is anything shaped like ``ControlTarget`` (the supervisor),
so this module does not depend on how the processes are arranged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from typing import Any, Final, Protocol

from mailyard.log import event
from mailyard.queue.ids import is_id
from mailyard.server.delivery import DeliveryProcess

__all__ = ["ControlServer", "ControlTarget", "HasCounters"]

_MAX_LINE: Final = 1024


class HasCounters(Protocol):
    """Counters summed over the server's processes."""

    @property
    def counters(self) -> dict[str, int]: ...


class ControlTarget(Protocol):
    """What the control socket needs of the running server."""

    @property
    def started(self) -> float: ...  # time.time() at start

    @property
    def delivery(self) -> DeliveryProcess: ...

    @property
    def ctx(self) -> HasCounters: ...

    def connection_counts(self) -> dict[str, int]: ...

    def workers(self) -> list[dict[str, object]]: ...

    def request_stop(self) -> None: ...

    def request_reload(self) -> None: ...


class ControlServer:
    """The control socket of one running server."""

    def __init__(self, path: str, server: ControlTarget) -> None:
        self._path = path
        self._mail = server
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Listen on the socket path (mode 0600), replacing a stale socket."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._handle, self._path)
        finally:
            os.umask(old)

    async def stop(self) -> None:
        """Stop listening and remove the socket."""
        if self._server is not None:
            self._server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5.0)
            command = line[:_MAX_LINE].decode("ascii", "replace").strip()
            reply = await self._run(command)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _run(self, command: str) -> dict[str, Any]:
        mail = self._mail
        if command == "flush":
            if not mail.delivery.flush():
                return {"ok": False, "error": "the delivery process is restarting; try again"}
            event("control", command="flush")
            return {"ok": True}
        if command == "stop":
            mail.request_stop()
            return {"ok": True}
        if command == "reload":
            event("control", command="reload")
            mail.request_reload()
            return {"ok": True}
        verb, _, qid = command.partition(" ")
        if verb == "notify" and is_id(qid):
            # A local injector (mailyard sendmail) committed a message.
            mail.delivery.notify(qid)
            return {"ok": True}
        if command == "status":
            return await self._status()
        return {"ok": False, "error": f"unknown command {command!r}"}

    async def _status(self) -> dict[str, Any]:
        """What runs: this process, its workers, the delivery worker, connections."""
        mail = self._mail
        delivery = mail.delivery
        running = delivery.pid is not None and delivery.started_at > 0
        return {
            "ok": True,
            "pid": os.getpid(),
            "started": round(mail.started, 3),
            "uptime": round(time.time() - mail.started, 1),
            "connections": mail.connection_counts(),
            "workers": mail.workers(),
            "delivery": {
                "pid": delivery.pid,
                "restarts": delivery.restarts,
                # started_at is monotonic: a clock step cannot make it negative.
                "uptime": round(time.monotonic() - delivery.started_at, 1) if running else None,
                "status": await delivery.status(),
            },
            "counters": dict(mail.ctx.counters),
        }
