"""`mailyard queue list | show | delete | flush` on real queue folders.

Messages are committed with the Queue API to recipients of a domain the
state folder does not host, so nothing would deliver them anyway. `flush`
needs the running server: without one it must fail cleanly; with one
(tests/e2e/server.py, loopback port 0) it makes a scheduled retry happen now.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from mailyard import fsio
from mailyard.cli.control_client import control
from mailyard.queue.store import Envelope, Outcome, Queue
from tests.cli.conftest import Cli
from tests.e2e.server import ServerProcess, provision, write_config

REMOTE = ("one@remote.example", "two@remote.example")
BODY = b"Subject: queued\r\n\r\nhello\r\n"
DEADLINE = 30.0


def _queue(state: Path) -> Queue:
    queue = Queue(str(state / "queue"), syncer=fsio.DirSyncer())
    queue.ensure_layout()
    return queue


def _commit(state: Path, sender: str, recipients: tuple[str, ...], birth: float,
            body: bytes = BODY) -> str:
    writer = _queue(state).begin(Envelope(sender, recipients, birth))
    writer.write(body)
    return writer.commit()


def _mailyard(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailyard", "--state", str(state), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )


def _until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.02)


# -- list ----------------------------------------------------------------------------------


def test_list_of_an_empty_queue(empty_cli: Cli) -> None:
    assert empty_cli.ok("queue", "list") == "queue is empty\n"
    assert json.loads(empty_cli.ok("queue", "list", "--json")) == []


def test_list_shows_every_message_oldest_first(empty_cli: Cli) -> None:
    state = empty_cli.state
    now = time.time()
    first = _commit(state, "sender@example.org", REMOTE, now - 3700)
    second = _commit(state, "", REMOTE[:1], now - 5, body=BODY + b"more\r\n")
    _queue(state).record(first, [(0, Outcome("T", "4.4.1 connection refused"))])

    items = json.loads(empty_cli.ok("queue", "list", "--json"))
    assert [i["id"] for i in items] == [first, second]
    assert items[0] == {
        "id": first, "age_seconds": items[0]["age_seconds"], "sender": "sender@example.org",
        "recipients": 2, "pending": 2, "size": len(BODY),
        "last_error": "4.4.1 connection refused",
    }
    assert 3700 <= items[0]["age_seconds"] < 3700 + 60
    assert items[1]["sender"] == "<>" and items[1]["recipients"] == 1
    assert items[1]["size"] == len(BODY) + 6 and items[1]["last_error"] is None

    lines = empty_cli.ok("queue", "list").splitlines()
    assert lines[0].split() == ["ID", "AGE", "SENDER", "PENDING", "SIZE", "LAST", "ERROR"]
    assert lines[1].split()[:5] == [first, "1h", "sender@example.org", "2/2", str(len(BODY))]
    assert lines[1].rstrip().endswith("4.4.1 connection refused")
    assert lines[2].split()[:5] == [second, "5s", "<>", "1/1", str(len(BODY) + 6)]
    assert len(lines) == 3


def test_list_reports_a_corrupt_message_and_goes_on(empty_cli: Cli) -> None:
    state = empty_cli.state
    good = _commit(state, "sender@example.org", REMOTE, time.time())
    bad = _commit(state, "sender@example.org", REMOTE, time.time())
    (state / "queue" / "mess" / bad).write_bytes(b"not a queue file")
    items = json.loads(empty_cli.ok("queue", "list", "--json"))
    assert [i["id"] for i in items] == [good, bad]
    assert items[1]["last_error"].startswith("corrupt: ")
    assert "is corrupt" in empty_cli.fails("queue", "show", bad)


# -- show ----------------------------------------------------------------------------------


def test_show_gives_the_envelope_and_each_recipients_status(empty_cli: Cli) -> None:
    state = empty_cli.state
    qid = _commit(state, "sender@example.org", REMOTE, time.time() - 60)
    _queue(state).record(qid, [
        (0, Outcome("T", "4.4.1 connection refused")),
        (0, Outcome("T", "4.4.2 timed out")),
        (1, Outcome("D", "delivered")),
    ])
    data = json.loads(empty_cli.ok("queue", "show", qid, "--json"))
    assert data["id"] == qid and data["sender"] == "sender@example.org"
    assert data["recipients"] == 2 and data["pending"] == 1 and data["size"] == len(BODY)
    assert data["last_error"] == "4.4.2 timed out"
    assert isinstance(data["birth"], str) and data["birth"][:2] == "20"
    assert data["status"] == [
        {"address": "one@remote.example", "state": "pending", "attempts": 2,
         "last_error": "4.4.2 timed out"},
        {"address": "two@remote.example", "state": "delivered", "attempts": 1,
         "last_error": None},
    ]
    text = empty_cli.ok("queue", "show", qid)
    assert f"id       {qid}" in text
    assert "sender   sender@example.org" in text
    rows = text.splitlines()
    header = next(i for i, line in enumerate(rows) if line.startswith("RECIPIENT"))
    assert rows[header].split() == ["RECIPIENT", "STATE", "ATTEMPTS", "LAST", "ERROR"]
    assert rows[header + 1].split() == ["one@remote.example", "pending", "2", "4.4.2", "timed",
                                        "out"]
    assert rows[header + 2].split() == ["two@remote.example", "delivered", "1"]


def test_show_of_an_unknown_or_malformed_id_is_one_error_line(empty_cli: Cli) -> None:
    assert empty_cli.fails("queue", "show", "0" * 24) == f"no queued message {'0' * 24!r}"
    assert empty_cli.fails("queue", "show", "../x") == "no queued message '../x'"
    # The real process: exit status 1, nothing on stdout, one line on stderr.
    for qid in ("0" * 24, "../x", "a/b"):
        done = _mailyard(empty_cli.state, "queue", "show", qid)
        assert done.returncode == 1
        assert done.stdout == ""
        assert done.stderr == f"mailyard: no queued message {qid!r}\n"
    assert not (empty_cli.state / "x").exists()


# -- delete --------------------------------------------------------------------------------


def test_delete_removes_the_message_and_its_state(empty_cli: Cli) -> None:
    state = empty_cli.state
    qid = _commit(state, "sender@example.org", REMOTE, time.time())
    kept = _commit(state, "sender@example.org", REMOTE, time.time())
    _queue(state).record(qid, [(0, Outcome("T", "4.4.1 connection refused"))])
    assert empty_cli.ok("queue", "delete", qid) == f"deleted {qid}\n"
    assert [i["id"] for i in json.loads(empty_cli.ok("queue", "list", "--json"))] == [kept]
    assert empty_cli.ok("queue", "delete", kept) == f"deleted {kept}\n"
    assert empty_cli.ok("queue", "list") == "queue is empty\n"
    assert os.listdir(state / "queue" / "mess") == []
    assert os.listdir(state / "queue" / "state") == []
    assert empty_cli.fails("queue", "delete", qid) == f"no queued message {qid!r}"
    assert empty_cli.fails("queue", "delete", "../mess") == "no queued message '../mess'"
    assert (state / "queue" / "mess").is_dir()


# -- flush ---------------------------------------------------------------------------------


def test_flush_without_a_running_server_is_a_clear_error(empty_cli: Cli) -> None:
    message = empty_cli.fails("queue", "flush")
    assert "server is not running" in message
    # A socket left behind by a killed server: nobody accepts on it.
    path = empty_cli.state / "run" / "control.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(path))
    assert path.exists()
    assert "server is not running" in empty_cli.fails("queue", "flush")
    done = _mailyard(empty_cli.state, "queue", "flush")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith("mailyard: the server is not running")
    assert done.stderr.count("\n") == 1


def test_flush_in_a_deep_state_folder_is_a_clear_error(tmp_path: Path, group: click.Group) -> None:
    deep = Cli(tmp_path / ("d" * 100) / "state", group)
    deep.ok("init", "--hostname", "mx.example.test")
    assert len(str(deep.state / "run" / "control.sock")) > 108
    deep.fails("queue", "flush")  # one line, exit status 1, no traceback


def test_queue_commands_need_an_initialised_state_folder(
    tmp_path: Path, group: click.Group
) -> None:
    nowhere = Cli(tmp_path / "nothing", group)
    for args in (("list",), ("show", "0" * 24), ("delete", "0" * 24), ("flush",)):
        assert "not a mailyard state folder" in nowhere.fails("queue", *args)
    assert not (tmp_path / "nothing").exists()


def test_flush_with_a_running_server_retries_now(tmp_path: Path, group: click.Group) -> None:
    state = tmp_path / "srv"
    write_config(state)
    provision(state, users=("alice@example.test",))
    box = state / "mail" / "example.test" / "alice"
    # Delivery fails until new/ is a directory again: the retry is scheduled
    # minutes ahead, so only a flush can bring it forward.
    (box / "new").rmdir()
    (box / "new").write_bytes(b"")
    qid = _commit(state, "sender@example.org", ("alice@example.test",), time.time())
    queued = Cli(state, group)
    server = ServerProcess(state).start()
    try:
        def scheduled() -> bool:
            # Wait until the failed attempt is on the schedule, so the flush
            # below is what brings it back (not the first pass itself).
            reply = control(str(state / "run" / "control.sock"), "status")
            return bool((reply["delivery"]["status"] or {}).get("scheduled") == 1)

        _until(scheduled, "the first, failing attempt to be scheduled")
        status = json.loads(queued.ok("queue", "show", qid, "--json"))["status"]
        assert status[0]["state"] == "pending" and status[0]["attempts"] == 1
        assert status[0]["last_error"].startswith("4.3.0 maildir delivery failed")
        (box / "new").unlink()
        (box / "new").mkdir(mode=0o700)
        assert queued.ok("queue", "flush") == "queue flushed: every message will be retried now\n"
        _until(lambda: len(os.listdir(box / "new")) == 1, "delivery after the flush")
        _until(lambda: json.loads(queued.ok("queue", "list", "--json")) == [], "empty queue")
    finally:
        assert server.stop() == 0, server.log_tail()
