"""Typed configuration with explicit defaults, read from ``mailyard.toml``.

Every key has a default here; the file written by ``mailyard init`` only
states what differs or what a user is likely to change. Unknown keys are an
error (a typo must not silently keep a default). docs/configuration.md lists
every key; keep the two in step.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
import tomllib
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "CONFIG_NAME",
    "AccessConfig",
    "Config",
    "ConfigError",
    "DeliveryConfig",
    "ForwardingConfig",
    "ImapConfig",
    "ListenAddress",
    "LogConfig",
    "LoginConfig",
    "MetricsConfig",
    "Pop3Config",
    "QueueConfig",
    "QuotaConfig",
    "ServerConfig",
    "SmtpConfig",
    "SubmissionConfig",
    "TlsConfig",
    "load_config",
    "parse_listen",
    "parse_period",
]

CONFIG_NAME: Final = "mailyard.toml"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(text: str) -> ListenAddress:
    """``"127.0.0.1:2525"``, ``"[::1]:2525"`` or ``":25"`` (all addresses)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"listen address {text!r} must be host:port")
    host = host.strip("[]") or "0.0.0.0"
    return ListenAddress(host, int(port))


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    listen: tuple[str, ...] = ("127.0.0.1:2525",)
    max_message_size: int = 50 * 1024 * 1024
    max_recipients: int = 1000
    max_line_length: int = 1000  # octets including CRLF, RFC 5321 §4.5.3.1.6
    max_command_line: int = 1000  # octets including CRLF (512 + room for extensions)
    max_commands: int = 10000  # per connection
    max_bad_commands: int = 20  # per connection, then 421 and close
    max_connections: int = 200
    max_connections_per_ip: int = 20
    # RFC 5321 §4.5.3.2 timeouts, seconds.
    timeout_command: float = 300.0
    timeout_data_block: float = 180.0
    relay_networks: tuple[str, ...] = ()
    # RFC 4954 on the MX port: off, so port 25 stays what it was; when on,
    # AUTH is offered under TLS and authenticated clients may relay.
    auth: bool = False


@dataclass(frozen=True, slots=True)
class SubmissionConfig:
    """RFC 6409 message submission; message limits and timeouts are [smtp]'s."""

    listen: tuple[str, ...] = ()  # STARTTLS (RFC 6409: 587); init writes 127.0.0.1:2587
    listen_tls: tuple[str, ...] = ()  # implicit TLS (RFC 8314 §3.3: 465); init: 2465
    # "strict": envelope sender and From:/Sender: must be the user's own address.
    sender_check: str = "strict"
    max_header_size: int = 256 * 1024  # octets of header section buffered for the checks
    max_connections: int = 200
    max_connections_per_ip: int = 20


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """One certificate for every service (paths relative to the state folder)."""

    cert: str = "tls/cert.pem"  # PEM: the certificate, then its chain
    key: str = "tls/key.pem"
    min_version: str = "1.2"  # "1.2" or "1.3"
    handshake_timeout: float = 30.0
    # RFC 4954 §4 wants no plaintext passwords without TLS; tests and the
    # demo may allow it for clients on loopback only.
    loopback_plaintext_auth: bool = False


@dataclass(frozen=True, slots=True)
class Pop3Config:
    listen: tuple[str, ...] = ("127.0.0.1:2110",)
    listen_tls: tuple[str, ...] = ()  # implicit TLS (RFC 8314: 995); init writes 127.0.0.1:2995
    timeout_idle: float = 600.0  # RFC 1939 §3: at least 10 minutes
    max_line_length: int = 512  # RFC 2449 §4: 255 octets of arguments and more
    max_commands: int = 100000
    max_bad_commands: int = 20
    max_connections: int = 200
    max_connections_per_ip: int = 20


@dataclass(frozen=True, slots=True)
class ImapConfig:
    """IMAP4rev1/rev2 (RFC 3501, RFC 9051) listeners and the limits given to the core."""

    listen: tuple[str, ...] = ("127.0.0.1:2143",)  # STARTTLS with a certificate; production 143
    listen_tls: tuple[str, ...] = ()  # implicit TLS (RFC 8314 §3.3: 993); init writes 2993
    max_connections: int = 200
    max_connections_per_ip: int = 20
    # RFC 9051 §5.4 autologout: at least 30 minutes once authenticated,
    # shorter before login.
    timeout_unauthenticated: float = 60.0
    timeout_authenticated: float = 1800.0
    timeout_idle: float = 1800.0  # RFC 2177: clients re-issue IDLE within 29 minutes
    max_line_length: int = 65536  # octets incl. CRLF (RFC 7162 §4 asks for at least 8192)
    max_literal_size: int = 65536  # any literal but an APPEND message
    max_command_size: int = 262144  # one command's lines and small literals
    max_append_size: int = 64 * 1024 * 1024  # advertised as APPENDLIMIT (RFC 7889)
    max_bad_commands: int = 20
    max_commands: int = 1_000_000


@dataclass(frozen=True, slots=True)
class LoginConfig:
    # VMailMgr's IP-based hosting: a bare "user" logs into the domain
    # configured for the local address the client connected to.
    default_domain: str = ""
    by_address: dict[str, str] = field(default_factory=dict)
    max_failures: int = 5  # per client address within failure_window
    max_account_failures: int = 10  # per login name within failure_window, any address
    failure_window: float = 300.0
    failure_delay: float = 1.0  # seconds added to every failed login


@dataclass(frozen=True, slots=True)
class QueueConfig:
    lifetime: int = 604800  # seconds; then the message bounces
    retry_skip_local: int = 10  # qmail's chanskip: next = birth + (isqrt(age)+skip)^2
    retry_skip_remote: int = 20  # the same for remote deliveries
    rescan_interval: float = 300.0  # backstop rescan; new mail wakes the manager at once
    debris_age: int = 129600  # 36 hours, as qmail: tmp files older than this are removed
    delay_warning: float = 0.0  # seconds before a "delayed" DSN; 0 = none (Postfix's default)


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    remote: str = "hold"  # "hold" keeps remote mail queued; "deliver" sends it
    local_concurrency: int = 4  # local delivery processes (dispatch/lspawn.py)
    # Remote delivery (dispatch/settings.py checks these in depth at start;
    # docs/design/remote.md explains each).
    remote_concurrency: int = 20  # SMTP sessions at once (qmail's concurrencyremote)
    per_destination: int = 5  # sessions at once to one domain or route
    helo: str = ""  # our EHLO name; "" = hostname
    smtp_port: int = 25
    resolver: tuple[str, ...] = ()  # "address[:port]" nameservers; () = /etc/resolv.conf
    dns_timeout: float = 30.0
    connect_timeout: float = 30.0
    command_timeout: float = 300.0  # RFC 5321 §4.5.3.2 client timeouts
    data_timeout: float = 120.0
    data_block_timeout: float = 180.0
    data_end_timeout: float = 600.0
    chunking: bool = False  # BDAT where the server offers CHUNKING
    # qmail's smtproutes: domain ("" = everything else, ".d" = subdomains) ->
    # "host:port" or a table {host, port, tls, user, password_file, ca_file}.
    routes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QmtpConfig:
    """QMTP (qmail-qmtpd): off unless listen is set; message limits are [smtp]'s."""

    listen: tuple[str, ...] = ()  # production ":209"
    max_connections: int = 200
    max_connections_per_ip: int = 20
    timeout: float = 300.0  # seconds a read or write may wait


@dataclass(frozen=True, slots=True)
class QmqpConfig:
    """QMQP (qmail-qmqpd): off unless listen is set; only ``clients`` may connect."""

    listen: tuple[str, ...] = ()  # production ":628"
    clients: tuple[str, ...] = ()  # CIDRs of the hosts that may use this central queue
    max_connections: int = 200
    max_connections_per_ip: int = 20
    timeout: float = 300.0


@dataclass(frozen=True, slots=True)
class AccessConfig:
    """One ``[[access]]`` rule, tcprules' line; server/access.py applies them.

    Rules are tried in order; the first whose network holds the client's
    address and whose services name the listener decides (docs/access.md).
    """

    network: tuple[str, ...]  # CIDRs or single addresses; "*" is every address
    services: tuple[str, ...] = ("*",)  # listener names (smtp, pop3s, ...) or "*"
    action: str = "allow"  # "allow" or "deny"
    relay: bool = False  # qmail's RELAYCLIENT: these clients may relay without AUTH
    max_connections: int = 0  # at once from the rule's networks, per listener section; 0 = none
    greeting_delay: float = 0.0  # seconds before the greeting (SMTP: talking first is refused)


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = "info"
    format: str = "text"  # "text" (event key=value) or "json"
    # "" = stderr (journald, or multilog under daemontools); else a file,
    # relative to the state folder, rotated by size (docs/operations.md).
    file: str = ""
    max_bytes: int = 16 * 1024 * 1024  # rotate when the file reaches this; 0 = never
    keep: int = 5  # rotated files kept: file.1 … file.<keep>

    def __post_init__(self) -> None:
        if self.keep < 1:
            raise ConfigError("log.keep must be at least 1")
        if 0 < self.max_bytes < 4096:
            raise ConfigError("log.max_bytes must be 0 (never rotate) or at least 4096")


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Prometheus metrics over HTTP (docs/operations.md); off unless listen is set."""

    listen: str = ""  # e.g. "127.0.0.1:9154"
    # The figures tell who connects and how much mail flows: loopback only,
    # unless the operator says otherwise.
    allow_remote: bool = False

    def __post_init__(self) -> None:
        if not self.listen:
            return
        address = parse_listen(self.listen)
        if not self.allow_remote and not _is_loopback_host(address.host):
            raise ConfigError(
                f"metrics.listen {self.listen!r} is not a loopback address "
                "(set metrics.allow_remote = true to allow it)"
            )


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """[server]: processes and users (docs/supervision.md); defaults = one
    process per role, all as the invoking user."""

    user: str = ""  # started as root: the SMTP side runs as this user
    mail_user: str = ""  # mailbox access and delivery; "" = the same as user
    imap_workers: int = 1  # processes serving IMAP ("auto" = number of cores)
    pop3_workers: int = 1  # processes serving POP3 ("auto" = number of cores)
    watchdog: float = 60.0  # seconds without a heartbeat before a worker is killed
    stop_grace: float = 10.0  # seconds sessions get to finish on SIGTERM
    # "auto": a queue writer process of its own when started as root with a
    # user; "separate": always; "inline": the SMTP side writes queue/ itself.
    queue_writer: str = "auto"
    group: str = ""  # shared by both users (directory.sqlite, run/); "" = mail_user's
    event_loop: str = "asyncio"  # or "uvloop" (optional, pip install 'mailyard[uvloop]')


def _parse_server(raw: Any) -> ServerConfig:
    """[server]: worker counts take "auto", durations a number or "60s"/"2m"."""
    if not isinstance(raw, dict):
        raise ConfigError("[server] must be a table")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in {"user", "mail_user", "group"}:
            if not isinstance(value, str):
                raise ConfigError(f"server.{key} must be a string")
        elif key == "event_loop":
            if value not in {"asyncio", "uvloop"}:
                raise ConfigError('server.event_loop must be "asyncio" or "uvloop"')
        elif key == "queue_writer":
            if value not in {"auto", "separate", "inline"}:
                raise ConfigError('server.queue_writer must be "auto", "separate" or "inline"')
        elif key in {"imap_workers", "pop3_workers"}:
            if value == "auto":
                value = os.cpu_count() or 1
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 256:
                raise ConfigError(f'server.{key} must be "auto" or a number from 1 to 256')
        elif key in {"watchdog", "stop_grace"}:
            value = _server_seconds(f"server.{key}", value)
        else:
            raise ConfigError(f"unknown key server.{key}")
        values[key] = value
    return ServerConfig(**values)


def _server_seconds(where: str, value: Any) -> float:
    text = str(value).strip() if isinstance(value, str) else ""
    factor = 60.0 if text.endswith("m") else 1.0
    number = text.removesuffix("m").removesuffix("s")
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif number.replace(".", "", 1).isdigit() and number.isascii():
        seconds = float(number) * factor
    else:
        raise ConfigError(f'{where} must be a number of seconds or a duration such as "60s"')
    if not 0 < seconds <= 86400:
        raise ConfigError(f"{where} must be more than 0 and at most a day")
    return seconds


_QUOTA_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_period(where: str, text: str) -> float:
    """``"1d"``, ``"12h"``, ``"30m"``, ``"45s"``, ``"2w"`` or plain seconds ``"90"``."""
    value = text.strip().lower()
    factor = _QUOTA_UNITS.get(value[-1:], 0)
    number = value[:-1] if factor else value
    if not factor:
        factor = 1
    if not number.isascii() or not number.replace(".", "", 1).isdigit():
        raise ConfigError(f'{where} must be a duration such as "1d", "12h", "30m" or "0s"')
    return float(number) * factor


@dataclass(frozen=True, slots=True)
class ForwardingConfig:
    """[forwarding]: SRS for mail forwarded to other hosts (docs/addressing-delivery.md)."""

    srs: bool = True  # rewrite the envelope sender of remote forwards (SPF)
    srs_domain: str = ""  # domain of the SRS addresses; "" = hostname
    srs_max_age_days: int = 21  # a bounce to an older SRS address is refused

    def __post_init__(self) -> None:
        if not 1 <= self.srs_max_age_days <= 1000:
            # Two base32 characters hold 1024 days; the age must stay below.
            raise ConfigError("forwarding.srs_max_age_days must be from 1 to 1000")


@dataclass(frozen=True, slots=True)
class QuotaConfig:
    """[quota]: what happens when a mailbox is full at delivery."""

    grace: str = "1d"  # over quota: deferred while the message is younger, then bounced
    warn_percent: int = 90  # a warning to the user past this usage; 0 = never

    def __post_init__(self) -> None:
        parse_period("quota.grace", self.grace)
        if self.warn_percent > 100:
            raise ConfigError("quota.warn_percent must be from 0 to 100")

    @property
    def grace_seconds(self) -> float:
        return parse_period("quota.grace", self.grace)


@dataclass(frozen=True, slots=True)
class Config:
    state_dir: str
    hostname: str = field(default_factory=socket.getfqdn)
    postmaster: str = ""  # default: postmaster@hostname
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    submission: SubmissionConfig = field(default_factory=SubmissionConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    pop3: Pop3Config = field(default_factory=Pop3Config)
    imap: ImapConfig = field(default_factory=ImapConfig)
    login: LoginConfig = field(default_factory=LoginConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    qmtp: QmtpConfig = field(default_factory=QmtpConfig)
    qmqp: QmqpConfig = field(default_factory=QmqpConfig)
    log: LogConfig = field(default_factory=LogConfig)
    access: tuple[AccessConfig, ...] = ()  # [[access]] rules, in order
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    forwarding: ForwardingConfig = field(default_factory=ForwardingConfig)
    quota: QuotaConfig = field(default_factory=QuotaConfig)

    @property
    def postmaster_address(self) -> str:
        return self.postmaster or f"postmaster@{self.hostname}"

    def path(self, *parts: str) -> str:
        """A path inside the state folder (parts come from code, never from clients)."""
        return os.path.join(self.state_dir, *parts)

    def tls_path(self, configured: str) -> str:
        """A [tls] file: absolute as written, else relative to the state folder."""
        return os.path.join(self.state_dir, configured)


_SECTIONS: Final[dict[str, type]] = {
    "smtp": SmtpConfig,
    "submission": SubmissionConfig,
    "tls": TlsConfig,
    "pop3": Pop3Config,
    "imap": ImapConfig,
    "login": LoginConfig,
    "queue": QueueConfig,
    "delivery": DeliveryConfig,
    "qmtp": QmtpConfig,
    "qmqp": QmqpConfig,
    "log": LogConfig,
    "metrics": MetricsConfig,
    "forwarding": ForwardingConfig,
    "quota": QuotaConfig,
}


def _build_section(name: str, cls: type, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(f"unknown key {name}.{key}")
        default = getattr(cls(), key)
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{name}.{key} must be a list of strings")
            value = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{name}.{key} must be true or false")
        elif isinstance(default, float):
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigError(f"{name}.{key} must be a number")
            value = float(value)
        elif isinstance(default, int):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name}.{key} must be a non-negative integer")
        elif isinstance(default, str):
            if not isinstance(value, str):
                raise ConfigError(f"{name}.{key} must be a string")
        elif isinstance(default, dict) and not (
            # A table of strings, or (delivery.routes) of strings and tables;
            # what each value means is checked where it is used.
            isinstance(value, dict)
            and all(isinstance(v, str | dict) for v in value.values())
        ):
            raise ConfigError(f"{name}.{key} must be a table")
        values[key] = value
    return cls(**values)


# Keys that must be at least 1 (a zero limit or timeout would make a
# listener refuse everything or a pool do nothing).
_POSITIVE: Final = {
    "smtp": ("max_message_size", "max_recipients", "max_commands", "max_bad_commands",
             "max_connections", "max_connections_per_ip", "timeout_command",
             "timeout_data_block"),
    "submission": ("max_header_size", "max_connections", "max_connections_per_ip"),
    "tls": ("handshake_timeout",),
    "pop3": ("timeout_idle", "max_line_length", "max_commands", "max_connections",
             "max_connections_per_ip"),
    "imap": ("max_connections", "max_connections_per_ip", "timeout_unauthenticated",
             "timeout_authenticated", "timeout_idle", "max_literal_size", "max_command_size",
             "max_append_size", "max_bad_commands", "max_commands"),
    "login": ("max_failures", "max_account_failures"),
    "queue": ("lifetime", "retry_skip_local", "retry_skip_remote", "rescan_interval"),
    "delivery": ("local_concurrency", "remote_concurrency", "per_destination", "smtp_port",
                 "dns_timeout", "connect_timeout", "command_timeout", "data_timeout",
                 "data_block_timeout", "data_end_timeout"),
    "qmtp": ("max_connections", "max_connections_per_ip", "timeout"),
    "qmqp": ("max_connections", "max_connections_per_ip", "timeout"),
}


def _validate(config: Config) -> None:
    for text in (
        *config.smtp.listen, *config.submission.listen, *config.submission.listen_tls,
        *config.pop3.listen, *config.pop3.listen_tls, *config.imap.listen,
        *config.imap.listen_tls,
    ):
        parse_listen(text)
    for name, keys in _POSITIVE.items():
        section = getattr(config, name)
        for key in keys:
            if getattr(section, key) <= 0:
                raise ConfigError(f"{name}.{key} must be greater than 0")
    if config.delivery.remote not in {"hold", "deliver"}:
        raise ConfigError('delivery.remote must be "hold" or "deliver"')
    for section in (config.qmtp, config.qmqp):
        for text in section.listen:
            parse_listen(text)
    for cidr in config.qmqp.clients:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError as exc:
            raise ConfigError(f"qmqp.clients: {exc}") from exc
    if config.qmqp.listen and not config.qmqp.clients:
        raise ConfigError("qmqp.listen needs qmqp.clients (the hosts that may use it)")
    for value in config.login.by_address.values():
        if not isinstance(value, str):
            raise ConfigError("login.by_address must be a table of strings")
    if config.log.format not in {"text", "json"}:
        raise ConfigError('log.format must be "text" or "json"')
    if config.log.level not in {"debug", "info", "warning", "error"}:
        raise ConfigError("log.level must be debug, info, warning or error")
    if config.smtp.max_line_length < 100 or config.smtp.max_command_line < 100:
        raise ConfigError("smtp line limits must be at least 100")
    if config.submission.sender_check not in {"strict", "off"}:
        raise ConfigError('submission.sender_check must be "strict" or "off"')
    if config.tls.min_version not in {"1.2", "1.3"}:
        raise ConfigError('tls.min_version must be "1.2" or "1.3"')
    if not config.tls.cert or not config.tls.key:
        raise ConfigError("tls.cert and tls.key must name files")
    if config.pop3.max_line_length < 16:
        raise ConfigError("pop3.max_line_length must be at least 16")
    _validate_imap(config.imap)
    for ip in config.smtp.relay_networks:
        try:
            ipaddress.ip_network(ip, strict=False)
        except ValueError as exc:
            raise ConfigError(f"smtp.relay_networks: {exc}") from exc


def _validate_imap(imap: ImapConfig) -> None:
    if imap.timeout_authenticated < 1800 or imap.timeout_idle < 1800:
        # RFC 9051 §5.4: the autologout timer is at least 30 minutes once
        # authenticated (and RFC 2177 lets IDLE last 29 minutes).
        raise ConfigError("imap.timeout_authenticated and imap.timeout_idle must be at least 1800")
    if imap.max_line_length < 8192:
        # RFC 7162 §4: servers take command lines of at least 8192 octets.
        raise ConfigError("imap.max_line_length must be at least 8192")
    if imap.max_command_size < imap.max_line_length:
        raise ConfigError("imap.max_command_size must be at least imap.max_line_length")


_ACCESS_SERVICES: Final = frozenset(
    {"*", "smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps", "qmtp", "qmqp"}
)
# RFC 5321 §4.5.3.2.1: a client waits 5 minutes for the greeting; a delay
# must stay well inside that.
_MAX_GREETING_DELAY: Final = 300.0


def _build_access(raw: Any) -> tuple[AccessConfig, ...]:
    """The ``[[access]]`` tables, in order, each checked in full."""
    if not isinstance(raw, list) or not all(isinstance(table, dict) for table in raw):
        raise ConfigError("access must be a list of tables ([[access]])")
    return tuple(_access_rule(f"access rule {n}", table) for n, table in enumerate(raw, 1))


def _access_rule(where: str, table: dict[str, Any]) -> AccessConfig:
    known = {f.name for f in dataclasses.fields(AccessConfig)}
    for key in table:
        if key not in known:
            raise ConfigError(f"unknown key {key} in {where}")
    if "network" not in table:
        raise ConfigError(f"{where}: network is required")
    values: dict[str, Any] = {}
    for key in ("network", "services"):
        if key in table:
            items = [table[key]] if isinstance(table[key], str) else table[key]
            if not isinstance(items, list) or not items or not all(
                    isinstance(v, str) for v in items):
                raise ConfigError(f"{where}: {key} must be a string or a list of strings")
            values[key] = tuple(items)
    for text in values["network"]:
        try:
            if text != "*":
                ipaddress.ip_network(text, strict=False)
        except ValueError as exc:
            raise ConfigError(f"{where}: network {exc}") from exc
    unknown = sorted(set(values.get("services", ())) - _ACCESS_SERVICES)
    if unknown:
        raise ConfigError(f"{where}: unknown service {unknown[0]!r}")
    values["action"] = table.get("action", "allow")
    if values["action"] not in {"allow", "deny"}:
        raise ConfigError(f'{where}: action must be "allow" or "deny"')
    values["relay"] = table.get("relay", False)
    values["max_connections"] = table.get("max_connections", 0)
    if not isinstance(values["relay"], bool):
        raise ConfigError(f"{where}: relay must be true or false")
    if not isinstance(values["max_connections"], int) or isinstance(
            values["max_connections"], bool) or values["max_connections"] < 0:
        raise ConfigError(f"{where}: max_connections must be a non-negative integer")
    values["greeting_delay"] = _access_delay(where, table.get("greeting_delay", 0.0))
    rule = AccessConfig(**values)
    if rule.action == "deny" and (rule.relay or rule.max_connections or rule.greeting_delay):
        raise ConfigError(f"{where}: a deny rule takes no relay, max_connections or "
                          "greeting_delay")
    return rule


def _access_delay(where: str, value: Any) -> float:
    """Seconds as a number (0.5), or a duration string as parse_period reads it ("2s")."""
    message = (f"{where}: greeting_delay must be a number of seconds or a duration "
               f'such as "2s", under {_MAX_GREETING_DELAY:.0f} seconds')
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_period(f"{where}: greeting_delay", value)
        except ConfigError as exc:
            raise ConfigError(message) from exc
    else:
        raise ConfigError(message)
    if not 0 <= seconds < _MAX_GREETING_DELAY:  # NaN fails this too
        raise ConfigError(message)
    return seconds


def load_config(state_dir: str) -> Config:
    """Read ``state_dir/mailyard.toml`` (defaults if it does not exist)."""
    state_dir = os.path.abspath(state_dir)
    path = os.path.join(state_dir, CONFIG_NAME)
    raw: dict[str, Any] = {}
    if os.path.exists(path):
        try:
            with open(path, "rb") as handle:
                raw = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    top: dict[str, Any] = {"state_dir": state_dir}
    for key, value in raw.items():
        if key in _SECTIONS:
            top[key] = _build_section(key, _SECTIONS[key], value)
        elif key == "access":
            top[key] = _build_access(value)
        elif key == "server":
            top[key] = _parse_server(value)
        elif key in {"hostname", "postmaster"}:
            if not isinstance(value, str):
                raise ConfigError(f"{key} must be a string")
            top[key] = value
        else:
            raise ConfigError(f"unknown key {key}")
    config = Config(**top)
    _validate(config)
    return config
