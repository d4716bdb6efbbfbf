"""Robustness, logging and shutdown against the real server process.

Dropped connections and garbage must leave nothing behind and never stop the
server serving others; failed logins are throttled per client address;
logs carry one line per event and never a password; SIGTERM/SIGINT stop
the server cleanly without losing an acknowledged message; the delivery
worker is restarted when it dies. Client addresses are all loopback
(127.0.0.0/8): 127.0.0.1 for ordinary clients, 127.0.0.2 and .3 where the
address itself matters.
"""

from __future__ import annotations

import base64
import contextlib
import os
import random
import re
import signal
import smtplib
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mailyard.cli.control_client import control
from tests.e2e.server import (
    PASSWORD,
    ServerProcess,
    maildir,
    strip_delivery_headers,
    wait_for_files,
)
from tests.e2e.test_limits_e2e import (
    Client,
    files,
    pop3_client,
    pop3_quit,
    smtp_client,
    smtp_quit,
    start,
    write_state,
)

STOP_GRACE = 10.0  # server/app.py
WRONG = "wrong-Zebra-7781"  # a wrong password nobody else uses, to grep for
_LINE = re.compile(r"^\S+Z (?P<level>\w+) (?P<event>\S+)(?P<rest>.*)$")
_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')
running = contextlib.contextmanager(start)


# -- helpers ------------------------------------------------------------------------


def log_events(state: Path, name: str) -> list[dict[str, str]]:
    """The fields of every ``name`` line in server.log (quotes removed)."""
    found = []
    for line in (state / "server.log").read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if match is None or match["event"] != name:
            continue
        found.append({k: v[1:-1] if v.startswith('"') else v
                      for k, v in _FIELD.findall(match["rest"])})
    return found


def wait_until(what: str, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def status(server: ServerProcess) -> dict[str, Any]:
    return control(str(server.state / "run" / "control.sock"), "status")


def wait_idle(server: ServerProcess) -> None:
    """Until the server has finished every session (and its cleanup)."""
    wait_until("all sessions to end",
               lambda: not any(status(server)["connections"].values()))


def send(server: ServerProcess, rcpts: list[str], body: bytes) -> str:
    """One message through smtplib; the queue id from the 250 reply."""
    host, port = server.address("smtp")
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.ehlo("client.example.org")
        assert client.mail("sender@example.org")[0] == 250
        for rcpt in rcpts:
            assert client.rcpt(rcpt)[0] == 250
        code, text = client.data(body)
        assert code == 250, text
    return text.decode().rsplit(" ", 1)[-1]


def assert_serves(server: ServerProcess, tag: str) -> None:
    """A well-behaved client still gets its mail delivered and read."""
    box = maildir(server.state, "carol@example.net") / "new"
    before = len(files(box))
    body = f"Subject: {tag}\r\n\r\nstill serving after {tag}\r\n".encode()
    send(server, ["carol@example.net"], body)
    newest = max(wait_for_files(box, before + 1), key=lambda p: p.stat().st_mtime_ns)
    assert strip_delivery_headers(newest.read_bytes()) == body
    pop = pop3_client(server)
    pop.send(b"USER carol@example.net\r\nPASS " + PASSWORD.encode() + b"\r\n")
    assert pop.line().startswith(b"+OK")
    assert pop.line().startswith(b"+OK maildrop has")
    pop3_quit(pop)


def assert_no_session_errors(server: ServerProcess) -> None:
    assert log_events(server.state, "smtp.error") == []
    assert log_events(server.state, "pop3.error") == []
    assert "Traceback" not in (server.state / "server.log").read_text(errors="replace")


def flood(client: Client, data: bytes) -> bytes:
    """Send ``data`` from a thread while reading every reply until the close."""

    def push() -> None:
        try:
            client.send(data)
        except OSError:
            pass  # the server closed while we were still sending: expected

    sender = threading.Thread(target=push, daemon=True)
    sender.start()
    received = client.rest()
    sender.join(30)
    client.close()
    return received


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    state = write_state(
        tmp_path_factory.mktemp("robust") / "state",
        login={"max_failures": 3, "failure_window": 60.0, "failure_delay": 0.05},
    )
    yield from start(state)


# -- dropped connections and garbage ----------------------------------------------------------


@pytest.mark.parametrize("how", ["fin", "reset"])
def test_connection_dropped_mid_data(server: ServerProcess, how: str) -> None:
    state = server.state
    box = maildir(state, "bob@example.test") / "new"
    before = len(files(box))
    client = smtp_client(server)
    client.send(b"EHLO drop.example\r\nMAIL FROM:<drop@example.org>\r\n"
                b"RCPT TO:<bob@example.test>\r\nDATA\r\n")
    assert [client.reply()[:3] for _ in range(4)] == [b"250", b"250", b"250", b"354"]
    # Half of a 600 KB message: past the spool's 256 KiB, so tmp/ holds a file.
    client.send(b"Subject: dropped\r\n\r\n" + (b"d" * 98 + b"\r\n") * 3000)
    wait_until("the partial message in queue/tmp", lambda: bool(files(state / "queue" / "tmp")))
    if how == "reset":
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    wait_idle(server)
    assert files(state / "queue" / "tmp") == []
    marker = b"Subject: after the drop\r\n\r\nmarker\r\n"
    send(server, ["bob@example.test"], marker)
    delivered = wait_for_files(box, before + 1)
    wait_until("an empty queue/mess", lambda: not files(state / "queue" / "mess"))
    assert len(files(box)) == before + 1
    newest = max(delivered, key=lambda p: p.stat().st_mtime_ns)
    assert strip_delivery_headers(newest.read_bytes()) == marker
    assert files(state / "queue" / "tmp") == []


def _garbage(seed: int, newlines: bool) -> bytes:
    data = random.Random(seed).randbytes(1 << 20)
    return data if newlines else data.replace(b"\n", b"").replace(b"\r", b"")


def test_smtp_binary_garbage_without_newlines(server: ServerProcess) -> None:
    client = smtp_client(server)
    client.send(_garbage(1, newlines=False))
    client.send(b"\r\nNOOP\r\n")
    assert client.line() == b"500 5.5.2 line too long\r\n"
    assert client.reply().startswith(b"250 ")
    smtp_quit(client)
    assert_serves(server, "smtp garbage")
    assert_no_session_errors(server)


def test_smtp_random_bytes_with_newlines(server: ServerProcess) -> None:
    received = flood(smtp_client(server), _garbage(2, newlines=True))
    lines = received.split(b"\r\n")
    assert lines[-1] == b"", "the last reply line is complete"
    lines = lines[:-1]
    # Only error replies, one per bad line, until max_bad_commands (20) is passed.
    assert all(re.fullmatch(rb"5\d\d[ -][ -~]{1,500}", line) for line in lines[:-1]), lines
    assert len(lines) == 21
    assert lines[-1] == b"421 4.7.0 too many errors, closing connection"
    assert_serves(server, "smtp random lines")
    assert_no_session_errors(server)


def test_pop3_binary_garbage_without_newlines(server: ServerProcess) -> None:
    client = pop3_client(server)
    client.send(_garbage(3, newlines=False))
    client.send(b"\r\nCAPA\r\n")
    assert client.line() == b"-ERR line too long\r\n"
    assert client.line().startswith(b"+OK")
    assert b"USER\r\n" in client.multiline()
    pop3_quit(client)
    assert_serves(server, "pop3 garbage")
    assert_no_session_errors(server)


def test_pop3_random_bytes_with_newlines(server: ServerProcess) -> None:
    received = flood(pop3_client(server), _garbage(4, newlines=True))
    lines = received.split(b"\r\n")
    assert lines[-1] == b""
    lines = lines[:-1]
    assert all(re.fullmatch(rb"-ERR [ -~]{1,500}", line) for line in lines), lines
    assert len(lines) == 21
    assert lines[-1] == b"-ERR too many errors, closing connection"
    assert_serves(server, "pop3 random lines")
    assert_no_session_errors(server)


# -- failed logins -------------------------------------------------------------------------------


def _pop3_login(server: ServerProcess, source: str, user: str, password: str) -> bytes:
    client = pop3_client(server, source)
    client.send(f"USER {user}\r\nPASS {password}\r\n".encode())
    assert client.line() == b"+OK send PASS\r\n"
    answer = client.line()
    pop3_quit(client)
    return answer


def test_failed_logins_are_throttled_per_address(server: ServerProcess) -> None:
    attacker, other = "127.0.0.3", "127.0.0.2"
    for _ in range(3):
        assert _pop3_login(server, attacker, "alice@example.test", WRONG) == (
            b"-ERR [AUTH] authentication failed\r\n")
    # The fourth attempt is refused before the password is looked at: right or not.
    throttled = b"-ERR [SYS/TEMP] too many failed logins; try again later\r\n"
    assert _pop3_login(server, attacker, "alice@example.test", PASSWORD) == throttled
    client = pop3_client(server, attacker)
    token = base64.b64encode(b"\0alice@example.test\0" + PASSWORD.encode())
    client.send(b"AUTH PLAIN " + token + b"\r\n")
    assert client.line() == throttled
    pop3_quit(client)
    # Another client address is not affected.
    assert _pop3_login(server, other, "alice@example.test", PASSWORD).startswith(
        b"+OK maildrop has")
    logins = log_events(server.state, "pop3.login")
    assert [e["result"] for e in logins if e["ip"] == attacker] == (
        ["failed"] * 3 + ["throttled"] * 2)
    assert any(e["ip"] == other and e["result"] == "ok" for e in logins)
    log = (server.state / "server.log").read_text(errors="replace")
    for secret in (WRONG, PASSWORD, token.decode()):
        assert secret not in log


def test_throttle_lifts_after_failure_window(tmp_path: Path) -> None:
    # One failure is enough: a slow argon2 check between two failures must not
    # let the first fall out of the (short) window before the next attempt.
    state = write_state(tmp_path / "state",
                        login={"max_failures": 1, "failure_window": 1.0, "failure_delay": 0.05})
    with running(state) as server:
        assert _pop3_login(server, "127.0.0.1", "bob@example.test", WRONG).startswith(
            b"-ERR [AUTH] authentication failed")
        assert b"too many failed logins" in _pop3_login(
            server, "127.0.0.1", "bob@example.test", PASSWORD)
        # The window itself is what is tested: a second, then the right password works.
        deadline = time.monotonic() + 5
        while (answer := _pop3_login(server, "127.0.0.1", "bob@example.test", PASSWORD)
               ).startswith(b"-ERR") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert answer.startswith(b"+OK maildrop has")


def test_client_cannot_forge_log_lines(server: ServerProcess) -> None:
    forged = "2001-01-01T00:00:00Z info pop3.login ip=192.0.2.66 user=root result=ok"
    client = pop3_client(server, "127.0.0.4")
    token = base64.b64encode(f"\0mallory\n{forged}\r\0{WRONG}".encode())
    client.send(b"AUTH PLAIN " + token + b"\r\n")
    assert client.line() == b"-ERR [AUTH] authentication failed\r\n"
    pop3_quit(client)
    log = (server.state / "server.log").read_text(errors="replace")
    assert not any(line.startswith("2001-") for line in log.splitlines())
    mine = [e for e in log_events(server.state, "pop3.login") if e["ip"] == "127.0.0.4"]
    assert [e["result"] for e in mine] == ["failed"]
    assert mine[0]["user"].startswith("mallory\\x0a2001-")
    assert all(e["ip"] != "192.0.2.66" for e in log_events(server.state, "pop3.login"))


# -- log lines --------------------------------------------------------------------------------------


def test_log_lines_per_event(tmp_path: Path) -> None:
    state = write_state(tmp_path / "state")
    with running(state) as server:
        first = send(server, ["alice@example.test", "bob@example.test"], b"Subject: 1\r\n\r\none\r\n")
        second = send(server, ["carol@example.net"], b"Subject: 2\r\n\r\ntwo\r\n")
        smtp_quit(smtp_client(server))  # a connection without a message
        assert _pop3_login(server, "127.0.0.1", "alice@example.test", WRONG).startswith(b"-ERR")
        wait_for_files(maildir(state, "carol@example.net") / "new", 1)
        assert _pop3_login(server, "127.0.0.1", "carol@example.net", PASSWORD).startswith(b"+OK")
        wait_until("three smtp.close lines", lambda: len(log_events(state, "smtp.close")) == 3)
        wait_until("three deliveries", lambda: len(log_events(state, "delivery")) == 3)
    connects = log_events(state, "smtp.connect")
    assert len(connects) == 3
    assert len({c["port"] for c in connects}) == 3
    assert all(c["ip"] == "127.0.0.1" for c in connects)
    closes = log_events(state, "smtp.close")
    assert len(closes) == 3 and all(c["reason"] == "closed" for c in closes)
    accepts = {a["id"]: a for a in log_events(state, "smtp.accept")}
    assert set(accepts) == {first, second}
    assert (accepts[first]["rcpts"], accepts[second]["rcpts"]) == ("2", "1")
    # size: the stored octets, the Received: line included.
    assert int(accepts[first]["size"]) > len(b"Subject: 1\r\n\r\none\r\n")
    deliveries = {(d["id"], d["rcpt"], d["result"]) for d in log_events(state, "delivery")}
    assert deliveries == {(first, "alice@example.test", "ok"), (first, "bob@example.test", "ok"),
                          (second, "carol@example.net", "ok")}
    logins = [(e["user"], e["result"]) for e in log_events(state, "pop3.login")]
    assert logins == [("alice@example.test", "failed"), ("carol@example.net", "ok")]
    assert len(log_events(state, "pop3.connect")) == len(log_events(state, "pop3.close")) == 2
    log = (state / "server.log").read_text(errors="replace")
    assert WRONG not in log and PASSWORD not in log


# -- shutdown -------------------------------------------------------------------------------------------


@dataclass
class Shutdown:
    state: Path
    code: int | None
    seconds: float
    bodies: dict[str, list[bytes]]  # acknowledged before the signal, per recipient
    smtp_got: bytes  # what the idle SMTP client read after the signal
    pop3_got: bytes  # what the POP3 client, mid-session, read after the signal
    data_got: bytes  # what the SMTP client cut off mid-DATA read after the signal


def _prepare(state: Path, servers: list[ServerProcess]
             ) -> tuple[ServerProcess, dict[str, list[bytes]], list[Client]]:
    server = ServerProcess(state)
    servers.append(server)
    server.start()
    bodies: dict[str, list[bytes]] = {"alice@example.test": [], "bob@example.test": []}
    carol = b"Subject: for carol\r\n\r\nread, marked deleted, never QUIT\r\n"
    send(server, ["carol@example.net"], carol)
    wait_for_files(maildir(state, "carol@example.net") / "new", 1)
    for i in range(3):
        body = b"Subject: before stop %d\r\n\r\nacknowledged %d\r\n" % (i, i)
        send(server, ["alice@example.test"], body)
        bodies["alice@example.test"].append(body)
    idle = smtp_client(server)  # one message on it, then idle
    body = b"Subject: idle session\r\n\r\nsent on the idle session\r\n"
    idle.send(b"EHLO idle.example\r\nMAIL FROM:<idle@example.org>\r\n"
              b"RCPT TO:<bob@example.test>\r\nDATA\r\n" + body + b".\r\n")
    assert [idle.reply()[:3] for _ in range(5)] == [b"250", b"250", b"250", b"354", b"250"]
    bodies["bob@example.test"].append(body)
    pop = pop3_client(server)
    pop.send(b"USER carol@example.net\r\nPASS " + PASSWORD.encode() + b"\r\nRETR 1\r\nDELE 1\r\n")
    assert pop.line().startswith(b"+OK")
    assert pop.line() == b"+OK maildrop has 1 message (%d octets)\r\n" % (
        next((maildir(state, "carol@example.net") / "cur").iterdir()).stat().st_size)
    assert pop.line().startswith(b"+OK")
    assert strip_delivery_headers(b"".join(pop.multiline())) == carol
    assert pop.line() == b"+OK message 1 deleted\r\n"
    partial = smtp_client(server)  # mid-DATA, with a queue file in tmp/
    partial.send(b"EHLO partial.example\r\nMAIL FROM:<partial@example.org>\r\n"
                 b"RCPT TO:<alice@example.test>\r\nDATA\r\n")
    assert [partial.reply()[:3] for _ in range(4)] == [b"250", b"250", b"250", b"354"]
    partial.send(b"Subject: cut off\r\n\r\n" + (b"p" * 98 + b"\r\n") * 3000)
    wait_until("the partial message in queue/tmp", lambda: bool(files(state / "queue" / "tmp")))
    return server, bodies, [idle, pop, partial]


FINISHED = b"Subject: finished after the signal\r\n\r\nwithin the grace period\r\n"


def _finisher(server: ServerProcess) -> Client:
    """A client in DATA when the signal comes; it finishes after it."""
    client = smtp_client(server)
    client.send(b"EHLO late.example\r\nMAIL FROM:<late@example.org>\r\n"
                b"RCPT TO:<bob@example.test>\r\nDATA\r\n" + FINISHED[:20])
    assert [client.reply()[:3] for _ in range(4)] == [b"250", b"250", b"250", b"354"]
    return client


def _listener_closed(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture(scope="module")
def shutdowns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Shutdown]]:
    """SIGTERM and SIGINT, each to its own server, at once (each waits out the grace)."""
    servers: list[ServerProcess] = []
    try:
        yield _shut_down_both(tmp_path_factory, servers)
    finally:
        for server in servers:
            server.kill()


def _shut_down_both(tmp_path_factory: pytest.TempPathFactory,
                    servers: list[ServerProcess]) -> dict[str, Shutdown]:
    prepared = {}
    finishers = {}
    for sig in ("SIGTERM", "SIGINT"):
        state = write_state(tmp_path_factory.mktemp(sig.lower()) / "state")
        prepared[sig] = (state, *_prepare(state, servers))
        finishers[sig] = _finisher(prepared[sig][1])
        prepared[sig][2]["bob@example.test"].append(FINISHED)
    started = {}
    for sig, (_, server, _, _) in prepared.items():
        assert server.proc is not None
        server.proc.send_signal(getattr(signal, sig))
        started[sig] = time.monotonic()
    for sig, (_, server, _, _) in prepared.items():
        # The listeners close at once; sessions under way may still finish.
        address = server.address("smtp")
        wait_until("the SMTP listener to close", lambda a=address: _listener_closed(a))
        finisher = finishers[sig]
        finisher.send(FINISHED[20:] + b".\r\n")
        assert finisher.reply().startswith(b"250 2.0.0")
        smtp_quit(finisher)
    results = {}
    for sig, (state, server, bodies, clients) in prepared.items():
        assert server.proc is not None
        try:
            code: int | None = server.proc.wait(STOP_GRACE + 20)
        except subprocess.TimeoutExpired:
            code = None
        seconds = time.monotonic() - started[sig]
        got = [client.rest() for client in clients]
        for client in clients:
            client.close()
        results[sig] = Shutdown(state, code, seconds, bodies, *got)
    return results


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_shutdown_exits_zero_within_grace(shutdowns: dict[str, Shutdown], sig: str) -> None:
    result = shutdowns[sig]
    assert result.code == 0
    assert result.seconds < STOP_GRACE + 5
    assert [e for e in log_events(result.state, "stopped")], "no 'stopped' line"


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_shutdown_keeps_every_acknowledged_message(shutdowns: dict[str, Shutdown],
                                                   sig: str) -> None:
    result = shutdowns[sig]
    for rcpt, bodies in result.bodies.items():
        stored = [strip_delivery_headers(p.read_bytes())
                  for p in files(maildir(result.state, rcpt) / "new")]
        assert sorted(stored) == sorted(bodies), rcpt
    assert files(result.state / "queue" / "tmp") == []
    assert files(result.state / "queue" / "mess") == []


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_shutdown_mid_pop3_session_deletes_nothing(shutdowns: dict[str, Shutdown],
                                                   sig: str) -> None:
    result = shutdowns[sig]
    assert result.pop3_got == b""  # closed; no "+OK" that would claim an UPDATE
    # RFC 1939 §6: without QUIT there is no UPDATE state; DELE 1 is forgotten.
    assert len(files(maildir(result.state, "carol@example.net") / "cur")) == 1


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_shutdown_mid_data_leaves_nothing(shutdowns: dict[str, Shutdown], sig: str) -> None:
    result = shutdowns[sig]
    assert not result.data_got.startswith(b"250"), "a cut-off message was not accepted"
    assert files(result.state / "queue" / "tmp") == []
    stored = [p.read_bytes() for p in files(maildir(result.state, "alice@example.test") / "new")]
    assert not any(b"cut off" in data for data in stored)


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_shutdown_tells_idle_smtp_client_421(shutdowns: dict[str, Shutdown], sig: str) -> None:
    assert shutdowns[sig].smtp_got.startswith(b"421 4.")


def _worker_idle(server: ServerProcess) -> bool:
    worker = status(server)["delivery"]["status"]
    return worker is not None and worker["in_flight"] == 0 and worker["passes"] >= 1


def _pipe_of(pid: int, fd: int) -> str:
    return os.readlink(f"/proc/{pid}/fd/{fd}")


def _holds(pid: int, target: str) -> bool:
    """Whether process ``pid`` has a descriptor open on ``target`` (a "pipe:[inode]")."""

    def link(name: str) -> str | None:
        try:
            return os.readlink(f"/proc/{pid}/fd/{name}")
        except FileNotFoundError:
            return None  # closed since the listing

    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    return any(link(name) == target for name in names)


def test_stop_keeps_what_was_acknowledged_while_the_worker_was_busy(tmp_path: Path) -> None:
    """The worker is paused (SIGSTOP: a busy or still-starting worker) while
    messages are acknowledged and the server is told to stop; once the
    server has sent "stop" and closed the worker's stdin, it goes on.

    Stopping is qmail-send's way: deliveries in flight finish, nothing new
    starts. So every acknowledged message is either delivered or still in
    the queue, and the next start delivers the rest."""
    state = write_state(tmp_path / "state")
    server = ServerProcess(state).start()
    try:
        # Warm up: one delivery done, so the worker's start-up (queue
        # recovery) is over and its manager is idle, waiting for triggers.
        send(server, ["bob@example.test"], b"Subject: warm-up\r\n\r\nfirst\r\n")
        wait_for_files(maildir(state, "bob@example.test") / "new", 1)
        wait_until("an idle delivery worker", lambda: _worker_idle(server))
        worker = status(server)["delivery"]["pid"]
        trigger = _pipe_of(worker, 0)
        os.kill(worker, signal.SIGSTOP)
        try:
            bodies = [b"Subject: %d\r\n\r\nacknowledged %d\r\n" % (i, i) for i in range(5)]
            for body in bodies:
                send(server, ["alice@example.test"], body)
            server.proc.send_signal(signal.SIGTERM)
            wait_until("the server to close the worker's stdin",
                       lambda: not _holds(server.proc.pid, trigger))
        finally:
            os.kill(worker, signal.SIGCONT)
        assert server.proc.wait(60) == 0
    finally:
        server.kill()
    box = maildir(state, "alice@example.test") / "new"
    delivered = len(files(box))
    assert delivered + len(files(state / "queue" / "mess")) == len(bodies)
    assert not files(state / "queue" / "tmp")
    server = ServerProcess(state).start()
    try:
        wait_for_files(box, len(bodies))
    finally:
        server.stop()
    stored = [strip_delivery_headers(p.read_bytes()) for p in files(box)]
    assert sorted(stored) == sorted(bodies)


# -- the delivery worker ------------------------------------------------------------------------------


def test_delivery_worker_restarted_after_sigkill(server: ServerProcess) -> None:
    assert server.proc is not None
    before = status(server)["delivery"]
    assert isinstance(before, dict)
    old = before["pid"]
    with open(f"/proc/{old}/stat") as handle:
        ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
    assert ppid == server.proc.pid, "the delivery worker is a child of the server"
    os.kill(old, signal.SIGKILL)
    box = maildir(server.state, "alice@example.test") / "new"
    count = len(files(box))
    body = b"Subject: after the kill\r\n\r\ndelivered by the new worker\r\n"
    send(server, ["alice@example.test"], body)
    newest = max(wait_for_files(box, count + 1, timeout=10), key=lambda p: p.stat().st_mtime_ns)
    assert strip_delivery_headers(newest.read_bytes()) == body
    after = status(server)["delivery"]
    assert isinstance(after, dict)
    assert after["pid"] != old and after["restarts"] == before["restarts"] + 1
    assert any(e["pid"] == str(old) for e in log_events(server.state, "delivery.exited"))
