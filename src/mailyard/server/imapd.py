"""IMAP server: the thin asyncio adapter between a socket and the IMAP core.

The loop is the other adapters' (smtpd, pop3d): write what the core
queued, read bytes, feed the core, answer its events. Every protocol rule
is the core's (proto/imap, docs/design/imap-core.md); the handlers in
``server/imap/`` answer commands from the Maildir++ store, running every
blocking call in the io pool. This module adds what only the loop can do:
timeouts (RFC 9051 §5.4 autologout, the core says which one applies),
STARTTLS (RFC 9051 §6.2.1; IMAPS listeners shake hands before the
greeting), APPEND's streaming, IDLE (RFC 2177: the process's one watcher
wakes the session; no thread, no polling of its own), and the end of a
session on a bug: logged with its stack, ``* BYE [SERVERBUG]``, closed,
every other session unaffected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

from mailyard.log import event
from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import ImapUsageError, Status
from mailyard.proto.imap.events import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    AppendData,
    AppendEnd,
    Command,
    CommandAborted,
    ConnectionClosed,
    Event,
    IdleDone,
)
from mailyard.proto.imap.responses import Code
from mailyard.proto.imap.server import ImapServer
from mailyard.server.context import ServerContext
from mailyard.server.imap import append
from mailyard.server.imap.dispatch import run_command
from mailyard.server.imap.setup import core_config
from mailyard.server.imap.state import ImapSettings, SelectedGone, Session
from mailyard.server.imap.updates import complete, send_updates
from mailyard.server.imap.watcher import FolderWatcher
from mailyard.server.listener import Connection
from mailyard.server.stream import ClientTooSlow

__all__ = ["ImapService", "ImapSession"]

_READ_SIZE: Final = 65536


class ImapService:
    """What the IMAP sessions of one server share: the watcher, the settings."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.watcher = FolderWatcher(lambda work: ctx.in_io(work))
        self.settings = ImapSettings(max_append_size=ctx.config.imap.max_append_size)
        self.sessions: set[ImapSession] = set()

    async def serve(self, conn: Connection) -> None:
        session = ImapSession(self, conn)
        self.sessions.add(session)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)

    def shutdown_notice(self) -> None:
        """The server is stopping: every session hears BYE (RFC 9051 §7.1.5)."""
        for session in list(self.sessions):
            session.shutdown()

    async def stop(self) -> None:
        await self.watcher.stop()


class ImapSession:
    """One IMAP connection."""

    __slots__ = ("_appending", "_closing", "_idle", "_reading", "_wake", "conn", "core",
                 "service", "state")

    def __init__(self, service: ImapService, conn: Connection) -> None:
        ctx = service.ctx
        self.service = service
        self.conn = conn
        tls = conn.tls_active
        config = core_config(
            ctx.config.imap, ctx.config.hostname, starttls=ctx.tls is not None and not tls,
            login_without_tls=tls or ctx.plaintext_auth_allowed(conn.client_ip))
        self.core = ImapServer(config)
        self.state = Session(ctx, self.core, service.settings, client_ip=conn.client_ip,
                             local_ip=conn.local_ip, flush=self._flush)
        self.state.tls = tls
        self._appending: append.Appending | None = None
        self._idle: Command | None = None
        self._wake: asyncio.Future[None] | None = None
        self._reading = False  # waiting for the client (a BYE may be sent at once)
        self._closing = False  # the server is stopping

    async def run(self) -> None:
        core = self.core
        core.greeting()
        try:
            while True:
                ev = core.next_event()
                if ev is NEED_DATA:
                    await self._flush()
                    data = await self._read()
                    if data is None:
                        return
                    core.receive_data(data)
                elif ev is CLOSED:
                    await self._flush()
                    return
                elif ev is AWAITING_REPLY:
                    raise RuntimeError("IMAP core awaits an answer nobody will give")
                else:
                    await self._guarded(ev)
        finally:
            await self._release()

    # -- input --------------------------------------------------------------------

    async def _read(self) -> bytes | None:
        """The next bytes (b"" at EOF), or None once the session is over
        (autologout, shutdown, or the selected mailbox gone while idling)."""
        if self._closing:
            await self._bye(f"{self.state.ctx.config.hostname} shutting down")
            return None
        reader = self.conn.reader
        timeout = self.core.timeout
        self._reading = True
        try:
            if self._idle is None or self.state.selected is None:
                async with asyncio.timeout(timeout):
                    return await reader.read(_READ_SIZE)
            return await self._idle_read(timeout)
        except TimeoutError:
            # RFC 9051 §5.4: the autologout timer ran out.
            await self._bye("Autologout; idle for too long")
            return None
        finally:
            self._reading = False

    async def _idle_read(self, timeout: float) -> bytes | None:
        """RFC 2177: while idling, wake-ups from the watcher race the client's DONE."""
        loop = asyncio.get_running_loop()
        read = loop.create_task(self.conn.reader.read(_READ_SIZE))
        deadline = loop.time() + timeout
        path = self.state.sel.folder.path
        watcher = self.service.watcher
        watcher.watch(path, self._woken)
        try:
            while True:
                self._wake = loop.create_future()
                waiting: set[asyncio.Future[Any]] = {read, self._wake}
                done, _ = await asyncio.wait(waiting, timeout=deadline - loop.time(),
                                             return_when=asyncio.FIRST_COMPLETED)
                if read in done:
                    return read.result()
                if not done:
                    raise TimeoutError
                try:
                    await send_updates(self.state)
                except SelectedGone as exc:
                    await self._bye(f"the selected mailbox is gone: {exc}")
                    return None
                await self._flush()
        finally:
            watcher.unwatch(path, self._woken)
            self._wake = None
            if not read.done():
                read.cancel()

    def _woken(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _bye(self, text: str) -> None:
        self.core.bye(text)
        await self._flush()

    # -- events -------------------------------------------------------------------

    async def _guarded(self, ev: Event) -> None:
        try:
            await self._handle(ev)
        except SelectedGone as exc:
            # RFC 3501 §2.3.1.1: its uids are gone; the session cannot go on.
            self.core.bye(f"the selected mailbox is gone: {exc}")
        except (ConnectionError, asyncio.CancelledError, ClientTooSlow):
            raise
        except Exception:
            event("imap.error", level=logging.ERROR, exc_info=True, ip=self.conn.client_ip)
            pending = self.core.pending
            with contextlib.suppress(ImapUsageError):
                if pending is not None and self._idle is None:
                    self.core.finish(Status.NO, Code.SERVERBUG, "internal error")
            self.core.bye("internal server error", Code.SERVERBUG)

    async def _handle(self, ev: Event) -> None:
        s = self.state
        if isinstance(ev, Command):
            body = ev.body
            if isinstance(body, c.Append):
                self._appending = await append.begin(s, ev)
            elif isinstance(body, c.Idle):
                self._idle = ev
                await send_updates(s)  # RFC 2177: what is pending goes out at once
            elif isinstance(body, c.StartTls):
                await self._start_tls()
            else:
                await run_command(s, ev)
        elif isinstance(ev, AppendData):
            if self._appending is not None:
                await append.chunk(s, self._appending, ev.data)
        elif isinstance(ev, AppendEnd):
            appending, self._appending = self._appending, None
            pending = self.core.pending
            if appending is not None and pending is not None:
                await append.end(s, pending, appending)
        elif isinstance(ev, IdleDone):
            idle, self._idle = self._idle, None
            if idle is not None:
                await complete(s, idle)
        elif isinstance(ev, CommandAborted):
            await self._aborted()
        elif isinstance(ev, ConnectionClosed):
            return

    async def _aborted(self) -> None:
        self._idle = None
        appending, self._appending = self._appending, None
        if appending is not None:
            await append.abort(self.state, appending)

    async def _start_tls(self) -> None:
        tls = self.state.ctx.tls
        if tls is None:  # the core offers STARTTLS only with a certificate
            self.core.finish(Status.NO, None, "TLS is not available")
            return
        self.core.finish(Status.OK)
        await self._flush()  # the OK goes out in the clear (RFC 9051 §6.2.1)
        await self.conn.start_tls(tls.context, tls.handshake_timeout)
        self.core.start_tls()  # plaintext pipelined behind STARTTLS is dropped
        self.state.tls = True

    # -- output and the end ---------------------------------------------------------

    async def _flush(self) -> None:
        # Abuse the core answered since the last flush, each kind once per connection.
        for kind in self.core.take_violations():
            event("imap.abuse", ip=self.conn.client_ip, kind=kind.value)
        parts = self.core.data_to_send_parts()
        if not parts:
            return
        writer = self.conn.writer
        writer.writelines(parts)
        try:
            async with asyncio.timeout(self.core.timeout):
                await writer.drain()
        except TimeoutError:
            writer.transport.abort()
            raise ClientTooSlow("client did not read") from None

    def shutdown(self) -> None:
        """The server is stopping: BYE now if the session waits for the
        client, else right after the command in progress."""
        self._closing = True
        writer = self.conn.writer
        if not self._reading or writer.is_closing():
            return
        self.core.bye(f"{self.state.ctx.config.hostname} shutting down")
        for part in self.core.data_to_send_parts():
            writer.write(part)
        writer.close()

    async def _release(self) -> None:
        await self._aborted()
        s = self.state
        if s.account is not None:
            event("imap.logout", ip=self.conn.client_ip, user=s.account.user)
        s.selected = None
