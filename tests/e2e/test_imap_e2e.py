"""IMAP end to end: a real server process, imaplib and imapclient over loopback.

Logins, SELECT/EXAMINE, every FETCH attribute on a multipart message that
came in by SMTP, \\Seen and BODY.PEEK, partial fetches, STORE seen by a
second session, EXPUNGE heard at the right moment, garbage. (Mailboxes,
APPEND/COPY/MOVE/quota, CONDSTORE/QRESYNC/IDLE/POP3 and TLS have their
own files.) Each test uses a mailbox of its own on one shared server.
"""

from __future__ import annotations

import imaplib
import re
import socket
from collections.abc import Iterator

import pytest
from imapclient import IMAPClient

from tests.e2e.server import (
    PASSWORD,
    ServerProcess,
    imap_state,
    maildir,
    send_mail,
    wait_for_files,
)

MULTIPART = (
    b"From: Ann Example <ann@example.org>\r\n"
    b"To: Bob <i3@example.test>, carol@example.net\r\n"
    b'Cc: "Dee, D." <dee@example.org>\r\n'
    b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= and a report\r\n"
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
    b"Message-ID: <msg-1@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--outer\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Hello =C3=BCber world.\r\n"
    b"--outer\r\n"
    b'Content-Type: application/octet-stream; name="data.bin"\r\n'
    b'Content-Disposition: attachment; filename="data.bin"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAwQ=\r\n"
    b"--outer--\r\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    state = imap_state(tmp_path_factory.mktemp("imap"))
    proc = ServerProcess(state).start()
    yield proc
    assert proc.stop() == 0, proc.log_tail()


def deliver(server: ServerProcess, user: str, message: bytes, count: int = 1) -> None:
    """Send by SMTP and wait until the mailbox holds ``count`` new messages."""
    send_mail(server, user, message)
    wait_for_files(maildir(server.state, user) / "new", count)


def login(server: ServerProcess, user: str) -> imaplib.IMAP4:
    client = imaplib.IMAP4(*server.address("imap"), timeout=30)
    client.login(user, PASSWORD)
    return client


def client_for(server: ServerProcess, user: str) -> IMAPClient:
    host, port = server.address("imap")
    client = IMAPClient(host, port, ssl=False, timeout=30)
    client.login(user, PASSWORD)
    return client


def untagged(client: imaplib.IMAP4, name: str) -> list[bytes]:
    _, data = client.response(name)
    return [d for d in data if d is not None]


# -- logins ------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["i1@example.test", "i1%example.test", "i1:example.test", "i1"])
def test_login_forms(server: ServerProcess, form: str) -> None:
    client = imaplib.IMAP4(*server.address("imap"), timeout=30)
    # "%" is no atom character (RFC 9051 §9 list-wildcards): quoted, as
    # imaplib does not do for user names.
    typ, data = client.login(f'"{form}"' if "%" in form else form, PASSWORD)
    assert typ == "OK" and b"CAPABILITY" in data[0]
    client.logout()


def test_login_failures_and_authenticate_plain(server: ServerProcess) -> None:
    client = imaplib.IMAP4(*server.address("imap"), timeout=30)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        client.login("i1@example.test", "wrong")
    typ, _ = client.authenticate("PLAIN", lambda _: f"\0i1@example.test\0{PASSWORD}".encode())
    assert typ == "OK"
    assert client.select("INBOX")[0] == "OK"
    client.logout()
    log = (server.state / "server.log").read_text()
    assert "imap.login" in log and "result=failed" in log and PASSWORD not in log


# -- SELECT / EXAMINE ----------------------------------------------------------------


def test_select_and_examine_responses(server: ServerProcess) -> None:
    user = "i2@example.test"
    deliver(server, user, b"Subject: one\r\n\r\nx\r\n")
    client = login(server, user)
    typ, data = client.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    assert untagged(client, "FLAGS")[0].startswith(b"(\\Seen \\Answered \\Flagged")
    assert untagged(client, "RECENT") == [b"1"]  # SELECT claimed it from new/
    assert int(untagged(client, "UIDVALIDITY")[0]) > 0
    assert untagged(client, "UIDNEXT") == [b"2"]
    assert untagged(client, "UNSEEN") == [b"1"]
    assert b"\\*" in untagged(client, "PERMANENTFLAGS")[0]
    assert untagged(client, "READ-WRITE") == [b""]
    client.close()
    typ, data = client.select("INBOX", readonly=True)
    assert typ == "OK" and untagged(client, "READ-ONLY") == [b""]
    assert untagged(client, "RECENT") == [b"0"]  # the first SELECT took \Recent
    typ, data = client.store("1", "+FLAGS", "\\Deleted")
    assert typ == "NO" and b"read-only" in data[0]
    typ, data = client.select("Nowhere")
    assert typ == "NO" and data[0].startswith(b"[NONEXISTENT]")
    client.logout()


# -- FETCH ---------------------------------------------------------------------------


def _part(message: bytes, boundary: bytes, index: int) -> bytes:
    """The body of part ``index`` (from 1) as RFC 2046 §5.1.1 delimits it."""
    chunks = message.split(b"\r\n--" + boundary)
    part = chunks[index]
    return part[part.index(b"\r\n\r\n") + 4 :]


def test_fetch_every_attribute_of_a_multipart_message(server: ServerProcess) -> None:
    user = "i3@example.test"
    deliver(server, user, MULTIPART)
    stored = next((maildir(server.state, user) / "new").iterdir()).read_bytes()
    client = client_for(server, user)
    client.select_folder("INBOX")
    got = client.fetch([1], ["ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822.SIZE", "INTERNALDATE",
                             "FLAGS", "UID", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]",
                             "BODY.PEEK[1]", "BODY.PEEK[1.MIME]", "BINARY.PEEK[1]",
                             "BINARY.SIZE[2]", "RFC822.HEADER"])[1]
    env = got[b"ENVELOPE"]
    assert env.subject == b"=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= and a report"
    assert env.date.year == 1994
    assert [(a.name, a.mailbox, a.host) for a in env.from_] == [(b"Ann Example", b"ann", b"example.org")]
    assert env.sender == env.from_ and env.reply_to == env.from_
    assert [(a.mailbox, a.host) for a in env.to] == [(b"i3", b"example.test"), (b"carol", b"example.net")]
    assert [(a.name, a.mailbox) for a in env.cc] == [(b"Dee, D.", b"dee")]
    assert env.bcc is None and env.in_reply_to is None
    assert env.message_id == b"<msg-1@example.org>"
    text_body = _part(stored, b"outer", 1)
    structure = got[b"BODYSTRUCTURE"]
    assert structure.is_multipart
    parts, subtype = structure[0], structure[1]
    assert subtype == b"mixed" and structure[2] == (b"boundary", b"outer")
    first = parts[0]
    assert first[:6] == (b"text", b"plain", (b"charset", b"utf-8"), None, None, b"quoted-printable")
    assert first[6] == len(b"Hello =C3=BCber world.") and first[7] == 1
    second = parts[1]
    assert second[:6] == (b"application", b"octet-stream", (b"name", b"data.bin"), None, None,
                          b"base64")
    assert second[6] == len(b"AAECAwQ=")
    assert second[8] == (b"attachment", (b"filename", b"data.bin"))
    assert got[b"BODY"][0][0][:2] == (b"text", b"plain")  # BODY: no extension data
    assert got[b"RFC822.SIZE"] == len(stored)
    assert got[b"SEQ"] == 1  # keyed by UID 1 (imapclient uses UID FETCH)
    assert got[b"BODY[HEADER.FIELDS (SUBJECT)]"] == (
        b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= and a report\r\n\r\n")
    assert got[b"BODY[1]"] == text_body
    assert got[b"BODY[1.MIME]"].startswith(b"Content-Type: text/plain; charset=utf-8\r\n")
    assert got[b"BINARY[1]"] == "Hello über world.".encode()
    assert got[b"BINARY.SIZE[2]"] == 5  # base64 "AAECAwQ=" is 5 octets
    assert got[b"RFC822.HEADER"].endswith(b"\r\n\r\n")
    assert b"\\Seen" not in got[b"FLAGS"]  # PEEK everywhere
    rfc822 = client.fetch([1], ["RFC822"])[1][b"RFC822"]
    assert rfc822 == stored
    client.logout()


def test_peek_keeps_seen_and_body_sets_it(server: ServerProcess) -> None:
    user = "i4@example.test"
    deliver(server, user, b"Subject: peek\r\n\r\nhello there\r\n")
    client = client_for(server, user)
    client.select_folder("INBOX")
    client.fetch([1], ["BODY.PEEK[TEXT]"])
    assert b"\\Seen" not in client.get_flags([1])[1]
    got = client.fetch([1], ["BODY[TEXT]"])[1]
    assert b"\\Seen" in got[b"FLAGS"]  # RFC 9051 §6.4.5: the change is reported
    assert b"\\Seen" in client.get_flags([1])[1]
    client.logout()


def test_partial_fetch(server: ServerProcess) -> None:
    user = "i5@example.test"
    deliver(server, user, b"Subject: part\r\n\r\n0123456789abcdef\r\n")
    client = login(server, user)
    client.select("INBOX")
    typ, data = client.fetch("1", "(BODY.PEEK[TEXT]<4.6> BODY.PEEK[TEXT]<100.5>)")
    assert typ == "OK"
    assert data[0][0].endswith(b"BODY[TEXT]<4> {6}") and data[0][1] == b"456789"
    assert b'BODY[TEXT]<100> ""' in data[1] or b"BODY[TEXT]<100> {0}" in data[1][0]
    client.logout()


# -- two sessions ----------------------------------------------------------------------


def test_store_is_seen_by_a_second_session(server: ServerProcess) -> None:
    user = "i6@example.test"
    deliver(server, user, b"Subject: a\r\n\r\na\r\n")
    one, two = login(server, user), login(server, user)
    one.select("INBOX")
    two.select("INBOX")
    typ, data = one.store("1", "+FLAGS", "(\\Flagged $Important)")
    assert typ == "OK" and b"\\Flagged" in data[0] and b"$Important" in data[0]
    typ, _ = two.noop()
    fetched = untagged(two, "FETCH")
    assert fetched and b"\\Flagged" in fetched[0] and b"$Important" in fetched[0]
    assert b"UID 1" in fetched[0]
    # The new keyword is announced to both (RFC 9051 §7.3.5 FLAGS).
    assert b"$Important" in untagged(two, "FLAGS")[-1]
    one.logout()
    two.logout()


def test_expunge_is_told_at_the_right_moment(server: ServerProcess) -> None:
    user = "i7@example.test"
    for n in range(1, 4):
        deliver(server, user, f"Subject: m{n}\r\n\r\nbody {n}\r\n".encode(), count=n)
    one, two = login(server, user), login(server, user)
    one.select("INBOX")
    two.select("INBOX")
    one.store("2", "+FLAGS.SILENT", "(\\Deleted)")
    _, data = one.expunge()
    assert data == [b"2"]
    # RFC 9051 §7.5.1: no EXPUNGE during FETCH/STORE/SEARCH by number; the
    # second session still numbers the gone message (a ghost) ...
    _typ, data = two.fetch("1:3", "(UID)")
    assert untagged(two, "EXPUNGE") == []
    assert [d for d in data if d] == [b"1 (UID 1)", b"3 (UID 3)"]
    two.search(None, "ALL")
    assert untagged(two, "EXPUNGE") == []
    # ... and hears of it at the next command that allows it.
    two.noop()
    assert untagged(two, "EXPUNGE") == [b"2"]
    _, data = two.fetch("1:*", "(UID)")
    assert data == [b"1 (UID 1)", b"2 (UID 3)"]
    # UID commands may hear it at once.
    one.store("1", "+FLAGS.SILENT", "(\\Deleted)")
    one.expunge()
    two.uid("FETCH", "1:*", "(FLAGS)")
    assert untagged(two, "EXPUNGE") == [b"1"]
    one.logout()
    two.logout()


# -- robustness ------------------------------------------------------------------------


def test_garbage_gets_bad_and_others_are_served(server: ServerProcess) -> None:
    with socket.create_connection(server.address("imap"), timeout=10) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"* OK [CAPABILITY")
        sock.sendall(b"\x00\xff\xfe garbage\r\na1 FROB\r\n)))\r\na2 LOGIN\r\n")
        lines = [reader.readline() for _ in range(4)]
        assert all(re.match(rb"(\*|a1|a2) BAD ", line) for line in lines), lines
        other = login(server, "i8@example.test")
        assert other.select("INBOX")[0] == "OK"
        other.logout()
        sock.sendall(b"a3 NOOP\r\n")
        assert reader.readline() == b"a3 OK NOOP completed\r\n"


def test_bad_message_numbers(server: ServerProcess) -> None:
    client = login(server, "i9@example.test")
    client.select("INBOX")
    with pytest.raises(imaplib.IMAP4.error, match="no message"):
        client.fetch("5", "(FLAGS)")
    typ, _ = client.fetch("1:*", "(FLAGS)")  # "*" on an empty mailbox: nothing
    assert typ == "OK"
    client.logout()


def test_logs_name_each_session(server: ServerProcess) -> None:
    client = login(server, "i10@example.test")
    client.logout()
    log = (server.state / "server.log").read_text()
    assert re.search(r"imap\.connect ip=127\.0\.0\.1", log)
    assert re.search(r"imap\.close ip=127\.0\.0\.1 reason=closed", log)
    assert re.search(r"imap\.login ip=127\.0\.0\.1 user=i10@example\.test result=ok", log)
