"""SMTP receiver: the thin asyncio adapter between a socket and the SMTP core.

The loop is always the same: read bytes → ``core.receive_data`` → drain
events → answer the ones that need policy → write ``core.data_to_send()``
when the core needs more input (RFC 2920: flush before blocking). All SMTP
syntax, sequence and limit rules live in the core; this module decides only
policy (who may relay, which recipients exist, who may log in and send as
whom) and moves message bytes into the queue.

One adapter serves every SMTP listener; an ``SmtpRole`` says which: the MX
(port 25) or submission (RFC 6409, ports 587 and 465). STARTTLS (RFC 3207)
is offered wherever a certificate is configured. AUTH (RFC 4954) is offered
only once TLS protects the password (RFC 4954 §4), or on loopback when
``[tls] loopback_plaintext_auth`` allows it: the core's
``Features.auth_requires_tls`` keeps AUTH out of EHLO and answers 538 until
the core's ``start_tls()``; RFC 3207 §4.2 makes the client start over with
EHLO after the handshake.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Final

from mailyard import fsio
from mailyard.directory.model import Mailbox
from mailyard.log import event
from mailyard.message.address import Address
from mailyard.message.headers import received_header
from mailyard.proto.smtp import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    Authenticate,
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
    StartTls,
)
from mailyard.queue.store import Envelope
from mailyard.server.auth import LoginOutcome, check_login
from mailyard.server.context import ServerContext
from mailyard.server.listener import Connection
from mailyard.server.policy import RcptVerdict, check_recipient
from mailyard.server.spool import Spool
from mailyard.server.stream import write_within
from mailyard.server.submission import (
    R553_SENDER_NOT_OWNED,
    HeaderGate,
    HeaderVerdict,
    message_id,
    owns,
    review_header,
)

__all__ = ["AUTH_MECHANISMS", "SmtpRole", "SmtpSession"]

_READ_SIZE: Final = 65536
AUTH_MECHANISMS: Final = ("PLAIN", "LOGIN")

# RFC 4954 §6 and RFC 3207 §4: the replies of the login and TLS steps.
_R235_AUTH_OK: Final = Reply(235, "2.7.0", "authentication successful")
_R535_AUTH_FAILED: Final = Reply(535, "5.7.8", "authentication credentials invalid")
_R454_THROTTLED: Final = Reply(454, "4.7.0", "too many failed logins; try again later")
_R530_AUTH_FIRST: Final = Reply(530, "5.7.0", "authentication required")
_R530_TLS_FIRST: Final = Reply(530, "5.7.0", "must issue a STARTTLS command first")
_R220_TLS_GO: Final = Reply(220, "2.0.0", "ready to start TLS")
_R454_NO_TLS: Final = Reply(454, "4.7.0", "TLS not available")
# The RCPT replies to each verdict of the shared recipient policy (policy.py).
_RCPT_REPLIES: Final = {
    RcptVerdict.LOCAL: Reply(250, "2.1.5", "recipient ok"),
    RcptVerdict.POSTMASTER: Reply(250, "2.1.5", "postmaster ok"),
    RcptVerdict.RELAY: Reply(250, "2.1.5", "recipient ok (relay)"),
    RcptVerdict.RELAY_DENIED: Reply(554, "5.7.1", "relay access denied"),
    RcptVerdict.UNKNOWN: Reply(550, "5.1.1", "no such user here"),
    RcptVerdict.DISABLED: Reply(550, "5.2.1", "mailbox disabled, not accepting messages"),
    RcptVerdict.TOO_BIG: Reply(552, "5.3.4", "message size exceeds this recipient's limit"),
}


@dataclass(frozen=True, slots=True)
class SmtpRole:
    """What an SMTP listener is for."""

    service: str  # the listener's name in logs: smtp, submission, smtps
    # RFC 6409: AUTH before MAIL, the sender check, Date:/Message-ID: added.
    submission: bool = False
    auth: bool = False  # offer AUTH (under TLS, or on loopback if allowed)
    sender_check: bool = False
    max_header_size: int = 256 * 1024


@dataclass
class _Transaction:
    sender: Address | None = None
    smtputf8: bool = False
    declared_size: int | None = None  # MAIL FROM SIZE= (RFC 1870)
    recipients: list[str] = field(default_factory=list)
    spool: Spool | None = None
    gate: HeaderGate | None = None  # submission: the header section, held back
    aborted: bool = False


_VERBS: Final[dict[type, str]] = {
    Hello: "EHLO", MailFrom: "MAIL", RcptTo: "RCPT", DataStart: "DATA", Reset: "RSET",
    Authenticate: "AUTH", StartTls: "STARTTLS",
}


def _declared_size(value: str | None) -> int | None:
    """SIZE= as a number (the core has checked its syntax and the server limit)."""
    if value is None or not value.isascii() or not value.isdigit():
        return None
    return int(value)


class SmtpSession:
    """One SMTP connection."""

    def __init__(
        self,
        ctx: ServerContext,
        role: SmtpRole,
        core_config: SmtpServerConfig,
        conn: Connection,
    ) -> None:
        self.ctx = ctx
        self.role = role
        self.conn = conn
        self.client_ip = conn.client_ip
        self._base_config = core_config
        self.core = SmtpServer(self._core_config(), tls_active=conn.tls_active)
        self.helo = ""
        self.extended = False
        self.user: Mailbox | None = None
        self.txn = _Transaction()
        self.accepted = 0
        self._waiting_for_command = False

    @property
    def reader(self) -> asyncio.StreamReader:
        return self.conn.reader

    @property
    def writer(self) -> asyncio.StreamWriter:
        return self.conn.writer

    def _core_config(self) -> SmtpServerConfig:
        # The core offers STARTTLS until TLS is on, and (RFC 4954 §4) AUTH
        # only under TLS unless plaintext logins are allowed for this client.
        auth = self.role.auth
        features = dataclasses.replace(
            self._base_config.features,
            starttls=self.ctx.tls is not None,
            auth_mechanisms=AUTH_MECHANISMS if auth else (),
            auth_requires_tls=auth and not self.ctx.plaintext_auth_allowed(self.client_ip),
            auth_required=self.role.submission and auth,
        )
        return dataclasses.replace(self._base_config, features=features)

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
            return
        verb = _VERBS.get(type(ev))
        if verb is not None:
            # For the metrics hook (observe/events.py); the core answers
            # NOOP, HELP, VRFY itself, so those are not counted.
            if isinstance(ev, Hello):
                verb = "EHLO" if ev.extended else "HELO"
            elif isinstance(ev, DataStart) and ev.bdat:
                verb = "BDAT"
            event("smtp.command", level=logging.DEBUG, command=verb)
        if isinstance(ev, Hello):
            self.helo = ev.name
            self.extended = ev.extended
            self.core.send(Reply(250, None, self.ctx.config.hostname))
            await self._drop_transaction()
        elif isinstance(ev, MailFrom):
            await self._drop_transaction()
            refusal = self._sender_refusal(ev.sender)
            if refusal is not None:
                self.core.send(refusal)
                return
            self.txn.sender = ev.sender
            self.txn.smtputf8 = "SMTPUTF8" in ev.params
            self.txn.declared_size = _declared_size(ev.params.get("SIZE"))
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
        elif isinstance(ev, Authenticate):
            await self._authenticate(ev)
        elif isinstance(ev, StartTls):
            await self._start_tls()
        else:
            raise RuntimeError(f"unexpected SMTP event {ev!r}")

    # -- STARTTLS and AUTH ---------------------------------------------------------

    async def _start_tls(self) -> None:
        tls = self.ctx.tls
        if tls is None:  # the core offers STARTTLS only with a certificate
            self.core.send(_R454_NO_TLS)
            return
        self.core.send(_R220_TLS_GO)
        await self._flush()
        await self.conn.start_tls(tls.context, tls.handshake_timeout)
        # RFC 3207 §4.2: forget everything from before TLS, including what
        # the client pipelined behind STARTTLS (the core drops its buffer).
        self.core.start_tls()
        await self._drop_transaction()
        self.helo, self.extended, self.user = "", False, None

    async def _authenticate(self, ev: Authenticate) -> None:
        result = await check_login(
            self.ctx, client_ip=self.client_ip, local_ip=self.conn.local_ip,
            login=ev.username, password=ev.password, authzid=ev.authzid,
        )
        user = ev.username
        if result.outcome is LoginOutcome.OK:
            assert result.mailbox is not None
            self.user = result.mailbox
            user = str(result.mailbox.address)
            reply = _R235_AUTH_OK
        elif result.outcome is LoginOutcome.THROTTLED:
            # RFC 4954 §6: 454 is a temporary failure, not a verdict on the password.
            reply = _R454_THROTTLED
        else:
            reply = _R535_AUTH_FAILED
        event("smtp.auth", service=self.role.service, ip=self.client_ip, user=user,
              mechanism=ev.mechanism, result=result.outcome.value)
        self.core.send(reply)

    def _sender_refusal(self, sender: Address | None) -> Reply | None:
        if self.role.submission and self.user is None:
            # RFC 6409 §4.3: no mail without AUTH. The core says 530 itself
            # once AUTH is offered; before TLS it is not even offered.
            usable = self.conn.tls_active or self.ctx.plaintext_auth_allowed(self.client_ip)
            return _R530_AUTH_FIRST if usable else _R530_TLS_FIRST
        if self.role.sender_check and self.user is not None and not owns(
            self.user, sender, self.ctx.directory.snapshot()
        ):
            # RFC 6409 §6.1: the envelope sender must be the user's.
            event("smtp.sender_denied", service=self.role.service, ip=self.client_ip,
                  user=str(self.user.address), sender=str(sender) if sender else "<>")
            return R553_SENDER_NOT_OWNED
        return None

    # -- RCPT policy -------------------------------------------------------------

    def _rcpt(self, recipient: Address) -> Reply:
        # The rules are shared with QMTP/QMQP (policy.py); an authenticated
        # user may send anywhere (RFC 6409 §3.3).
        decision = check_recipient(self.ctx, recipient, client_ip=self.client_ip,
                                   authenticated=self.user is not None,
                                   declared_size=self.txn.declared_size)
        if decision.address is not None:
            self.txn.recipients.append(decision.address)
        return _RCPT_REPLIES[decision.verdict]

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
        if self.role.submission:
            txn.gate = self._header_gate(txn.spool.queue_id, envelope.birth)
        if bdat:
            self.core.send(Reply(250, "2.0.0", "ready for chunks"))
        else:
            self.core.send(Reply(354, None, "end data with <CR><LF>.<CR><LF>"))

    def _header_gate(self, queue_id: str, now: float) -> HeaderGate:
        user, check = self.user, self.role.sender_check
        new_id = message_id(queue_id, self.ctx.config.hostname)

        def decide(block: bytes, complete: bool) -> HeaderVerdict:
            return review_header(block, complete=complete, owner=user, check_sender=check,
                                 new_message_id=new_id, now=now,
                                 snapshot=self.ctx.directory.snapshot())

        return HeaderGate(self.role.max_header_size, decide)

    def _protocol(self) -> str:
        # RFC 6531 §3.7.3: UTF8SMTP marks a transaction that used SMTPUTF8;
        # RFC 3848: S for TLS, A for an authenticated client.
        if self.txn.smtputf8:
            base = "UTF8SMTP"
        elif self.extended:
            base = "ESMTP"
        else:
            return "SMTP"
        return base + ("S" if self.conn.tls_active else "") + ("A" if self.user else "")

    async def _chunk(self, data: bytes) -> None:
        txn = self.txn
        if txn.gate is not None:
            data = txn.gate.feed(data)
            if txn.gate.refusal is not None:
                await self._discard_spool()  # nothing more of it is kept
                return
        spool = txn.spool
        if spool is not None and data and spool.add(data):
            await spool.flush()

    async def _data_end(self) -> None:
        txn = self.txn
        gate = txn.gate
        if gate is not None:
            rest = gate.finish()
            if txn.spool is not None and rest:
                txn.spool.add(rest)
            refusal = gate.refusal
            if refusal is not None:
                await self._discard_spool()
                event("smtp.content_denied", service=self.role.service, ip=self.client_ip,
                      user=str(self.user.address) if self.user else None,
                      reason=gate.verdict.reason if gate.verdict else None)
                self.core.send(refusal)
                self.txn = _Transaction()
                return
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
            service=self.role.service,
            ip=self.client_ip,
            user=str(self.user.address) if self.user else None,
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
        # Whatever the core answered since the last flush: abuse is logged
        # here, each kind once per connection (the core keeps them apart).
        for kind in self.core.take_violations():
            event(f"{self.role.service}.abuse", ip=self.client_ip, kind=kind.value)
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

