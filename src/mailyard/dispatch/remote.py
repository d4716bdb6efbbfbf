"""Remote delivery of one message (qmail-rspawn + qmail-remote, on the event loop).

``RemoteDelivery.deliver(message)`` groups the message's remote recipients
by destination — a static route's host, or else the recipient domain —
and delivers each group in one connection (RFC 5321 §5.1: the mail hosts
in order, the next one only when a host could not take the message). The
groups of one message run at once; across messages a global limit bounds
the SMTP sessions (``concurrency``, qmail's concurrencyremote) and a
per-destination limit keeps one slow domain from taking them all.

An address that refused or timed out a connection is skipped for a while
(backoff.py); a destination all of whose addresses are skipped is deferred
without a connection. Nothing here touches the queue: the result is one
``DeliveryResult`` per recipient index, and the caller records it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from mailyard.dispatch.backoff import HostBackoff
from mailyard.dispatch.mx import LookupFailed, MailDns, Target
from mailyard.dispatch.result import DeliveryResult, PermFail, TempFail
from mailyard.dispatch.routes import Route, TlsPolicy
from mailyard.dispatch.session import HostFailure, Job, SessionPlan, run_session
from mailyard.dispatch.settings import RemoteSettings
from mailyard.dispatch.smtpconn import SmtpConnection
from mailyard.log import event
from mailyard.message.address import AddressError, canonical_domain
from mailyard.proto.smtp.client import ClientConfig

__all__ = ["RemoteDelivery", "RemoteMessage", "RemoteStats"]

_TLS_MINIMUM: Final = ssl.TLSVersion.TLSv1_2


@dataclass(frozen=True, slots=True)
class RemoteMessage:
    """A queued message's remote part, as the channel hands it over."""

    qid: str
    sender: str
    recipients: tuple[tuple[int, str], ...]
    size: int
    eightbit: bool
    smtputf8: bool
    body: Callable[[], AsyncIterator[bytes]]


@dataclass(slots=True)
class RemoteStats:
    """Counters for tests, benchmarks and ``status``."""

    connections: int = 0  # connection attempts
    connect_failures: int = 0
    skipped: int = 0  # addresses not tried because of their backoff
    sessions: int = 0  # SMTP sessions now running


@dataclass(slots=True)
class _Slot:
    semaphore: asyncio.Semaphore
    users: int = 0


@dataclass(slots=True)
class _Group:
    key: str  # destination: "route host:port" or the recipient domain
    domain: str
    route: Route | None
    recipients: list[tuple[int, str]] = field(default_factory=list)


def _opportunistic_context() -> ssl.SSLContext:
    # Opportunistic TLS (RFC 7435): encryption against passive eavesdroppers;
    # an MX's certificate is not checked, since nothing says whose it must be.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = _TLS_MINIMUM
    return context


def _verified_context(ca_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file or None)
    context.minimum_version = _TLS_MINIMUM
    return context


class RemoteDelivery:
    def __init__(self, settings: RemoteSettings, hostname: str, *,
                 clock: Callable[[], float], dns: MailDns | None = None) -> None:
        self._settings = settings
        self._client = ClientConfig(settings.helo_name(hostname), chunking=settings.chunking)
        self._dns = dns or MailDns(settings.resolver, settings.dns_timeout)
        self.backoff = HostBackoff(clock)
        self._sessions = asyncio.Semaphore(settings.concurrency)
        self._slots: dict[str, _Slot] = {}
        self._contexts: dict[str, ssl.SSLContext] = {}
        self.stats = RemoteStats()
        self.stopping = False

    async def deliver(self, message: RemoteMessage) -> dict[int, DeliveryResult]:
        """One result per recipient attempted; recipients left out were not
        attempted (the delivery process is stopping)."""
        groups, results = self._group(message.recipients)
        outcomes = await asyncio.gather(*(self._deliver_group(g, message) for g in groups))
        for outcome in outcomes:
            results.update(outcome)
        return results

    def _group(self, recipients: Sequence[tuple[int, str]],
               ) -> tuple[list[_Group], dict[int, DeliveryResult]]:
        groups: dict[str, _Group] = {}
        refused: dict[int, DeliveryResult] = {}
        for index, address in recipients:
            try:
                domain = canonical_domain(address.rpartition("@")[2])
            except AddressError as exc:
                refused[index] = PermFail(f"bad recipient domain: {exc}", "5.1.2")
                continue
            route = self._settings.routes.lookup(domain)
            key = f"route {route.key}" if route is not None and route.host else domain
            group = groups.setdefault(key, _Group(key, domain, route))
            group.recipients.append((index, address))
        return list(groups.values()), refused

    async def _deliver_group(self, group: _Group, message: RemoteMessage,
                             ) -> dict[int, DeliveryResult]:
        job = Job(message.sender, tuple(group.recipients), message.size, message.eightbit,
                  message.smtputf8, message.body, message.qid)
        slot = self._slots.setdefault(
            group.key, _Slot(asyncio.Semaphore(self._settings.per_destination)))
        slot.users += 1
        try:
            async with slot.semaphore:
                if self.stopping:
                    return {}
                try:
                    targets = await self._targets(group)
                except LookupFailed as exc:
                    return _for_all(job, _lookup_result(exc))
                async with self._sessions:
                    if self.stopping:
                        return {}
                    return await self._try_targets(group, job, targets)
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._slots[group.key]

    async def _targets(self, group: _Group) -> list[Target]:
        route = group.route
        if route is not None and route.host:
            return await self._dns.host_targets(route.host, route.port)
        # MX hosts listen on the SMTP port (a route without a host only
        # changes the TLS policy, never the port).
        return await self._dns.mx_targets(group.domain, self._settings.smtp_port)

    async def _try_targets(self, group: _Group, job: Job, targets: Sequence[Target],
                           ) -> dict[int, DeliveryResult]:
        failures: list[HostFailure] = []
        for target in targets:
            if self.backoff.down_until(target.address, target.port) is not None:
                self.stats.skipped += 1
                continue
            outcome = await self._attempt(group, job, target, starttls=True)
            if isinstance(outcome, HostFailure) and outcome.retry_plain:
                outcome = await self._attempt(group, job, target, starttls=False)
            if not isinstance(outcome, HostFailure):
                return outcome
            failures.append(outcome)
        if not failures:
            reason = (f"every mail host of {group.key} failed to connect lately; "
                      "not tried again before its backoff ends")
            return _for_all(job, TempFail(reason, "4.4.1"))
        # Permanent only if every host said so; else the last temporary failure.
        temporary = [f.result for f in failures if isinstance(f.result, TempFail)]
        return _for_all(job, temporary[-1] if temporary else failures[-1].result)

    def _plan(self, group: _Group, target: Target, starttls: bool) -> SessionPlan:
        route = group.route
        policy = route.tls if route is not None else TlsPolicy.OPPORTUNISTIC
        if not starttls and policy is TlsPolicy.OPPORTUNISTIC:
            policy = TlsPolicy.NONE
        verified = policy in (TlsPolicy.REQUIRED, TlsPolicy.IMPLICIT)
        context = self._context(route.ca_file if route else "", verified)
        # The name to verify, or (opportunistic) only to send as SNI.
        name = target.host.strip("[]").removeprefix("IPv6:")
        username = route.username if route is not None else ""
        password = route.password if route is not None else ""
        return SessionPlan(policy, context, name, username, password, self._client.helo)

    def _context(self, ca_file: str, verified: bool) -> ssl.SSLContext:
        key = f"verified {ca_file}" if verified else "opportunistic"
        context = self._contexts.get(key)
        if context is None:
            context = _verified_context(ca_file) if verified else _opportunistic_context()
            self._contexts[key] = context
        return context

    async def _attempt(self, group: _Group, job: Job, target: Target, *, starttls: bool,
                       ) -> dict[int, DeliveryResult] | HostFailure:
        plan = self._plan(group, target, starttls)
        implicit = plan.tls is TlsPolicy.IMPLICIT
        self.stats.connections += 1
        try:
            conn = await SmtpConnection.open(
                target, self._client, self._settings.timeouts,
                tls=plan.tls_context if implicit else None,
                server_hostname=plan.server_hostname if implicit else None,
            )
        except (OSError, TimeoutError) as exc:
            return self._connect_failed(target, exc, handshake=implicit)
        self.backoff.succeeded(target.address, target.port)
        self.stats.sessions += 1
        try:
            outcome = await run_session(conn, job, plan)
        finally:
            self.stats.sessions -= 1
            await conn.close()
        event("remote.session", id=job.qid, host=target.host, address=target.address,
              port=target.port, tls=conn.client.tls_active or implicit,
              recipients=len(job.recipients),
              result="host failed" if isinstance(outcome, HostFailure) else "done")
        return outcome

    def _connect_failed(self, target: Target, exc: Exception, *, handshake: bool,
                        ) -> HostFailure:
        self.stats.connect_failures += 1
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            reason = f"timeout after {self._settings.timeouts.connect:g} s"
        if not (handshake and isinstance(exc, ssl.SSLError)):
            until = self.backoff.failed(target.address, target.port)
            event("remote.connect_failed", level=logging.WARNING, host=target.host,
                  address=target.address, port=target.port, error=reason, retry_at=until)
        where = f"{target.host} [{target.address}]:{target.port}"
        return HostFailure(TempFail(f"cannot connect to {where}: {reason}", "4.4.1",
                                    remote_mta=target.host))

    def flush(self) -> None:
        """``mailyard queue flush``: forget which hosts were down."""
        self.backoff.clear()


def _lookup_result(exc: LookupFailed) -> DeliveryResult:
    if exc.permanent:
        return PermFail(exc.reason, exc.status)
    return TempFail(exc.reason, exc.status)


def _for_all(job: Job, result: DeliveryResult) -> dict[int, DeliveryResult]:
    return {index: result for index, _ in job.recipients}

