"""``mailyard check``: a doctor for one state folder.

It checks what mailyard itself depends on (the configuration, the
certificate's expiry, who may read or write the state folder) and prints
what the world sees in DNS for each hosted domain (MX, SPF, DKIM, DMARC)
and for the host name (forward and reverse addresses). DNS findings are
advice, never failures: a test site or a relay-only host may not want any
of them. The exit status is 1 when a check failed, else 0.
"""

from __future__ import annotations

import datetime
import enum
import functools
import ipaddress
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Final

import click
import dns.exception
import dns.name
import dns.nameserver
import dns.resolver
import dns.reversename
from cryptography import x509

from mailyard.cli.context import CliContext
from mailyard.cli.output import print_json, print_table
from mailyard.config import CONFIG_NAME, Config, ConfigError, load_config
from mailyard.directory.store import Directory
from mailyard.dispatch.routes import SettingsError
from mailyard.dispatch.settings import settings_from_config
from mailyard.server.preload import code_folders, readable_by
from mailyard.server.privileges import PrivilegeError, resolve_user
from mailyard.server.tls import TlsError, TlsManager

__all__ = ["Finding", "Level", "check_code_access", "check_dns", "check_state", "register"]

DNS_TIMEOUT: Final = 3.0  # seconds per lookup: advice must not hang the doctor
CERT_WARN_DAYS: Final = 21  # a renewal job that failed twice still leaves a week
DEFAULT_DKIM_SELECTOR: Final = "mailyard"


class Level(enum.Enum):
    OK = "ok"
    ADVICE = "advice"  # DNS: what to publish, never a failure
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    level: Level
    detail: str


# -- the state folder ---------------------------------------------------------------


def _mode_finding(name: str, path: str, *, secret: bool) -> Finding | None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o002:
        return Finding(f"perm {name}", Level.FAIL, f"{path} is writable by everyone ({mode:o})")
    if secret and mode & 0o044:
        return Finding(f"perm {name}", Level.FAIL,
                       f"{path} is readable by others ({mode:o}); make it 0600")
    if mode & 0o020:
        return Finding(f"perm {name}", Level.WARN, f"{path} is group-writable ({mode:o})")
    if info.st_uid != os.geteuid():
        return Finding(f"perm {name}", Level.WARN,
                       f"{path} belongs to uid {info.st_uid}, not to this user ({os.geteuid()})")
    return Finding(f"perm {name}", Level.OK, f"{mode:o}")


def check_permissions(state_dir: str, config: Config | None) -> list[Finding]:
    """Who may read or write the state folder and its secrets."""
    # The key and the directory (password hashes) are secrets; the rest
    # must at least not be writable by others (a queue file is a message).
    items = [
        ("state folder", state_dir, False),
        (CONFIG_NAME, os.path.join(state_dir, CONFIG_NAME), False),
        ("directory.sqlite", os.path.join(state_dir, "directory.sqlite"), True),
        ("queue", os.path.join(state_dir, "queue"), False),
        ("mail", os.path.join(state_dir, "mail"), False),
        ("run", os.path.join(state_dir, "run"), False),
    ]
    if config is not None:
        items.append(("tls key", config.tls_path(config.tls.key), True))
    found = [_mode_finding(name, path, secret=secret) for name, path, secret in items]
    return [f for f in found if f is not None]


def _certificate(config: Config, now: datetime.datetime) -> list[Finding]:
    try:
        manager = TlsManager.from_config(config)
    except TlsError as exc:
        return [Finding("certificate", Level.FAIL, str(exc))]
    if manager is None:
        return [Finding("certificate", Level.WARN,
                        f"no certificate at {config.tls_path(config.tls.cert)}: TLS is off")]
    with open(manager.cert_path, "rb") as handle:
        cert = x509.load_pem_x509_certificate(handle.read())
    found: list[Finding] = []
    left = cert.not_valid_after_utc - now
    expiry = cert.not_valid_after_utc.strftime("%Y-%m-%d")
    if left.total_seconds() <= 0:
        found.append(Finding("certificate", Level.FAIL, f"expired on {expiry}"))
    elif left.days < CERT_WARN_DAYS:
        found.append(Finding("certificate", Level.WARN, f"expires on {expiry} ({left.days} days)"))
    else:
        found.append(Finding("certificate", Level.OK, f"valid until {expiry} ({left.days} days)"))
    if cert.issuer == cert.subject:
        found.append(Finding("certificate issuer", Level.WARN,
                             "self-signed: clients will not trust it without being told to"))
    names = _dns_names(cert)
    if config.hostname.lower() not in names:
        found.append(Finding("certificate name", Level.WARN,
                             f"{config.hostname} is not among its names ({', '.join(names)})"))
    return found


def _dns_names(cert: x509.Certificate) -> list[str]:
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [name.lower() for name in extension.value.get_values_for_type(x509.DNSName)]


def check_state(state_dir: str, now: datetime.datetime) -> tuple[list[Finding], Config | None]:
    """Configuration, certificate and permissions; the config when it loads."""
    try:
        config = load_config(state_dir)
        settings_from_config(config)  # routes, resolvers: what the worker checks at start
    except (ConfigError, SettingsError) as exc:
        return [Finding("config", Level.FAIL, str(exc)),
                *check_permissions(state_dir, None)], None
    found = [Finding("config", Level.OK, os.path.join(state_dir, CONFIG_NAME))]
    found += _certificate(config, now)
    found += check_permissions(state_dir, config)
    found += check_code_access(config)
    return found, config


def check_code_access(config: Config) -> list[Finding]:
    """Whether the users the workers drop to can read mailyard's code.

    They need not (server/preload.py loads it all before the drop), but
    then each worker costs more memory, and those users cannot run any
    mailyard command themselves (``mailyard sendmail`` for one)."""
    names = dict.fromkeys(n for n in (config.server.user, config.server.mail_user) if n)
    found = []
    for name in names:
        try:
            who = resolve_user(name)
        except PrivilegeError as exc:
            found.append(Finding(f"code access {name}", Level.FAIL, str(exc)))
            continue
        closed = [folder for folder in code_folders() if not readable_by(folder, who)]
        if closed:
            found.append(Finding(
                f"code access {name}", Level.WARN,
                f"{name} cannot read {closed[0]}: the workers load all their code before "
                "dropping to it (about 10 MB more each) and it cannot run mailyard itself; "
                "install mailyard where every user may read it (/usr/local, /opt)"))
        else:
            found.append(Finding(f"code access {name}", Level.OK, "the code is readable"))
    return found


# -- DNS, as seen from this host ---------------------------------------------------------

Lookup = Callable[[str, str], list[str]]  # (name, type) -> records as text; [] = none


def make_lookup(nameservers: Sequence[tuple[str, int]], timeout: float = DNS_TIMEOUT) -> Lookup:
    """Lookups through ``nameservers`` (or /etc/resolv.conf), ``timeout`` each.

    After one timeout every later lookup fails at once: a resolver that
    does not answer would otherwise cost ``timeout`` for every record.
    """
    if nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(a, p) for a, p in nameservers]
    else:
        resolver = dns.resolver.Resolver()
    resolver.lifetime = timeout
    silent: list[dns.exception.Timeout] = []

    def lookup(name: str, rdtype: str) -> list[str]:
        if silent:
            raise silent[0]
        try:
            answer = resolver.resolve(name, rdtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout as exc:
            silent.append(exc)
            raise
        return [r.to_text() for r in answer]

    return lookup


def _txt(records: list[str]) -> list[str]:
    # TXT rdata text is a series of quoted strings; RFC 7208 §3.3 joins them.
    return ["".join(part.strip('"') for part in r.split('" "')) for r in records]


def _mx(domain: str, hostname: str, lookup: Lookup) -> Finding:
    records = lookup(domain, "MX")
    if not records:
        return Finding(f"MX {domain}", Level.ADVICE,
                       f"no MX: senders fall back to its address (RFC 5321 §5.1); "
                       f"publish '{domain}. MX 10 {hostname}.'")
    targets = [r.split()[-1].rstrip(".").lower() for r in records]
    if hostname.lower() not in targets:
        return Finding(f"MX {domain}", Level.ADVICE,
                       f"MX points to {', '.join(targets)}, not to this host ({hostname})")
    return Finding(f"MX {domain}", Level.OK, "; ".join(records))


def _spf(domain: str, lookup: Lookup) -> Finding:
    spf = [t for t in _txt(lookup(domain, "TXT")) if t.lower().startswith("v=spf1")]
    if not spf:
        return Finding(f"SPF {domain}", Level.ADVICE,
                       f"no SPF record; publish '{domain}. TXT \"v=spf1 mx -all\"'")
    if len(spf) > 1:
        # RFC 7208 §4.5: more than one record is a permanent error.
        return Finding(f"SPF {domain}", Level.ADVICE,
                       "several SPF records: receivers treat that as an error (RFC 7208 §4.5)")
    return Finding(f"SPF {domain}", Level.OK, spf[0])


def _dmarc(domain: str, lookup: Lookup) -> Finding:
    name = f"_dmarc.{domain}"
    found = [t for t in _txt(lookup(name, "TXT")) if t.startswith("v=DMARC1")]
    if not found:
        return Finding(f"DMARC {domain}", Level.ADVICE,
                       f"no DMARC policy; publish '{name}. TXT \"v=DMARC1; p=none; "
                       f"rua=mailto:postmaster@{domain}\"'")
    return Finding(f"DMARC {domain}", Level.OK, found[0])


def _dkim(domain: str, selector: str, lookup: Lookup) -> Finding:
    name = f"{selector}._domainkey.{domain}"
    keys = [t for t in _txt(lookup(name, "TXT")) if "p=" in t]
    if not keys:
        return Finding(f"DKIM {domain}", Level.ADVICE,
                       f"no DKIM key at {name} (RFC 6376 §3.6.2.1); publish the key of "
                       "whatever signs this domain's mail")
    return Finding(f"DKIM {domain}", Level.OK, f"{name}: {keys[0][:60]}")


def _ptr(hostname: str, lookup: Lookup) -> list[Finding]:
    addresses = lookup(hostname, "A") + lookup(hostname, "AAAA")
    if not addresses:
        return [Finding(f"address {hostname}", Level.ADVICE,
                        f"{hostname} has no A or AAAA record: remote servers cannot check "
                        "our EHLO name")]
    found = []
    for address in addresses:
        reverse = dns.reversename.from_address(str(ipaddress.ip_address(address))).to_text()
        names = [n.rstrip(".").lower() for n in lookup(reverse, "PTR")]
        if hostname.lower() in names:
            found.append(Finding(f"PTR {address}", Level.OK, hostname))
        else:
            seen = ", ".join(names) or "none"
            found.append(Finding(f"PTR {address}", Level.ADVICE,
                                 f"reverse name is {seen}; many receivers want {hostname}"))
    return found


def _guard(check: str, run: Callable[[], list[Finding]]) -> list[Finding]:
    try:
        return run()
    except (dns.exception.DNSException, ValueError) as exc:
        return [Finding(check, Level.ADVICE, f"could not look up: {exc or type(exc).__name__}")]


def _as_list(run: Callable[[], Finding]) -> list[Finding]:
    return [run()]


def _domain_findings(domain: str, hostname: str, lookup: Lookup, selector: str) -> list[Finding]:
    checks: list[tuple[str, Callable[[], Finding]]] = [
        (f"MX {domain}", functools.partial(_mx, domain, hostname, lookup)),
        (f"SPF {domain}", functools.partial(_spf, domain, lookup)),
        (f"DKIM {domain}", functools.partial(_dkim, domain, selector, lookup)),
        (f"DMARC {domain}", functools.partial(_dmarc, domain, lookup)),
    ]
    found: list[Finding] = []
    for name, run in checks:
        found += _guard(name, functools.partial(_as_list, run))
    return found


def check_dns(domains: Sequence[str], hostname: str, lookup: Lookup,
              selector: str = DEFAULT_DKIM_SELECTOR) -> list[Finding]:
    """What DNS says about each domain and about this host's name (advice only)."""
    found: list[Finding] = []
    for domain in domains:
        found += _domain_findings(domain, hostname, lookup, selector)
    found += _guard(f"PTR {hostname}", functools.partial(_ptr, hostname, lookup))
    return found


def _domains(config: Config) -> list[str]:
    path = config.path("directory.sqlite")
    if not os.path.exists(path):
        return []
    directory = Directory.open(path)
    try:
        return [d.name for d in directory.list_domains()]
    finally:
        directory.close()


def _nameservers(config: Config, given: Sequence[str]) -> list[tuple[str, int]]:
    if not given:
        return list(settings_from_config(config).resolver)
    servers = []
    for text in given:
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            host, port = text, "53"
        servers.append((host.strip("[]"), int(port)))
    return servers


@click.command("check")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--dns/--no-dns", "with_dns", default=True, show_default=True,
              help="Look up MX, SPF, DKIM, DMARC and PTR records.")
@click.option("--resolver", "resolvers", multiple=True, metavar="ADDRESS[:PORT]",
              help="Nameserver to ask (default: [delivery] resolver, else /etc/resolv.conf).")
@click.option("--dkim-selector", default=DEFAULT_DKIM_SELECTOR, show_default=True)
@click.pass_obj
def check_cmd(ctx: CliContext, as_json: bool, with_dns: bool, resolvers: tuple[str, ...],
              dkim_selector: str) -> None:
    """Check the configuration, certificate, permissions and DNS of this site."""
    found, config = check_state(ctx.state_dir, datetime.datetime.now(datetime.UTC))
    if config is not None and with_dns:
        try:
            lookup = make_lookup(_nameservers(config, resolvers))
        except (dns.exception.DNSException, ValueError) as exc:
            found.append(Finding("dns", Level.ADVICE, f"no resolver: {exc}"))
        else:
            found += check_dns(_domains(config), config.hostname, lookup, dkim_selector)
    if as_json:
        print_json([{**asdict(f), "level": f.level.value} for f in found])
    else:
        print_table(["STATUS", "CHECK", "DETAIL"],
                    [[f.level.value, f.check, f.detail] for f in found])
    if any(f.level is Level.FAIL for f in found):
        click.get_current_context().exit(1)


def register(group: click.Group) -> None:
    """Add ``mailyard check`` to the command group."""
    group.add_command(check_cmd)
