"""Local control socket (``run/control.sock``): what svc did for daemontools.

One line in, one JSON line out. Commands: ``flush`` (retry every queued
message now), ``status`` (uptime, connections, queue figures), ``stop``,
``notify <id>`` (a message was just queued by a local injector).
The socket is mode 0600 inside the state folder: whoever can reach it can
already read the state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from typing import TYPE_CHECKING, Any

from mailyard.log import event
from mailyard.queue.ids import is_id

if TYPE_CHECKING:
    from mailyard.server.app import MailServer

__all__ = ["ControlServer"]

_MAX_LINE = 1024


class ControlServer:
    def __init__(self, path: str, server: MailServer) -> None:
        self._path = path
        self._mail = server
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._handle, self._path)
        finally:
            os.umask(old)

    async def stop(self) -> None:
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
        verb, _, qid = command.partition(" ")
        if verb == "notify" and is_id(qid):
            # A local injector (mailyard sendmail) committed a message.
            mail.delivery.notify(qid)
            return {"ok": True}
        if command == "status":
            return {
                "ok": True,
                "pid": os.getpid(),
                "uptime": round(time.time() - mail.started, 1),
                "connections": mail.connection_counts(),
                "delivery": {
                    "pid": mail.delivery.pid,
                    "restarts": mail.delivery.restarts,
                    "status": await mail.delivery.status(),
                },
                "counters": dict(mail.ctx.counters),
            }
        return {"ok": False, "error": f"unknown command {command!r}"}
