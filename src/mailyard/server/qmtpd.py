"""QMTP and QMQP receivers: the thin asyncio adapter between a socket and
the netstring cores (qmail-qmtpd's and qmail-qmqpd's roles).

The loop is the SMTP adapter's: read bytes → ``core.receive_data`` → drain
events → answer the ones that need policy → write what the core queued when
it needs more input. Framing, limits and the K/Z/D rendering live in the
core (proto/qmtp); this module decides only policy and moves the message
into the queue.

QMTP and QMQP send the message *before* its envelope, while a queue file
begins with the envelope. So the message is gathered in memory up to
``FLUSH_AT`` and beyond that spooled by the queue itself
(``Queue.begin_body_first``: an anonymous file in ``queue/tmp``); at the end
of the package the envelope is known and the message is committed through
the ordinary path (fsync, rename into ``mess/``, directory sync), then the
delivery worker is told. Only then does the client get its K. Never a
partial message: a package cut short, refused or failing leaves nothing.

Policy is SMTP's (policy.py): the same recipient checks, the postmaster
rule and relaying only for ``relay_networks``. QMQP is a central queue for
trusted hosts (qmail-qmqpd has no recipient-host check at all): only the
configured ``[qmqp] clients`` may connect, and they may relay; local
recipients are still checked, and since QMQP has one answer per message, a
refused recipient refuses the message (all or nothing).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Protocol, TypeAlias

from mailyard import fsio
from mailyard.log import event
from mailyard.message.address import AddressError, parse_address
from mailyard.message.headers import received_header
from mailyard.proto.qmtp import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    ConnectionClosed,
    MessageChunk,
    MessageStart,
    PackageEnd,
    PackageRefused,
    QmqpServer,
    QmtpLimits,
    QmtpProtocolError,
    QmtpServer,
    Recipient,
    Response,
    Sender,
    Status,
)
from mailyard.queue.store import Envelope
from mailyard.server.context import ServerContext
from mailyard.server.limits import ConnectionLimiter
from mailyard.server.listener import Connection, ListenerKind, Service
from mailyard.server.policy import RcptVerdict, check_recipient
from mailyard.server.spool import FLUSH_AT
from mailyard.server.stream import write_within

__all__ = ["QmqpSection", "QmtpRole", "QmtpSection", "QmtpSession", "core_limits",
           "qmtp_listeners"]

_READ_SIZE: Final = 65536
# QMTP §2 and QMQP: "a session should take at most 1 hour"; qmail's alarm(3600).
SESSION_LIMIT: Final = 3600.0
MAX_ADDRESS: Final = 1000  # qmail-qmtpd's limit for the sender and each recipient

_IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

# The texts after K/Z/D carry RFC 3463 codes; QMTP §5 allows "#" only there.
_D_SENDER: Final = Response(Status.PERMANENT, "unacceptable sender address (#5.1.7)")
_D_RCPT_SYNTAX: Final = Response(Status.PERMANENT, "bad recipient address syntax (#5.1.3)")
_D_REFUSED: Final = {
    RcptVerdict.UNKNOWN: Response(Status.PERMANENT, "no such user here (#5.1.1)"),
    RcptVerdict.RELAY_DENIED: Response(Status.PERMANENT, "relay access denied (#5.7.1)"),
    RcptVerdict.DISABLED: Response(Status.PERMANENT, "mailbox disabled (#5.2.1)"),
    RcptVerdict.TOO_BIG: Response(Status.PERMANENT, "message too big for this recipient (#5.3.4)"),
}
_Z_DISK_FULL: Final = Response(Status.TEMPORARY,
                               "insufficient system storage; try again later (#4.3.1)")
_Z_LOCAL_ERROR: Final = Response(Status.TEMPORARY,
                                 "local error in processing; try again later (#4.3.0)")


class QmtpSection(Protocol):
    """What this module reads from ``[qmtp]`` (and ``[qmqp]``) of the configuration."""

    @property
    def listen(self) -> tuple[str, ...]: ...
    @property
    def max_connections(self) -> int: ...
    @property
    def max_connections_per_ip(self) -> int: ...
    @property
    def timeout(self) -> float: ...


class QmqpSection(QmtpSection, Protocol):
    @property
    def clients(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class QmtpRole:
    """What a listener speaks: QMTP, or QMQP restricted to ``clients``."""

    protocol: str  # "QMTP" or "QMQP": the Received: field; lower case in logs
    timeout: float  # seconds a read or a write may wait for the client
    clients: tuple[_IPNetwork, ...] = ()  # QMQP: who may connect (and relay)

    @property
    def qmqp(self) -> bool:
        return self.protocol == "QMQP"

    @property
    def name(self) -> str:
        return self.protocol.lower()


def core_limits(ctx: ServerContext) -> QmtpLimits:
    """The cores' limits: [smtp]'s message size and recipient count, for every door."""
    smtp = ctx.config.smtp
    return QmtpLimits(max_message_size=smtp.max_message_size,
                      max_discard_size=2 * smtp.max_message_size,
                      max_address_length=MAX_ADDRESS, max_recipients=smtp.max_recipients)


def qmtp_listeners(
    ctx: ServerContext, qmtp: QmtpSection, qmqp: QmqpSection
) -> list[tuple[Service, tuple[str, ...]]]:
    """The QMTP and QMQP services with their addresses (none when not configured)."""
    rows: list[tuple[Service, tuple[str, ...]]] = []
    for section, role in (
        (qmtp, QmtpRole("QMTP", qmtp.timeout)),
        (qmqp, QmtpRole("QMQP", qmqp.timeout, tuple(
            ipaddress.ip_network(net, strict=False) for net in qmqp.clients))),
    ):
        if section.listen:
            limiter = ConnectionLimiter(section.max_connections, section.max_connections_per_ip)
            # Neither protocol has anything to say at connect or on a failure:
            # a closed connection is a temporary failure for what is unanswered.
            rows.append((Service(role.name, ListenerKind.PLAIN, limiter, refuse=b"",
                                 internal_error=b"", session=_session_handler(ctx, role),
                                 access=ctx.access),
                         section.listen))
    return rows


def _session_handler(ctx: ServerContext, role: QmtpRole) -> Callable[[Connection], Awaitable[None]]:
    limits = core_limits(ctx)

    async def run(conn: Connection) -> None:
        await QmtpSession(ctx, role, limits, conn).run()

    return run


class _BodySpool:
    """One message on its way in: memory up to FLUSH_AT, then the queue's spool."""

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self._writer = ctx.queue.begin_body_first()  # no disk access yet
        self.queue_id = self._writer.id
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._touched = False  # a pool job may have created the spool
        self.size = 0
        self.failed: OSError | None = None

    def add(self, data: bytes) -> bool:
        """Keep ``data``; True when the caller should ``await flush()``."""
        self.size += len(data)
        if self.failed is None:
            self._pending.append(data)
            self._pending_size += len(data)
        return self._pending_size >= FLUSH_AT

    def _take(self) -> bytes:
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        return data

    async def flush(self) -> None:
        if self._pending and self.failed is None:
            self._touched = True
            try:
                await self._ctx.in_io(self._writer.write, self._take())
            except OSError as exc:
                self.failed = exc  # answered at the end of the package, with Z

    async def commit(self, envelope: Envelope, head: bytes) -> str:
        """Queue it (raises OSError: disk full, I/O error); the commit point."""
        if self.failed is not None:
            raise self.failed
        self._touched = True
        return await self._ctx.in_io(self._writer.commit, envelope, head, self._take())

    async def abort(self) -> None:
        self._pending.clear()
        self._pending_size = 0
        if self._touched:
            await self._ctx.in_io(self._writer.abort)
        else:
            self._writer.abort()  # nothing on disk: no pool trip


@dataclass
class _Package:
    spool: _BodySpool
    birth: float
    sender: str | None = None  # None: not read yet, or refused (sender_refusal)
    sender_refusal: Response | None = None
    refusals: list[Response | None] = field(default_factory=list)  # None: accepted
    recipients: list[str] = field(default_factory=list)  # the envelope's, accepted only


class QmtpSession:
    """One QMTP or QMQP connection."""

    def __init__(self, ctx: ServerContext, role: QmtpRole, limits: QmtpLimits,
                 conn: Connection) -> None:
        self.ctx = ctx
        self.role = role
        self.conn = conn
        self.client_ip = conn.client_ip
        self.core: QmtpServer | QmqpServer = (
            QmqpServer(limits) if role.qmqp else QmtpServer(limits))
        self._package: _Package | None = None
        self.accepted = 0

    async def run(self) -> None:
        if self.role.qmqp and not self._client_allowed():
            event("qmqp.denied", ip=self.client_ip, reason="not a configured QMQP client")
            return
        try:
            await self._serve()
        finally:
            # Whatever ended the session, nothing of an unfinished package stays.
            await self._drop_package()

    def _client_allowed(self) -> bool:
        try:
            ip = ipaddress.ip_address(self.client_ip)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.role.clients)

    async def _serve(self) -> None:
        deadline = asyncio.get_running_loop().time() + SESSION_LIMIT
        while True:
            try:
                ev = self.core.next_event()
            except QmtpProtocolError as exc:
                # No way to say "bad syntax": answers already due go out, then close.
                event(f"{self.role.name}.protocol_error", ip=self.client_ip, reason=str(exc))
                await self._flush()
                return
            if ev is NEED_DATA:
                await self._flush()
                data = await self._read(deadline)
                if data is None:
                    return
                self.core.receive_data(data)
            elif ev is CLOSED:
                await self._flush()
                return
            elif ev is AWAITING_REPLY:
                # Cannot happen: every PackageEnd is answered below.
                raise RuntimeError("QMTP core awaits an answer nobody will give")
            else:
                await self._handle(ev)

    async def _handle(self, ev: object) -> None:
        if isinstance(ev, MessageChunk):
            package = self._package
            if package is not None and package.spool.add(ev.data):
                await package.spool.flush()
        elif isinstance(ev, MessageStart):
            await self._drop_package()
            self._package = _Package(_BodySpool(self.ctx), time.time())
        elif isinstance(ev, Sender):
            self._sender(ev.address)
        elif isinstance(ev, Recipient):
            self._recipient(ev.address)
        elif isinstance(ev, PackageEnd):
            await self._package_end()
        elif isinstance(ev, PackageRefused):
            await self._drop_package()
            event(f"{self.role.name}.refused", ip=self.client_ip, reason=ev.reason.value,
                  size=ev.size, rcpts=ev.recipients)
        elif isinstance(ev, ConnectionClosed):
            if ev.mid_package:
                event(f"{self.role.name}.incomplete", ip=self.client_ip)
            await self._drop_package()
        else:
            raise RuntimeError(f"unexpected QMTP event {ev!r}")

    # -- envelope policy ---------------------------------------------------------------

    def _sender(self, raw: bytes) -> None:
        package = self._package
        if package is None:
            return
        if not raw:
            package.sender = ""  # the null sender (bounces)
            return
        try:
            package.sender = str(parse_address(raw.decode("utf-8")))
        except (UnicodeDecodeError, AddressError):
            package.sender_refusal = _D_SENDER

    def _recipient(self, raw: bytes) -> None:
        package = self._package
        if package is None:
            return
        if package.sender_refusal is not None:
            package.refusals.append(package.sender_refusal)  # refused anyway: no lookups
            return
        try:
            address = parse_address(raw.decode("utf-8"))
        except (UnicodeDecodeError, AddressError):
            package.refusals.append(_D_RCPT_SYNTAX)
            return
        decision = check_recipient(self.ctx, address, client_ip=self.client_ip,
                                   trusted=self.role.qmqp, service=self.role.name)
        if decision.address is None:
            package.refusals.append(_D_REFUSED[decision.verdict])
            return
        package.refusals.append(None)
        package.recipients.append(decision.address)

    # -- the end of a package --------------------------------------------------------------

    async def _package_end(self) -> None:
        package, self._package = self._package, None
        if package is None:
            raise RuntimeError("package ended without a message")
        refusals = package.refusals
        if package.sender_refusal is not None:
            refusals = [package.sender_refusal] * len(refusals)
        refused = [r for r in refusals if r is not None]
        outcome: Response | None = None
        if (refused and self.role.qmqp) or len(refused) == len(refusals):
            # QMQP has one answer for all recipients, so one refusal refuses
            # the message; QMTP queues nothing when nobody is left.
            await package.spool.abort()
        else:
            outcome = await self._commit(package)  # K, or Z on a storage error
        responses = refused if outcome is None else [outcome if r is None else r
                                                     for r in refusals]
        if isinstance(self.core, QmqpServer):
            self.core.answer(responses[0])
        else:
            self.core.answer(responses)
        # Answers go out at once; the client may have pipelined more packages.
        await self._flush()

    async def _commit(self, package: _Package) -> Response:
        spool = package.spool
        assert package.sender is not None
        envelope = Envelope(
            sender=package.sender, recipients=tuple(package.recipients), birth=package.birth,
            # RFC 6531: UTF-8 addresses need SMTPUTF8 wherever the message goes next.
            smtputf8=not (package.sender.isascii()
                          and all(r.isascii() for r in package.recipients)),
        )
        head = received_header(
            from_helo="", client_ip=self.client_ip, client_name=None,
            by_host=self.ctx.config.hostname, protocol=self.role.protocol,
            queue_id=spool.queue_id,
            recipient=package.recipients[0] if len(package.recipients) == 1 else None,
            timestamp=package.birth,
        )
        try:
            qid = await spool.commit(envelope, head)
        except OSError as exc:
            event(f"{self.role.name}.storage_error", level=logging.ERROR, ip=self.client_ip,
                  error=exc.strerror or str(exc))
            await spool.abort()
            return _Z_DISK_FULL if fsio.is_disk_full(exc) else _Z_LOCAL_ERROR
        self.accepted += 1
        self.ctx.count(f"{self.role.name}_messages_accepted")
        event(f"{self.role.name}.accept", id=qid, ip=self.client_ip,
              sender=package.sender or "<>", rcpts=len(package.recipients),
              size=len(head) + spool.size)
        self.ctx.notify_queue(qid)
        return Response(Status.ACCEPTED, f"ok queued as {qid}")

    async def _drop_package(self) -> None:
        package, self._package = self._package, None
        if package is not None:
            await package.spool.abort()

    # -- I/O -------------------------------------------------------------------------------

    async def _flush(self) -> None:
        await write_within(self.conn.writer, self.core.data_to_send(), self.role.timeout)

    async def _read(self, deadline: float) -> bytes | None:
        """The next bytes; None after the idle timeout or the session limit."""
        left = deadline - asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(min(self.role.timeout, left)):
                return await self.conn.reader.read(_READ_SIZE)
        except TimeoutError:
            reason = "idle" if left > self.role.timeout else "session limit"
            event(f"{self.role.name}.timeout", ip=self.client_ip, reason=reason)
            return None
