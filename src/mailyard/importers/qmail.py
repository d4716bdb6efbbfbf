"""qmail's control files and users/assign, parsed, and the plan they give (pure).

What qmail reads, in its own formats (qmail-control(5), qmail-send(8),
qmail-smtpd(8), qmail-remote(8), qmail-users(5)):

* ``me``: the host's name; ``locals``: domains delivered to Unix users;
  ``rcpthosts``: domains qmail-smtpd accepts mail for; ``databytes``: the
  message size limit (0 = none);
* ``virtualdomains``: ``domain:prefix`` (a hosted domain: its mail goes to
  local ``prefix-localpart``), ``user@domain:prefix`` (one address),
  ``.domain:prefix`` (every subdomain), ``:prefix`` (everything else);
  an empty prefix is an exception to a wildcard;
* ``smtproutes``: ``domain:relay`` with ``relay`` = ``host`` or
  ``host:port``; an empty domain is the default route, an empty relay
  means "use MX";
* ``users/assign``: ``=local:user:uid:gid:home:dash:ext:`` (one local
  name) and ``+prefix:user:uid:gid:home:dash:pre:`` (every local name
  starting with ``prefix``), ending with a line ``.``.

qmail's control_readfile skips blank lines and lines starting with ``#``
and ignores trailing spaces; so do we. Every line we cannot read is kept
as a problem, never silently dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from mailyard.directory.errors import InvalidInput
from mailyard.directory.model import canonical_owner_name, hosted_domain
from mailyard.importers.report import Unmapped

__all__ = [
    "CONTROL_FILES",
    "Assignment",
    "PlannedDomain",
    "QmailControl",
    "QmailPlan",
    "SmtpRoute",
    "VirtualDomain",
    "control_lines",
    "parse_assign",
    "parse_control",
    "parse_databytes",
    "parse_smtproutes",
    "parse_virtualdomains",
    "plan_qmail",
    "toml_lines",
    "user_for_prefix",
]

CONTROL_FILES: Final = ("me", "locals", "rcpthosts", "virtualdomains", "smtproutes", "databytes")
_ASSIGN_FIELDS: Final = 7


@dataclass(frozen=True, slots=True)
class VirtualDomain:
    """One virtualdomains line: ``key`` is a domain, ``.domain``, ``user@domain`` or ``""``."""

    key: str
    prefix: str


@dataclass(frozen=True, slots=True)
class SmtpRoute:
    """One smtproutes line: ``domain`` "" = default route, ``relay`` "" = MX."""

    domain: str
    relay: str


@dataclass(frozen=True, slots=True)
class Assignment:
    """One users/assign line; ``exact`` for ``=``, else a ``+`` prefix entry."""

    exact: bool
    local: str
    user: str
    uid: int
    gid: int
    home: str
    dash: str
    ext: str


@dataclass(frozen=True, slots=True)
class QmailControl:
    """Everything read from a qmail control folder (and users/assign)."""

    me: str | None = None
    locals: tuple[str, ...] = ()
    rcpthosts: tuple[str, ...] = ()
    virtualdomains: tuple[VirtualDomain, ...] = ()
    smtproutes: tuple[SmtpRoute, ...] = ()
    databytes: int | None = None
    assignments: tuple[Assignment, ...] = ()
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlannedDomain:
    """A hosted domain to create: from ``prefix``, whose Unix user is ``user``."""

    name: str
    prefix: str
    user: str | None
    owner: str | None


@dataclass(frozen=True, slots=True)
class QmailPlan:
    """What an import of the control files does; ``config`` is TOML to paste."""

    domains: tuple[PlannedDomain, ...]
    config: tuple[str, ...]
    unmapped: tuple[Unmapped, ...]


def control_lines(text: str) -> list[str]:
    """The meaningful lines of a control file (control_readfile's rules)."""
    lines = []
    for raw in text.splitlines():
        line = raw.rstrip(" \t\r")
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def parse_virtualdomains(text: str) -> tuple[list[VirtualDomain], list[str]]:
    """virtualdomains entries and the lines that are not ``key:prefix``."""
    entries, problems = [], []
    for line in control_lines(text):
        key, colon, prefix = line.partition(":")
        if not colon:
            problems.append(f"virtualdomains: no ':' in {line!r}")
            continue
        entries.append(VirtualDomain(key.strip().lower(), prefix.strip()))
    return entries, problems


def parse_smtproutes(text: str) -> tuple[list[SmtpRoute], list[str]]:
    """smtproutes entries (split at the first ':', as qmail-remote does)."""
    routes, problems = [], []
    for line in control_lines(text):
        domain, colon, relay = line.partition(":")
        if not colon:
            problems.append(f"smtproutes: no ':' in {line!r}")
            continue
        routes.append(SmtpRoute(domain.strip().lower(), relay.strip()))
    return routes, problems


def parse_databytes(text: str) -> tuple[int | None, list[str]]:
    """The databytes number (the first line), or None with a problem."""
    lines = control_lines(text)
    if not lines:
        return None, []
    value = lines[0].strip()
    if not value.isascii() or not value.isdigit():
        return None, [f"databytes: not a number: {value!r}"]
    return int(value), []


def parse_assign(text: str) -> tuple[list[Assignment], list[str]]:
    """users/assign entries up to the ``.`` line (qmail-users(5))."""
    entries, problems = [], []
    for line in text.splitlines():
        line = line.rstrip("\r")
        if line == ".":
            break
        if not line or line[0] not in "=+":
            if line.strip():
                problems.append(f"users/assign: not an = or + entry: {line!r}")
            continue
        fields = line[1:].split(":")
        # The line ends with ':', so split gives one empty field more.
        if len(fields) < _ASSIGN_FIELDS or not fields[2].isdigit() or not fields[3].isdigit():
            problems.append(f"users/assign: malformed entry {line!r}")
            continue
        local, user, uid, gid, home, dash, ext = fields[:_ASSIGN_FIELDS]
        entries.append(Assignment(line[0] == "=", local, user, int(uid), int(gid), home, dash, ext))
    return entries, problems


def _first_line(text: str | None) -> str | None:
    lines = control_lines(text or "")
    return lines[0].strip() if lines else None


def parse_control(files: Mapping[str, str], assign: str | None = None) -> QmailControl:
    """Parse the control files present in ``files`` (name -> text) and users/assign."""
    problems: list[str] = []
    virtual, more = parse_virtualdomains(files.get("virtualdomains", ""))
    problems += more
    routes, more = parse_smtproutes(files.get("smtproutes", ""))
    problems += more
    databytes, more = parse_databytes(files.get("databytes", ""))
    problems += more
    assignments: list[Assignment] = []
    if assign is not None:
        assignments, more = parse_assign(assign)
        problems += more
    return QmailControl(
        me=_first_line(files.get("me")),
        locals=tuple(line.strip().lower() for line in control_lines(files.get("locals", ""))),
        rcpthosts=tuple(line.strip().lower() for line in control_lines(files.get("rcpthosts", ""))),
        virtualdomains=tuple(virtual),
        smtproutes=tuple(routes),
        databytes=databytes,
        assignments=tuple(assignments),
        problems=tuple(problems),
    )


def user_for_prefix(prefix: str, assignments: Iterable[Assignment]) -> tuple[str, bool]:
    """The Unix user a virtualdomains prefix delivers to, and whether assign said so.

    Mail for ``domain:prefix`` goes to local ``prefix-localpart``: qmail-lspawn
    looks that up in users/assign (the longest ``+`` prefix that matches,
    or an ``=`` entry for ``prefix`` itself); without an entry, the Unix
    user is the part before the first ``-``.
    """
    local = f"{prefix}-"
    best: Assignment | None = None
    for entry in assignments:
        if entry.exact:
            if entry.local == prefix:
                return entry.user, True
        elif local.startswith(entry.local) and (best is None or len(entry.local) > len(best.local)):
            best = entry
    if best is not None:
        return best.user, True
    return prefix.partition("-")[0], False


def plan_qmail(control: QmailControl, *, owners: bool = False) -> QmailPlan:
    """The domains to create, the configuration to paste, and what is not mapped."""
    unmapped = [Unmapped(problem, "line not understood") for problem in control.problems]
    domains = _plan_domains(control, owners, unmapped)
    hosted = {d.name for d in domains}
    routed = {route.domain for route in control.smtproutes}
    for name in control.locals:
        unmapped.append(Unmapped(f"locals: {name}", "mail for Unix users is not hosted by "
                                 "mailyard; create the domain and its mailboxes by hand"))
    for name in control.rcpthosts:
        if name in hosted or name in control.locals or name in routed:
            continue
        unmapped.append(Unmapped(f"rcpthosts: {name}", "accepted but neither hosted nor routed "
                                 "(relayed, or a backup MX); mailyard does not relay for it"))
    return QmailPlan(tuple(domains), tuple(toml_lines(control)), tuple(unmapped))


def _plan_domains(control: QmailControl, owners: bool,
                  unmapped: list[Unmapped]) -> list[PlannedDomain]:
    domains: list[PlannedDomain] = []
    seen: set[str] = set()
    for entry in control.virtualdomains:
        where = f"virtualdomains: {entry.key}:{entry.prefix}"
        if not entry.key:
            unmapped.append(Unmapped(where, "a catch-all for every domain has no equivalent"))
            continue
        if entry.key.startswith("."):
            unmapped.append(Unmapped(where, "subdomain wildcards cannot be hosted; "
                                     "add each subdomain"))
            continue
        if "@" in entry.key:
            unmapped.append(Unmapped(where, "a single virtual address: create its mailbox "
                                     "or alias by hand"))
            continue
        if not entry.prefix:
            unmapped.append(Unmapped(where, "an exception to a wildcard (empty prefix)"))
            continue
        try:
            name = hosted_domain(entry.key)
        except InvalidInput as exc:
            unmapped.append(Unmapped(where, str(exc)))
            continue
        if name in seen:
            unmapped.append(Unmapped(where, "the domain is listed twice; the first line wins"))
            continue
        seen.add(name)
        user, _ = user_for_prefix(entry.prefix, control.assignments)
        owner = None
        if owners:
            try:
                owner = canonical_owner_name(user)
            except InvalidInput as exc:
                unmapped.append(Unmapped(f"owner {user!r} of {name}", str(exc)))
        domains.append(PlannedDomain(name, entry.prefix, user, owner))
    return domains


def _quoted(text: str) -> str:
    # A JSON string of printable ASCII is a valid TOML basic string.
    return json.dumps(text, ensure_ascii=True)


def toml_lines(control: QmailControl) -> list[str]:
    """mailyard.toml lines equivalent to me, databytes and smtproutes.

    Printed for the operator to paste: the configuration file is theirs,
    the import never rewrites it. Top-level keys come before any table,
    as TOML requires.
    """
    lines: list[str] = []
    if control.me:
        lines.append(f"hostname = {_quoted(control.me)}")
    if control.databytes:
        lines += ["", "[smtp]", f"max_message_size = {control.databytes}"]
    if control.smtproutes:
        lines += ["", "[delivery.routes]"]
        lines += [f"{_quoted(r.domain)} = {_quoted(r.relay)}" for r in control.smtproutes]
    return lines
