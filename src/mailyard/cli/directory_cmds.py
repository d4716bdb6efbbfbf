"""``mailyard owner | domain | user …``: the directory from the command line (VMailMgr's tools).

Who acts: without ``--as`` the caller is the site administrator (whoever
can read the state folder can read the directory anyway). ``--as OWNER``
acts as that domain owner, after its password, and may touch only the
owner's domains. Passwords are never taken from the command line (it shows
in ``ps`` and shell histories): they are prompted for, hidden, or read one
per line from standard input with ``--password-stdin``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from mailyard.cli.context import CliContext, CliError
from mailyard.cli.output import print_json, print_table
from mailyard.directory import admin
from mailyard.directory.admin import SITE_ADMIN, Actor, DirectoryError, OwnerActor
from mailyard.directory.logins import authenticate_owner
from mailyard.directory.model import (
    Domain,
    Mailbox,
    Owner,
    canonical_owner_name,
    hosted_domain,
)
from mailyard.directory.passwords import hash_password
from mailyard.directory.store import Directory
from mailyard.message.address import Address, AddressError, parse_address

__all__ = ["register"]

_F = TypeVar("_F", bound=Callable[..., Any])

_SECRETS_HELP = (
    "Passwords are never accepted on the command line. On a terminal they are "
    "prompted for (hidden, new ones twice). With --password-stdin they are read "
    "from standard input, one per line: with --as, the first line is the owner's "
    "password and the next line the new password, if the command sets one."
)
_ACTOR_HELP = (
    "Without --as you act as the site administrator (anyone who can read the "
    "state folder). --as OWNER acts as that domain owner, after its password, "
    "and may only touch the owner's own domains and their mailboxes."
)
_WHO_HELP = f"{_ACTOR_HELP}\n\n{_SECRETS_HELP}"


# click.option(...) builds a fresh Option each time it decorates, so these are reusable.
_json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
_stdin_option = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read passwords from standard input, one per line, instead of prompting.",
)
_owner_option = click.option(
    "--as",
    "as_owner",
    metavar="OWNER",
    help="Act as this domain owner (its password is asked first); default: site admin.",
)


def _as_option(f: _F) -> _F:
    return _owner_option(_stdin_option(f))


# -- passwords and sessions --------------------------------------------------------


@dataclass
class _Passwords:
    """Where passwords come from: hidden prompts, or stdin lines with --password-stdin."""

    from_stdin: bool

    def _line(self, what: str) -> str:
        line = sys.stdin.readline()
        if not line:
            raise CliError(f"--password-stdin: expected the {what} on standard input")
        return line.rstrip("\r\n")

    def owner(self, name: str) -> str:
        if self.from_stdin:
            return self._line(f"password of owner {name}")
        return str(click.prompt(f"Password of owner {name}", hide_input=True))

    def new(self) -> str:
        if self.from_stdin:
            password = self._line("new password")
        else:
            password = str(click.prompt("New password", hide_input=True, confirmation_prompt=True))
        if not password:
            raise CliError("an empty password is refused")
        return password


@dataclass(frozen=True, slots=True)
class _Session:
    directory: Directory
    actor: Actor
    mail_root: str


@contextmanager
def _session(
    ctx: CliContext, as_owner: str | None = None, passwords: _Passwords | None = None
) -> Iterator[_Session]:
    """Open the directory, authenticate ``--as``, turn DirectoryError into one CLI line."""
    config = ctx.config()
    try:
        directory = Directory.open(config.path("directory.sqlite"))
    except DirectoryError as exc:
        raise CliError(str(exc)) from exc
    try:
        actor: Actor = SITE_ADMIN
        if as_owner is not None:
            # Checked first: the name goes into messages, and one that cannot
            # exist need not cost a password entry.
            name = canonical_owner_name(as_owner)
            source = passwords or _Passwords(from_stdin=False)
            owner = authenticate_owner(directory, name, source.owner(name))
            if owner is None:
                raise CliError(f"authentication failed for owner {name}")
            actor = OwnerActor(owner.name)
        yield _Session(directory, actor, config.path("mail"))
    except DirectoryError as exc:
        raise CliError(str(exc)) from exc
    finally:
        directory.close()


def _address(text: str) -> Address:
    try:
        return parse_address(text.strip())
    except AddressError as exc:
        raise CliError(f"invalid address {text!r}: {exc}") from exc


# -- rendering -------------------------------------------------------------------


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _owner_data(owner: Owner, domains: list[Domain]) -> dict[str, object]:
    return {
        "name": owner.name,
        "domains": [d.name for d in domains if d.owner == owner.name],
        "created": _stamp(owner.created),
    }


def _domain_data(domain: Domain, mailboxes: int) -> dict[str, object]:
    return {
        "name": domain.name,
        "owner": domain.owner,
        "mailboxes": mailboxes,
        "created": _stamp(domain.created),
    }


def _mailbox_data(mailbox: Mailbox) -> dict[str, object]:
    return {
        "address": str(mailbox.address),
        "domain": mailbox.address.domain,
        "local": mailbox.address.local,
        "enabled": mailbox.enabled,
        "maildir": mailbox.maildir,
        "created": _stamp(mailbox.created),
    }


def _print_fields(data: dict[str, object]) -> None:
    print_table(["FIELD", "VALUE"], [[key, _cell(value)] for key, value in data.items()])


def _cell(value: object) -> object:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return "-" if value is None else value


def _print_mailboxes(mailboxes: list[Mailbox]) -> None:
    print_table(
        ["ADDRESS", "ENABLED", "MAILDIR", "CREATED"],
        [[str(m.address), _cell(m.enabled), m.maildir, _stamp(m.created)] for m in mailboxes],
    )


# -- owner -------------------------------------------------------------------------


@click.group("owner", epilog=_SECRETS_HELP)
def owner_group() -> None:
    """Domain owners (site administrator only): each manages its own domains."""


@owner_group.command("add", epilog=_SECRETS_HELP)
@click.argument("name")
@_stdin_option
@_json_option
@click.pass_obj
def owner_add(ctx: CliContext, name: str, password_stdin: bool, as_json: bool) -> None:
    """Add an owner NAME (lowercase letters, digits, '.', '_', '-') with a password."""
    with _session(ctx) as s:
        # Checked before asking, so a bad or taken name does not cost a password entry.
        canonical = canonical_owner_name(name)
        if s.directory.get_owner(canonical) is not None:
            raise CliError(f"owner {canonical} already exists")
        password_hash = hash_password(_Passwords(password_stdin).new())
        owner = admin.add_owner(s.directory, name, password_hash, actor=s.actor)
    if as_json:
        print_json(_owner_data(owner, []))
        return
    click.echo(f"added owner {owner.name}")


@owner_group.command("list")
@_json_option
@click.pass_obj
def owner_list(ctx: CliContext, as_json: bool) -> None:
    """List owners and the domains each manages."""
    with _session(ctx) as s:
        owners = admin.list_owners(s.directory, actor=s.actor)
        domains = admin.list_domains(s.directory, actor=s.actor)
    items = [_owner_data(o, domains) for o in owners]
    if as_json:
        print_json(items)
        return
    if not items:
        click.echo("no owners")
        return
    print_table(
        ["OWNER", "DOMAINS", "CREATED"],
        [[i["name"], _cell(i["domains"]), i["created"]] for i in items],
    )


@owner_group.command("remove")
@click.argument("name")
@click.pass_obj
def owner_remove(ctx: CliContext, name: str) -> None:
    """Remove an owner; refused while it still owns domains."""
    with _session(ctx) as s:
        canonical = canonical_owner_name(name)
        admin.remove_owner(s.directory, canonical, actor=s.actor)
    click.echo(f"removed owner {canonical}")


@owner_group.command("passwd", epilog=_SECRETS_HELP)
@click.argument("name")
@_stdin_option
@click.pass_obj
def owner_passwd(ctx: CliContext, name: str, password_stdin: bool) -> None:
    """Set an owner's password."""
    with _session(ctx) as s:
        canonical = canonical_owner_name(name)
        if s.directory.get_owner(canonical) is None:
            raise CliError(f"no such owner {canonical}")
        password_hash = hash_password(_Passwords(password_stdin).new())
        admin.set_owner_password(s.directory, canonical, password_hash, actor=s.actor)
    click.echo(f"password changed for owner {canonical}")


# -- domain ------------------------------------------------------------------------


@click.group("domain", epilog=_WHO_HELP)
def domain_group() -> None:
    """Hosted domains. Adding and removing them is for the site administrator."""


@domain_group.command("add", epilog=_WHO_HELP)
@click.argument("name")
@click.option("--owner", help="Owner who will manage the domain (must exist).")
@_as_option
@_json_option
@click.pass_obj
def domain_add(
    ctx: CliContext,
    name: str,
    owner: str | None,
    as_owner: str | None,
    password_stdin: bool,
    as_json: bool,
) -> None:
    """Host the domain NAME (an IDNA name is stored in its xn-- form)."""
    with _session(ctx, as_owner, _Passwords(password_stdin)) as s:
        domain = admin.add_domain(s.directory, name, owner=owner, actor=s.actor)
    if as_json:
        print_json(_domain_data(domain, 0))
        return
    click.echo(f"added domain {domain.name}" + (f" (owner {domain.owner})" if domain.owner else ""))


@domain_group.command("list", epilog=_WHO_HELP)
@_as_option
@_json_option
@click.pass_obj
def domain_list(ctx: CliContext, as_owner: str | None, password_stdin: bool, as_json: bool) -> None:
    """List hosted domains (with --as: the owner's domains)."""
    with _session(ctx, as_owner, _Passwords(password_stdin)) as s:
        domains = admin.list_domains(s.directory, actor=s.actor)
        counts = {d.name: len(s.directory.list_mailboxes(d.name)) for d in domains}
    items = [_domain_data(d, counts[d.name]) for d in domains]
    if as_json:
        print_json(items)
        return
    if not items:
        click.echo("no domains")
        return
    print_table(
        ["DOMAIN", "OWNER", "MAILBOXES", "CREATED"],
        [[i["name"], _cell(i["owner"]), i["mailboxes"], i["created"]] for i in items],
    )


@domain_group.command("show", epilog=_WHO_HELP)
@click.argument("name")
@_as_option
@_json_option
@click.pass_obj
def domain_show(
    ctx: CliContext, name: str, as_owner: str | None, password_stdin: bool, as_json: bool
) -> None:
    """Show a domain and its mailboxes."""
    with _session(ctx, as_owner, _Passwords(password_stdin)) as s:
        domain = admin.get_domain(s.directory, name, actor=s.actor)
        mailboxes = admin.list_users(s.directory, domain.name, actor=s.actor)
    data = _domain_data(domain, len(mailboxes))
    if as_json:
        print_json({**data, "mailbox_list": [_mailbox_data(m) for m in mailboxes]})
        return
    _print_fields(data)
    if mailboxes:
        click.echo("")
        _print_mailboxes(mailboxes)


@domain_group.command("remove", epilog=_WHO_HELP)
@click.argument("name")
@click.option("--force", is_flag=True, help="Also remove the domain's mailboxes.")
@click.option("--keep-mail", is_flag=True, help="With --force: leave the Maildirs on disk.")
@_as_option
@click.pass_obj
def domain_remove(
    ctx: CliContext,
    name: str,
    force: bool,
    keep_mail: bool,
    as_owner: str | None,
    password_stdin: bool,
) -> None:
    """Stop hosting a domain; refused while it has mailboxes, unless --force."""
    with _session(ctx, as_owner, _Passwords(password_stdin)) as s:
        canonical = hosted_domain(name)
        removed = admin.remove_domain(
            s.directory, s.mail_root, canonical, force=force, keep_mail=keep_mail, actor=s.actor
        )
    extra = f" and {len(removed)} mailbox(es)" if removed else ""
    click.echo(f"removed domain {canonical}{extra}")


@domain_group.command("set-owner")
@click.argument("name")
@click.argument("owner", required=False)
@click.pass_obj
def domain_set_owner(ctx: CliContext, name: str, owner: str | None) -> None:
    """Give domain NAME to OWNER; without OWNER the domain has no owner any more."""
    with _session(ctx) as s:
        domain = admin.set_domain_owner(s.directory, name, owner, actor=s.actor)
    click.echo(f"domain {domain.name}: owner {domain.owner or '(none)'}")


# -- user --------------------------------------------------------------------------


@click.group("user", epilog=_WHO_HELP)
def user_group() -> None:
    """Mailboxes: ADDRESS is local@domain, in a hosted domain."""


@user_group.command("add", epilog=_WHO_HELP)
@click.argument("address")
@_as_option
@_json_option
@click.pass_obj
def user_add(
    ctx: CliContext, address: str, as_owner: str | None, password_stdin: bool, as_json: bool
) -> None:
    """Create a mailbox and its Maildir, with a password."""
    parsed = _address(address)
    passwords = _Passwords(password_stdin)
    with _session(ctx, as_owner, passwords) as s:
        admin.get_domain(s.directory, parsed.domain, actor=s.actor)
        if s.directory.get_mailbox(parsed) is not None:
            raise CliError(f"mailbox {parsed} already exists")
        password_hash = hash_password(passwords.new())
        mailbox = admin.create_user(s.directory, s.mail_root, parsed, password_hash, actor=s.actor)
    if as_json:
        print_json(_mailbox_data(mailbox))
        return
    click.echo(f"added mailbox {mailbox.address} (maildir {mailbox.maildir})")


@user_group.command("list", epilog=_WHO_HELP)
@click.argument("domain", required=False)
@_as_option
@_json_option
@click.pass_obj
def user_list(
    ctx: CliContext, domain: str | None, as_owner: str | None, password_stdin: bool, as_json: bool
) -> None:
    """List mailboxes, of one DOMAIN or of every domain you manage."""
    with _session(ctx, as_owner, _Passwords(password_stdin)) as s:
        mailboxes = admin.list_users(s.directory, domain, actor=s.actor)
    if as_json:
        print_json([_mailbox_data(m) for m in mailboxes])
        return
    if not mailboxes:
        click.echo("no mailboxes")
        return
    _print_mailboxes(mailboxes)


@user_group.command("show", epilog=_WHO_HELP)
@click.argument("address")
@_as_option
@_json_option
@click.pass_obj
def user_show(
    ctx: CliContext, address: str, as_owner: str | None, password_stdin: bool, as_json: bool
) -> None:
    """Show one mailbox."""
    parsed = _address(address)
    with _session(ctx, as_owner, _Passwords(password_stdin)) as s:
        mailbox = admin.get_user(s.directory, parsed, actor=s.actor)
    if as_json:
        print_json(_mailbox_data(mailbox))
        return
    _print_fields(_mailbox_data(mailbox))


@user_group.command("remove", epilog=_WHO_HELP)
@click.argument("address")
@click.option("--keep-mail", is_flag=True, help="Leave the Maildir on disk.")
@_as_option
@click.pass_obj
def user_remove(
    ctx: CliContext, address: str, keep_mail: bool, as_owner: str | None, password_stdin: bool
) -> None:
    """Remove a mailbox and delete its Maildir (unless --keep-mail)."""
    parsed = _address(address)
    with _session(ctx, as_owner, _Passwords(password_stdin)) as s:
        mailbox = admin.remove_user(
            s.directory, s.mail_root, parsed, keep_mail=keep_mail, actor=s.actor
        )
    kept = f"; its mail stays in {mailbox.maildir}" if keep_mail else ""
    click.echo(f"removed mailbox {mailbox.address}{kept}")


@user_group.command("passwd", epilog=_WHO_HELP)
@click.argument("address")
@_as_option
@click.pass_obj
def user_passwd(ctx: CliContext, address: str, as_owner: str | None, password_stdin: bool) -> None:
    """Set a mailbox's password."""
    parsed = _address(address)
    passwords = _Passwords(password_stdin)
    with _session(ctx, as_owner, passwords) as s:
        # Checked before asking, so a typo in ADDRESS does not cost a password entry.
        mailbox = admin.get_user(s.directory, parsed, actor=s.actor)
        admin.set_user_password(
            s.directory, mailbox.address, hash_password(passwords.new()), actor=s.actor
        )
    click.echo(f"password changed for {mailbox.address}")


def _set_enabled(
    ctx: CliContext, address: str, as_owner: str | None, stdin: bool, on: bool
) -> None:
    parsed = _address(address)
    with _session(ctx, as_owner, _Passwords(stdin)) as s:
        admin.set_user_enabled(s.directory, parsed, on, actor=s.actor)
    click.echo(f"{'enabled' if on else 'disabled'} {parsed}")


@user_group.command("enable", epilog=_WHO_HELP)
@click.argument("address")
@_as_option
@click.pass_obj
def user_enable(ctx: CliContext, address: str, as_owner: str | None, password_stdin: bool) -> None:
    """Allow the mailbox to log in again."""
    _set_enabled(ctx, address, as_owner, password_stdin, True)


@user_group.command("disable", epilog=_WHO_HELP)
@click.argument("address")
@_as_option
@click.pass_obj
def user_disable(ctx: CliContext, address: str, as_owner: str | None, password_stdin: bool) -> None:
    """Refuse the mailbox's logins; it still receives mail."""
    _set_enabled(ctx, address, as_owner, password_stdin, False)


def register(group: click.Group) -> None:
    for command in (owner_group, domain_group, user_group):
        group.add_command(command)
