"""IMAP end to end, keeping clients in sync: IDLE pushes an SMTP delivery
(RFC 2177), CONDSTORE and QRESYNC (RFC 7162), and POP3 and IMAP working on
one mailbox at once."""

from __future__ import annotations

import imaplib
import poplib
import re
import time
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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    state = imap_state(tmp_path_factory.mktemp("imapsync"))
    proc = ServerProcess(state).start()
    yield proc
    assert proc.stop() == 0, proc.log_tail()


def login(server: ServerProcess, user: str) -> imaplib.IMAP4:
    client = imaplib.IMAP4(*server.address("imap"), timeout=30)
    client.login(user, PASSWORD)
    return client


def fill(server: ServerProcess, user: str, count: int) -> None:
    for n in range(1, count + 1):
        send_mail(server, user, f"Subject: s{n}\r\n\r\nbody {n}\r\n".encode())
        wait_for_files(maildir(server.state, user) / "new", n)


def command(client: imaplib.IMAP4, name: str, *args: str) -> tuple[str, list[bytes]]:
    """A command imaplib does not know, and everything it got back, untagged included."""
    typ, data = client._simple_command(name, *args)
    if name == "SELECT" and typ == "OK":
        client.state = "SELECTED"  # imaplib keeps its own idea of the state
    lines = []
    for key in list(client.untagged_responses):
        for value in client.untagged_responses.pop(key):
            lines.append(key.encode() + b" " + (value if isinstance(value, bytes) else b""))
    return typ, [*lines, *(d for d in data if isinstance(d, bytes))]


# -- IDLE ------------------------------------------------------------------------------


def test_idle_hears_an_smtp_delivery_within_a_second(server: ServerProcess) -> None:
    user = "i1@example.test"
    host, port = server.address("imap")
    client = IMAPClient(host, port, ssl=False, timeout=30)
    client.login(user, PASSWORD)
    client.select_folder("INBOX")
    client.idle()
    box = maildir(server.state, user)
    send_mail(server, user, b"Subject: pushed\r\n\r\nhello\r\n")
    # In new/, or already in cur/: the idling session may have claimed it
    # (\Recent) before this loop looked (a loaded CI machine saw that).
    deadline = time.monotonic() + 30
    while not any(p.name[:1] != "." for sub in ("new", "cur") for p in (box / sub).iterdir()):
        assert time.monotonic() < deadline, "the delivery did not land in 30 s"
        time.sleep(0.01)
    landed = time.monotonic()
    responses = client.idle_check(timeout=10)
    heard = time.monotonic() - landed
    client.idle_done()
    assert (1, b"EXISTS") in responses, responses
    # The aim is under 1 s (bench/imap_idle.py measures it: ~0.25 s); the
    # bound here is loose so a loaded CI machine cannot make it flaky, and
    # still catches a push that only comes with some slow periodic rescan.
    print(f"\nIDLE heard the delivery {heard:.3f} s after it landed")
    assert heard < 3.0, f"IDLE heard the delivery {heard:.3f} s after it landed"
    client.logout()


def test_idle_hears_another_sessions_changes(server: ServerProcess) -> None:
    user = "i2@example.test"
    fill(server, user, 2)
    host, port = server.address("imap")
    idler = IMAPClient(host, port, ssl=False, timeout=30)
    idler.login(user, PASSWORD)
    idler.select_folder("INBOX")
    idler.idle()
    other = login(server, user)
    other.select("INBOX")
    other.store("1", "+FLAGS.SILENT", "(\\Flagged)")
    seen = idler.idle_check(timeout=10)
    other.store("2", "+FLAGS.SILENT", "(\\Deleted)")
    other.expunge()
    deadline = time.monotonic() + 10
    while (2, b"EXPUNGE") not in seen and time.monotonic() < deadline:
        seen += idler.idle_check(timeout=1)
    idler.idle_done()
    assert any(r[1] == b"FETCH" and b"\\Flagged" in r[2][r[2].index(b"FLAGS") + 1]
               for r in seen if len(r) > 2), seen
    assert (2, b"EXPUNGE") in seen  # RFC 2177: EXPUNGE may be sent during IDLE
    other.logout()
    idler.logout()


# -- CONDSTORE / QRESYNC ---------------------------------------------------------------


def test_condstore(server: ServerProcess) -> None:
    user = "i3@example.test"
    fill(server, user, 3)
    client = login(server, user)
    typ, lines = command(client, "SELECT", "INBOX", "(CONDSTORE)")
    highest = int(re.search(rb"HIGHESTMODSEQ (\d+)", b" ".join(lines)).group(1))
    typ, data = client.fetch("1:*", "(MODSEQ)")
    modseqs = [int(re.search(rb"MODSEQ \((\d+)\)", d).group(1)) for d in data]
    assert max(modseqs) == highest
    typ, data = client.store("2", "+FLAGS", "(\\Flagged)")
    stored = int(re.search(rb"MODSEQ \((\d+)\)", data[0]).group(1))
    assert stored > highest
    # RFC 7162 §3.1.3: message 2 changed after `highest`; 1 and 3 did not.
    typ, lines = command(client, "STORE", "1:3", f"(UNCHANGEDSINCE {highest})", "+FLAGS",
                         "(\\Seen)")
    assert typ == "OK" and any(b"[MODIFIED 2]" in line for line in lines), lines
    typ, data = client.uid("FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {stored})")
    assert [re.search(rb"UID (\d+)", d).group(1) for d in data] == [b"1", b"3"]
    client.logout()


def test_qresync_after_changes(server: ServerProcess) -> None:
    user = "i4@example.test"
    fill(server, user, 3)
    first = login(server, user)
    command(first, "ENABLE", "QRESYNC")
    typ, lines = command(first, "SELECT", "INBOX")
    validity = int(re.search(rb"UIDVALIDITY (\d+)", b" ".join(lines)).group(1))
    known = int(re.search(rb"HIGHESTMODSEQ (\d+)", b" ".join(lines)).group(1))
    first.logout()
    other = login(server, user)
    other.select("INBOX")
    other.store("1", "+FLAGS", "(\\Answered)")
    other.store("2", "+FLAGS.SILENT", "(\\Deleted)")
    other.expunge()
    other.logout()
    again = login(server, user)
    command(again, "ENABLE", "QRESYNC")
    typ, lines = command(again, "SELECT", "INBOX", f"(QRESYNC ({validity} {known} 1:3))")
    text = b"\n".join(lines)
    assert typ == "OK"
    assert b"VANISHED (EARLIER) 2" in text, text
    assert re.search(rb"FETCH 1 \(UID 1 FLAGS \([^)]*\\Answered[^)]*\) MODSEQ \(\d+\)\)", text), text
    assert b"UID 3" not in text  # unchanged since `known`
    typ, lines = command(again, "UID", "FETCH", "1:*", "(FLAGS)", f"(CHANGEDSINCE {known} VANISHED)")
    text = b"\n".join(lines)
    assert b"VANISHED (EARLIER) 2" in text and b"UID 1" in text and b"UID 3" not in text
    # Live expunges are VANISHED too once QRESYNC is on (RFC 7162 §3.2.10).
    command(again, "STORE", "2", "+FLAGS.SILENT", "(\\Deleted)")
    typ, lines = command(again, "EXPUNGE")
    assert b"VANISHED 3" in b"\n".join(lines) and not any(b"EXPUNGE 2" in x for x in lines)
    again.logout()


# -- POP3 and IMAP at once ---------------------------------------------------------------


def test_pop3_and_imap_on_one_mailbox(server: ServerProcess) -> None:
    user = "i5@example.test"
    fill(server, user, 3)
    imap = login(server, user)
    imap.select("INBOX")
    pop = poplib.POP3(*server.address("pop3"), timeout=30)
    pop.user(user)
    pop.pass_(PASSWORD)
    before = pop.uidl()[1]
    assert len(before) == 3
    pop.dele(1)
    pop.quit()
    imap.noop()
    assert imap.response("EXPUNGE")[1] == [b"1"]  # POP3's deletion at QUIT, heard by IMAP
    _, data = imap.fetch("1:*", "(UID)")
    assert data == [b"1 (UID 2)", b"2 (UID 3)"]
    imap.store("1", "+FLAGS.SILENT", "(\\Deleted)")
    imap.expunge()
    pop = poplib.POP3(*server.address("pop3"), timeout=30)
    pop.user(user)
    pop.pass_(PASSWORD)
    after = pop.uidl()[1]
    pop.quit()
    # POP3 UIDLs do not change when IMAP works on the mailbox.
    assert [line.split()[1] for line in after] == [before[2].split()[1]]
    imap.logout()


def test_condstore_enabled_by_a_command_while_selected(server: ServerProcess) -> None:
    user = "i6@example.test"
    fill(server, user, 1)
    client = login(server, user)
    client.select("INBOX")
    typ, data = client.fetch("1", "(FLAGS MODSEQ)")  # RFC 7162 §3.1: enables CONDSTORE
    assert typ == "OK" and b"MODSEQ (" in data[0]
    assert client.response("HIGHESTMODSEQ")[1][0] is not None
    client.store("1", "+FLAGS", "(\\Answered)")
    other = login(server, user)
    other.select("INBOX")
    other.store("1", "+FLAGS", "(\\Flagged)")
    other.logout()
    client.noop()
    fetched = client.response("FETCH")[1]
    # CONDSTORE on: unsolicited flag changes carry UID and MODSEQ.
    assert re.search(rb"UID 1 FLAGS \([^)]*\\Flagged[^)]*\) MODSEQ \(\d+\)", fetched[-1])
    client.logout()


def test_imap4rev2_session(server: ServerProcess) -> None:
    user = "i7@example.test"
    fill(server, user, 2)
    client = login(server, user)
    _, lines = command(client, "ENABLE", "IMAP4rev2")
    assert b"ENABLED IMAP4rev2" in b"\n".join(lines)
    _, lines = command(client, "SELECT", "INBOX")
    text = b"\n".join(lines)
    # RFC 9051 §6.3.2: LIST is told, RECENT and [UNSEEN] are gone.
    assert b'LIST (\\HasNoChildren) "/" "INBOX"' in text, text
    assert b"RECENT" not in text and b"UNSEEN" not in text
    _, lines = command(client, "SEARCH", "ALL")
    assert any(re.search(rb'ESEARCH \(TAG "\w+"\) ALL 1:2', x) for x in lines), lines
    _, lines = command(client, "FETCH", "1:*", "(FLAGS)")
    assert b"\\Recent" not in b"\n".join(lines)
    _, lines = command(client, "STATUS", "INBOX", "(MESSAGES DELETED SIZE)")
    assert any(b"DELETED 0" in x for x in lines)
    client.logout()
