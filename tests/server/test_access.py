"""server.access: [[access]] rules read from mailyard.toml, compiled, and matched."""

from __future__ import annotations

import ipaddress
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailyard.config import AccessConfig, Config, ConfigError, load_config
from mailyard.directory.store import Directory
from mailyard.queue.store import Queue
from mailyard.server.access import (
    AccessAction,
    AccessPolicy,
    AccessRule,
    Protocol,
    check_access,
    compile_policy,
    compile_rules,
    normalize_network,
    parse_client_ip,
    protocol_of,
)
from mailyard.server.context import ServerContext
from mailyard.server.limits import ConnectionLimiter
from mailyard.server.throttle import LoginThrottle

HOST = "mx.example.test"


def load(text: str, state: Path | None = None) -> Config:
    if state is None:
        with tempfile.TemporaryDirectory() as tmp:
            return load(text, Path(tmp))
    (state / "mailyard.toml").write_text(f'hostname = "{HOST}"\n' + text)
    return load_config(str(state))


def policy(text: str) -> AccessPolicy:
    return compile_policy(load(text))


# -- reading the rules ----------------------------------------------------------------


def test_rules_are_read_in_order_with_defaults() -> None:
    config = load(
        '[[access]]\nnetwork = "10.0.0.0/8"\naction = "deny"\n'
        '[[access]]\nnetwork = ["127.0.0.0/8", "::1"]\nservices = "smtp"\nrelay = true\n'
        'max_connections = 3\ngreeting_delay = 0.5\n'
    )
    assert config.access == (
        AccessConfig(network=("10.0.0.0/8",), action="deny"),
        AccessConfig(network=("127.0.0.0/8", "::1"), services=("smtp",), relay=True,
                     max_connections=3, greeting_delay=0.5),
    )
    rules = compile_rules(config.access)
    assert [r.number for r in rules] == [1, 2]
    assert rules[0].services == frozenset({"*"}) and rules[0].action is AccessAction.DENY
    assert rules[1].networks == (ipaddress.ip_network("127.0.0.0/8"),
                                 ipaddress.ip_network("::1/128"))
    assert rules[1].label == "2:127.0.0.0/8,::1/128"


def test_no_rules_by_default() -> None:
    assert load("").access == ()
    assert policy("").lookup("192.0.2.1", "smtp") is None


@pytest.mark.parametrize(("written", "seconds"), [
    ("2", 2.0), ("1.5", 1.5), ('"2s"', 2.0), ('"0.25s"', 0.25), ('"1m"', 60.0),
    ('" 3s "', 3.0), ('"4"', 4.0), ("0", 0.0), ('"0s"', 0.0),
])
def test_greeting_delay_forms(written: str, seconds: float) -> None:
    config = load(f'[[access]]\nnetwork = "*"\ngreeting_delay = {written}\n')
    assert config.access[0].greeting_delay == pytest.approx(seconds)


@pytest.mark.parametrize("text", [
    "access = 3",
    '[access]\nnetwork = "*"',  # a table, not a list of tables
    "[[access]]\naction = \"deny\"",  # no network
    '[[access]]\nnetwork = "10.0.0.0/33"',
    '[[access]]\nnetwork = "nonsense"',
    "[[access]]\nnetwork = []",
    "[[access]]\nnetwork = [1]",
    '[[access]]\nnetwork = "*"\nservices = ["smtp", "gopher"]',
    '[[access]]\nnetwork = "*"\nservices = []',
    '[[access]]\nnetwork = "*"\naction = "maybe"',
    '[[access]]\nnetwork = "*"\nrelay = "yes"',
    '[[access]]\nnetwork = "*"\nmax_connections = -1',
    '[[access]]\nnetwork = "*"\nmax_connections = true',
    '[[access]]\nnetwork = "*"\nmax_connections = 1.5',
    '[[access]]\nnetwork = "*"\ngreeting_delay = "2h"',
    '[[access]]\nnetwork = "*"\ngreeting_delay = "soon"',
    '[[access]]\nnetwork = "*"\ngreeting_delay = "500ms"',
    '[[access]]\nnetwork = "*"\ngreeting_delay = "5m"',
    '[[access]]\nnetwork = "*"\ngreeting_delay = [1]',
    '[[access]]\nnetwork = "*"\ngreeting_delay = -1',
    '[[access]]\nnetwork = "*"\ngreeting_delay = 300',
    '[[access]]\nnetwork = "*"\ngreeting_delay = nan',
    '[[access]]\nnetwork = "*"\ngreeting_delay = inf',
    '[[access]]\nnetwork = "*"\ngreeting_delay = true',
    '[[access]]\nnetwork = "*"\nbogus = 1',
    '[[access]]\nnetwork = "*"\naction = "deny"\nrelay = true',
    '[[access]]\nnetwork = "*"\naction = "deny"\ngreeting_delay = 1',
    '[[access]]\nnetwork = "*"\naction = "deny"\nmax_connections = 2',
])
def test_bad_rules_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        load(text)


@settings(max_examples=60)
@given(st.integers(0, 299_999), st.sampled_from(["s", "m", ""]))
def test_delay_round_trip(amount: int, unit: str) -> None:
    seconds = amount / 1000 if unit != "m" else 60.0 * (amount % 5)
    written = {"s": f'"{seconds}s"', "m": f'"{amount % 5}m"', "": repr(seconds)}[unit]
    config = load(f'[[access]]\nnetwork = "*"\ngreeting_delay = {written}\n')
    assert config.access[0].greeting_delay == pytest.approx(seconds)


@settings(max_examples=80)
@given(st.text(max_size=12))
def test_delay_text_never_crashes(text: str) -> None:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped)
    try:
        config = load(f'[[access]]\nnetwork = "*"\ngreeting_delay = "{escaped}"\n')
    except ConfigError:
        return
    assert 0 <= config.access[0].greeting_delay < 300


# -- matching -------------------------------------------------------------------------


RULES = (
    '[[access]]\nnetwork = "127.0.0.2"\nservices = ["smtp"]\naction = "deny"\n'
    '[[access]]\nnetwork = "127.0.0.0/8"\nservices = ["smtp", "submission"]\nrelay = true\n'
    '[[access]]\nnetwork = "2001:db8::/32"\naction = "deny"\n'
    '[[access]]\nnetwork = "::ffff:192.0.2.0/120"\nmax_connections = 2\n'
)


def test_first_match_per_service() -> None:
    p = policy(RULES)
    assert p.denies("127.0.0.2", "smtp")
    assert not p.denies("127.0.0.2", "pop3")  # rule 1 is for smtp only; rule 2 neither
    assert p.lookup("127.0.0.2", "pop3") is None
    rule = p.lookup("127.0.0.2", "submission")
    assert rule is not None and rule.number == 2 and p.relay("127.0.0.2", "submission")
    assert not p.relay("127.0.0.2")  # smtp: rule 1 decides, and it denies
    assert p.relay("127.0.0.1")
    assert p.denies("2001:db8::25", "imaps") and not p.denies("2001:db9::1", "imaps")
    assert p.lookup("10.1.1.1", "smtp") is None


def test_ipv4_mapped_addresses_and_networks() -> None:
    p = policy(RULES)
    assert p.relay("::ffff:127.0.0.1")  # a dual-stack socket's view of 127.0.0.1
    assert p.denies("::ffff:127.0.0.2", "smtp")
    rule = p.lookup("192.0.2.7", "pop3")  # the rule was written in mapped form
    assert rule is not None and rule.networks == (ipaddress.ip_network("192.0.2.0/24"),)
    assert p.lookup("::ffff:192.0.2.7", "pop3") == rule


def test_zones_and_unparsable_peers() -> None:
    p = policy('[[access]]\nnetwork = "fe80::/10"\naction = "deny"\n')
    assert p.denies("fe80::1%eth0", "imap")
    assert p.lookup("", "imap") is None and p.lookup("/run/sock", "imap") is None


def test_star_is_both_families_and_service_names_ignore_case() -> None:
    p = policy('[[access]]\nnetwork = "*"\nservices = "qmtp"\naction = "deny"\n')
    assert p.denies("192.0.2.1", "QMTP") and p.denies("2001:db8::1", "qmtp")
    assert not p.denies("192.0.2.1", "qmqp")


def test_refusals_per_protocol() -> None:
    p = AccessPolicy((), HOST)
    assert p.refusal("smtp") == p.refusal("smtps") == b"554 5.7.1 mx.example.test access denied\r\n"
    assert p.refusal("pop3s") == b"-ERR access denied\r\n"
    assert p.refusal("imap") == b"* BYE access denied\r\n"
    assert p.refusal("qmqp") == b""
    assert p.pregreet_refusal().startswith(b"554 5.5.1 mx.example.test ")
    assert protocol_of("submission") is Protocol.SMTP and protocol_of("gopher") is None


def test_normalize_network() -> None:
    assert normalize_network(ipaddress.ip_network("::ffff:10.0.0.0/104")) == \
        ipaddress.ip_network("10.0.0.0/8")
    assert normalize_network(ipaddress.ip_network("::/0")) == ipaddress.ip_network("::/0")
    assert normalize_network(ipaddress.ip_network("::fffe:0:0/95")) == \
        ipaddress.ip_network("::fffe:0:0/95")


addresses_v4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
addresses_v6 = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)
addresses = st.one_of(addresses_v4, addresses_v6)


@st.composite
def networks(draw: st.DrawFn) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    ip = draw(addresses)
    # Short prefixes often, so that random addresses land inside.
    prefix = draw(st.integers(0, 8) | st.integers(0, ip.max_prefixlen))
    return ipaddress.ip_network(f"{ip}/{prefix}", strict=False)


services = st.sampled_from(["smtp", "submission", "pop3", "imaps", "qmtp"])


@st.composite
def rules(draw: st.DrawFn) -> tuple[AccessRule, ...]:
    found = []
    for number in range(1, draw(st.integers(0, 6)) + 1):
        nets = tuple(normalize_network(n) for n in draw(st.lists(networks(), min_size=1,
                                                                   max_size=3)))
        names = draw(st.sets(services, max_size=2)) or {"*"}
        found.append(AccessRule(number, nets, frozenset(names),
                                draw(st.sampled_from(AccessAction)), draw(st.booleans())))
    return tuple(found)


def _reference(table: tuple[AccessRule, ...], ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
               service: str) -> AccessRule | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for rule in table:
        if "*" in rule.services or service in rule.services:
            for net in rule.networks:
                if ip.version == net.version and ip in net:
                    return rule
    return None


@given(rules(), addresses, services)
def test_lookup_is_the_first_match(table: tuple[AccessRule, ...],
                                   ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
                                   service: str) -> None:
    p = AccessPolicy(table, HOST)
    assert p.lookup(str(ip), service) == _reference(table, ip, service)
    mapped = ipaddress.IPv6Address(f"::ffff:{ip}") if ip.version == 4 else ip
    assert p.lookup(str(mapped), service) == p.lookup(str(ip), service)


@given(st.text(max_size=50))
def test_lookup_never_crashes(text: str) -> None:
    p = AccessPolicy((AccessRule(1, (ipaddress.ip_network("0.0.0.0/0"),),
                                 frozenset({"*"}), AccessAction.DENY),), HOST)
    assert p.lookup(text, "smtp") in (None, p.rules[0])
    ip = parse_client_ip(text)
    assert ip is None or ip.version in (4, 6)


@settings(max_examples=40)
@given(st.lists(networks(), min_size=1, max_size=3))
def test_written_networks_round_trip(nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
                                     ) -> None:
    written = ", ".join(f'"{n}"' for n in nets)
    rule = compile_rules(load(f"[[access]]\nnetwork = [{written}]\n").access)[0]
    assert set(rule.networks) == {normalize_network(n) for n in nets}


# -- serve --check --------------------------------------------------------------------


def test_check_access_reports_unreachable_rules() -> None:
    config = load(
        '[pop3]\nlisten = []\n'
        '[[access]]\nnetwork = "10.0.0.0/8"\naction = "deny"\n'
        '[[access]]\nnetwork = ["10.1.0.0/16"]\nservices = ["smtp"]\nrelay = true\n'
        '[[access]]\nnetwork = "192.0.2.0/24"\nservices = "pop3"\n'
        '[[access]]\nnetwork = "2001:db8::/32"\nservices = "imap"\n'
    )
    lines = check_access(config)
    assert lines[0] == "access: 4 rule(s)"
    assert "access: warning: rule 2 is never used: rule 1 matches first" in lines
    assert "access: warning: rule 3 names no configured listener (pop3)" in lines
    assert not any("rule 4" in line for line in lines)
    assert check_access(load("")) == ["access: no rules (every client allowed)"]


# -- relay through ServerContext, and the rule counts ---------------------------------


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ServerContext]:
    config = load(
        '[smtp]\nrelay_networks = ["192.0.2.0/24"]\n'
        '[[access]]\nnetwork = "127.0.0.2"\nrelay = false\n'
        '[[access]]\nnetwork = ["127.0.0.0/8", "::1"]\nservices = "smtp"\nrelay = true\n',
        tmp_path,
    )
    directory = Directory.open(config.path("directory.sqlite"))
    pool = ThreadPoolExecutor(1)
    try:
        yield ServerContext(
            config=config, directory=directory, queue=Queue(config.path("queue")),
            io_pool=pool, auth_pool=pool, throttle=LoginThrottle(2, 600.0, 0.0),
            account_throttle=LoginThrottle(3, 600.0, 0.0), notify_queue=lambda qid: None,
            relay_networks=(ipaddress.ip_network("192.0.2.0/24"),),
        )
    finally:
        pool.shutdown()
        directory.close()


def test_relay_allowed_by_rule_or_relay_networks(ctx: ServerContext) -> None:
    assert ctx.relay_allowed("127.0.0.1") and ctx.relay_allowed("::1")
    assert ctx.relay_allowed("::ffff:127.0.0.9")
    assert not ctx.relay_allowed("127.0.0.2")  # its first match has no relay
    assert ctx.relay_allowed("192.0.2.5") and ctx.relay_allowed("::ffff:192.0.2.5")
    assert not ctx.relay_allowed("198.51.100.1") and not ctx.relay_allowed("junk")
    assert not ctx.relay_allowed("127.0.0.1", service="pop3")  # rule 2 is for smtp


def test_rule_slots_are_counted_per_rule() -> None:
    limiter = ConnectionLimiter(10, 10)
    assert limiter.acquire_rule(1, 2) and limiter.acquire_rule(1, 2)
    assert not limiter.acquire_rule(1, 2)
    assert limiter.acquire_rule(2, 0) and limiter.acquire_rule(2, 0)  # 0: no limit
    assert limiter.rule_active(1) == 2
    limiter.release_rule(1)
    assert limiter.acquire_rule(1, 2)
    for _ in range(2):
        limiter.release_rule(1)
        limiter.release_rule(2)
    assert limiter.rule_active(1) == limiter.rule_active(2) == 0


def test_rule_slots_are_shared_between_workers() -> None:
    limiter = ConnectionLimiter(10, 10, workers=4)
    assert limiter.acquire_rule(1, 6) and limiter.acquire_rule(1, 6)  # ceil(6 / 4) = 2
    assert not limiter.acquire_rule(1, 6)
    assert limiter.acquire_rule(2, 1) and not limiter.acquire_rule(2, 1)  # at least one
