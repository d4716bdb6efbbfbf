"""Addressing and per-user settings end to end: a real server over loopback,
a sink SMTP server on 127.0.0.1 for the remote targets (a static route).

Aliases, lists with owner rewriting, forwards with and without a copy, the
catch-all, extensions into folders, loops, quota (deferral, bounce after
the grace period, the 90% warning) and vacation replies.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import smtplib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailyard.cli.control_client import control
from mailyard.directory.model import Alias, DomainSettings, Vacation
from mailyard.directory.store import Directory
from mailyard.message.address import parse_address
from mailyard.queue.store import Envelope, Queue
from tests.dispatch.sink import Sink
from tests.e2e.server import USERS, ServerProcess, maildir, provision, write_config
from tests.e2e.test_remote_e2e import LoopThread, wait_until

GRACE = 3600.0
EXTRA_USERS = ("dave@example.test", "erin@example.test", "fred@example.test",
               "full@example.test", "warn@example.test", "vac@example.test",
               "gina@example.test")


def setup_directory(state: Path) -> None:
    directory = Directory.open(str(state / "directory.sqlite"))
    try:
        def mailbox(address: str, **changes: object) -> None:
            found = directory.get_mailbox(parse_address(address))
            assert found is not None
            directory.save_mailbox_settings(dataclasses.replace(found, **changes))  # type: ignore[arg-type]

        directory.add_domain("catch.test")
        directory.set_domain_settings("catch.test", DomainSettings(
            catch_all=("gina@example.test",)))
        directory.add_alias(Alias(parse_address("trio@example.test"), (
            "alice@example.test", "bob@example.test", "someone@remote.test")))
        directory.add_alias(Alias(parse_address("list@example.test"), (
            "dave@example.test", "member@remote.test"), owner="list-owner@example.test"))
        directory.add_alias(Alias(parse_address("loop1@example.test"), ("loop2@example.test",)))
        directory.add_alias(Alias(parse_address("loop2@example.test"), ("erin@example.test",)))
        mailbox("erin@example.test", forwards=("loop1@example.test",), keep_copy=False)
        mailbox("dave@example.test", forwards=("dave-away@remote.test",), keep_copy=True)
        mailbox("fred@example.test", forwards=("fred-new@remote.test",), keep_copy=False)
        mailbox("full@example.test", quota_messages=1)
        mailbox("warn@example.test", quota_messages=10)
        directory.set_vacation(Vacation(parse_address("vac@example.test"), "Out of office",
                                        "I am away.\n", interval_days=7))
    finally:
        directory.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    loop = LoopThread()
    sink = loop.run(Sink(hostname="sink.test").start())
    state = tmp_path_factory.mktemp("addressing") / "state"
    write_config(state, extra=(
        "[delivery]\n"
        'remote = "deliver"\n'
        "connect_timeout = 5.0\n"
        "[delivery.routes]\n"
        f'"remote.test" = "127.0.0.1:{sink.port}"\n'
        "[quota]\n"
        f'grace = "{int(GRACE)}s"\n'
        "warn_percent = 90\n"
    ))
    provision(state, users=(*USERS, *EXTRA_USERS))
    setup_directory(state)
    server = ServerProcess(state).start()
    try:
        yield {"server": server, "sink": sink, "loop": loop, "state": state}
    finally:
        server.stop()
        loop.run(sink.stop())
        loop.close()


def send(world: dict[str, Any], recipients: list[str], body: bytes,
         sender: str = "poster@example.org") -> None:
    host, port = world["server"].address("smtp")
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.sendmail(sender, recipients, body)


def sink_transactions(world: dict[str, Any], recipient: str) -> list[Any]:
    sink: Sink = world["sink"]
    return world["loop"].call(lambda: [t for t in sink.transactions
                                       if recipient in t.recipients])


def messages(state: Path, address: str, folder: str = "") -> list[bytes]:
    box = maildir(state, address) / folder if folder else maildir(state, address)
    found = []
    for sub in ("new", "cur"):
        path = box / sub
        if path.exists():
            found += [p.read_bytes() for p in sorted(path.iterdir())]
    return found


def with_subject(state: Path, address: str, subject: bytes, folder: str = "") -> list[bytes]:
    return [m for m in messages(state, address, folder) if b"Subject: " + subject in m]


def mail(subject: str, to: str = "x@example.test", extra: str = "") -> bytes:
    return (f"From: Poster <poster@example.org>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@example.org>\r\n{extra}\r\nbody of {subject}\r\n").encode()


def test_alias_to_three_targets_one_remote(world: dict[str, Any]) -> None:
    state = world["state"]
    send(world, ["trio@example.test"], mail("trio"))
    for user in ("alice@example.test", "bob@example.test"):
        wait_until(f"{user}'s copy", lambda u=user: bool(with_subject(state, u, b"trio")))
        (data,) = with_subject(state, user, b"trio")
        assert b"Delivered-To: trio@example.test\r\n" in data
        assert b"Return-Path: <poster@example.org>" in data  # local copies keep the sender
    wait_until("the remote copy", lambda: bool(sink_transactions(world, "someone@remote.test")))
    (remote,) = sink_transactions(world, "someone@remote.test")
    # SRS: the remote host's SPF check sees our host name.
    assert remote.sender.startswith("SRS0=") and remote.sender.endswith("@mx.example.test")
    assert b"Delivered-To: trio@example.test\r\n" in remote.data


def test_list_owner_rewriting_is_seen_at_the_sink(world: dict[str, Any]) -> None:
    send(world, ["list@example.test"], mail("listmail", "list@example.test"))
    wait_until("the list copy", lambda: bool(sink_transactions(world, "member@remote.test")))
    (copy,) = sink_transactions(world, "member@remote.test")
    assert copy.sender == "list-owner@example.test"


def test_forward_with_and_without_copy(world: dict[str, Any]) -> None:
    state = world["state"]
    send(world, ["dave@example.test"], mail("keepcopy"))
    send(world, ["fred@example.test"], mail("nocopy"))
    wait_until("dave's forward", lambda: any(
        b"keepcopy" in t.data for t in sink_transactions(world, "dave-away@remote.test")))
    wait_until("fred's forward", lambda: any(
        b"nocopy" in t.data for t in sink_transactions(world, "fred-new@remote.test")))
    wait_until("dave's own copy", lambda: bool(with_subject(state, "dave@example.test",
                                                            b"keepcopy")))
    assert with_subject(state, "fred@example.test", b"nocopy") == []


def test_catch_all(world: dict[str, Any]) -> None:
    state = world["state"]
    send(world, ["anything@catch.test"], mail("caught"))
    wait_until("the catch-all copy", lambda: bool(with_subject(state, "gina@example.test",
                                                               b"caught")))


def test_extension_routed_to_a_folder(world: dict[str, Any]) -> None:
    state = world["state"]
    box = maildir(state, "bob@example.test")
    for sub in ("cur", "new", "tmp"):
        (box / ".lists" / sub).mkdir(parents=True, exist_ok=True)
    (box / ".lists" / "maildirfolder").touch()
    send(world, ["bob+lists@example.test"], mail("tofolder"))
    send(world, ["bob+nofolder@example.test"], mail("toinbox"))
    wait_until("the folder copy", lambda: bool(with_subject(state, "bob@example.test",
                                                            b"tofolder", ".lists")))
    wait_until("the inbox copy", lambda: bool(with_subject(state, "bob@example.test",
                                                           b"toinbox")))
    assert with_subject(state, "bob@example.test", b"tofolder") == []


def bounces(state: Path, address: str, needle: bytes) -> list[email.message.Message]:
    found = []
    for data in messages(state, address):
        msg = email.message_from_bytes(data, policy=email.policy.default)
        if msg.get_content_type() == "multipart/report" and needle in data:
            found.append(msg)
    return found


def test_loop_is_stopped(world: dict[str, Any]) -> None:
    # erin forwards to loop1 -> loop2 -> erin: the second visit to erin's
    # forward sees its Delivered-To and bounces (5.4.6) to the sender.
    state = world["state"]
    send(world, ["erin@example.test"], mail("looping"), sender="alice@example.test")
    wait_until("the loop bounce", lambda: bool(bounces(state, "alice@example.test",
                                                       b"looping")))
    (report,) = bounces(state, "alice@example.test", b"looping")
    assert "5.4.6" in report.as_string()
    assert with_subject(state, "erin@example.test", b"looping") == []


def test_quota_deferred_then_bounced_after_grace(world: dict[str, Any]) -> None:
    state = world["state"]
    send(world, ["full@example.test"], mail("fills"))
    wait_until("the first message", lambda: bool(with_subject(state, "full@example.test",
                                                              b"fills")))
    send(world, ["full@example.test"], mail("overquota"))
    queue = Queue(str(state / "queue"))

    def deferred() -> bool:
        for qid in queue.list_ids():
            try:
                message = queue.load(qid)
            except (OSError, LookupError, ValueError):
                continue  # completed meanwhile
            if message.envelope.recipients == ("full@example.test",):
                return any((s.last_error or "").startswith("4.2.2") for s in message.statuses)
        return False

    wait_until("the deferral", deferred)
    # A message that has waited longer than the grace period: bounced.
    writer = queue.begin(Envelope("alice@example.test", ("full@example.test",),
                                  time.time() - GRACE - 60))
    writer.write(mail("tooold"))
    writer.commit()
    control(str(state / "run" / "control.sock"), "flush")
    wait_until("the quota bounce", lambda: bool(bounces(state, "alice@example.test",
                                                        b"tooold")))
    (report,) = bounces(state, "alice@example.test", b"tooold")
    assert "5.2.2" in report.as_string()


def test_ninety_percent_warning(world: dict[str, Any]) -> None:
    state = world["state"]
    for n in range(9):
        send(world, ["warn@example.test"], mail(f"w{n}"))
    wait_until("the warning", lambda: bool(with_subject(state, "warn@example.test",
                                                        b"Your mailbox is nearly full")))
    (warning,) = with_subject(state, "warn@example.test", b"Your mailbox is nearly full")
    assert b"Auto-Submitted: auto-generated" in warning
    assert (maildir(state, "warn@example.test") / "quotawarn").exists()


def replies_at_sink(world: dict[str, Any], recipient: str) -> list[Any]:
    return [t for t in sink_transactions(world, recipient) if b"Auto-Submitted: auto-replied"
            in t.data and b"Out of office" in t.data]


def test_vacation_once_per_sender_never_to_lists_or_null(world: dict[str, Any]) -> None:
    state = world["state"]
    to = "vac@example.test"
    send(world, [to], mail("v1", to), sender="friend@remote.test")
    send(world, [to], mail("v2", to), sender="friend@remote.test")
    send(world, [to], mail("v3", to, "List-Id: <l.remote.test>\r\n"),
         sender="lister@remote.test")
    send(world, [to], mail("v4", to), sender="")
    wait_until("all four deliveries", lambda: all(
        with_subject(state, to, s.encode()) for s in ("v1", "v2", "v3", "v4")))
    wait_until("the reply", lambda: bool(replies_at_sink(world, "friend@remote.test")))
    # Replies are queued in the pass that delivers: once none waits for
    # these senders, every reply there will be has reached the sink.
    queue = Queue(str(state / "queue"))

    def waiting() -> bool:
        for qid in queue.list_ids():
            try:
                recipients = queue.load(qid).envelope.recipients
            except (OSError, LookupError, ValueError):
                continue  # completed meanwhile
            if {"friend@remote.test", "lister@remote.test"} & set(recipients):
                return True
        return False

    wait_until("the replies to leave the queue", lambda: not waiting())
    (reply,) = replies_at_sink(world, "friend@remote.test")
    assert reply.sender == ""  # RFC 3834 §3.3
    assert b"In-Reply-To: <v1@example.org>" in reply.data
    assert replies_at_sink(world, "lister@remote.test") == []
