"""``mailyard user set`` and ``domain set``: VMailMgr's vpwentry settings, domain defaults.

Only the options given change; the rest stays. Sizes are bytes or a number
with k, M, G or T (binary multiples); dates are ISO 8601, local time
unless they carry an offset (see ``values``). For a mailbox a limit of
``default`` uses the domain's default and ``none`` (or 0) means no limit;
for a domain ``none`` means no limit.
"""

from __future__ import annotations

import click

from mailyard.cli.context import CliContext, CliError
from mailyard.cli.directory_render import (
    domain_data,
    domain_settings_fields,
    mailbox_data,
    mailbox_settings_fields,
    print_fields,
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
from mailyard.cli.values import limit_option, when_option
from mailyard.directory import admin

__all__ = ["domain_set", "user_set"]

_USER_SIZE, _on_user_size = limit_option("size", ("none", "default"))
_USER_COUNT, _on_user_count = limit_option("count", ("none", "default"))
_DOMAIN_SIZE, _on_domain_size = limit_option("size", ("none",))
_DOMAIN_COUNT, _on_domain_count = limit_option("count", ("none",))
_WHEN, _on_when = when_option(never=True)


def _mailbox_limit(value: int | str | None) -> int | None:
    """``default`` = the domain's (None), ``none`` = no limit (0)."""
    if value == "default":
        return None
    if value == "none":
        return 0
    assert isinstance(value, int)
    return value


def _domain_limit(value: int | str | None) -> int | None:
    if value == "none":
        return None
    assert isinstance(value, int)
    return value


def _list_change(
    values: tuple[str, ...], clear: bool, option: str, clear_option: str
) -> tuple[str, ...] | None:
    """A repeatable address option and its --no-… twin: the new list, or None (unchanged)."""
    if values and clear:
        raise CliError(f"{option} and {clear_option} cannot be used together")
    if clear:
        return ()
    return values or None


def _nothing_to_change(changes: dict[str, object]) -> None:
    if not changes:
        raise CliError("nothing to change: give at least one option (see --help)")


@click.command("set", epilog=f"{WHO_HELP}\n\n{USER_HELP}")
@click.argument("address")
@click.option("--quota", metavar=_USER_SIZE, callback=_on_user_size, help="Mailbox size limit.")
@click.option(
    "--quota-messages", metavar=_USER_COUNT, callback=_on_user_count, help="Message count limit."
)
@click.option(
    "--max-message-size",
    metavar=_USER_SIZE,
    callback=_on_user_size,
    help="Largest message accepted.",
)
@click.option("--forward", "forwards", multiple=True, metavar="ADDR", help="Forward to (repeat).")
@click.option("--no-forward", is_flag=True, help="Remove every forward.")
@click.option("--keep-copy/--no-keep-copy", default=None, help="Keep a copy when forwarding.")
@click.option("--expires", metavar=_WHEN, callback=_on_when, help="When the account expires.")
@click.option("--display-name", metavar="TEXT", help="Display name or comment.")
@click.option("--receive/--no-receive", default=None, help="Accept mail.")
@click.option("--login/--no-login", default=None, help="Allow logins.")
@as_option
@user_option
@json_option
@click.pass_obj
def user_set(
    ctx: CliContext,
    address: str,
    quota: int | str | None,
    quota_messages: int | str | None,
    max_message_size: int | str | None,
    forwards: tuple[str, ...],
    no_forward: bool,
    keep_copy: bool | None,
    expires: float | str | None,
    display_name: str | None,
    receive: bool | None,
    login: bool | None,
    as_owner: str | None,
    password_stdin: bool,
    as_user: str | None,
    as_json: bool,
) -> None:
    """Change a mailbox's settings (with --user: only your forwards and keep-copy)."""
    parsed = parse_cli_address(address)
    changes: dict[str, object] = {}
    if quota is not None:
        changes["quota_bytes"] = _mailbox_limit(quota)
    if quota_messages is not None:
        changes["quota_messages"] = _mailbox_limit(quota_messages)
    if max_message_size is not None:
        changes["max_message_size"] = _mailbox_limit(max_message_size)
    new_forwards = _list_change(forwards, no_forward, "--forward", "--no-forward")
    if new_forwards is not None:
        changes["forwards"] = new_forwards
    if expires is not None:
        changes["expires"] = None if expires == "never" else expires
    optional = {
        "keep_copy": keep_copy,
        "display_name": display_name,
        "receive": receive,
        "enabled": login,
    }
    changes.update({key: value for key, value in optional.items() if value is not None})
    _nothing_to_change(changes)
    with session(ctx, as_owner, Passwords(password_stdin), as_user) as s:
        mailbox = admin.set_user_settings(s.directory, parsed, actor=s.actor, **changes)
    if as_json:
        print_json(mailbox_data(mailbox))
        return
    click.echo(f"updated {mailbox.address}")
    print_fields(mailbox_settings_fields(mailbox))


@click.command("set", epilog=WHO_HELP)
@click.argument("name")
@click.option("--alias-of", metavar="DOMAIN", help="Make NAME an alias of this hosted domain.")
@click.option("--no-alias", is_flag=True, help="Make NAME an ordinary domain again.")
@click.option("--catch-all", multiple=True, metavar="ADDR", help="Catch-all target (repeat).")
@click.option("--no-catch-all", is_flag=True, help="Remove the catch-all.")
@click.option(
    "--extension-chars",
    metavar="CHARS",
    help="Separators of user+ext addresses, from + - = _ . ('none': no extensions).",
)
@click.option(
    "--quota", metavar=_DOMAIN_SIZE, callback=_on_domain_size, help="Default mailbox size limit."
)
@click.option(
    "--quota-messages",
    metavar=_DOMAIN_COUNT,
    callback=_on_domain_count,
    help="Default message count limit.",
)
@click.option(
    "--total-quota",
    metavar=_DOMAIN_SIZE,
    callback=_on_domain_size,
    help="What all mailboxes together may hold.",
)
@click.option(
    "--max-message-size",
    metavar=_DOMAIN_SIZE,
    callback=_on_domain_size,
    help="Default largest message.",
)
@as_option
@json_option
@click.pass_obj
def domain_set(
    ctx: CliContext,
    name: str,
    alias_of: str | None,
    no_alias: bool,
    catch_all: tuple[str, ...],
    no_catch_all: bool,
    extension_chars: str | None,
    quota: int | str | None,
    quota_messages: int | str | None,
    total_quota: int | str | None,
    max_message_size: int | str | None,
    as_owner: str | None,
    password_stdin: bool,
    as_json: bool,
) -> None:
    """Change a domain's settings: domain alias, catch-all, extensions, default quotas."""
    changes: dict[str, object] = {}
    if alias_of is not None and no_alias:
        raise CliError("--alias-of and --no-alias cannot be used together")
    if alias_of is not None or no_alias:
        changes["alias_of"] = alias_of
    new_catch_all = _list_change(catch_all, no_catch_all, "--catch-all", "--no-catch-all")
    if new_catch_all is not None:
        changes["catch_all"] = new_catch_all
    if extension_chars is not None:
        changes["extension_chars"] = "" if extension_chars == "none" else extension_chars
    limits = {
        "quota_bytes": quota,
        "quota_messages": quota_messages,
        "total_quota_bytes": total_quota,
        "max_message_size": max_message_size,
    }
    changes.update({k: _domain_limit(v) for k, v in limits.items() if v is not None})
    _nothing_to_change(changes)
    with session(ctx, as_owner, Passwords(password_stdin)) as s:
        domain = admin.set_domain_settings(s.directory, name, actor=s.actor, **changes)
        mailboxes = len(s.directory.list_mailboxes(domain.name))
    if as_json:
        print_json(domain_data(domain, mailboxes))
        return
    click.echo(f"updated domain {domain.name}")
    print_fields(domain_settings_fields(domain))
