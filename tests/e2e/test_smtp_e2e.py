"""SMTP in, end to end: smtplib and raw sockets against a real server process."""

from __future__ import annotations

import smtplib
import socket

import pytest

from tests.e2e.server import ServerProcess, maildir, strip_delivery_headers, wait_for_files


def _smtp(server: ServerProcess) -> smtplib.SMTP:
    host, port = server.address("smtp")
    return smtplib.SMTP(host, port, timeout=30)


def _newest(path, count):  # type: ignore[no-untyped-def]
    files = wait_for_files(path / "new", count)
    return sorted(files, key=lambda p: p.stat().st_mtime_ns)


def test_two_users_two_domains_byte_exact(server: ServerProcess) -> None:
    body = (
        b"From: sender@example.org\r\nTo: alice@example.test, carol@example.net\r\n"
        b"Subject: byte exact\r\n\r\n"
        b".leading dot line\r\n..two dots\r\n.\r\n"  # a lone dot inside the body, stuffed by smtplib
        b"8-bit: \xc3\xa9t\xc3\xa9 \xff\xfe\r\nlast line\r\n"
    )
    alice = maildir(server.state, "alice@example.test")
    carol = maildir(server.state, "carol@example.net")
    before_a = len(list((alice / "new").iterdir()))
    before_c = len(list((carol / "new").iterdir()))
    with _smtp(server) as client:
        client.ehlo("client.example.org")
        refused = client.sendmail("sender@example.org", ["alice@example.test", "carol@example.net"], body)
        assert refused == {}
    for box, before in ((alice, before_a), (carol, before_c)):
        newest = _newest(box, before + 1)[-1]
        stored = newest.read_bytes()
        assert strip_delivery_headers(stored) == body
        assert stored.startswith(b"Return-Path: <sender@example.org>\r\n")
        assert b"Delivered-To: " in stored.split(b"\r\n\r\n")[0]
        assert f",S={len(stored)}".encode() in newest.name.encode()


def test_large_message_20mb(server: ServerProcess) -> None:
    line = b"x" * 76 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * (20 * 1024 * 1024 // len(line))
    bob = maildir(server.state, "bob@example.test")
    before = len(list((bob / "new").iterdir()))
    with _smtp(server) as client:
        client.sendmail("big@example.org", ["bob@example.test"], body)
    stored = _newest(bob, before + 1)[-1].read_bytes()
    assert strip_delivery_headers(stored) == body


def test_unknown_user_is_refused_at_rcpt(server: ServerProcess) -> None:
    with _smtp(server) as client:
        client.ehlo("client.example.org")
        client.mail("sender@example.org")
        code, text = client.rcpt("nobody@example.test")
        assert code == 550 and text.startswith(b"5.1.1")


def test_relay_is_refused(server: ServerProcess) -> None:
    with _smtp(server) as client:
        client.ehlo("client.example.org")
        client.mail("sender@example.org")
        code, text = client.rcpt("victim@elsewhere.example")
        assert code == 554 and text.startswith(b"5.7.1")
        # The classic tricks: source routes, percent hack, quoted @.
        for trick in ("<@example.test:victim@elsewhere.example>", "<victim%elsewhere.example@example.test>",
                      '<"victim@elsewhere.example"@example.test>'):
            code, _ = client.docmd("RCPT TO:", trick)
            assert code in (550, 554, 501), trick


def test_oversize_is_refused_with_552(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.e2e.server import ServerProcess, provision, write_config

    state = tmp_path / "state"
    write_config(state, "")
    text = (state / "mailyard.toml").read_text().replace(
        '[smtp]\n', '[smtp]\nmax_message_size = 10000\n')
    (state / "mailyard.toml").write_text(text)
    provision(state)
    server = ServerProcess(state).start()
    try:
        with _smtp(server) as client:
            client.ehlo("client.example.org")
            assert client.esmtp_features["size"] == "10000"
            with pytest.raises(smtplib.SMTPSenderRefused) as info:
                client.sendmail("a@example.org", ["alice@example.test"], b"x" * 20000)
            assert info.value.smtp_code == 552
            client.rset()
            client.mail("a@example.org")
            client.rcpt("alice@example.test")
            code, _ = client.data(b"Subject: big\r\n\r\n" + (b"y" * 98 + b"\r\n") * 200)
            assert code == 552
        assert list((maildir(state, "alice@example.test") / "new").iterdir()) == []
        assert list((state / "queue" / "mess").iterdir()) == []
    finally:
        server.stop()


def _raw(server: ServerProcess, payload: bytes, expect_lines: int) -> list[bytes]:
    host, port = server.address("smtp")
    with socket.create_connection((host, port), timeout=30) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220")
        sock.sendall(payload)
        lines = []
        while len(lines) < expect_lines:
            line = reader.readline()
            if not line:
                break
            if line[3:4] == b"-":
                continue
            lines.append(line)
        return lines


def test_pipelining_replies_in_order(server: ServerProcess) -> None:
    replies = _raw(
        server,
        b"EHLO pipe.example\r\nMAIL FROM:<p@example.org>\r\nRCPT TO:<alice@example.test>\r\n"
        b"RCPT TO:<nobody@example.test>\r\nDATA\r\nSubject: p\r\n\r\nbody\r\n.\r\nQUIT\r\n",
        7,
    )
    codes = [r[:3] for r in replies]
    assert codes == [b"250", b"250", b"250", b"550", b"354", b"250", b"221"]


def test_smuggling_lf_dot_lf_does_not_end_data(server: ServerProcess) -> None:
    replies = _raw(
        server,
        b"EHLO s.example\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
        b"Subject: s\r\n\r\nhello\n.\nMAIL FROM:<evil@example.org>\r\n.\r\nQUIT\r\n",
        6,
    )
    codes = [r[:3] for r in replies]
    # One message, refused as a whole because of the bare LF; the smuggled MAIL is content.
    assert codes[:4] == [b"250", b"250", b"250", b"354"]
    assert codes[4] == b"554"
    assert codes[5] == b"221"


def test_postmaster_is_always_accepted(server: ServerProcess) -> None:
    """RFC 5321 §4.5.1: <Postmaster> and postmaster@<each local domain> are
    accepted even without such a mailbox, and reach the configured postmaster."""
    from tests.e2e.server import POSTMASTER

    box = maildir(server.state, POSTMASTER) / "new"
    before = len(list(box.iterdir()))
    with _smtp(server) as client:
        client.ehlo("client.example.org")
        client.mail("someone@example.org")
        assert client.docmd("RCPT TO:<Postmaster>")[0] == 250
        assert client.rcpt("POSTMASTER@example.net")[0] == 250
        code, _ = client.data(b"Subject: to postmaster\r\n\r\nhello\r\n")
        assert code == 250
    files = wait_for_files(box, before + 1)
    assert any(b"to postmaster" in p.read_bytes() for p in files)
