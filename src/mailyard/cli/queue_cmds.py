"""``mailyard queue list | show ID | flush | delete ID`` (qmail-qread, qmail-qstat)."""

from __future__ import annotations

import time

import click

from mailyard.cli.context import CliContext, CliError
from mailyard.cli.control_client import ControlError, ServerNotRunning, control
from mailyard.cli.output import print_json, print_table
from mailyard.queue.store import Queue, QueueCorrupt, QueuedMessage, QueueNotFound

__all__ = ["register"]


def _queue(ctx: CliContext) -> Queue:
    return Queue(ctx.config().path("queue"))


def _summary(message: QueuedMessage, now: float) -> dict[str, object]:
    pending = [s for s in message.statuses if s.state.name == "PENDING"]
    errors = [s.last_error for s in pending if s.last_error]
    return {
        "id": message.id,
        "age_seconds": int(now - message.envelope.birth),
        "sender": message.envelope.sender or "<>",
        "recipients": len(message.statuses),
        "pending": len(pending),
        "size": message.body_size,
        "last_error": errors[-1] if errors else None,
    }


def _age(seconds: object) -> str:
    value = int(seconds) if isinstance(seconds, int) else 0
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size:
            return f"{value // size}{unit}"
    return f"{value}s"


@click.group("queue")
def queue_group() -> None:
    """Inspect and manage the mail queue."""


@queue_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def queue_list(ctx: CliContext, as_json: bool) -> None:
    """List queued messages, oldest first."""
    queue = _queue(ctx)
    now = time.time()
    items = []
    for qid in queue.list_ids():
        try:
            items.append(_summary(queue.load(qid), now))
        except QueueNotFound:
            continue
        except QueueCorrupt as exc:
            items.append({"id": qid, "last_error": f"corrupt: {exc}"})
    if as_json:
        print_json(items)
        return
    if not items:
        click.echo("queue is empty")
        return
    print_table(
        ["ID", "AGE", "SENDER", "PENDING", "SIZE", "LAST ERROR"],
        [
            [i["id"], _age(i.get("age_seconds")), i.get("sender"),
             f"{i.get('pending')}/{i.get('recipients')}", i.get("size"), i.get("last_error")]
            for i in items
        ],
    )


@queue_group.command("show")
@click.argument("qid")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def queue_show(ctx: CliContext, qid: str, as_json: bool) -> None:
    """Show one message's envelope and per-recipient status."""
    queue = _queue(ctx)
    try:
        message = queue.load(qid)
    except QueueCorrupt as exc:  # before ValueError: QueueCorrupt is one
        raise CliError(f"message {qid} is corrupt: {exc}") from exc
    except (QueueNotFound, ValueError) as exc:
        raise CliError(f"no queued message {qid!r}") from exc
    data = _summary(message, time.time())
    data["birth"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(message.envelope.birth))
    data["status"] = [
        {"address": s.address, "state": s.state.name.lower(), "attempts": s.attempts,
         "last_error": s.last_error}
        for s in message.statuses
    ]
    if as_json:
        print_json(data)
        return
    for key in ("id", "birth", "sender", "size"):
        click.echo(f"{key:8} {data[key]}")
    print_table(
        ["RECIPIENT", "STATE", "ATTEMPTS", "LAST ERROR"],
        [[s["address"], s["state"], s["attempts"], s["last_error"]] for s in data["status"]],  # type: ignore[attr-defined]
    )


@queue_group.command("flush")
@click.pass_obj
def queue_flush(ctx: CliContext) -> None:
    """Retry every queued message now (needs the running server)."""
    try:
        reply = control(ctx.config().path("run", "control.sock"), "flush")
    except ServerNotRunning as exc:
        raise CliError("the server is not running; queued mail is retried when it starts") from exc
    except ControlError as exc:
        raise CliError(str(exc)) from exc
    if not reply.get("ok"):
        raise CliError(str(reply.get("error", "flush failed")))
    click.echo("queue flushed: every message will be retried now")


@queue_group.command("delete")
@click.argument("qid")
@click.pass_obj
def queue_delete(ctx: CliContext, qid: str) -> None:
    """Delete a queued message without delivering or bouncing it."""
    try:
        _queue(ctx).delete(qid)
    except (QueueNotFound, ValueError) as exc:
        raise CliError(f"no queued message {qid!r}") from exc
    click.echo(f"deleted {qid}")


def register(group: click.Group) -> None:
    group.add_command(queue_group)
