"""What every session of a running server shares: config, stores, pools, counters."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from mailyard.config import Config
from mailyard.directory.store import Directory
from mailyard.queue.store import Queue
from mailyard.server.access import (
    AccessPolicy,
    compile_policy,
    normalize_network,
    parse_client_ip,
)
from mailyard.server.throttle import LoginThrottle
from mailyard.server.tls import TlsManager

__all__ = ["ServerContext"]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class ServerContext:
    config: Config
    directory: Directory
    queue: Queue
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
