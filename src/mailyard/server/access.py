"""Access rules per listener: tcprules' job, from ``[[access]]`` in mailyard.toml.

A rule names networks (IPv4 and IPv6 CIDRs), the listeners it applies to,
and an action. For each new connection the rules are tried in the order
written and the first that holds the client's address and names the
listener decides, as in tcprules' cdb (the most specific entry there,
the first one here: put narrow networks first). No matching rule means
allow, with the listener's own limits.

An allowing rule can carry settings: ``relay`` (qmail's RELAYCLIENT:
relaying without AUTH), ``max_connections`` (at once from the rule's
networks, on top of the listener's own limits) and ``greeting_delay``.
A denying rule gets the protocol's refusal and the connection is closed
(``listener.py`` applies the decision; this module is pure).

A client that reaches a dual-stack socket as an IPv4-mapped IPv6 address
(``::ffff:192.0.2.1``, RFC 4291 §2.5.5.2) is matched as the IPv4 address,
and rule networks written in mapped form are turned into IPv4 networks,
so one rule covers both spellings.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

from mailyard.config import AccessConfig, Config

__all__ = [
    "ANY_SERVICE",
    "AccessAction",
    "AccessPolicy",
    "AccessRule",
    "IPAddress",
    "IPNetwork",
    "Protocol",
    "check_access",
    "compile_policy",
    "compile_rules",
    "normalize_network",
    "parse_client_ip",
    "protocol_of",
    "rule_from_config",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

ANY_SERVICE: Final = "*"
_EVERYWHERE: Final[tuple[IPNetwork, ...]] = (
    ipaddress.IPv4Network("0.0.0.0/0"),
    ipaddress.IPv6Network("::/0"),
)
# RFC 4291 §2.5.5.2: ::ffff:0:0/96 carries IPv4 addresses in IPv6 form.
_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")


class AccessAction(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"


class Protocol(enum.Enum):
    """What a listener speaks, which decides the words of a refusal."""

    SMTP = "smtp"
    POP3 = "pop3"
    IMAP = "imap"
    QMTP = "qmtp"  # QMTP and QMQP: nothing is said at connect, a refusal is a close


_PROTOCOLS: Final = {
    "smtp": Protocol.SMTP,
    "submission": Protocol.SMTP,
    "smtps": Protocol.SMTP,
    "pop3": Protocol.POP3,
    "pop3s": Protocol.POP3,
    "imap": Protocol.IMAP,
    "imaps": Protocol.IMAP,
    "qmtp": Protocol.QMTP,
    "qmqp": Protocol.QMTP,
}


def protocol_of(service: str) -> Protocol | None:
    """The protocol of a listener by its name (``smtps`` → SMTP); None if unknown."""
    return _PROTOCOLS.get(service.lower())


@dataclass(frozen=True, slots=True)
class AccessRule:
    """One compiled rule; ``number`` is its position in the file, from 1."""

    number: int
    networks: tuple[IPNetwork, ...]
    services: frozenset[str]  # lower-case listener names; {"*"} = every listener
    action: AccessAction = AccessAction.ALLOW
    relay: bool = False
    max_connections: int = 0  # 0: no limit of the rule's own
    greeting_delay: float = 0.0  # seconds

    @property
    def label(self) -> str:
        """How logs name the rule: its position and its networks."""
        return f"{self.number}:" + ",".join(str(net) for net in self.networks)

    def applies_to(self, service: str) -> bool:
        return ANY_SERVICE in self.services or service.lower() in self.services

    def holds(self, ip: IPAddress) -> bool:
        """True when ``ip`` (already through parse_client_ip) is in one of the networks."""
        return any(ip.version == net.version and ip in net for net in self.networks)


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """The rules of one server, and the host name its refusals carry."""

    rules: tuple[AccessRule, ...] = ()
    hostname: str = "localhost"

    def lookup(self, client_ip: str, service: str) -> AccessRule | None:
        """The first rule for ``service`` that holds ``client_ip``; None: no rule (allow).

        An address that does not parse (a Unix socket peer, say) matches no
        rule.
        """
        ip = parse_client_ip(client_ip)
        if ip is None:
            return None
        for rule in self.rules:
            if rule.applies_to(service) and rule.holds(ip):
                return rule
        return None

    def denies(self, client_ip: str, service: str) -> bool:
        rule = self.lookup(client_ip, service)
        return rule is not None and rule.action is AccessAction.DENY

    def relay(self, client_ip: str, service: str = "smtp") -> bool:
        """qmail's RELAYCLIENT: the rule that decides this client says ``relay = true``."""
        rule = self.lookup(client_ip, service)
        return rule is not None and rule.action is AccessAction.ALLOW and rule.relay

    def refusal(self, service: str) -> bytes:
        """What a denied client is told before the close (b"": nothing to say)."""
        protocol = protocol_of(service)
        if protocol is Protocol.SMTP:
            # RFC 5321 §3.1: 554 in place of the 220 greeting says "no service here".
            return f"554 5.7.1 {self.hostname} access denied\r\n".encode()
        if protocol is Protocol.POP3:
            return b"-ERR access denied\r\n"
        if protocol is Protocol.IMAP:
            # RFC 9051 §7.1.5: BYE as the greeting refuses the connection.
            return b"* BYE access denied\r\n"
        return b""

    def pregreet_refusal(self) -> bytes:
        """SMTP: a client sent before the greeting (Postfix postscreen's pregreet test)."""
        # RFC 5321 §3.1 / §4.3.1: the client must wait for the greeting.
        return f"554 5.5.1 {self.hostname} protocol error: talked before the greeting\r\n".encode()


def parse_client_ip(text: str) -> IPAddress | None:
    """A peer address as the rules see it: IPv4-mapped IPv6 as IPv4, no zone."""
    try:
        ip = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def normalize_network(net: IPNetwork) -> IPNetwork:
    """A network inside ::ffff:0:0/96 becomes the IPv4 network it spells."""
    if isinstance(net, ipaddress.IPv6Network) and net.subnet_of(_MAPPED):
        mapped = net.network_address.ipv4_mapped
        assert mapped is not None  # every address of _MAPPED has one
        return ipaddress.IPv4Network(f"{mapped}/{net.prefixlen - 96}")
    return net


def _networks(texts: Iterable[str]) -> tuple[IPNetwork, ...]:
    found: list[IPNetwork] = []
    for text in texts:
        new = _EVERYWHERE if text == "*" else (
            normalize_network(ipaddress.ip_network(text, strict=False)),)
        found.extend(net for net in new if net not in found)
    return tuple(found)


def rule_from_config(number: int, rule: AccessConfig) -> AccessRule:
    """Compile one checked ``[[access]]`` table (config.py checked its values)."""
    return AccessRule(
        number=number,
        networks=_networks(rule.network),
        services=frozenset(s.lower() for s in rule.services),
        action=AccessAction(rule.action),
        relay=rule.relay,
        max_connections=rule.max_connections,
        greeting_delay=rule.greeting_delay,
    )


def compile_rules(rules: Sequence[AccessConfig]) -> tuple[AccessRule, ...]:
    """Every rule, numbered from 1 in the order written."""
    return tuple(rule_from_config(n, rule) for n, rule in enumerate(rules, 1))


def compile_policy(config: Config) -> AccessPolicy:
    """The server's access policy from its configuration."""
    return AccessPolicy(compile_rules(config.access), config.hostname)


_SECTIONS: Final = {
    "smtp": ("smtp", "listen"),
    "submission": ("submission", "listen"),
    "smtps": ("submission", "listen_tls"),
    "pop3": ("pop3", "listen"),
    "pop3s": ("pop3", "listen_tls"),
    "imap": ("imap", "listen"),
    "imaps": ("imap", "listen_tls"),
    "qmtp": ("qmtp", "listen"),
    "qmqp": ("qmqp", "listen"),
}


def _listening(config: Config) -> set[str]:
    return {name for name, (section, key) in _SECTIONS.items()
            if getattr(getattr(config, section), key)}


def _covers(earlier: AccessRule, rule: AccessRule) -> bool:
    """True when ``earlier`` matches first for every service and address of ``rule``."""
    services = ANY_SERVICE in earlier.services or (
        ANY_SERVICE not in rule.services and rule.services <= earlier.services)
    return services and all(
        any(net.version == wide.version and net.subnet_of(wide)  # type: ignore[arg-type]
            for wide in earlier.networks)
        for net in rule.networks)


def check_access(config: Config) -> list[str]:
    """``serve --check``: a summary line, then a warning per suspicious rule.

    The values were checked when the file was read; what remains are rules
    that can never decide anything: shadowed by an earlier rule, or naming
    only listeners that are not configured.
    """
    rules = compile_rules(config.access)
    if not rules:
        return ["access: no rules (every client allowed)"]
    lines = [f"access: {len(rules)} rule(s)"]
    listening = _listening(config)
    for rule in rules:
        shadow = next((e for e in rules[: rule.number - 1] if _covers(e, rule)), None)
        if shadow is not None:
            lines.append(f"access: warning: rule {rule.number} is never used: "
                         f"rule {shadow.number} matches first")
        elif ANY_SERVICE not in rule.services and not rule.services & listening:
            names = ", ".join(sorted(rule.services))
            lines.append(f"access: warning: rule {rule.number} names no configured "
                         f"listener ({names})")
    return lines
