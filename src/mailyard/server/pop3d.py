"""POP3 server: the thin asyncio adapter between a socket and the POP3 core.

The core owns the protocol (states, numbering, deletion marks, dot-stuffing);
this adapter authenticates against the directory, opens the maildrop under
its lock, streams messages from disk, and applies deletions only when the
core says QUIT committed them (RFC 1939 §6: a dropped connection deletes
nothing).

STLS (RFC 2595 §4) is offered on the plain listener when a certificate is
configured; the implicit-TLS listener (RFC 8314, port 995) runs the same
session after the handshake. Logins go through ``server.auth`` (throttling
per address and per account, the same as SMTP AUTH).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable
from typing import BinaryIO, Final

from mailyard import fsio
from mailyard.directory.model import Mailbox
from mailyard.log import event
from mailyard.maildir.drop import Maildrop, MaildropBusy
from mailyard.proto.pop3 import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    Commit,
    ConnectionClosed,
    DropEntry,
    Login,
    Pop3Server,
    Pop3ServerConfig,
    Retrieve,
    StartTls,
)
from mailyard.server.auth import LoginOutcome, check_login
from mailyard.server.context import ServerContext
from mailyard.server.listener import Connection
from mailyard.server.stream import write_within

__all__ = ["Pop3Session"]

_READ_SIZE = 16384
# The events whose commands the metrics count (the core answers the rest).
_VERBS: Final[dict[type, str]] = {Login: "PASS", Retrieve: "RETR", Commit: "QUIT",
                                  StartTls: "STLS"}
_CHUNK = 65536
# Read-ahead for a client that RETRs in order (most do, RFC 1939 §7's
# "RETR all" sessions): small messages after the one asked for come in the
# same thread-pool call, within this many octets and messages.
_AHEAD_BYTES: Final = 131072
_AHEAD_COUNT: Final = 32


class Pop3Session:
    """One POP3 connection."""

    def __init__(self, ctx: ServerContext, core_config: Pop3ServerConfig, conn: Connection) -> None:
        self.ctx = ctx
        self.conn = conn
        features = dataclasses.replace(
            core_config.features, stls=ctx.tls is not None and not conn.tls_active
        )
        self.core = Pop3Server(dataclasses.replace(core_config, features=features))
        self.client_ip = conn.client_ip
        self.drop: Maildrop | None = None
        self.mailbox: Mailbox | None = None
        # The uid list sync of the login, run while the session goes on.
        self._uid_sync: Awaitable[None] | None = None
        self._ahead: dict[int, bytes] = {}  # message index -> content read ahead
        self._last_retrieved = -2

    @property
    def reader(self) -> asyncio.StreamReader:
        return self.conn.reader

    @property
    def writer(self) -> asyncio.StreamWriter:
        return self.conn.writer

    async def run(self) -> None:
        self.core.greeting()
        try:
            while True:
                ev = self.core.next_event()
                if ev is NEED_DATA:
                    await self._flush()
                    try:
                        async with asyncio.timeout(self.ctx.config.pop3.timeout_idle):
                            data = await self.reader.read(_READ_SIZE)
                    except TimeoutError:
                        await write_within(self.writer, b"-ERR autologout: idle too long\r\n",
                                           self.ctx.config.pop3.timeout_idle)
                        return
                    self.core.receive_data(data)
                    continue
                if ev is CLOSED:
                    await self._flush()
                    return
                if ev is AWAITING_REPLY:
                    raise RuntimeError("POP3 core awaits a reply nobody will send")
                await self._handle(ev)
        finally:
            await self.close()

    async def _handle(self, ev: object) -> None:
        verb = _VERBS.get(type(ev))
        if verb is not None:
            # For the metrics hook (observe/events.py); the core answers the
            # other commands itself.
            event("pop3.command", level=logging.DEBUG, command=verb)
        if isinstance(ev, Login):
            await self._login(ev)
        elif isinstance(ev, Retrieve):
            await self._retrieve(ev.index)
        elif isinstance(ev, Commit):
            await self._commit(ev.deleted)
        elif isinstance(ev, StartTls):
            await self._start_tls()
        elif isinstance(ev, ConnectionClosed):
            return
        else:
            raise RuntimeError(f"unexpected POP3 event {ev!r}")

    async def _start_tls(self) -> None:
        tls = self.ctx.tls
        assert tls is not None  # the core offers STLS only with a certificate
        await self._flush()  # the core's "+OK" goes out in the clear
        await self.conn.start_tls(tls.context, tls.handshake_timeout)
        # RFC 2595 §4: plaintext pipelined behind STLS is dropped, not run.
        self.core.start_tls()

    async def _login(self, ev: Login) -> None:
        result = await check_login(
            self.ctx, client_ip=self.client_ip, local_ip=self.conn.local_ip,
            login=ev.username, password=ev.password, authzid=ev.authzid,
        )
        if result.outcome is LoginOutcome.THROTTLED:
            event("pop3.login", ip=self.client_ip, result="throttled")
            # RFC 3206: a temporary refusal, not a verdict on the password.
            self.core.login_failed("too many failed logins; try again later", code="SYS/TEMP")
            return
        mailbox = result.mailbox
        if mailbox is None:
            event("pop3.login", ip=self.client_ip, user=ev.username, result="failed")
            self.core.login_failed("authentication failed")
            return
        try:
            path = fsio.safe_join(self.ctx.config.path("mail"), mailbox.maildir)
            self.drop = await self.ctx.in_io(Maildrop.open, path, sync_uid_list=False)
        except MaildropBusy:
            event("pop3.login", ip=self.client_ip, user=str(mailbox.address), result="in-use")
            self.core.login_in_use()
            return
        except OSError as exc:
            event("pop3.maildrop_error", level=logging.ERROR, user=str(mailbox.address),
                  error=exc.strerror or str(exc))
            self.core.login_failed("mailbox unavailable; try again later", code="SYS/TEMP")
            return
        self.mailbox = mailbox
        # The "+OK" does not wait for the shared uid list (issue 3): the sync
        # only reads the Maildir, and QUIT and close() wait for it.
        self._uid_sync = self.ctx.in_io(self.drop.sync_uid_list)
        entries = [DropEntry(size=e.size, uid=e.uid) for e in self.drop.entries]
        event("pop3.login", ip=self.client_ip, user=str(mailbox.address), result="ok",
              messages=len(entries))
        self.core.login_ok(entries)

    async def _retrieve(self, index: int) -> None:
        drop = self.drop
        assert drop is not None
        entry = drop.entries[index]
        sequential, self._last_retrieved = index == self._last_retrieved + 1, index
        handle: BinaryIO | None = None
        cached = self._ahead.pop(index, None)
        if cached is not None:
            chunk = cached
        else:
            try:
                # One thread-pool hop opens the file and reads a whole small message.
                chunk, handle, self._ahead = await self.ctx.in_io(_read, drop, index, sequential)
            except OSError:
                self.core.retrieve_failed("message is no longer available")
                return
        try:
            self.core.retrieve_begin(entry.size)
            self.core.retrieve_chunk(chunk)
            # TOP needs only the head of the file: stop once the core has it.
            while handle is not None and self.core.retrieve_wants_more:
                # Out before the next read, so a large message is never held whole.
                await self._flush()
                chunk = await self.ctx.in_io(handle.read, _CHUNK)
                if not chunk:
                    break
                self.core.retrieve_chunk(chunk)
        except OSError as exc:
            # Mid-message: the core closes the session without the final ".",
            # so the client cannot take a truncated message for a whole one.
            event("pop3.read_error", level=logging.ERROR, error=exc.strerror or str(exc))
            self.core.retrieve_failed("error reading the message")
            return
        finally:
            if handle is not None:
                handle.close()
        # No flush here: the "+OK", the content and the final "." leave in
        # one write when the session next waits for the client.
        self.core.retrieve_end()

    async def _commit(self, deleted: tuple[int, ...]) -> None:
        drop = self.drop
        ok = True
        await self._settle_uid_sync()
        self._ahead = {}
        if drop is not None and deleted:
            try:
                await self.ctx.in_io(drop.delete, list(deleted))
            except OSError as exc:
                ok = False
                event("pop3.delete_error", level=logging.ERROR, error=exc.strerror or str(exc))
        user = str(self.mailbox.address) if self.mailbox else None
        event("pop3.quit", ip=self.client_ip, user=user, deleted=len(deleted), ok=ok)
        self.core.commit_done(ok, "bye" if ok else "some messages were not deleted")

    async def _flush(self) -> None:
        # Abuse the core answered since the last flush, each kind once per connection.
        for kind in self.core.take_violations():
            event("pop3.abuse", ip=self.client_ip, kind=kind.value)
        await write_within(self.writer, self.core.data_to_send(), self.ctx.config.pop3.timeout_idle)

    async def _settle_uid_sync(self) -> None:
        # The login's sync comes first, as if it had run before the "+OK":
        # the deletions are then recorded against uids it gave.
        sync, self._uid_sync = self._uid_sync, None
        if sync is not None:
            await sync

    async def close(self) -> None:
        try:
            await self._settle_uid_sync()
        finally:
            drop, self.drop = self.drop, None
            if drop is not None:
                await self.ctx.in_io(drop.close)


def _read(drop: Maildrop, index: int,
          sequential: bool) -> tuple[bytes, BinaryIO | None, dict[int, bytes]]:
    """Message ``index`` (its first chunk and the open file if more follows),
    and, when the client reads in order, the small messages after it."""
    chunk, handle = drop.read_start(index, _CHUNK)
    ahead: dict[int, bytes] = {}
    if sequential and handle is None:
        following = range(index + 1, min(index + 1 + _AHEAD_COUNT, len(drop.entries)))
        ahead = drop.read_ahead(following, _AHEAD_BYTES)
    return chunk, handle, ahead
