"""Static routes and the smarthost (qmail's control/smtproutes).

A route sends a recipient domain's mail to a fixed host instead of its MX
hosts. Lookup follows qmail-remote: the domain itself (``example.com``),
then each parent written with a leading dot (``.example.com`` matches
``a.example.com``), then the empty domain, the default route (a smarthost).
A route whose host is empty means "use MX for this domain", the exception
to a default route (qmail's ``domain:`` line).

In the configuration (``[delivery.routes]``) a route is a string
``"host:port"`` (``"[192.0.2.1]:25"`` for an address, ``""`` for MX) or a
table with ``host``, ``port``, ``tls`` (``"opportunistic"``, ``"required"``,
``"implicit"``, ``"none"``), ``user``, ``password_file`` and ``ca_file``.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from mailyard.message.address import AddressError, canonical_domain

__all__ = [
    "SMTP_PORT",
    "Route",
    "RouteTable",
    "SettingsError",
    "TlsPolicy",
    "parse_hostport",
    "parse_route",
    "parse_routes",
]

SMTP_PORT: Final = 25
_ROUTE_KEYS: Final = frozenset({"host", "port", "tls", "user", "password_file", "ca_file"})
_MAX_PASSWORD: Final = 4096


class SettingsError(ValueError):
    """A remote-delivery setting is invalid; the message names it."""


class TlsPolicy(enum.Enum):
    NONE = "none"  # never STARTTLS (a host known to break it)
    OPPORTUNISTIC = "opportunistic"  # STARTTLS when offered, certificate not checked
    REQUIRED = "required"  # STARTTLS or no delivery; certificate and name verified
    IMPLICIT = "implicit"  # TLS from the first byte (port 465, RFC 8314), verified


@dataclass(frozen=True, slots=True)
class Route:
    host: str  # name or address literal; "" = MX lookup of the recipient domain
    port: int = SMTP_PORT
    tls: TlsPolicy = TlsPolicy.OPPORTUNISTIC
    username: str = ""  # AUTH (RFC 4954) when not empty
    password: str = field(default="", repr=False)
    ca_file: str = ""  # CA bundle for verified TLS; "" = the system's

    @property
    def uses_mx(self) -> bool:
        return not self.host

    @property
    def key(self) -> str:
        """The destination this route names, for concurrency and logs."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class RouteTable:
    routes: Mapping[str, Route] = field(default_factory=dict)  # lower-case domain -> route

    def lookup(self, domain: str) -> Route | None:
        """The route for ``domain`` (qmail-remote's order, see the module doc)."""
        if not self.routes:
            return None
        name = domain.lower().rstrip(".")
        candidates = [name]
        rest = name
        while "." in rest:
            rest = rest.split(".", 1)[1]
            candidates.append("." + rest)
        candidates.append("")
        for candidate in candidates:
            route = self.routes.get(candidate)
            if route is not None:
                return route
        return None


def _check_host(host: str, where: str) -> str:
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.ip_address(host[1:-1].removeprefix("IPv6:"))
        except ValueError as exc:
            raise SettingsError(f"{where}: bad address literal {host!r}") from exc
        return host
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        return canonical_domain(host)
    except AddressError as exc:
        raise SettingsError(f"{where}: bad host name {host!r}: {exc}") from exc


def parse_hostport(text: str, where: str, default_port: int = SMTP_PORT) -> tuple[str, int]:
    """``host``, ``host:port``, ``[addr]:port`` or ``""`` (no host)."""
    text = text.strip()
    if not text:
        return "", default_port
    host, port = text, default_port
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise SettingsError(f"{where}: unclosed [ in {text!r}")
        host, rest = text[: close + 1], text[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise SettingsError(f"{where}: expected :port after {host!r}")
            port = _port(rest[1:], where)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text, where)
    return _check_host(host, where), port


def _port(text: str, where: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 65536:
        raise SettingsError(f"{where}: bad port {text!r}")
    return int(text)


def _read_password(path: str, where: str) -> str:
    # The path comes from the operator's configuration, never from a client.
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(_MAX_PASSWORD + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{where}.password_file: cannot read {path!r}: {exc}") from exc
    password = text.rstrip("\r\n")
    if not password or len(password) > _MAX_PASSWORD or "\n" in password:
        raise SettingsError(f"{where}.password_file: one line with the password expected")
    return password


def _string(table: Mapping[str, object], key: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise SettingsError(f"{where}.{key} must be a string")
    return value


def parse_route(value: object, where: str) -> Route:
    """One route from its configuration value (string or table)."""
    if isinstance(value, str):
        host, port = parse_hostport(value, where)
        return Route(host, port)
    if not isinstance(value, Mapping):
        raise SettingsError(f"{where} must be \"host:port\" or a table")
    unknown = set(value) - _ROUTE_KEYS
    if unknown:
        raise SettingsError(f"{where}: unknown key {sorted(unknown)[0]}")
    host, port = parse_hostport(_string(value, "host", where), where)
    if "port" in value:
        raw = value["port"]
        if not isinstance(raw, int) or isinstance(raw, bool) or not 0 < raw < 65536:
            raise SettingsError(f"{where}.port must be a port number")
        port = raw
    username = _string(value, "user", where)
    password_file = _string(value, "password_file", where)
    if bool(username) != bool(password_file):
        raise SettingsError(f"{where}: user and password_file go together")
    password = _read_password(password_file, where) if password_file else ""
    # A route that logs in is TLS-required unless it says otherwise.
    default_tls = TlsPolicy.REQUIRED if username else TlsPolicy.OPPORTUNISTIC
    tls_text = _string(value, "tls", where) or default_tls.value
    try:
        tls = TlsPolicy(tls_text)
    except ValueError:
        raise SettingsError(
            f"{where}.tls must be none, opportunistic, required or implicit"
        ) from None
    if username and not host:
        raise SettingsError(f"{where}: AUTH needs a fixed host, not MX")
    return Route(host, port, tls, username, password, _string(value, "ca_file", where))


def parse_routes(raw: object) -> RouteTable:
    """``[delivery.routes]``: domain (or "" for the default) -> route."""
    if raw is None:
        return RouteTable()
    if not isinstance(raw, Mapping):
        raise SettingsError("delivery.routes must be a table")
    routes: dict[str, Route] = {}
    for domain, value in raw.items():
        if not isinstance(domain, str):
            raise SettingsError("delivery.routes keys must be domains")
        key = domain.strip().lower()
        where = f"delivery.routes.{key or '(default)'}"
        if key:
            dot = "." if key.startswith(".") else ""
            try:
                key = dot + canonical_domain(key.removeprefix("."))
            except AddressError as exc:
                raise SettingsError(f"{where}: {exc}") from exc
        routes[key] = parse_route(value, where)
    return RouteTable(routes)
