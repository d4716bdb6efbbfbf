"""``mailyard import qmail | vmailmgr | courier``: migration from qmail + VMailMgr + Courier-IMAP.

Each command reads the old system's files, prints what it created (or,
with ``--dry-run``, would create) and what it could not map; ``--json``
prints the same as one JSON document. docs/migration.md explains the
mapping and the order to run them in.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from mailyard import fsio
from mailyard.cli.context import CliContext, CliError
from mailyard.cli.output import print_json, print_table
from mailyard.directory.errors import DirectoryError
from mailyard.directory.model import hosted_domain
from mailyard.directory.store import Directory
from mailyard.importers import report as report_mod
from mailyard.importers.apply_courier import import_courier
from mailyard.importers.apply_qmail import apply_qmail, read_control
from mailyard.importers.apply_vmailmgr import Adopt, apply_vmailmgr, read_passwd_cdb
from mailyard.importers.courier import CourierError
from mailyard.importers.qmail import plan_qmail
from mailyard.importers.vmailmgr import VpwError, plan_vmailmgr
from mailyard.maildir.errors import StoreError
from mailyard.message.address import AddressError, parse_address

__all__ = ["register"]

# Below this many items a bar only flickers.
_BAR_FROM: Final = 20

_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
_dry_option = click.option("--dry-run", is_flag=True,
                           help="Print the plan; change nothing.")


@contextmanager
def _progress(label: str, enabled: bool) -> Iterator[report_mod.Progress]:
    """A rich progress bar on stderr (for people, not pipes), fed by the appliers."""
    if not enabled or not sys.stderr.isatty():
        yield report_mod.no_progress
        return
    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        if total >= _BAR_FROM:
            bar.update(task, completed=done, total=total)

    with bar:
        yield update


@contextmanager
def _directory(ctx: CliContext) -> Iterator[tuple[Directory, str]]:
    config = ctx.config()
    try:
        directory = Directory.open(config.path("directory.sqlite"))
    except DirectoryError as exc:
        raise CliError(str(exc)) from exc
    try:
        yield directory, config.path("mail")
    except DirectoryError as exc:
        raise CliError(str(exc)) from exc
    finally:
        directory.close()


def _print_report(result: report_mod.ImportReport, as_json: bool,
                  extra: dict[str, object] | None = None) -> None:
    if as_json:
        print_json({**(extra or {}), **result.to_json()})
        return
    verb = "would create" if result.dry_run else "created"
    if result.created:
        click.echo(f"{verb}:")
        print_table(["KIND", "ITEM", "DETAIL"],
                    [[c.kind, c.item, c.detail] for c in result.created])
    else:
        click.echo(f"{verb}: nothing")
    if result.unmapped:
        click.echo("not mapped:")
        print_table(["ITEM", "REASON"], [[u.item, u.reason] for u in result.unmapped])
    for note in result.notes:
        click.echo(note)


@click.group("import")
def import_group() -> None:
    """Import a qmail, VMailMgr or Courier-IMAP installation (docs/migration.md)."""


@import_group.command("qmail")
@click.option("--control", "control_dir", required=True,
              type=click.Path(exists=True, file_okay=False), help="qmail's control folder.")
@click.option("--users", "users_dir", type=click.Path(exists=True, file_okay=False),
              help="qmail's users folder (for users/assign).")
@click.option("--owners", is_flag=True,
              help="Make each virtual domain's Unix user its owner (created, login disabled).")
@_dry_option
@_json_option
@click.pass_obj
def import_qmail(ctx: CliContext, control_dir: str, users_dir: str | None, owners: bool,
                 dry_run: bool, as_json: bool) -> None:
    """Hosted domains from virtualdomains; me, databytes, smtproutes as TOML to paste."""
    plan = plan_qmail(read_control(control_dir, users_dir), owners=owners)
    if not as_json:
        click.echo("plan:")
        print_table(["DOMAIN", "PREFIX", "UNIX USER", "OWNER"],
                    [[d.name, d.prefix, d.user, d.owner or "-"] for d in plan.domains])
    with _directory(ctx) as (directory, _), _progress("domains", not as_json) as progress:
        result = apply_qmail(directory, plan, dry_run=dry_run, progress=progress)
    _print_report(result, as_json, {"config": list(plan.config)})


def _domain_of(home: str, domain: str | None) -> str:
    try:
        return hosted_domain(domain or os.path.basename(os.path.normpath(home)))
    except DirectoryError as exc:
        raise CliError(f"{exc} (name the domain with --domain)") from exc


@import_group.command("vmailmgr")
@click.argument("home", type=click.Path(exists=True, file_okay=False))
@click.option("--domain", help="The virtual domain (default: the folder's name).")
@click.option("--owner", help="Owner of the domain if it is created (created if missing).")
@click.option("--move", is_flag=True,
              help="Rename the Maildirs into the state folder instead of linking them.")
@_dry_option
@_json_option
@click.pass_obj
def import_vmailmgr(ctx: CliContext, home: str, domain: str | None, owner: str | None,
                    move: bool, dry_run: bool, as_json: bool) -> None:
    """A VMailMgr domain: passwd.cdb's users, their Maildirs adopted in place."""
    home = os.path.abspath(home)
    name = _domain_of(home, domain)
    try:
        entries, bad = read_passwd_cdb(home)
    except (OSError, VpwError, RuntimeError, ValueError) as exc:
        raise CliError(f"cannot read {home}/passwd.cdb: {exc}") from exc
    plan = plan_vmailmgr(entries, name, home)
    plan = type(plan)(plan.domain, plan.mailboxes, plan.aliases, plan.catch_all,
                      (*bad, *plan.unmapped), plan.notes)
    mode = Adopt.MOVE if move else Adopt.LINK
    with _directory(ctx) as (directory, mail_root), \
            _progress("mailboxes", not as_json) as progress:
        result = apply_vmailmgr(directory, mail_root, plan, home=home, owner=owner, mode=mode,
                                dry_run=dry_run, progress=progress)
    _print_report(result, as_json, {"domain": plan.domain})


@import_group.command("courier")
@click.argument("maildir", type=click.Path(exists=True, file_okay=False))
@click.option("--user", "user", required=True, help="The mailbox whose Maildir this is.")
@click.option("--force", is_flag=True, help="Replace uid lists mailyard already keeps.")
@_dry_option
@_json_option
@click.pass_obj
def import_courier_cmd(ctx: CliContext, maildir: str, user: str, force: bool, dry_run: bool,
                       as_json: bool) -> None:
    """Courier-IMAP's UIDVALIDITY, UIDs, keywords and subscriptions of one Maildir."""
    try:
        address = parse_address(user.strip())
    except AddressError as exc:
        raise CliError(f"invalid address {user!r}: {exc}") from exc
    with _directory(ctx) as (directory, mail_root):
        mailbox = directory.get_mailbox(address)
        if mailbox is None:
            raise CliError(f"no such mailbox {address}")
        root = fsio.safe_join(mail_root, mailbox.maildir)
    if os.path.realpath(root) != os.path.realpath(maildir):
        raise CliError(f"{maildir} is not the Maildir of {address} ({root}); adopt it first "
                       "with 'mailyard import vmailmgr'")
    try:
        with _progress("folders", not as_json) as progress:
            result = import_courier(root, dry_run=dry_run, force=force, progress=progress)
    except (OSError, CourierError) as exc:
        raise CliError(f"cannot import {maildir}: {exc}") from exc
    except StoreError as exc:
        raise CliError(f"cannot import {maildir}: {exc.reason}") from exc
    _print_report(result, as_json, {"user": str(address)})


def register(group: click.Group) -> None:
    """Add ``mailyard import …`` to the main group."""
    group.add_command(import_group)
