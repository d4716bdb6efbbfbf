"""``mailyard alias add | list | show | remove``: addresses without a mailbox, and mailing lists.

An alias sends its mail on to its targets (local or remote addresses).
With ``--owner`` it is a mailing list: the expanded copies carry the owner
as envelope sender, so bounces go to the owner, not to each poster.
"""

from __future__ import annotations

import click

from mailyard.cli.context import CliContext
from mailyard.cli.directory_render import alias_data, cell, print_fields, stamp
from mailyard.cli.directory_session import (
    WHO_HELP,
    Passwords,
    as_option,
    json_option,
    parse_cli_address,
    session,
)
from mailyard.cli.output import print_json, print_table
from mailyard.directory import admin
from mailyard.directory.errors import NotFound
from mailyard.directory.model import Alias

__all__ = ["register"]

# A list may have thousands of targets; the table shows the first few.
_TABLE_TARGETS = 3


def _targets_cell(alias: Alias) -> str:
    shown = ", ".join(alias.targets[:_TABLE_TARGETS])
    more = len(alias.targets) - _TABLE_TARGETS
    return f"{shown}, … ({more} more)" if more > 0 else shown


@click.group("alias", epilog=WHO_HELP)
def alias_group() -> None:
    """Aliases: ADDRESS is local@domain in a hosted domain, without a mailbox."""


@alias_group.command("add", epilog=WHO_HELP)
@click.argument("address")
@click.argument("targets", nargs=-1, required=True, metavar="TARGET [TARGET…]")
@click.option("--owner", "list_owner", metavar="LIST-OWNER", help="Make it a mailing list.")
@click.option("--replace", is_flag=True, help="Replace the alias if it exists already.")
@as_option
@json_option
@click.pass_obj
def alias_add(
    ctx: CliContext,
    address: str,
    targets: tuple[str, ...],
    list_owner: str | None,
    replace: bool,
    as_owner: str | None,
    password_stdin: bool,
    as_json: bool,
) -> None:
    """Send mail for ADDRESS to the TARGETs."""
    parsed = parse_cli_address(address)
    with session(ctx, as_owner, Passwords(password_stdin)) as s:
        d, actor = s.directory, s.actor
        existing = replace and d.get_alias(parsed) is not None
        if existing:
            alias = admin.update_alias(d, parsed, targets, owner=list_owner, actor=actor)
        else:
            alias = admin.add_alias(d, parsed, targets, owner=list_owner, actor=actor)
    if as_json:
        print_json(alias_data(alias))
        return
    verb = "replaced" if existing else "added"
    kind = f"list (owner {alias.owner})" if alias.owner else "alias"
    click.echo(f"{verb} {kind} {alias.address} with {len(alias.targets)} target(s)")


@alias_group.command("list", epilog=WHO_HELP)
@click.argument("domain", required=False)
@as_option
@json_option
@click.pass_obj
def alias_list(
    ctx: CliContext, domain: str | None, as_owner: str | None, password_stdin: bool, as_json: bool
) -> None:
    """List aliases, of one DOMAIN or of every domain you manage."""
    with session(ctx, as_owner, Passwords(password_stdin)) as s:
        aliases = admin.list_aliases(s.directory, domain, actor=s.actor)
    if as_json:
        print_json([alias_data(a) for a in aliases])
        return
    if not aliases:
        click.echo("no aliases")
        return
    print_table(
        ["ALIAS", "TARGETS", "LIST OWNER", "CREATED"],
        [[str(a.address), _targets_cell(a), cell(a.owner), stamp(a.created)] for a in aliases],
    )


@alias_group.command("show", epilog=WHO_HELP)
@click.argument("address")
@as_option
@json_option
@click.pass_obj
def alias_show(
    ctx: CliContext, address: str, as_owner: str | None, password_stdin: bool, as_json: bool
) -> None:
    """Show one alias and all its targets."""
    parsed = parse_cli_address(address)
    with session(ctx, as_owner, Passwords(password_stdin)) as s:
        alias = admin.get_alias(s.directory, parsed, actor=s.actor)
    if as_json:
        print_json(alias_data(alias))
        return
    print_fields(
        {
            "address": str(alias.address),
            "list owner": alias.owner,
            "targets": len(alias.targets),
            "created": stamp(alias.created),
        }
    )
    click.echo("")
    for target in alias.targets:
        click.echo(target)


@alias_group.command("remove", epilog=WHO_HELP)
@click.argument("address")
@as_option
@click.pass_obj
def alias_remove(ctx: CliContext, address: str, as_owner: str | None, password_stdin: bool) -> None:
    """Remove an alias."""
    parsed = parse_cli_address(address)
    with session(ctx, as_owner, Passwords(password_stdin)) as s:
        try:
            alias = admin.remove_alias(s.directory, parsed, actor=s.actor)
        except NotFound:
            if s.directory.get_mailbox(parsed) is None:
                raise
            raise NotFound(
                f"{parsed} is a mailbox, not an alias (see 'mailyard user remove')"
            ) from None
    click.echo(f"removed alias {alias.address}")


def register(group: click.Group) -> None:
    """Add the alias group to ``group``."""
    group.add_command(alias_group)
