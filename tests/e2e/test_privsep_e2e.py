"""Privilege separation end to end: two users, the queue writer, checked through /proc.

Started as root with ``[server] user`` (the SMTP side) and ``mail_user``
(queue writer, delivery, mailbox access) naming two system users made for
the test: every process must run as its user, a message sent over SMTP
must reach the Maildir (owned by the mail user) and be seen over IMAP,
and the SMTP side's user must not be able to write the queue nor the
directory database, while it can read the database and reach the queue
writer's socket.
"""

from __future__ import annotations

import base64
import errno
import imaplib
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mailyard.cli.control_client import control
from mailyard.server.preload import code_folders, readable_by
from mailyard.server.privileges import Identity, drop_to, resolve_user
from tests.e2e.server import PASSWORD, ServerProcess, imap_state, maildir, send_mail

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="two users and a privilege drop need root (CI runs as root)")

SMTP_USER = "mailyard-test-smtp"
MAIL_USER = "mailyard-test-mail"
ALICE = "alice@example.test"


@pytest.fixture(scope="module")
def users() -> Iterator[tuple[Identity, Identity]]:
    """The two system users, made for these tests and removed after them."""
    made = []
    for name in (SMTP_USER, MAIL_USER):
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home",
                            "--shell", "/usr/sbin/nologin", name], check=True, timeout=60)
            made.append(name)
    try:
        yield resolve_user(SMTP_USER), resolve_user(MAIL_USER)
    finally:
        for name in made:
            subprocess.run(["userdel", name], check=False, timeout=60)


@pytest.fixture(scope="module")
def server(users: tuple[Identity, Identity]) -> Iterator[ServerProcess]:
    # /var/tmp rather than pytest's folders: those are root's, mode 0700.
    folder = Path(tempfile.mkdtemp(prefix="mailyard-privsep-", dir="/var/tmp"))
    folder.chmod(0o711)
    state = imap_state(folder / "state")
    config = state / "mailyard.toml"
    config.write_text(config.read_text()
                      + f'[server]\nuser = "{SMTP_USER}"\nmail_user = "{MAIL_USER}"\n')
    proc = ServerProcess(state).start()
    try:
        yield proc
    finally:
        code = proc.stop()
        shutil.rmtree(folder, ignore_errors=True)
        assert code == 0, proc.log_tail()


def uids(pid: int) -> list[int]:
    """Real, effective, saved and filesystem uid of a process, from /proc."""
    return _status_ids(pid, "Uid:")


def _status_ids(pid: int, key: str) -> list[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return [int(x) for x in line.split()[1:]]
    raise AssertionError(f"no {key} line for {pid}")


def descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *descendants(int(child))]
    return found


def status(server: ServerProcess) -> dict[str, Any]:
    return control(str(server.state / "run" / "control.sock"), "status")


def wait_until(what: str, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_every_process_runs_as_its_user(server: ServerProcess,
                                        users: tuple[Identity, Identity]) -> None:
    smtp, mail = users
    assert server.proc is not None
    assert uids(server.proc.pid)[0] == 0  # the supervisor stays root to restart workers
    roles = {}
    for worker in status(server)["workers"]:
        roles.setdefault(worker["role"], []).append(worker["pid"])
    assert set(roles) == {"smtp", "queue", "mailbox"}
    assert all(uids(pid) == [smtp.uid] * 4 for pid in roles["smtp"])
    for role in ("queue", "mailbox"):
        assert all(uids(pid) == [mail.uid] * 4 for pid in roles[role]), role
    # The SMTP side got the shared group at its drop.
    assert mail.gid in _status_ids(roles["smtp"][0], "Groups:")
    delivery = status(server)["delivery"]["pid"]
    wait_until("the delivery worker's drop", lambda: uids(delivery) == [mail.uid] * 4)
    # The local-delivery children (and the process that forks them) are forks
    # of the dropped worker: no interpreter to run as the mail user.
    wait_until("the local delivery children", lambda: len(descendants(delivery)) >= 2)
    assert all(uids(pid) == [mail.uid] * 4 for pid in descendants(delivery))


def test_a_message_goes_through_the_queue_writer_to_the_mailbox(
        server: ServerProcess, users: tuple[Identity, Identity]) -> None:
    _, mail = users
    send_mail(server, ALICE, b"Subject: privsep\r\n\r\nby way of the queue writer\r\n")
    new = maildir(server.state, ALICE) / "new"
    wait_until("the delivery", lambda: any(new.iterdir()))
    delivered = next(new.iterdir())
    assert delivered.stat().st_uid == mail.uid
    assert b"by way of the queue writer" in delivered.read_bytes()
    client = imaplib.IMAP4(*server.address("imap"), timeout=30)
    try:
        client.login(ALICE, PASSWORD)
        assert client.select("INBOX")[0] == "OK"
        kind, found = client.search(None, "SUBJECT", "privsep")
        assert kind == "OK" and found[0].split()
    finally:
        client.logout()
    # The queue writer's figures reach the supervisor with its next heartbeat.
    wait_until("the queue writer's count", lambda: status(server)["counters"].get(
        "queue_writer_committed", 0) >= 1)


def _as(who: Identity, probe: Callable[[], str]) -> str:
    """``probe``'s answer, run in a forked child dropped to ``who``."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        answer = "crashed"
        try:
            drop_to(who)
            answer = probe()
        finally:
            os.write(write, answer.encode())
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(pid, 0)
    return answer


def _errno_of(action: Callable[[], object]) -> str:
    try:
        action()
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc))
    except sqlite3.Error as exc:
        return f"sqlite: {exc}"
    return "ok"


def test_the_smtp_user_cannot_write_the_queue_or_the_directory(
        server: ServerProcess, users: tuple[Identity, Identity]) -> None:
    smtp, mail = users
    state = server.state
    # The probe runs as the SMTP worker's identity, shared group included.
    who = Identity(smtp.name, smtp.uid, smtp.gid, tuple(sorted({*smtp.groups, mail.gid})))

    def probe() -> str:
        results = [
            _errno_of(lambda: os.open(state / "queue" / "tmp" / "x",
                                      os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)),
            _errno_of(lambda: os.open(state / "queue" / "mess" / "x",
                                      os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)),
            _errno_of(lambda: os.listdir(state / "mail")),
            _errno_of(lambda: os.open(state / "directory.sqlite", os.O_WRONLY)),
            _errno_of(lambda: os.open(state / "planted", os.O_WRONLY | os.O_CREAT, 0o600)),
        ]
        db = sqlite3.connect(state / "directory.sqlite")
        try:
            count = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            results.append("read" if count > 0 else "empty")
        finally:
            db.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        results.append(_errno_of(lambda: sock.connect(str(state / "run" / "queue.sock"))))
        sock.close()
        return " ".join(results)

    assert _as(who, probe).split() == ["EACCES"] * 5 + ["read", "ok"]
    assert (state / "queue").stat().st_uid == mail.uid
    assert (state / "queue").stat().st_mode & 0o077 == 0


def test_mail_in_any_charset_is_served_after_the_drop(server: ServerProcess) -> None:
    """The stdlib loads a codec on its first use; a worker dropped to a user
    who may not read the interpreter's files (one under /root) must still
    decode koi8-r, iso-2022-jp or big5 mail: codecs are loaded before the drop."""
    subjects = {"koi8_r": "Привет из Москвы", "iso2022_jp": "こんにちは",
                "big5": "你好", "cp1256": "مرحبا"}
    for charset, text in subjects.items():
        encoded = base64.b64encode(text.encode(charset)).decode()
        body = text.encode(charset)
        send_mail(server, ALICE, (
            f"Subject: =?{charset.replace('_', '-')}?B?{encoded}?=\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset={charset.replace('_', '-')}"
            f"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n").encode() + body + b"\r\n")
    new = maildir(server.state, ALICE) / "new"
    client = imaplib.IMAP4(*server.address("imap"), timeout=30)
    try:
        client.login(ALICE, PASSWORD)
        wait_until("the deliveries", lambda: _count(client) >= 1 + len(subjects))
        for charset, text in subjects.items():
            client.literal = text.encode()
            kind, found = client.uid("SEARCH", "CHARSET", "UTF-8", "SUBJECT")
            assert kind == "OK" and len(found[0].split()) == 1, (charset, found)
            client.literal = text.encode()
            kind, found = client.uid("SEARCH", "CHARSET", "UTF-8", "BODY")
            assert kind == "OK" and len(found[0].split()) == 1, (charset, found)
    finally:
        client.logout()
    assert len(list(new.iterdir())) + len(list((new.parent / "cur").iterdir())) >= 5
    # Where the interpreter is closed to the mail user (this machine's is
    # under /root), each worker says it loaded its code before the drop.
    mail = resolve_user(MAIL_USER)
    if any(not readable_by(folder, mail) for folder in code_folders()):
        log = (server.state / "server.log").read_text()
        assert "server.preload role=mailbox" in log and "server.preload role=delivery" in log, [
            line for line in log.splitlines() if "preload" in line]


def _count(client: imaplib.IMAP4) -> int:
    kind, data = client.select("INBOX")
    assert kind == "OK"
    return int(data[0] or 0)
