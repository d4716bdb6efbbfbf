"""``mailyard init``, ``mailyard serve [--check]`` and ``mailyard demo``."""

from __future__ import annotations

import os
import secrets
import sys
from typing import Final

import click

from mailyard.cli.context import CliContext, CliError
from mailyard.cli.init_state import init_state
from mailyard.config import Config, ConfigError, load_config
from mailyard.directory.store import Directory
from mailyard.dispatch.routes import SettingsError
from mailyard.dispatch.settings import RemoteSettings, settings_from_config
from mailyard.log import event
from mailyard.observe.recorder import setup_process
from mailyard.message.address import AddressError, parse_address
from mailyard.server.tls import TlsError, ensure_self_signed

__all__ = ["register"]

DEMO_DOMAIN: Final = "example.test"
DEMO_USER: Final = "demo"
DEMO_PASSWORD_FILE: Final = "demo-password"  # noqa: S105 (a file name, not a password)


@click.command("init")
@click.option("--hostname", help="Host name for greetings and Received: lines (default: FQDN).")
@click.option("--default-domain", default="", help="Domain for logins given as a bare user name.")
@click.option("--postmaster", default="",
              help="Mailbox for double bounces and postmaster mail (default postmaster@HOST).")
@click.pass_obj
def init_cmd(ctx: CliContext, hostname: str | None, default_domain: str, postmaster: str) -> None:
    """Create a state folder with a commented mailyard.toml."""
    if postmaster:
        try:
            postmaster = str(parse_address(postmaster))
        except AddressError as exc:
            raise CliError(f"invalid postmaster address {postmaster!r}: {exc}") from exc
    if not init_state(ctx.state_dir, hostname, default_domain, postmaster):
        raise CliError(f"{ctx.state_dir} is already initialised")
    _open_directory(ctx).close()
    click.echo(f"initialised {ctx.state_dir}; edit {ctx.state_dir}/mailyard.toml, then "
               "add a domain: mailyard domain add example.com")


@click.command("serve")
@click.option("--check", is_flag=True, help="Validate the configuration and exit.")
@click.pass_obj
def serve_cmd(ctx: CliContext, check: bool) -> None:
    """Run the server in the foreground (logs to stderr; SIGTERM/SIGINT stop it,
    SIGHUP reloads; docs/supervision.md)."""
    config = ctx.config()  # refuses a folder that is not initialised, or a bad config
    remote = _remote_settings(config)
    if check:
        from mailyard.server.app import load_tls

        _open_directory(ctx).close()
        try:
            tls = load_tls(config)
        except TlsError as exc:
            raise CliError(f"tls: {exc}") from exc
        click.echo(f"configuration ok: {ctx.state_dir}/mailyard.toml")
        routes = len(remote.routes.routes)
        click.echo(f"remote delivery: {remote.mode.value}"
                   + (f", {routes} static route(s)" if routes else ""))
        if tls is None:
            click.echo("tls: off (no certificate)")
        else:
            click.echo(f"tls: {tls.info.subject}, serial {tls.info.serial:x}, "
                       f"expires {tls.info.not_after:%Y-%m-%d}")
        from mailyard.server.access import check_access

        for line in check_access(config):
            click.echo(line)
        click.echo(_workers_line(config))
        return
    _serve(ctx, announce=False)


def _workers_line(config: Config) -> str:
    """What ``[server]`` will start, and as whom (docs/supervision.md)."""
    from mailyard.server.privileges import (
        PrivilegeError,
        plan_identities,
        queue_writer_separate,
    )

    try:
        run_as = plan_identities(config)
    except PrivilegeError as exc:
        raise CliError(f"server.user: {exc}") from exc
    srv = config.server
    from mailyard.dispatch.eventloop import EventLoopError, check_event_loop

    try:
        check_event_loop(srv.event_loop)
    except EventLoopError as exc:
        raise CliError(str(exc)) from exc
    mailbox = max(srv.imap_workers, srv.pop3_workers)
    if run_as.smtp is None:
        who = "as the invoking user"
    elif run_as.mail is not None and run_as.mail.name != run_as.smtp.name:
        who = f"smtp as {run_as.smtp.name}, the rest as {run_as.mail.name}"
    else:
        who = f"as {run_as.smtp.name}"
    queue = "queue writer, " if queue_writer_separate(config) else ""
    return (f"workers: smtp, {queue}{mailbox} mailbox (imap {srv.imap_workers}, pop3 "
            f"{srv.pop3_workers}), delivery; {who}; event loop {srv.event_loop}")


@click.command("demo")
@click.pass_obj
def demo_cmd(ctx: CliContext) -> None:
    """Set up a demo state folder on first run (example.test, demo user) and serve it."""
    created = init_state(ctx.state_dir, "mx.example.test", DEMO_DOMAIN,
                         postmaster=f"{DEMO_USER}@{DEMO_DOMAIN}")
    password_path = os.path.join(ctx.state_dir, DEMO_PASSWORD_FILE)
    if created:
        password = secrets.token_urlsafe(12)
        _create_demo(ctx, password)
        with open(os.open(password_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(password + "\n")
        click.echo(f"created demo state folder {ctx.state_dir}")
    elif ensure_self_signed(ctx.config()):
        # A demo folder from before TLS: give it its certificate now.
        click.echo(f"created a self-signed certificate in {ctx.state_dir}/tls")
    _serve(ctx, announce=True)


def _open_directory(ctx: CliContext) -> Directory:

    return Directory.open(ctx.config().path("directory.sqlite"))


def _create_demo(ctx: CliContext, password: str) -> None:
    from mailyard.directory.admin import create_user
    from mailyard.directory.passwords import hash_password
    from mailyard.message.address import Address

    directory = _open_directory(ctx)
    try:
        directory.add_domain(DEMO_DOMAIN)
        create_user(directory, ctx.config().path("mail"), Address(DEMO_USER, DEMO_DOMAIN),
                    hash_password(password))
    finally:
        directory.close()


_BANNER: Final = (
    ("smtp", "SMTP (MX)"),
    ("submission", "submission"),
    ("smtps", "SMTPS"),
    ("pop3", "POP3"),
    ("pop3s", "POP3S"),
    ("imap", "IMAP"),
    ("imaps", "IMAPS"),
)


def _announce(ctx: CliContext, bound: dict[str, list[str]]) -> None:
    password_path = os.path.join(ctx.state_dir, DEMO_PASSWORD_FILE)
    try:
        with open(password_path) as handle:
            password = handle.read().strip()
    except OSError:
        password = "(see " + password_path + ")"
    smtp = bound.get("smtp", ["127.0.0.1:2525"])[0]
    pop3 = bound.get("pop3", ["127.0.0.1:2110"])[0]
    smtp_host, _, smtp_port = smtp.rpartition(":")
    pop3_host, _, pop3_port = pop3.rpartition(":")
    address = f"{DEMO_USER}@{DEMO_DOMAIN}"
    lines = ["", "mailyard is running (Ctrl-C stops it)."]
    lines += [f"  {label:<10} {bound[name][0]}" for name, label in _BANNER if bound.get(name)]
    lines += [
        f"  mailbox    {address}   password: {password}",
        f"  TLS        self-signed certificate {ctx.state_dir}/tls/cert.pem",
        "",
        "Try it:",
        f"  swaks --server {smtp_host} --port {smtp_port} --to {address}",
        f"  python3 -c \"import smtplib; s=smtplib.SMTP('{smtp_host}', {smtp_port}); "
        f"s.sendmail('me@example.org', ['{address}'], 'Subject: hi\\r\\n\\r\\nhello'); s.quit()\"",
        f"  python3 -c \"import poplib; p=poplib.POP3('{pop3_host}', {pop3_port}); "
        f"p.user('{address}'); p.pass_('{password}'); print(p.stat()); p.quit()\"",
    ]
    if bound.get("imaps"):
        imap_host, _, imap_port = bound["imaps"][0].rpartition(":")
        cert = os.path.join(ctx.state_dir, "tls", "cert.pem")
        lines.append(
            f"  python3 -c \"import imaplib, ssl; m=imaplib.IMAP4_SSL('{imap_host}', {imap_port}, "
            f"ssl_context=ssl.create_default_context(cafile='{cert}')); "
            f"m.login('{address}', '{password}'); print(m.select('INBOX')); m.logout()\""
        )
    if bound.get("submission"):
        sub_host, _, sub_port = bound["submission"][0].rpartition(":")
        lines.append(
            f"  swaks --server {sub_host} --port {sub_port} -tls --auth-user {address} "
            f"--auth-password '{password}' --from {address} --to someone@example.org"
        )
    lines.append("")
    click.echo("\n".join(lines))


def _remote_settings(config: Config) -> RemoteSettings:
    """The remote-delivery settings, checked in depth (routes, resolver …)."""
    try:
        return settings_from_config(config)
    except SettingsError as exc:
        raise CliError(f"configuration: {exc}") from exc


def _serve(ctx: CliContext, *, announce: bool) -> None:
    from mailyard.server.privileges import PrivilegeError
    from mailyard.server.supervisor import StartError, run_server

    try:
        config = load_config(ctx.state_dir)
    except ConfigError as exc:
        raise CliError(f"configuration: {exc}") from exc
    _remote_settings(config)  # a bad route must stop the start, not loop the worker
    # The supervisor's logs, and its metrics folder started afresh before any worker runs.
    setup_process(config, "supervisor")
    event("starting", state=ctx.state_dir, hostname=config.hostname, pid=os.getpid())

    def on_ready(bound: dict[str, list[str]]) -> None:
        if announce:
            _announce(ctx, bound)
        sys.stdout.flush()

    try:
        run_server(config, on_ready)
    except TlsError as exc:
        raise CliError(f"cannot start: tls: {exc}") from exc
    except PrivilegeError as exc:
        raise CliError(f"cannot start: server.user: {exc}") from exc
    except StartError as exc:
        raise CliError(f"cannot start: {exc}") from exc
    except OSError as exc:
        raise CliError(f"cannot start: {exc.strerror or exc}") from exc


def register(group: click.Group) -> None:
    for command in (init_cmd, serve_cmd, demo_cmd):
        group.add_command(command)
