"""MX lookups against a DNS server on 127.0.0.1, and the connection backoff."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from mailyard.dispatch.backoff import BACKOFF_MAX, BACKOFF_MIN, HostBackoff
from mailyard.dispatch.mx import LookupFailed, MailDns, Target, literal_address
from tests.dispatch.dnsserver import DnsServer

ZONE = {
    "remote.test.": {"MX": ["20 mx3.remote.test.", "10 mx1.remote.test.",
                            "10 mx2.remote.test."]},
    "mx1.remote.test.": {"A": ["127.0.0.11"]},
    "mx2.remote.test.": {"A": ["127.0.0.12"], "AAAA": ["::1"]},
    "mx3.remote.test.": {"A": ["127.0.0.13"]},
    "bare.test.": {"A": ["127.0.0.20"]},
    "nomail.test.": {"MX": ["0 ."]},
    "mixed.test.": {"MX": ["0 .", "10 mx1.remote.test."]},
    "dangling.test.": {"MX": ["10 gone.test."]},
    "empty.test.": {"TXT": ["\"nothing here\""]},
}


def lookup(domain: str, *, seed: int = 0) -> list[Target]:
    async def scenario() -> list[Target]:
        server = await DnsServer(ZONE).start()
        try:
            dns = MailDns([("127.0.0.1", server.port)], timeout=2.0, rng=random.Random(seed))
            return await dns.mx_targets(domain, 25)
        finally:
            server.stop()

    return asyncio.run(scenario())


def failure(domain: str) -> LookupFailed:
    with pytest.raises(LookupFailed) as info:
        lookup(domain)
    return info.value


def test_preference_order_ipv4_before_ipv6_random_among_equals() -> None:
    orders = set()
    for seed in range(12):
        targets = lookup("remote.test", seed=seed)
        hosts = [t.host for t in targets]
        assert hosts[-1] == "mx3.remote.test"  # preference 20 last
        orders.add(tuple(dict.fromkeys(hosts[:-1])))
        mx2 = [t.address for t in targets if t.host == "mx2.remote.test"]
        assert mx2 == ["127.0.0.12", "::1"]
    # RFC 5321 §5.1: equal preferences in random order.
    assert orders == {("mx1.remote.test", "mx2.remote.test"),
                      ("mx2.remote.test", "mx1.remote.test")}


def test_no_mx_means_the_domain_itself() -> None:
    assert lookup("bare.test") == [Target("bare.test", "127.0.0.20", 25)]


def test_null_mx_and_other_failures() -> None:
    null = failure("nomail.test")
    assert null.status == "5.1.10" and null.permanent  # RFC 7505 §3
    assert failure("nowhere.test").status == "5.1.2"  # NXDOMAIN
    assert failure("empty.test").status == "5.1.2"  # no MX, no address
    assert failure("dangling.test").status == "4.4.4"  # MX host without address
    # A null MX among real ones is ignored.
    assert [t.host for t in lookup("mixed.test")] == ["mx1.remote.test"]


def test_address_literals_need_no_dns() -> None:
    assert lookup("[127.0.0.9]") == [Target("[127.0.0.9]", "127.0.0.9", 25)]
    assert literal_address("[IPv6:::1]") == "::1"
    assert literal_address("mx.test") is None


def test_a_silent_name_server_is_a_temporary_failure() -> None:
    async def scenario() -> LookupFailed:
        # A UDP socket that never answers: the lookup times out.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            dns = MailDns([("127.0.0.1", silent.getsockname()[1])], timeout=0.3)
            with pytest.raises(LookupFailed) as info:
                await dns.mx_targets("remote.test", 25)
            return info.value

    result = asyncio.run(scenario())
    assert result.status == "4.4.3" and not result.permanent


def test_route_hosts_are_resolved_without_mx() -> None:
    async def scenario() -> list[Target]:
        server = await DnsServer(ZONE).start()
        try:
            dns = MailDns([("127.0.0.1", server.port)], timeout=2.0)
            with pytest.raises(LookupFailed):
                await dns.host_targets("remote.test", 587)  # has MX, no A
            return await dns.host_targets("mx1.remote.test", 587)
        finally:
            server.stop()

    assert asyncio.run(scenario()) == [Target("mx1.remote.test", "127.0.0.11", 587)]


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_caps_and_resets() -> None:
    clock = Clock()
    backoff = HostBackoff(clock)
    assert backoff.down_until("127.0.0.1", 25) is None
    assert backoff.failed("127.0.0.1", 25) == 1000.0 + BACKOFF_MIN
    assert backoff.down_until("127.0.0.1", 25) == 1000.0 + BACKOFF_MIN
    assert backoff.down_until("127.0.0.1", 26) is None  # per address and port
    clock.now += BACKOFF_MIN
    assert backoff.down_until("127.0.0.1", 25) is None  # the wait is over
    assert backoff.failed("127.0.0.1", 25) == clock.now + 2 * BACKOFF_MIN
    for _ in range(20):
        until = backoff.failed("127.0.0.1", 25)
    assert until == clock.now + BACKOFF_MAX
    backoff.succeeded("127.0.0.1", 25)
    assert backoff.down_until("127.0.0.1", 25) is None
    backoff.failed("127.0.0.2", 25)
    backoff.clear()
    assert backoff.down_until("127.0.0.2", 25) is None
    with pytest.raises(ValueError):
        HostBackoff(clock, minimum=0)
