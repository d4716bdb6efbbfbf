"""POP3 end to end with poplib against a real server process."""

from __future__ import annotations

import poplib
import smtplib
import time

import pytest

from tests.e2e.server import PASSWORD, ServerProcess, maildir, strip_delivery_headers


def _send(server: ServerProcess, rcpt: str, n: int, tag: str) -> None:
    host, port = server.address("smtp")
    with smtplib.SMTP(host, port, timeout=30) as client:
        for i in range(n):
            client.sendmail("s@example.org", [rcpt], f"Subject: {tag} {i}\r\n\r\n.body {i}\r\n".encode())


def _pop(server: ServerProcess) -> poplib.POP3:
    host, port = server.address("pop3")
    return poplib.POP3(host, port, timeout=30)


def test_retrieve_uidl_stable_and_drop_keeps_messages(server: ServerProcess) -> None:
    box = maildir(server.state, "bob@example.test")
    before = sum(1 for _ in (box / "new").iterdir()) + sum(1 for _ in (box / "cur").iterdir())
    _send(server, "bob@example.test", 3, "pop")
    # Earlier tests' messages may sit in new/ or cur/: wait for these three.
    deadline = time.monotonic() + 30
    while sum(1 for _ in (box / "new").iterdir()) + sum(1 for _ in (box / "cur").iterdir()) < before + 3:
        assert time.monotonic() < deadline, "messages not delivered"
        time.sleep(0.02)
    pop = _pop(server)
    pop.user("bob@example.test")
    pop.pass_(PASSWORD)
    count, _ = pop.stat()
    assert count >= 3
    uidl_first = pop.uidl()[1]
    # Deliveries run in parallel, so the three may be in any order at the end.
    bodies = set()
    for number in range(count - 2, count + 1):
        resp, lines, _ = pop.retr(number)
        assert resp.startswith(b"+OK")
        bodies.add(strip_delivery_headers(b"\r\n".join(lines) + b"\r\n"))
    assert {b"Subject: pop %d\r\n\r\n.body %d\r\n" % (i, i) for i in range(3)} <= bodies
    pop.dele(1)
    # Drop the connection without QUIT: nothing may be deleted.
    pop.sock.close()

    pop = _pop(server)
    pop.user("bob:example.test")
    pop.pass_(PASSWORD)
    assert pop.stat()[0] == count
    assert pop.uidl()[1] == uidl_first
    pop.dele(1)
    pop.quit()

    pop = _pop(server)
    pop.user("bob")  # bare name: the listener's default domain
    pop.pass_(PASSWORD)
    assert pop.stat()[0] == count - 1
    assert pop.uidl()[1] == uidl_first[1:] or len(pop.uidl()[1]) == count - 1
    pop.quit()


def test_login_forms_and_failures(server: ServerProcess) -> None:
    for name in ("carol@example.net", "carol%example.net", "carol:example.net"):
        pop = _pop(server)
        pop.user(name)
        pop.pass_(PASSWORD)
        pop.quit()
    pop = _pop(server)
    pop.user("carol@example.net")
    with pytest.raises(poplib.error_proto):
        pop.pass_("wrong password")
    pop.quit()
    pop = _pop(server)
    pop.user("nobody@example.net")
    with pytest.raises(poplib.error_proto):
        pop.pass_(PASSWORD)
    pop.quit()


def test_one_session_per_maildrop(server: ServerProcess) -> None:
    first = _pop(server)
    first.user("alice@example.test")
    first.pass_(PASSWORD)
    second = _pop(server)
    second.user("alice@example.test")
    with pytest.raises(poplib.error_proto) as info:
        second.pass_(PASSWORD)
    assert b"IN-USE" in info.value.args[0]
    second.quit()
    first.quit()
    third = _pop(server)
    third.user("alice@example.test")
    third.pass_(PASSWORD)
    third.quit()


def test_auth_plain(server: ServerProcess) -> None:
    import base64

    pop = _pop(server)
    token = base64.b64encode(b"\0carol@example.net\0" + PASSWORD.encode()).decode()
    resp = pop._shortcmd(f"AUTH PLAIN {token}")
    assert resp.startswith(b"+OK")
    pop.quit()
