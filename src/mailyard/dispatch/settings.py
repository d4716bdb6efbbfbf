"""Remote delivery's settings: one typed value built from plain tables.

``build_settings(delivery, queue)`` takes the ``[delivery]`` and ``[queue]``
tables as plain mappings (what ``tomllib`` gives) and checks every key it
knows; ``settings_from_config`` feeds it the loaded configuration, so a key
the configuration gains under the same name is picked up without changes
here. docs/design/remote.md lists every key with its default.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from mailyard.config import Config
from mailyard.dispatch.routes import RouteTable, SettingsError, parse_hostport, parse_routes

__all__ = [
    "DELIVERY_KEYS",
    "QUEUE_KEYS",
    "RemoteMode",
    "RemoteSettings",
    "Timeouts",
    "build_settings",
    "settings_from_config",
]

DNS_PORT: Final = 53


class RemoteMode(enum.Enum):
    HOLD = "hold"  # remote mail stays queued (the default)
    DELIVER = "deliver"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. RFC 5321 §4.5.3.2 gives the client's minimum per reply."""

    connect: float = 30.0
    command: float = 300.0  # greeting, EHLO, MAIL, RCPT, RSET, AUTH (§4.5.3.2.1-3: 5 min)
    data_init: float = 120.0  # the 354 to DATA (§4.5.3.2.4: 2 min)
    data_block: float = 180.0  # each write of content (§4.5.3.2.5: 3 min)
    data_end: float = 600.0  # the reply after the dot (§4.5.3.2.6: 10 min)
    tls_handshake: float = 60.0


@dataclass(frozen=True, slots=True)
class RemoteSettings:
    mode: RemoteMode = RemoteMode.HOLD
    concurrency: int = 20  # SMTP sessions at once (qmail's concurrencyremote)
    per_destination: int = 5  # sessions at once to one domain or route
    helo: str = ""  # our EHLO name; "" = the configured hostname
    smtp_port: int = 25  # where MX hosts listen (tests point it at a sink)
    resolver: tuple[tuple[str, int], ...] = ()  # nameservers; () = /etc/resolv.conf
    dns_timeout: float = 30.0
    timeouts: Timeouts = field(default_factory=Timeouts)
    routes: RouteTable = field(default_factory=RouteTable)
    chunking: bool = False  # BDAT (RFC 3030) instead of DATA where offered
    retry_skip: int = 20  # qmail's chanskip for the remote channel
    delay_warning: float = 0.0  # seconds; 0 = no delay warnings

    def helo_name(self, hostname: str) -> str:
        return self.helo or hostname


# Key -> (type, default) of what each table may hold for us.
DELIVERY_KEYS: Final[dict[str, object]] = {
    "remote": "hold",
    "remote_concurrency": 20,
    "per_destination": 5,
    "helo": "",
    "smtp_port": 25,
    "resolver": (),
    "dns_timeout": 30.0,
    "connect_timeout": 30.0,
    "command_timeout": 300.0,
    "data_timeout": 120.0,
    "data_block_timeout": 180.0,
    "data_end_timeout": 600.0,
    "chunking": False,
    "routes": None,
}
QUEUE_KEYS: Final[dict[str, object]] = {"retry_skip_remote": 20, "delay_warning": 0.0}


def _number(table: Mapping[str, object], key: str, where: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SettingsError(f"{where}.{key} must be a number")
    return float(value)


def _count(table: Mapping[str, object], key: str, where: str, default: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingsError(f"{where}.{key} must be a whole number of at least 1")
    return value


def _positive(table: Mapping[str, object], key: str, where: str, default: float) -> float:
    value = _number(table, key, where, default)
    if value <= 0:
        raise SettingsError(f"{where}.{key} must be greater than 0")
    return value


def _resolver(raw: object) -> tuple[tuple[str, int], ...]:
    if isinstance(raw, str) or not isinstance(raw, list | tuple):
        raise SettingsError('delivery.resolver must be a list of "address[:port]"')
    servers = []
    for item in raw:
        if not isinstance(item, str):
            raise SettingsError('delivery.resolver must be a list of "address[:port]"')
        host, port = parse_hostport(item, "delivery.resolver", DNS_PORT)
        servers.append((host.strip("[]"), port))
    return tuple(servers)


def _timeouts(delivery: Mapping[str, object]) -> Timeouts:
    where = "delivery"
    return Timeouts(
        connect=_positive(delivery, "connect_timeout", where, 30.0),
        command=_positive(delivery, "command_timeout", where, 300.0),
        data_init=_positive(delivery, "data_timeout", where, 120.0),
        data_block=_positive(delivery, "data_block_timeout", where, 180.0),
        data_end=_positive(delivery, "data_end_timeout", where, 600.0),
    )


def build_settings(
    delivery: Mapping[str, object], queue: Mapping[str, object] | None = None
) -> RemoteSettings:
    """Settings from the ``[delivery]`` and ``[queue]`` tables; SettingsError
    names the first bad key. Keys not listed in DELIVERY_KEYS/QUEUE_KEYS are
    refused (a typo must not keep a default)."""
    queue = queue or {}
    for table, known, name in ((delivery, DELIVERY_KEYS, "delivery"),
                               (queue, QUEUE_KEYS, "queue")):
        unknown = set(table) - set(known)
        if unknown:
            raise SettingsError(f"unknown key {name}.{sorted(unknown)[0]}")
    try:
        mode = RemoteMode(delivery.get("remote", "hold"))
    except ValueError:
        raise SettingsError('delivery.remote must be "hold" or "deliver"') from None
    helo = delivery.get("helo", "")
    if not isinstance(helo, str) or (helo and (not helo.isascii() or not helo.isprintable()
                                               or " " in helo)):
        raise SettingsError("delivery.helo must be a host name")
    chunking = delivery.get("chunking", False)
    if not isinstance(chunking, bool):
        raise SettingsError("delivery.chunking must be true or false")
    port = _count(delivery, "smtp_port", "delivery", 25)
    if port > 65535:
        raise SettingsError("delivery.smtp_port must be a port number")
    delay = _number(queue, "delay_warning", "queue", 0.0)
    if delay < 0:
        raise SettingsError("queue.delay_warning must not be negative (0 = off)")
    return RemoteSettings(
        mode=mode,
        concurrency=_count(delivery, "remote_concurrency", "delivery", 20),
        per_destination=_count(delivery, "per_destination", "delivery", 5),
        helo=helo,
        smtp_port=port,
        resolver=_resolver(delivery.get("resolver", ())),
        dns_timeout=_positive(delivery, "dns_timeout", "delivery", 30.0),
        timeouts=_timeouts(delivery),
        routes=parse_routes(delivery.get("routes")),
        chunking=chunking,
        retry_skip=_count(queue, "retry_skip_remote", "queue", 20),
        delay_warning=delay,
    )


def _known(section: object, keys: Mapping[str, object]) -> dict[str, object]:
    """The fields of a config section that are remote-delivery keys."""
    if not dataclasses.is_dataclass(section) or isinstance(section, type):
        return {}
    values = {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}
    return {k: (list(v) if isinstance(v, tuple) else v)
            for k, v in values.items() if k in keys}


def settings_from_config(config: Config) -> RemoteSettings:
    """The settings of a loaded configuration (what its sections hold of our keys)."""
    return build_settings(_known(config.delivery, DELIVERY_KEYS),
                          _known(config.queue, QUEUE_KEYS))
