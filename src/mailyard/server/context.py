"""What every session of a running server shares: config, stores, pools, counters.

``queue`` is what the receiving side writes messages into: the queue itself
(``queue.Queue``) when this process may write ``queue/``, or the queue
writer's client (``injector_client.RemoteQueue``) when another process does
(MODELS §7.3e); ``IngestQueue`` is what both offer.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import ParamSpec, Protocol, TypeVar

from mailyard.config import Config
from mailyard.directory.store import Directory
from mailyard.queue.store import Envelope
from mailyard.server.access import (
    AccessPolicy,
    compile_policy,
    normalize_network,
    parse_client_ip,
)
from mailyard.server.throttle import LoginThrottle
from mailyard.server.tls import TlsManager

__all__ = ["IngestBodyWriter", "IngestQueue", "IngestWriter", "ServerContext"]

P = ParamSpec("P")
T = TypeVar("T")


class IngestWriter(Protocol):
    """One message whose envelope is known first (``Queue.begin``'s writer)."""

    id: str

    def write(self, data: bytes) -> None:
        """Append message octets."""

    def commit(self) -> str:
        """Make it durable; its id (the commit point)."""

    def abort(self) -> None:
        """Give it up; idempotent."""


class IngestBodyWriter(Protocol):
    """One message whose envelope comes last (``Queue.begin_body_first``'s writer)."""

    id: str

    def write(self, data: bytes) -> None:
        """Append body octets."""

    def commit(self, envelope: Envelope, head: bytes = b"", tail: bytes = b"") -> str:
        """Queue it under ``envelope``; its id (the commit point)."""

    def abort(self) -> None:
        """Give it up; idempotent."""


class IngestQueue(Protocol):
    """What the receiving side needs of a queue."""

    def new_id(self) -> str:
        """A fresh queue id, without I/O."""

    def begin(self, envelope: Envelope, qid: str | None = None) -> IngestWriter:
        """Start a message under ``envelope``."""

    def begin_body_first(self, qid: str | None = None) -> IngestBodyWriter:
        """Start a message whose envelope comes at its commit."""


@dataclass
class ServerContext:
    """Shared by every session of one worker."""

    config: Config
    directory: Directory
    queue: IngestQueue
    # Disk work (spool writes, fsync, commit) of the receiving side.
    io_pool: ThreadPoolExecutor
    # Password hashing is deliberately slow; it gets its own small pool so a
    # burst of logins cannot delay queue commits.
    auth_pool: ThreadPoolExecutor
    throttle: LoginThrottle  # failed logins per client address
    account_throttle: LoginThrottle  # failed logins per login name, any address
    notify_queue: Callable[[str], None]
    tls: TlsManager | None = None  # None: no certificate, no TLS anywhere
    relay_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    counters: dict[str, int] = field(default_factory=dict)
    # [[access]] rules (access.py), compiled from ``config`` once.
    access: AccessPolicy = field(init=False)

    def __post_init__(self) -> None:
        self.access = compile_policy(self.config)

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def in_io(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self.io_pool, lambda: func(*args, **kwargs))

    def in_auth(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self.auth_pool, lambda: func(*args, **kwargs))

    def relay_allowed(self, client_ip: str, service: str = "smtp") -> bool:
        """qmail's RELAYCLIENT: ``[smtp] relay_networks``, or an access rule with ``relay``.

        The access rule is the one that decides ``client_ip`` on ``service``'s
        listener (first match); an IPv4-mapped IPv6 address counts as IPv4.
        """
        if self.access.relay(client_ip, service):
            return True
        ip = parse_client_ip(client_ip)
        return ip is not None and any(
            ip.version == net.version and ip in net
            for net in map(normalize_network, self.relay_networks))

    def plaintext_auth_allowed(self, client_ip: str) -> bool:
        """``[tls] loopback_plaintext_auth``: logins without TLS, from loopback only."""
        if not self.config.tls.loopback_plaintext_auth:
            return False
        try:
            ip = ipaddress.ip_address(client_ip)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip.is_loopback
