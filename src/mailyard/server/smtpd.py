"""SMTP receiver: the thin asyncio adapter between a socket and the SMTP core.

The loop is always the same: read bytes → ``core.receive_data`` → drain
events → answer the ones that need policy → write ``core.data_to_send()``
when the core needs more input (RFC 2920: flush before blocking). All SMTP
syntax, sequence and limit rules live in the core; this module decides only
policy (who may relay, which recipients exist) and moves message bytes into
the queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from mailyard import fsio
from mailyard.directory.resolve import LocalMailbox, NotLocal, UnknownLocal, resolve
from mailyard.log import event
from mailyard.message.address import Address
from mailyard.message.headers import received_header
from mailyard.proto.smtp import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    ConnectionClosed,
    DataAborted,
    DataChunk,
    DataEnd,
    DataStart,
    Hello,
    MailFrom,
    Phase,
    RcptTo,
    Reply,
    Reset,
    SmtpServer,
    SmtpServerConfig,
)
from mailyard.queue.store import Envelope
from mailyard.server.context import ServerContext
from mailyard.server.spool import Spool
from mailyard.server.stream import write_within

__all__ = ["SmtpSession"]

_READ_SIZE = 65536


@dataclass
class _Transaction:
    sender: Address | None = None
    smtputf8: bool = False
    recipients: list[str] = field(default_factory=list)
    spool: Spool | None = None
    aborted: bool = False


class SmtpSession:
    """One SMTP connection."""

    def __init__(
        self,
        ctx: ServerContext,
        core_config: SmtpServerConfig,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.ctx = ctx
        self.core = SmtpServer(core_config)
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername") or ("unknown", 0)
        self.client_ip: str = str(peer[0])
        self.helo = ""
        self.extended = False
        self.txn = _Transaction()
        self.accepted = 0
        self._hostname_domain = ctx.config.hostname.lower()
        self._waiting_for_command = False

    async def run(self) -> None:
        try:
            await self._serve()
        finally:
            # Whatever ended the session (EOF, error, shutdown), nothing of an
            # unfinished transaction may stay behind in the queue's tmp/.
            await self._drop_transaction()

    async def _serve(self) -> None:
        self.core.greeting()
        limits = self.ctx.config.smtp
        while True:
            ev = self.core.next_event()
            if ev is NEED_DATA:
                await self._flush()
                timeout = (
                    limits.timeout_data_block
                    if self.core.phase is Phase.DATA
                    else limits.timeout_command
                )
                self._waiting_for_command = self.core.phase is Phase.COMMAND
                try:
                    async with asyncio.timeout(timeout):
                        data = await self.reader.read(_READ_SIZE)
                except TimeoutError:
                    await self._timeout()
                    return
                finally:
                    self._waiting_for_command = False
                self.core.receive_data(data)
                continue
            if ev is CLOSED:
                await self._flush()
                return
            if ev is AWAITING_REPLY:
                # Cannot happen: every event needing a reply is answered below.
                raise RuntimeError("SMTP core awaits a reply nobody will send")
            await self._handle(ev)

    async def _handle(self, ev: object) -> None:
        if isinstance(ev, DataChunk):
            await self._chunk(ev.data)
        elif isinstance(ev, Hello):
            self.helo = ev.name
            self.extended = ev.extended
            self.core.send(Reply(250, None, self.ctx.config.hostname))
            await self._drop_transaction()
        elif isinstance(ev, MailFrom):
            await self._drop_transaction()
            self.txn.sender = ev.sender
            self.txn.smtputf8 = "SMTPUTF8" in ev.params
            self.core.send(Reply(250, "2.1.0", "sender ok"))
        elif isinstance(ev, RcptTo):
            self.core.send(self._rcpt(ev.recipient))
        elif isinstance(ev, DataStart):
            await self._data_start(ev.bdat)
        elif isinstance(ev, DataAborted):
            self.txn.aborted = True
            await self._discard_spool()
        elif isinstance(ev, DataEnd):
            await self._data_end()
        elif isinstance(ev, (Reset, ConnectionClosed)):
            await self._drop_transaction()
        else:
            # An extension this listener does not offer (AUTH, STARTTLS come
            # with the submission listener); the core only emits them if enabled.
            self.core.send(Reply(502, "5.5.1", "command not implemented"))

    # -- RCPT policy -------------------------------------------------------------

    def _rcpt(self, recipient: Address) -> Reply:
        target = resolve(self.ctx.directory.snapshot(), recipient)
        if isinstance(target, LocalMailbox):
            self.txn.recipients.append(str(recipient))
            return Reply(250, "2.1.5", "recipient ok")
        if recipient.local.lower() == "postmaster" and (
            isinstance(target, UnknownLocal) or recipient.domain == self._hostname_domain
        ):
            # RFC 5321 §4.5.1: "postmaster" must be accepted for every domain we
            # handle (and for <Postmaster> itself), mailbox or not; it goes to
            # the configured postmaster.
            self.txn.recipients.append(self.ctx.config.postmaster_address)
            return Reply(250, "2.1.5", "postmaster ok")
        if isinstance(target, NotLocal):
            if self.ctx.relay_allowed(self.client_ip):
                self.txn.recipients.append(str(recipient))
                return Reply(250, "2.1.5", "recipient ok (relay)")
            event("smtp.relay_denied", ip=self.client_ip, rcpt=str(recipient))
            return Reply(554, "5.7.1", "relay access denied")
        return Reply(550, "5.1.1", "no such user here")

    # -- DATA / BDAT ---------------------------------------------------------------

    async def _data_start(self, bdat: bool) -> None:
        txn = self.txn
        envelope = Envelope(
            sender="" if txn.sender is None else str(txn.sender),
            recipients=tuple(txn.recipients),
            birth=time.time(),
            smtputf8=txn.smtputf8,
        )
        txn.spool = Spool(self.ctx, envelope)
        txn.aborted = False
        header = received_header(
            from_helo=self.helo,
            client_ip=self.client_ip,
            client_name=None,
            by_host=self.ctx.config.hostname,
            protocol=self._protocol(),
            queue_id=txn.spool.queue_id,
            recipient=txn.recipients[0] if len(txn.recipients) == 1 else None,
            timestamp=envelope.birth,
        )
        txn.spool.add(header)
        if bdat:
            self.core.send(Reply(250, "2.0.0", "ready for chunks"))
        else:
            self.core.send(Reply(354, None, "end data with <CR><LF>.<CR><LF>"))

    def _protocol(self) -> str:
        # RFC 6531 §3.7.3: UTF8SMTP marks a transaction that used SMTPUTF8.
        if self.txn.smtputf8:
            return "UTF8SMTP"
        return "ESMTP" if self.extended else "SMTP"

    async def _chunk(self, data: bytes) -> None:
        spool = self.txn.spool
        if spool is not None and spool.add(data):
            await spool.flush()

    async def _data_end(self) -> None:
        txn = self.txn
        spool, txn.spool = txn.spool, None
        if spool is None:
            self.core.send(Reply(451, "4.3.0", "message was not stored; try again"))
            return
        size = spool.size
        try:
            qid = await spool.commit()
        except OSError as exc:
            self._log_storage_error("commit", exc)
            await spool.abort()
            self.core.send(self._storage_reply(exc))
            return
        self.accepted += 1
        self.ctx.count("smtp_messages_accepted")
        event(
            "smtp.accept",
            id=qid,
            ip=self.client_ip,
            sender=str(txn.sender) if txn.sender else "<>",
            rcpts=len(txn.recipients),
            size=size,
        )
        self.ctx.notify_queue(qid)
        self.core.send(Reply(250, "2.0.0", f"ok queued as {qid}"))
        self.txn = _Transaction()

    @staticmethod
    def _storage_reply(exc: OSError) -> Reply:
        if fsio.is_disk_full(exc):
            return Reply(452, "4.3.1", "insufficient system storage; try again later")
        return Reply(451, "4.3.0", "local error in processing; try again later")

    def _log_storage_error(self, step: str, exc: OSError) -> None:
        event("smtp.storage_error", level=logging.ERROR, ip=self.client_ip, step=step,
              error=exc.strerror or str(exc))

    async def _discard_spool(self) -> None:
        spool, self.txn.spool = self.txn.spool, None
        if spool is not None:
            await spool.abort()

    async def _drop_transaction(self) -> None:
        await self._discard_spool()
        self.txn = _Transaction()

    # -- I/O -----------------------------------------------------------------------

    async def _flush(self) -> None:
        out = self.core.data_to_send()
        await write_within(self.writer, out, self.ctx.config.smtp.timeout_command)

    async def _timeout(self) -> None:
        # RFC 5321 §4.5.3.2: the server may close after its timeout, with 421.
        await self._drop_transaction()
        notice = b"421 4.4.2 " + self.ctx.config.hostname.encode() + b" timeout\r\n"
        await write_within(self.writer, notice, self.ctx.config.smtp.timeout_command)

    def shutdown_notice(self) -> None:
        """The server is stopping: a session idle between commands hears 421
        and is closed now (RFC 5321 §3.8); one inside DATA may finish."""
        if self._waiting_for_command and not self.writer.is_closing():
            notice = b"421 4.3.2 " + self.ctx.config.hostname.encode() + b" shutting down\r\n"
            self.writer.write(notice)
            self.writer.close()
