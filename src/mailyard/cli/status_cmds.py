"""``mailyard status``: what runs, what it serves, what is waiting, what happened.

Everything is read from the state folder and the control socket, so it
works for the user who owns the state without any port: ``run/ready.json``
(listeners), ``run/control.sock`` (processes, uptimes, restarts, open
connections), ``queue/`` (size, oldest message), ``run/metrics`` (counts
since the server started, and the last hour minute by minute) and a
bounded walk of ``mail/`` and ``queue/`` for their disk use.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any, Final

import click

from mailyard.cli.context import CliContext
from mailyard.cli.control_client import ControlError, ServerNotRunning, control
from mailyard.cli.output import print_json, print_table
from mailyard.observe.recent import read_recent
from mailyard.observe.recorder import metrics_dir, snapshot
from mailyard.server.metrics import READY_NAME, queue_figures

__all__ = ["DiskUse", "disk_use", "gather_status", "register"]

WALK_BUDGET: Final = 2.0  # seconds per folder; a huge store is reported as "at least"


@dataclass(frozen=True, slots=True)
class DiskUse:
    bytes: int  # allocated blocks, as du counts them
    files: int
    complete: bool  # False when the walk stopped at its time budget


def disk_use(root: str, budget: float = WALK_BUDGET) -> DiskUse:
    """What ``du -s root`` would say, walking at most ``budget`` seconds."""
    deadline = time.monotonic() + budget
    total = files = 0
    stack = [root]
    while stack:
        if time.monotonic() > deadline:
            return DiskUse(total, files, complete=False)
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # renamed or delivered meanwhile
            total += info.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            else:
                files += 1
    return DiskUse(total, files, complete=True)


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as file:
            data = json.load(file)
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def _server_part(ctx: CliContext) -> dict[str, Any]:
    config = ctx.config()
    ready = _read_json(config.path("run", "ready.json"))
    try:
        reply = control(config.path("run", "control.sock"), "status")
    except ServerNotRunning:
        reply = None
    except ControlError as exc:
        reply = {"ok": False, "error": str(exc)}
    running = bool(reply and reply.get("ok"))
    part: dict[str, Any] = {"running": running}
    if reply is not None and not running:
        part["error"] = reply.get("error")
    if running and reply is not None:
        part.update({k: reply.get(k) for k in ("pid", "started", "uptime")})
        part["connections"] = reply.get("connections", {})
        part["workers"] = reply.get("workers", [])
        part["delivery"] = reply.get("delivery")
    listeners = ready.get("listeners") if ready and _alive(ready.get("pid")) else None
    part["listeners"] = listeners or {}
    endpoint = _read_json(config.path("run", READY_NAME))
    part["metrics_endpoint"] = endpoint.get("address") if endpoint and running else None
    return part


def _sum(samples: dict[tuple[tuple[str, str], ...], float], **want: str) -> int:
    return int(sum(value for labels, value in samples.items()
                   if all((k, v) in labels for k, v in want.items())))


def _totals(directory: str) -> dict[str, int]:
    data = snapshot(directory)
    deliveries = data.get("mailyard_deliveries_total", {})
    return {
        "accepted": _sum(data.get("mailyard_messages_accepted_total", {})),
        "delivered": _sum(deliveries, result="ok"),
        "deferred": _sum(deliveries, result="deferred"),
        "failed": _sum(deliveries, result="failed"),
        "bounces": _sum(data.get("mailyard_notices_queued_total", {}), kind="bounce"),
        "auth_failures": _sum(data.get("mailyard_auth_failures_total", {})),
        "connections": _sum(data.get("mailyard_connections_total", {})),
    }


def gather_status(ctx: CliContext, budget: float = WALK_BUDGET) -> dict[str, Any]:
    """Everything ``mailyard status`` shows, as plain data."""
    config = ctx.config()
    now = time.time()
    figures = queue_figures(config.path("queue"), now)
    directory = metrics_dir(config.state_dir)
    disk = {name: disk_use(config.path(name), budget) for name in ("mail", "queue")}
    return {
        "state": config.state_dir,
        "server": _server_part(ctx),
        "queue": {
            "messages": figures.messages,
            "oldest_age_seconds": None if figures.oldest_age is None
            else round(figures.oldest_age, 1),
        },
        "last_hour": read_recent(directory, now),
        "since_start": _totals(directory),
        "disk": {name: {"bytes": use.bytes, "files": use.files, "complete": use.complete}
                 for name, use in disk.items()},
    }


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    value = int(seconds)
    days, value = divmod(value, 86400)
    hours, value = divmod(value, 3600)
    minutes, value = divmod(value, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{value}s" if minutes else f"{value}s"


def _size(octets: int) -> str:
    value = float(octets)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _print_processes(server: dict[str, Any]) -> None:
    if not server["running"]:
        note = f" ({server['error']})" if server.get("error") else ""
        click.echo(f"server      not running{note}")
        return
    delivery = server.get("delivery") or {}
    worker = delivery.get("status") or {}
    rows: list[list[object]] = [
        ["server", server.get("pid"), _duration(server.get("uptime")), "-", ""]
    ]
    for child in server.get("workers") or []:
        note = ", ".join(x for x in (
            f"user {child['user']}" if child.get("user") else "",
            "retiring" if child.get("retiring") else "") if x)
        rows.append([f"{child.get('role', '?')} {child.get('index', '')}".strip(),
                     child.get("pid"), "-", child.get("restarts", "-"), note])
    busy = (f"in flight {worker.get('in_flight', '?')}, "
            f"scheduled {worker.get('scheduled', '?')}") if worker else "not answering"
    rows.append(["delivery", delivery.get("pid"), _duration(delivery.get("uptime")),
                 delivery.get("restarts"), busy])
    print_table(["PROCESS", "PID", "UPTIME", "RESTARTS", "NOTE"], rows)


def _print_human(data: dict[str, Any]) -> None:
    server = data["server"]
    click.echo(f"state       {data['state']}")
    _print_processes(server)
    connections = server.get("connections", {})
    rows = [[name, ", ".join(where), connections.get(name, "")]
            for name, where in sorted(server["listeners"].items())]
    if server.get("metrics_endpoint"):
        rows.append(["metrics", f"http://{server['metrics_endpoint']}/metrics", ""])
    if rows:
        print_table(["SERVICE", "LISTENS ON", "CONNECTIONS"], rows)
    queue = data["queue"]
    oldest = queue["oldest_age_seconds"]
    click.echo(f"queue       {queue['messages']} messages"
               + (f", oldest {_duration(oldest)}" if oldest is not None else ""))
    hour, total = data["last_hour"], data["since_start"]
    click.echo(f"last hour   {hour['accepted']} accepted, {hour['ok']} delivered, "
               f"{hour['deferred']} deferred, {hour['failed']} failed")
    click.echo(f"since start {total['accepted']} accepted, {total['delivered']} delivered, "
               f"{total['deferred']} deferred, {total['failed']} failed, "
               f"{total['auth_failures']} failed logins")
    for name, use in data["disk"].items():
        approx = "" if use["complete"] else "at least "
        click.echo(f"disk {name:6} {approx}{_size(use['bytes'])} in {use['files']} files")


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status_cmd(ctx: CliContext, as_json: bool) -> None:
    """Show processes, listeners, connections, the queue, recent deliveries, disk use."""
    data = gather_status(ctx)
    if as_json:
        print_json(data)
    else:
        _print_human(data)


def register(group: click.Group) -> None:
    """Add ``mailyard status`` to the command group."""
    group.add_command(status_cmd)
