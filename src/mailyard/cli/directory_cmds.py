"""``mailyard owner | domain | user …``: the directory from the command line (VMailMgr's tools).

Who acts and where passwords come from: see ``directory_session``. The
settings commands (``domain set``, ``user set``) are in ``settings_cmds``;
aliases and vacations have their own groups (``alias_cmds``,
``vacation_cmds``).
"""

from __future__ import annotations

import click

from mailyard.cli.context import CliContext, CliError
from mailyard.cli.directory_render import (
    cell,
    domain_data,
    domain_settings_fields,
    mailbox_data,
    mailbox_settings_fields,
    owner_data,
    print_fields,
    print_mailboxes,
)
from mailyard.cli.directory_session import (
    SECRETS_HELP,
    USER_HELP,
    WHO_HELP,
    Passwords,
    as_option,
    json_option,
    parse_cli_address,
    session,
    stdin_option,
    user_option,
)
from mailyard.cli.output import print_json, print_table
from mailyard.cli.settings_cmds import domain_set, user_set
from mailyard.directory import admin
from mailyard.directory.model import canonical_owner_name, hosted_domain
from mailyard.directory.passwords import hash_password

__all__ = ["register"]

_SELF_HELP = f"{WHO_HELP}\n\n{USER_HELP}"


# -- owner -------------------------------------------------------------------------


@click.group("owner", epilog=SECRETS_HELP)
def owner_group() -> None:
    """Domain owners (site administrator only): each manages its own domains."""


@owner_group.command("add", epilog=SECRETS_HELP)
@click.argument("name")
@stdin_option
@json_option
@click.pass_obj
def owner_add(ctx: CliContext, name: str, password_stdin: bool, as_json: bool) -> None:
    """Add an owner NAME (lowercase letters, digits, '.', '_', '-') with a password."""
    with session(ctx) as s:
        # Checked before asking, so a bad or taken name does not cost a password entry.
        canonical = canonical_owner_name(name)
        if s.directory.get_owner(canonical) is not None:
            raise CliError(f"owner {canonical} already exists")
        password_hash = hash_password(Passwords(password_stdin).new())
        owner = admin.add_owner(s.directory, name, password_hash, actor=s.actor)
    if as_json:
        print_json(owner_data(owner, []))
        return
    click.echo(f"added owner {owner.name}")


@owner_group.command("list")
@json_option
@click.pass_obj
def owner_list(ctx: CliContext, as_json: bool) -> None:
    """List owners and the domains each manages."""
    with session(ctx) as s:
        owners = admin.list_owners(s.directory, actor=s.actor)
        domains = admin.list_domains(s.directory, actor=s.actor)
    items = [owner_data(o, domains) for o in owners]
    if as_json:
        print_json(items)
        return
    if not items:
        click.echo("no owners")
        return
    print_table(
        ["OWNER", "DOMAINS", "CREATED"],
        [[i["name"], cell(i["domains"]), i["created"]] for i in items],
    )


@owner_group.command("remove")
@click.argument("name")
@click.pass_obj
def owner_remove(ctx: CliContext, name: str) -> None:
    """Remove an owner; refused while it still owns domains."""
    with session(ctx) as s:
        canonical = canonical_owner_name(name)
        admin.remove_owner(s.directory, canonical, actor=s.actor)
    click.echo(f"removed owner {canonical}")


@owner_group.command("passwd", epilog=SECRETS_HELP)
@click.argument("name")
@stdin_option
@click.pass_obj
def owner_passwd(ctx: CliContext, name: str, password_stdin: bool) -> None:
    """Set an owner's password."""
    with session(ctx) as s:
        canonical = canonical_owner_name(name)
        if s.directory.get_owner(canonical) is None:
            raise CliError(f"no such owner {canonical}")
        password_hash = hash_password(Passwords(password_stdin).new())
        admin.set_owner_password(s.directory, canonical, password_hash, actor=s.actor)
    click.echo(f"password changed for owner {canonical}")


# -- domain ------------------------------------------------------------------------


@click.group("domain", epilog=WHO_HELP)
def domain_group() -> None:
    """Hosted domains. Adding and removing them is for the site administrator."""


@domain_group.command("add", epilog=WHO_HELP)
@click.argument("name")
@click.option("--owner", help="Owner who will manage the domain (must exist).")
@as_option
@json_option
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
    with session(ctx, as_owner, Passwords(password_stdin)) as s:
        domain = admin.add_domain(s.directory, name, owner=owner, actor=s.actor)
    if as_json:
        print_json(domain_data(domain, 0))
        return
    click.echo(f"added domain {domain.name}" + (f" (owner {domain.owner})" if domain.owner else ""))


@domain_group.command("list", epilog=WHO_HELP)
@as_option
@json_option
@click.pass_obj
def domain_list(ctx: CliContext, as_owner: str | None, password_stdin: bool, as_json: bool) -> None:
    """List hosted domains (with --as: the owner's domains)."""
    with session(ctx, as_owner, Passwords(password_stdin)) as s:
        domains = admin.list_domains(s.directory, actor=s.actor)
        counts = {d.name: len(s.directory.list_mailboxes(d.name)) for d in domains}
    items = [domain_data(d, counts[d.name]) for d in domains]
    if as_json:
        print_json(items)
        return
    if not items:
        click.echo("no domains")
        return
    print_table(
        ["DOMAIN", "OWNER", "MAILBOXES", "CREATED"],
        [[i["name"], cell(i["owner"]), i["mailboxes"], i["created"]] for i in items],
    )


@domain_group.command("show", epilog=WHO_HELP)
@click.argument("name")
@as_option
@json_option
@click.pass_obj
def domain_show(
    ctx: CliContext, name: str, as_owner: str | None, password_stdin: bool, as_json: bool
) -> None:
    """Show a domain and its mailboxes."""
    with session(ctx, as_owner, Passwords(password_stdin)) as s:
        domain = admin.get_domain(s.directory, name, actor=s.actor)
        mailboxes = admin.list_users(s.directory, domain.name, actor=s.actor)
    data = domain_data(domain, len(mailboxes))
    if as_json:
        print_json({**data, "mailbox_list": [mailbox_data(m) for m in mailboxes]})
        return
    print_fields(
        {
            "name": domain.name,
            "owner": domain.owner,
            "mailboxes": len(mailboxes),
            "created": data["created"],
            **domain_settings_fields(domain),
        }
    )
    if mailboxes:
        click.echo("")
        print_mailboxes(mailboxes)


@domain_group.command("remove", epilog=WHO_HELP)
@click.argument("name")
@click.option("--force", is_flag=True, help="Also remove the domain's mailboxes.")
@click.option("--keep-mail", is_flag=True, help="With --force: leave the Maildirs on disk.")
@as_option
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
    with session(ctx, as_owner, Passwords(password_stdin)) as s:
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
    with session(ctx) as s:
        domain = admin.set_domain_owner(s.directory, name, owner, actor=s.actor)
    click.echo(f"domain {domain.name}: owner {domain.owner or '(none)'}")


# -- user --------------------------------------------------------------------------


@click.group("user", epilog=WHO_HELP)
def user_group() -> None:
    """Mailboxes: ADDRESS is local@domain, in a hosted domain."""


@user_group.command("add", epilog=WHO_HELP)
@click.argument("address")
@as_option
@json_option
@click.pass_obj
def user_add(
    ctx: CliContext, address: str, as_owner: str | None, password_stdin: bool, as_json: bool
) -> None:
    """Create a mailbox and its Maildir, with a password."""
    parsed = parse_cli_address(address)
    passwords = Passwords(password_stdin)
    with session(ctx, as_owner, passwords) as s:
        admin.get_domain(s.directory, parsed.domain, actor=s.actor)
        if s.directory.get_mailbox(parsed) is not None:
            raise CliError(f"mailbox {parsed} already exists")
        password_hash = hash_password(passwords.new())
        mailbox = admin.create_user(s.directory, s.mail_root, parsed, password_hash, actor=s.actor)
    if as_json:
        print_json(mailbox_data(mailbox))
        return
    click.echo(f"added mailbox {mailbox.address} (maildir {mailbox.maildir})")


@user_group.command("list", epilog=WHO_HELP)
@click.argument("domain", required=False)
@as_option
@json_option
@click.pass_obj
def user_list(
    ctx: CliContext, domain: str | None, as_owner: str | None, password_stdin: bool, as_json: bool
) -> None:
    """List mailboxes, of one DOMAIN or of every domain you manage."""
    with session(ctx, as_owner, Passwords(password_stdin)) as s:
        mailboxes = admin.list_users(s.directory, domain, actor=s.actor)
    if as_json:
        print_json([mailbox_data(m) for m in mailboxes])
        return
    if not mailboxes:
        click.echo("no mailboxes")
        return
    print_mailboxes(mailboxes)


@user_group.command("show", epilog=_SELF_HELP)
@click.argument("address")
@as_option
@user_option
@json_option
@click.pass_obj
def user_show(
    ctx: CliContext,
    address: str,
    as_owner: str | None,
    password_stdin: bool,
    as_user: str | None,
    as_json: bool,
) -> None:
    """Show one mailbox and its settings."""
    parsed = parse_cli_address(address)
    with session(ctx, as_owner, Passwords(password_stdin), as_user) as s:
        mailbox = admin.get_user(s.directory, parsed, actor=s.actor)
        vacation = admin.get_vacation(s.directory, parsed, actor=s.actor)
    if as_json:
        print_json(mailbox_data(mailbox))
        return
    print_fields({**mailbox_settings_fields(mailbox), "vacation": vacation is not None})


@user_group.command("remove", epilog=WHO_HELP)
@click.argument("address")
@click.option("--keep-mail", is_flag=True, help="Leave the Maildir on disk.")
@as_option
@click.pass_obj
def user_remove(
    ctx: CliContext, address: str, keep_mail: bool, as_owner: str | None, password_stdin: bool
) -> None:
    """Remove a mailbox and delete its Maildir (unless --keep-mail)."""
    parsed = parse_cli_address(address)
    with session(ctx, as_owner, Passwords(password_stdin)) as s:
        mailbox = admin.remove_user(
            s.directory, s.mail_root, parsed, keep_mail=keep_mail, actor=s.actor
        )
    kept = f"; its mail stays in {mailbox.maildir}" if keep_mail else ""
    click.echo(f"removed mailbox {mailbox.address}{kept}")


@user_group.command("passwd", epilog=_SELF_HELP)
@click.argument("address")
@as_option
@user_option
@click.pass_obj
def user_passwd(
    ctx: CliContext, address: str, as_owner: str | None, password_stdin: bool, as_user: str | None
) -> None:
    """Set a mailbox's password (with --user: your own, after the current one)."""
    parsed = parse_cli_address(address)
    passwords = Passwords(password_stdin)
    with session(ctx, as_owner, passwords, as_user) as s:
        # Checked before asking, so a typo in ADDRESS does not cost a password entry.
        mailbox = admin.get_user(s.directory, parsed, actor=s.actor)
        admin.set_user_password(
            s.directory, mailbox.address, hash_password(passwords.new()), actor=s.actor
        )
    click.echo(f"password changed for {mailbox.address}")


def _set_enabled(
    ctx: CliContext, address: str, as_owner: str | None, stdin: bool, on: bool
) -> None:
    parsed = parse_cli_address(address)
    with session(ctx, as_owner, Passwords(stdin)) as s:
        admin.set_user_enabled(s.directory, parsed, on, actor=s.actor)
    click.echo(f"{'enabled' if on else 'disabled'} {parsed}")


@user_group.command("enable", epilog=WHO_HELP)
@click.argument("address")
@as_option
@click.pass_obj
def user_enable(ctx: CliContext, address: str, as_owner: str | None, password_stdin: bool) -> None:
    """Allow the mailbox to log in again."""
    _set_enabled(ctx, address, as_owner, password_stdin, True)


@user_group.command("disable", epilog=WHO_HELP)
@click.argument("address")
@as_option
@click.pass_obj
def user_disable(ctx: CliContext, address: str, as_owner: str | None, password_stdin: bool) -> None:
    """Refuse the mailbox's logins; it still receives mail."""
    _set_enabled(ctx, address, as_owner, password_stdin, False)


domain_group.add_command(domain_set)
user_group.add_command(user_set)


def register(group: click.Group) -> None:
    """Add the owner, domain and user groups to ``group``."""
    for command in (owner_group, domain_group, user_group):
        group.add_command(command)
