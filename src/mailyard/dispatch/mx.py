"""Where a domain's mail goes: MX lookup with dnspython's async resolver.

RFC 5321 §5.1: the MX records of the domain, lowest preference first and
in random order among equal ones; without MX records the domain itself is
the mail host (its A and AAAA records, the "implicit MX"). RFC 7505: a
single MX of preference 0 naming the root ``.`` says the domain takes no
mail at all, a permanent failure (5.1.10). Each host's IPv4 addresses come
before its IPv6 ones (a host without IPv6 reach fails those quickly, and an
IPv4 path is the one most receivers trust).

Every failure is a ``LookupFailed`` with an RFC 3463 status: NXDOMAIN is
permanent (the domain does not exist); timeouts and server failures are
temporary, as is an MX set none of whose hosts has an address (someone is
fixing their DNS).
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdtypes.ANY.MX
import dns.resolver

__all__ = ["MAX_TARGETS", "LookupFailed", "MailDns", "Target", "literal_address"]

MAX_TARGETS: Final = 10  # addresses tried per delivery (Postfix: smtp_mx_address_limit 5)
_MAX_MX: Final = 10
_CACHE_SIZE: Final = 4096


@dataclass(frozen=True, slots=True)
class Target:
    """One address to connect to; ``host`` is the name reported as Remote-MTA."""

    host: str
    address: str
    port: int


class LookupFailed(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    @property
    def permanent(self) -> bool:
        return self.status.startswith("5")


def literal_address(host: str) -> str | None:
    """The IP of ``[192.0.2.1]``, ``[IPv6:2001:db8::1]`` or a bare address; else None."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    text = text.removeprefix("IPv6:").removeprefix("ipv6:")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _make_resolver(nameservers: Sequence[tuple[str, int]], timeout: float,
                   ) -> dns.asyncresolver.Resolver:
    if nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(a, p) for a, p in nameservers]
    else:
        try:
            resolver = dns.asyncresolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            # No /etc/resolv.conf: every lookup fails temporarily until there is one.
            resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.lifetime = timeout
    resolver.cache = dns.resolver.LRUCache(_CACHE_SIZE)
    return resolver


class MailDns:
    """MX and address lookups for remote delivery."""

    def __init__(self, nameservers: Sequence[tuple[str, int]] = (), timeout: float = 30.0,
                 rng: random.Random | None = None) -> None:
        self._resolver = _make_resolver(nameservers, timeout)
        self._rng = rng or random.Random()  # ordering, not secrecy

    async def mx_targets(self, domain: str, port: int) -> list[Target]:
        """Addresses for mail to ``domain`` (an A-label name or address literal)."""
        address = literal_address(domain) if domain.startswith("[") else None
        if address is not None:
            return [Target(domain, address, port)]
        hosts, implicit = await self._mx_hosts(domain)
        targets, temporary = await self._addresses(hosts, port)
        if targets:
            return targets
        if temporary:
            raise LookupFailed("4.4.3", f"DNS lookup of the mail hosts of {domain} failed")
        if implicit:
            raise LookupFailed("5.1.2", f"{domain} has no MX and no address records")
        raise LookupFailed("4.4.4", f"no MX host of {domain} has an address")

    async def host_targets(self, host: str, port: int) -> list[Target]:
        """Addresses of one named host (a static route: A/AAAA, no MX)."""
        address = literal_address(host)
        if address is not None:
            return [Target(host, address, port)]
        targets, temporary = await self._addresses([host], port)
        if not targets:
            status = "4.4.3" if temporary else "4.4.4"
            raise LookupFailed(status, f"route host {host} has no address")
        return targets

    async def _mx_hosts(self, domain: str) -> tuple[list[str], bool]:
        try:
            answer = await self._resolver.resolve(dns.name.from_text(domain), "MX",
                                                  search=False)
        except dns.resolver.NXDOMAIN:
            raise LookupFailed("5.1.2", f"domain {domain} does not exist (NXDOMAIN)") from None
        except dns.resolver.NoAnswer:
            return [domain], True  # RFC 5321 §5.1: the implicit MX
        except (dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel):
            raise LookupFailed("5.1.2", f"{domain!r} is not a valid domain") from None
        except dns.exception.DNSException as exc:
            raise LookupFailed(
                "4.4.3", f"DNS lookup of MX {domain} failed: {type(exc).__name__}"
            ) from None
        records = [r for r in answer if isinstance(r, dns.rdtypes.ANY.MX.MX)]
        real = [r for r in records if r.exchange != dns.name.root]
        if records and not real:
            # RFC 7505 §3: the null MX, this domain accepts no mail.
            raise LookupFailed("5.1.10", f"{domain} accepts no mail (null MX, RFC 7505)")
        by_preference: dict[int, list[str]] = {}
        for record in real:
            name = record.exchange.to_text(omit_final_dot=True).lower()
            by_preference.setdefault(record.preference, []).append(name)
        hosts: list[str] = []
        for preference in sorted(by_preference):
            group = sorted(set(by_preference[preference]))
            self._rng.shuffle(group)  # RFC 5321 §5.1: spread load among equals
            hosts += group
        return hosts[:_MAX_MX], False

    async def _addresses(self, hosts: Sequence[str], port: int) -> tuple[list[Target], bool]:
        found = await asyncio.gather(*(self._host_addresses(h) for h in hosts))
        targets: list[Target] = []
        temporary = False
        seen: set[str] = set()
        for host, (addresses, failed) in zip(hosts, found, strict=True):
            temporary = temporary or failed
            for address in addresses:
                if address not in seen and len(targets) < MAX_TARGETS:
                    seen.add(address)
                    targets.append(Target(host, address, port))
        return targets, temporary

    async def _host_addresses(self, host: str) -> tuple[list[str], bool]:
        addresses: list[str] = []
        failed = False
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self._resolver.resolve(dns.name.from_text(host), rdtype,
                                                      search=False)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except dns.exception.DNSException:
                failed = True
                continue
            addresses += [record.to_text() for record in answer]
        return addresses, failed
