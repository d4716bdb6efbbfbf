"""``mailyard ctl status|reload|stop``: svc's role, through ``run/control.sock``."""

from __future__ import annotations

import json
import os
import time
from typing import Any, Final

import click

from mailyard.cli.context import CliContext, CliError
from mailyard.cli.control_client import ControlError, ServerNotRunning, control

__all__ = ["register"]

STOP_WAIT: Final = 60.0  # seconds `ctl stop --wait` waits for the server to be gone


def _ask(ctx: CliContext, command: str) -> dict[str, Any]:
    path = ctx.config().path("run", "control.sock")
    try:
        reply = control(path, command)
    except ServerNotRunning as exc:
        raise CliError(f"no server is running for {ctx.state_dir}") from exc
    except ControlError as exc:
        raise CliError(str(exc)) from exc
    if not reply.get("ok"):
        raise CliError(str(reply.get("error") or f"the server refused {command!r}"))
    return reply


@click.group("ctl")
def ctl_group() -> None:
    """Control the running server (status, reload, stop)."""


@ctl_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="The server's whole answer, as JSON.")
@click.pass_obj
def status_cmd(ctx: CliContext, as_json: bool) -> None:
    """Processes, uptimes, restarts and open connections."""
    reply = _ask(ctx, "status")
    if as_json:
        click.echo(json.dumps(reply, indent=2, sort_keys=True))
        return
    click.echo(f"server pid {reply.get('pid')}, up {_duration(reply.get('uptime'))}")
    for worker in reply.get("workers") or []:
        state = " (retiring)" if worker.get("retiring") else ""
        user = f" as {worker['user']}" if worker.get("user") else ""
        click.echo(f"  {worker.get('role')}[{worker.get('index')}] pid {worker.get('pid')}{user}, "
                   f"{worker.get('restarts')} restart(s){state}")
    delivery = reply.get("delivery") or {}
    click.echo(f"  delivery pid {delivery.get('pid')}, {delivery.get('restarts')} restart(s)")
    connections = reply.get("connections") or {}
    if connections:
        click.echo("connections: " + ", ".join(f"{k} {v}" for k, v in sorted(connections.items())))


@ctl_group.command("reload")
@click.pass_obj
def reload_cmd(ctx: CliContext) -> None:
    """Reload configuration, users and certificate (as SIGHUP); no connection drops."""
    _ask(ctx, "reload")
    click.echo("reload requested; the log says how it went (reloaded or reload.failed)")


@ctl_group.command("stop")
@click.option("--wait", is_flag=True, help="Return once the server has stopped.")
@click.pass_obj
def stop_cmd(ctx: CliContext, wait: bool) -> None:
    """Stop gracefully (as SIGTERM)."""
    pid = _ask(ctx, "status").get("pid")
    _ask(ctx, "stop")
    if wait and isinstance(pid, int):
        deadline = time.monotonic() + STOP_WAIT
        while _alive(pid):
            if time.monotonic() > deadline:
                raise CliError(f"the server (pid {pid}) is still running after {STOP_WAIT:.0f}s")
            time.sleep(0.1)
        click.echo("stopped")
    else:
        click.echo("stop requested")


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs; an exited process its parent has not
    reaped yet (a zombie, state Z in /proc) has stopped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s"


def register(group: click.Group) -> None:
    """Add ``mailyard ctl``."""
    group.add_command(ctl_group)
