"""``mailyard vacation set | show | off``: a mailbox's autoresponder (RFC 3834).

The reply goes at most once per sender per ``--interval-days`` (7 by
default, RFC 3834 §2's recommendation), never to lists, bulk mail,
automatic mail or null senders; the delivery side decides that. A user
manages its own with ``--user ADDRESS``.
"""

from __future__ import annotations

import time
from typing import IO

import click

from mailyard.cli.context import CliContext, CliError
from mailyard.cli.directory_render import (
    echo_body,
    print_fields,
    vacation_data,
    vacation_fields,
)
from mailyard.cli.directory_session import (
    USER_HELP,
    WHO_HELP,
    Passwords,
    as_option,
    json_option,
    parse_cli_address,
    session,
    user_option,
)
from mailyard.cli.output import print_json
from mailyard.cli.values import when_option
from mailyard.directory import admin
from mailyard.directory.admin_settings import MAX_INTERVAL_DAYS, MAX_VACATION_BODY
from mailyard.directory.model import Vacation

__all__ = ["register"]

_HELP = f"{WHO_HELP}\n\n{USER_HELP}"
_DATE, _on_date = when_option(never=False)


def _read_body(body: str | None, body_file: IO[str] | None, password_stdin: bool) -> str:
    if (body is None) == (body_file is None):
        raise CliError("give the message as --body TEXT or --body-file FILE (one of them)")
    if body is not None:
        return body
    assert body_file is not None
    if password_stdin and body_file.name == "<stdin>":
        raise CliError("--body-file - and --password-stdin cannot both read standard input")
    # One character more than allowed, so a longer file is refused, not cut.
    return body_file.read(MAX_VACATION_BODY + 1)


@click.group("vacation", epilog=_HELP)
def vacation_group() -> None:
    """Autoresponder of a mailbox: ADDRESS is local@domain."""


@vacation_group.command("set", epilog=_HELP)
@click.argument("address")
@click.option("--subject", required=True, help="Subject of the reply.")
@click.option("--body", metavar="TEXT", help="Text of the reply.")
@click.option(
    "--body-file",
    type=click.File("r", encoding="utf-8"),
    metavar="FILE",
    help="Read the text of the reply from FILE ('-': standard input).",
)
@click.option(
    "--start", metavar=_DATE, callback=_on_date, help="First day of replies (default: now)."
)
@click.option("--end", metavar=_DATE, callback=_on_date, help="No replies from then on.")
@click.option(
    "--interval-days",
    type=click.IntRange(1, MAX_INTERVAL_DAYS),
    default=7,
    show_default=True,
    help="Reply to one sender at most once per this many days.",
)
@as_option
@user_option
@json_option
@click.pass_obj
def vacation_set(
    ctx: CliContext,
    address: str,
    subject: str,
    body: str | None,
    body_file: IO[str] | None,
    start: float | None,
    end: float | None,
    interval_days: int,
    as_owner: str | None,
    password_stdin: bool,
    as_user: str | None,
    as_json: bool,
) -> None:
    """Turn the autoresponder on (or replace it)."""
    parsed = parse_cli_address(address)
    text = _read_body(body, body_file, password_stdin)
    wanted = Vacation(parsed, subject, text, start, end, interval_days)
    with session(ctx, as_owner, Passwords(password_stdin), as_user) as s:
        vacation = admin.set_vacation(s.directory, parsed, wanted, actor=s.actor)
    now = time.time()
    if as_json:
        print_json(vacation_data(vacation, now))
        return
    state = "active" if vacation.active(now) else "set, not active now"
    click.echo(f"vacation message for {vacation.address} {state}")


@vacation_group.command("show", epilog=_HELP)
@click.argument("address")
@as_option
@user_option
@json_option
@click.pass_obj
def vacation_show(
    ctx: CliContext,
    address: str,
    as_owner: str | None,
    password_stdin: bool,
    as_user: str | None,
    as_json: bool,
) -> None:
    """Show the autoresponder of a mailbox."""
    parsed = parse_cli_address(address)
    with session(ctx, as_owner, Passwords(password_stdin), as_user) as s:
        vacation = admin.get_vacation(s.directory, parsed, actor=s.actor)
    now = time.time()
    if as_json:
        print_json(None if vacation is None else vacation_data(vacation, now))
        return
    if vacation is None:
        click.echo(f"no vacation message for {parsed}")
        return
    print_fields(vacation_fields(vacation, now))
    echo_body(vacation.body)


@vacation_group.command("off", epilog=_HELP)
@click.argument("address")
@as_option
@user_option
@click.pass_obj
def vacation_off(
    ctx: CliContext, address: str, as_owner: str | None, password_stdin: bool, as_user: str | None
) -> None:
    """Turn the autoresponder off (and forget whom it replied to)."""
    parsed = parse_cli_address(address)
    with session(ctx, as_owner, Passwords(password_stdin), as_user) as s:
        admin.clear_vacation(s.directory, parsed, actor=s.actor)
    click.echo(f"vacation message for {parsed} turned off")


def register(group: click.Group) -> None:
    """Add the vacation group to ``group``."""
    group.add_command(vacation_group)
