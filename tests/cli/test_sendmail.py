"""mailyard sendmail / mailyard-sendmail: flags, exit codes, and real delivery."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.cli.sendmail import EX_USAGE, SendmailUsage, parse_args
from tests.e2e.server import ServerProcess, maildir, provision, wait_for_files, write_config


def test_flags_sendmail_style() -> None:
    args = parse_args(["-t", "-oi", "-fjoe@x.example", "-F", "Joe B", "-odq", "a@b.example"])
    assert args.read_recipients and not args.dot_ends
    assert args.sender == "joe@x.example" and args.full_name == "Joe B"
    assert args.recipients == ["a@b.example"]
    assert parse_args(["-ti", "-f", "<>"]).sender == "<>"
    assert parse_args(["-r", "s@x.example", "--", "-weird@x.example"]).recipients == [
        "-weird@x.example"]
    assert parse_args(["-oem", "-v", "-B", "8BITMIME", "-N", "never", "x@y.example"]).recipients \
        == ["x@y.example"]


@pytest.mark.parametrize("argv", [["-bs"], ["-bp"], ["-f"], ["-Q"], ["-F"]])
def test_unsupported_or_incomplete_flags(argv: list[str]) -> None:
    with pytest.raises(SendmailUsage):
        parse_args(argv)


@given(st.lists(st.text(max_size=12), max_size=6))
def test_parse_args_never_crashes(argv: list[str]) -> None:
    try:
        parse_args(argv)
    except SendmailUsage:
        pass


def _sendmail(state: Path, argv: list[str], message: bytes,
              script: bool = False) -> subprocess.CompletedProcess[bytes]:
    if script:
        command = [str(Path(sys.executable).with_name("mailyard-sendmail")), *argv]
        env = {"MAILYARD_STATE": str(state), "PATH": "/usr/bin:/bin", "USER": "tester"}
    else:
        command = [sys.executable, "-m", "mailyard", "--state", str(state), "sendmail", *argv]
        env = {"PATH": "/usr/bin:/bin", "USER": "tester"}
    return subprocess.run(command, input=message, capture_output=True, timeout=60, env=env)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    state = tmp_path_factory.mktemp("sendmail") / "state"
    write_config(state)
    provision(state)
    server = ServerProcess(state).start()
    yield server
    server.stop()


def test_sendmail_t_delivers_and_hides_bcc(running: ServerProcess) -> None:
    state = running.state
    alice = maildir(state, "alice@example.test") / "new"
    bob = maildir(state, "bob@example.test") / "new"
    a0, b0 = len(list(alice.iterdir())), len(list(bob.iterdir()))
    result = _sendmail(state, ["-t", "-f", "cron@example.test"],
                       b"To: alice@example.test\nBcc: bob@example.test\nSubject: nightly\n\n"
                       b"all good\n.\nafter the dot\n")
    assert result.returncode == 0, result.stderr
    got_alice = wait_for_files(alice, a0 + 1)
    wait_for_files(bob, b0 + 1)
    newest = max(got_alice, key=lambda p: p.stat().st_mtime_ns).read_bytes()
    assert newest.startswith(b"Return-Path: <cron@example.test>\r\n")
    assert b"Bcc" not in newest and b"bob@example.test" not in newest.split(b"\r\n\r\n")[1]
    # Without -i a line holding only "." ends the message, as sendmail does.
    assert newest.endswith(b"all good\r\n")


def test_mailyard_sendmail_script_with_oi(running: ServerProcess) -> None:
    state = running.state
    carol = maildir(state, "carol@example.net") / "new"
    before = len(list(carol.iterdir()))
    result = _sendmail(state, ["-oi", "carol@example.net"], b"Subject: s\n\nx\n.\ny\n", script=True)
    assert result.returncode == 0, result.stderr
    newest = max(wait_for_files(carol, before + 1), key=lambda p: p.stat().st_mtime_ns)
    data = newest.read_bytes()
    assert data.endswith(b"x\r\n.\r\ny\r\n")
    assert b"From: tester@mx.example.test" in data  # the invoking user at the host name
    assert b"Message-ID: <" in data and b"Date: " in data


def test_exit_codes(running: ServerProcess) -> None:
    state = running.state
    none = _sendmail(state, [], b"Subject: x\n\nno recipients\n")
    assert none.returncode == EX_USAGE and b"no recipients" in none.stderr
    bad = _sendmail(state, ["-f", "not an address", "a@example.test"], b"x\n")
    assert bad.returncode == EX_USAGE and b"invalid sender" in bad.stderr
    assert _sendmail(state, ["-bs"], b"").returncode == EX_USAGE


def test_without_a_running_server_the_message_waits(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_config(state)
    provision(state)
    result = _sendmail(state, ["alice@example.test"], b"Subject: later\n\nqueued\n")
    assert result.returncode == 0, result.stderr
    assert len(list((state / "queue" / "mess").iterdir())) == 1
    server = ServerProcess(state).start()
    try:
        files = wait_for_files(maildir(state, "alice@example.test") / "new", 1)
        assert files[0].read_bytes().endswith(b"queued\r\n")
    finally:
        server.stop()
