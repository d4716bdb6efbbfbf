"""The conversation with one connected host (qmail-remote's ``smtp()``).

Greeting, EHLO, STARTTLS as the route's policy says, AUTH for a smarthost,
then the message to all of this destination's recipients, as few
transactions as the 100-recipient batches need (RFC 5321 §4.5.3.1.8: every
server takes 100), then QUIT. ``run_session`` returns one result per
recipient, or a ``HostFailure`` when this host could not take the message at
all (no greeting, EHLO refused, TLS missing where required ...): the caller
then tries the next host.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from mailyard.dispatch.result import Delivered, DeliveryResult, PermFail, TempFail
from mailyard.dispatch.routes import TlsPolicy
from mailyard.dispatch.smtpconn import SmtpConnection
from mailyard.proto.smtp.client import ClientState, MailOptions
from mailyard.proto.smtp.client_events import (
    AuthReply,
    DataReply,
    EnvelopeDone,
    Greeting,
    HelloReply,
    MailReply,
    MessageReply,
    RcptReply,
    StartTlsReply,
)
from mailyard.proto.smtp.client_reply import ServerReply

__all__ = ["BATCH", "HostFailure", "Job", "SessionPlan", "from_reply", "run_session"]

BATCH: Final = 100  # recipients per transaction (RFC 5321 §4.5.3.1.8 minimum)
_E = TypeVar("_E")


@dataclass(frozen=True, slots=True)
class Job:
    """One message for one destination."""

    sender: str
    recipients: tuple[tuple[int, str], ...]  # (index in the envelope, address)
    size: int  # octets of content as queued
    eightbit: bool  # content has octets over 127: BODY=8BITMIME (RFC 6152)
    smtputf8: bool  # needs SMTPUTF8 (RFC 6531): UTF-8 addresses or header fields
    body: Callable[[], AsyncIterator[bytes]]  # a fresh reader of the content each call
    qid: str = ""  # the queue id, for logs


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """How to talk to this host."""

    tls: TlsPolicy
    tls_context: ssl.SSLContext | None  # for STARTTLS, per the policy
    server_hostname: str | None  # SNI, and the name verified when the context verifies
    username: str = ""
    password: str = ""
    helo: str = ""  # ours, to notice a host that is ourselves


@dataclass(frozen=True, slots=True)
class HostFailure:
    """This host could not take the message; ``retry_plain`` asks for one more
    try without STARTTLS (an opportunistic handshake failed)."""

    result: TempFail | PermFail
    retry_plain: bool = False


def from_reply(reply: ServerReply, host: str, stage: str) -> DeliveryResult:
    """What a reply means for the recipients it answers (RFC 5321 §4.2.1)."""
    if reply.positive:
        return Delivered(f"{host} said: {reply.describe()}")
    status = reply.enhanced or ("5.0.0" if reply.permanent else "4.0.0")
    if reply.synthetic:
        # Not the server's words (RFC 5321 §3.8 lost connection): no smtp; diagnostic.
        reason = f"{host}: {reply.text} ({stage})"
        return TempFail(reason, status, remote_mta=host)
    reason = f"{host} said: {reply.describe()} (in reply to {stage})"
    diagnostic = f"smtp; {reply.describe()}"
    if reply.permanent:
        return PermFail(reason, status, host, diagnostic)
    return TempFail(reason, status, host, diagnostic)


def _host_failure(reply: ServerReply, host: str, stage: str) -> HostFailure:
    result = from_reply(reply, host, stage)
    assert not isinstance(result, Delivered)
    return HostFailure(result)


def _temp(host: str, reason: str, status: str = "4.4.2") -> HostFailure:
    return HostFailure(TempFail(f"{host}: {reason}", status, remote_mta=host))


def _all(job: Job, result: DeliveryResult) -> dict[int, DeliveryResult]:
    return {index: result for index, _ in job.recipients}


async def _expect(conn: SmtpConnection, kind: type[_E]) -> _E:
    """Events until one of ``kind`` (earlier ones are not needed here)."""
    while True:
        event = await conn.next_event()
        if isinstance(event, kind):
            return event
        if not hasattr(event, "reply"):
            raise ConnectionError("the session closed unexpectedly")


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


async def _hello(conn: SmtpConnection) -> HelloReply:
    conn.client.ehlo()
    event = await _expect(conn, HelloReply)
    return event


async def _open(conn: SmtpConnection, plan: SessionPlan) -> HostFailure | None:
    """Greeting and EHLO (and STARTTLS with a second EHLO)."""
    host = conn.target.host
    greeting = await _expect(conn, Greeting)
    if not greeting.reply.positive:
        return _host_failure(greeting.reply, host, "the greeting")
    words = greeting.reply.lines[0].split() if greeting.reply.lines else []
    if plan.helo and words and words[0].lower() == plan.helo.lower():
        # The host greets with our own name: mail for it would loop back here.
        return HostFailure(PermFail(f"{host} is this host: mail would loop back to myself",
                                    "5.4.6", remote_mta=host))
    hello = await _hello(conn)
    if not hello.reply.positive:
        return _host_failure(hello.reply, host, "EHLO/HELO")
    return await _tls(conn, plan, hello)


async def _tls(conn: SmtpConnection, plan: SessionPlan, hello: HelloReply) -> HostFailure | None:
    client, host = conn.client, conn.target.host
    if plan.tls in (TlsPolicy.NONE, TlsPolicy.IMPLICIT) or client.tls_active:
        return None
    required = plan.tls is TlsPolicy.REQUIRED
    if not hello.extensions.starttls:
        if required:
            return _temp(host, "TLS is required but STARTTLS is not offered", "4.7.0")
        return None
    client.starttls()
    reply = await _expect(conn, StartTlsReply)
    if not reply.reply.positive:
        # Refused: the session goes on in plaintext unless TLS is a must.
        return _host_failure(reply.reply, host, "STARTTLS") if required else None
    if plan.tls_context is None or client.state is not ClientState.TLS:
        return _temp(host, "connection lost at STARTTLS")
    try:
        await conn.start_tls(plan.tls_context, plan.server_hostname)
    except (OSError, TimeoutError) as exc:
        if required:
            return _temp(host, f"TLS handshake failed: {exc}", "4.7.0")
        return HostFailure(TempFail(f"{host}: TLS handshake failed: {exc}", "4.7.0",
                                    remote_mta=host), retry_plain=True)
    again = await _hello(conn)
    if not again.reply.positive:
        return _host_failure(again.reply, host, "EHLO after STARTTLS")
    return None


async def _auth(conn: SmtpConnection, plan: SessionPlan) -> HostFailure | None:
    client, host = conn.client, conn.target.host
    if not plan.username:
        return None
    # RFC 4954 §4 (and §14): credentials only over TLS, or to this machine.
    secure = client.tls_active or plan.tls is TlsPolicy.IMPLICIT
    if not secure and not _is_loopback(conn.target.address):
        return _temp(host, "will not send the AUTH password without TLS", "4.7.0")
    offered = client.extensions.auth
    mechanism = next((m for m in ("PLAIN", "LOGIN") if m in offered), None)
    if mechanism is None:
        return _temp(host, "offers no AUTH PLAIN or LOGIN", "4.7.0")
    client.auth(mechanism, plan.username, plan.password)
    event = await _expect(conn, AuthReply)
    if event.reply.code != 235:
        # A refused login is our configuration's fault, not the sender's:
        # keep the mail queued for the operator to fix (never bounce it).
        diagnostic = None if event.reply.synthetic else f"smtp; {event.reply.describe()}"
        return HostFailure(TempFail(f"{host}: login refused: {event.reply.describe()}", "4.7.0",
                                    host, diagnostic))
    return None


def _refusals(conn: SmtpConnection, job: Job) -> dict[int, DeliveryResult] | None:
    """What this server cannot take at all, decided before MAIL."""
    ext, host = conn.client.extensions, conn.target.host
    if job.smtputf8 and not ext.smtputf8:
        reason = (f"{host} does not support SMTPUTF8 (RFC 6531), which this message "
                  "needs for its UTF-8 addresses or header fields")
        return _all(job, PermFail(reason, "5.6.7", remote_mta=host))
    if ext.size and job.size > ext.size:
        # RFC 1870 §4: a message over the announced limit is not sent.
        reason = f"message of {job.size} octets exceeds the {ext.size} octets {host} accepts"
        return _all(job, PermFail(reason, "5.3.4", remote_mta=host))
    return None


async def _transaction(conn: SmtpConnection, job: Job,
                       batch: Sequence[tuple[int, str]]) -> dict[int, DeliveryResult]:
    host, client = conn.target.host, conn.client
    options = MailOptions(size=job.size, eightbit=job.eightbit, smtputf8=job.smtputf8)
    client.mail_transaction(job.sender, [address for _, address in batch], options)
    results: dict[int, DeliveryResult] = {}
    mail: ServerReply | None = None
    data: ServerReply | None = None
    while True:
        event = await conn.next_event()
        if isinstance(event, MailReply):
            mail = event.reply
        elif isinstance(event, RcptReply) and not event.reply.positive:
            # A refused recipient is final here; an accepted one waits for the content.
            results[batch[event.index][0]] = from_reply(event.reply, host, "RCPT")
        elif isinstance(event, DataReply):
            data = event.reply
        elif isinstance(event, EnvelopeDone):
            break
        elif not isinstance(event, RcptReply):
            raise ConnectionError("the session closed during the envelope")
    if mail is not None and not mail.positive:
        return {index: from_reply(mail, host, "MAIL") for index, _ in batch}
    if event.body_expected:
        await conn.send_body(job.body())
        final = await _expect(conn, MessageReply)
        outcome = from_reply(final.reply, host, "end of data")
    else:
        if data is not None and not data.positive:
            outcome = from_reply(data, host, "DATA")
        else:
            outcome = _temp(host, "the transaction ended before the content was sent").result
        if client.state is ClientState.READY:
            client.rset()  # RFC 5321 §4.1.1.5: clear what MAIL started
            await conn.next_event()
    # Only the reply to the content delivers (RFC 5321 §3.3): every accepted
    # recipient gets it; one never answered was not attempted.
    for i in event.accepted:
        results[batch[i][0]] = outcome
    for index, _ in batch:
        if index not in results:
            results[index] = _temp(host, "not attempted: the session ended").result
    return results


async def run_session(conn: SmtpConnection, job: Job, plan: SessionPlan,
                      ) -> dict[int, DeliveryResult] | HostFailure:
    """The whole conversation; the caller opens and closes the connection.

    ``ConnectionError`` here means the core closed without the event a step
    waits for: before MAIL the host failed; in a transaction, that batch is
    deferred and what earlier batches got stays.
    """
    host = conn.target.host
    try:
        failure = await _open(conn, plan) or await _auth(conn, plan)
    except ConnectionError as exc:
        return _temp(host, str(exc))
    if failure is not None:
        return failure
    refused = _refusals(conn, job)
    if refused is not None:
        return refused
    results: dict[int, DeliveryResult] = {}
    for start in range(0, len(job.recipients), BATCH):
        batch = job.recipients[start : start + BATCH]
        try:
            if conn.client.state is not ClientState.READY:
                raise ConnectionError("connection lost between transactions")
            results.update(await _transaction(conn, job, batch))
        except ConnectionError as exc:
            lost = _temp(host, str(exc)).result
            results.update({index: lost for index, _ in batch})
    return results
