"""``mailyard``: one console script, one click group, subcommands per area.

Each area registers its commands in its own module (directory_cmds,
queue_cmds, serve_cmds); this module only builds the group and the shared
``--state`` option.
"""

from __future__ import annotations

import os
import sys

import click

from mailyard import __version__
from mailyard.cli.context import CliContext, CliError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--state",
    "state_dir",
    type=click.Path(file_okay=False),
    default=lambda: os.environ.get("MAILYARD_STATE", "./var"),
    show_default="$MAILYARD_STATE or ./var",
    help="State folder (configuration, directory, queue, mail).",
)
@click.version_option(__version__, prog_name="mailyard")
@click.pass_context
def cli(ctx: click.Context, state_dir: str) -> None:
    """mailyard: a mail server for virtual-domain hosting."""
    ctx.obj = CliContext(state_dir=os.path.abspath(state_dir))


def _register() -> None:
    # Imported here so each command module can import `cli` without a cycle.
    from mailyard.cli import directory_cmds, inject_cmds, queue_cmds, serve_cmds
    from mailyard.cli import check_cmds, status_cmds

    for module in (directory_cmds, queue_cmds, serve_cmds, inject_cmds, status_cmds, check_cmds):
        module.register(cli)
    __import__("mailyard.cli.import_cmds", fromlist=["register"]).register(cli)
    __import__("mailyard.cli.alias_cmds", fromlist=["register"]).register(cli)
    __import__("mailyard.cli.vacation_cmds", fromlist=["register"]).register(cli)
    from mailyard.cli import ctl_cmds  # mailyard ctl status|reload|stop (server/supervisor.py)

    ctl_cmds.register(cli)


def main() -> None:
    _register()
    try:
        # Without standalone mode click hands back ctx.exit(code) as the
        # return value instead of raising (mailyard sendmail's sysexits).
        status = cli.main(standalone_mode=False)
    except CliError as exc:
        click.echo(f"mailyard: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("mailyard: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    if isinstance(status, int) and status:
        sys.exit(status)
