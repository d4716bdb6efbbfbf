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
    "Config",
    "ConfigError",
    "DeliveryConfig",
    "ImapConfig",
    "ListenAddress",
    "LogConfig",
    "LoginConfig",
    "Pop3Config",
    "QueueConfig",
    "SmtpConfig",
    "SubmissionConfig",
    "TlsConfig",
    "load_config",
    "parse_listen",
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
class LogConfig:
    level: str = "info"
    format: str = "text"  # "text" (event key=value) or "json"


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
        elif key in {"hostname", "postmaster"}:
            if not isinstance(value, str):
                raise ConfigError(f"{key} must be a string")
            top[key] = value
        else:
            raise ConfigError(f"unknown key {key}")
    config = Config(**top)
    _validate(config)
    return config
