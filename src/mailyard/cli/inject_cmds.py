"""``mailyard sendmail …``: the injector as a subcommand (same as ``mailyard-sendmail``)."""

from __future__ import annotations

import click

from mailyard.cli.context import CliContext
from mailyard.cli.sendmail import run

__all__ = ["register"]


@click.command(
    "sendmail",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                      "help_option_names": []},
    add_help_option=False,
)
@click.pass_context
def sendmail_cmd(ctx: click.Context) -> None:
    """Queue a message read from stdin, with sendmail's flags (-t, -f, -F, -i, -oi …).

    Exit status follows sysexits.h (64 usage, 65 bad data, 75 try again).
    """
    obj: CliContext = ctx.obj
    ctx.exit(run(list(ctx.args), obj.state_dir))


def register(group: click.Group) -> None:
    group.add_command(sendmail_cmd)
