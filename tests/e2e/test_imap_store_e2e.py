"""IMAP end to end, the store side: APPEND (flags, date, APPENDUID, a 20 MB
message with bounded memory), COPY/MOVE with COPYUID, UID EXPUNGE, quota,
folders (rename with children, unicode names, LIST-EXTENDED, LIST-STATUS,
SPECIAL-USE), SEARCH, SORT and THREAD."""

from __future__ import annotations

import imaplib
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
    process_rss_kb,
    send_mail,
    wait_for_files,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    state = imap_state(tmp_path_factory.mktemp("imapstore"))
    proc = ServerProcess(state).start()
    yield proc
    assert proc.stop() == 0, proc.log_tail()


def login(server: ServerProcess, user: str) -> imaplib.IMAP4:
    client = imaplib.IMAP4(*server.address("imap"), timeout=60)
    client.login(user, PASSWORD)
    return client


def client_for(server: ServerProcess, user: str) -> IMAPClient:
    host, port = server.address("imap")
    client = IMAPClient(host, port, ssl=False, timeout=60)
    client.login(user, PASSWORD)
    return client


def code(data: list[bytes], name: bytes) -> list[bytes]:
    return re.findall(rb"\[" + name + rb" ([^\]]*)\]", b" ".join(d for d in data if d))


# -- APPEND ---------------------------------------------------------------------------


def test_append_with_flags_and_date(server: ServerProcess) -> None:
    client = login(server, "i1@example.test")
    message = b"Subject: appended\r\nFrom: me@example.test\r\n\r\nHello.\r\n"
    date = imaplib.Time2Internaldate(time.mktime((2023, 4, 5, 6, 7, 8, 0, 0, -1)))
    typ, data = client.append("Sent", "(\\Seen $Label1)", date, message)
    assert typ == "OK"
    (appenduid,) = code(data, b"APPENDUID")
    uidvalidity, uid = appenduid.split()
    assert int(uid) == 1 and int(uidvalidity) > 0
    client.select("Sent")
    typ, data = client.uid("FETCH", "1", "(FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
    header, body = data[0]
    assert b"\\Seen" in header and b"$Label1" in header
    assert b"RFC822.SIZE %d" % len(message) in header
    stamp = imaplib.Internaldate2tuple(header)
    assert stamp is not None and time.mktime(stamp) == time.mktime(
        time.strptime(date.strip('"'), "%d-%b-%Y %H:%M:%S %z"))
    assert body == message
    typ, data = client.append("Nowhere", None, None, message)
    assert typ == "NO" and data[0].startswith(b"[TRYCREATE]")
    client.logout()


def test_append_of_20_mb_keeps_memory_bounded(server: ServerProcess) -> None:
    assert server.proc is not None
    client = login(server, "i2@example.test")
    line = b"x" * 998 + b"\r\n"
    message = b"Subject: big\r\n\r\n" + line * (20 * 1024 * 1024 // len(line))
    client.noop()
    before = process_rss_kb(server.proc.pid)
    typ, data = client.append("INBOX", None, None, message)
    after = process_rss_kb(server.proc.pid)
    assert typ == "OK", data
    # Streamed 64 KiB at a time into tmp/: the server never holds the message.
    assert after - before < 6 * 1024, (before, after)
    client.select("INBOX")
    typ, data = client.fetch("1", "(RFC822.SIZE)")
    assert data == [b"1 (RFC822.SIZE %d)" % len(message)]
    client.logout()


def test_append_over_quota_and_the_quota_report(server: ServerProcess) -> None:
    user = "i3@example.test"
    root = maildir(server.state, user)
    (root / "maildirsize").write_bytes(b"4096S,10C\n0 0\n")
    client = login(server, user)
    typ, data = client.getquotaroot("INBOX")
    assert typ == "OK"
    assert data[0] == [b'"INBOX" ""'] and data[1] == [b'"" (STORAGE 0 4 MESSAGE 0 10)']
    typ, data = client.append("INBOX", None, None, b"Subject: x\r\n\r\n" + b"y" * 5000 + b"\r\n")
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]")
    small = b"Subject: small\r\n\r\nsmall\r\n"
    assert client.append("INBOX", None, None, small)[0] == "OK"
    assert client.getquota('""')[1] == [b'"" (STORAGE 1 4 MESSAGE 1 10)']
    client.create("Other")
    client.select("INBOX")
    (root / "maildirsize").write_bytes(b"30S,10C\n25 1\n")
    typ, data = client.copy("1", "Other")
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]")
    client.logout()


# -- COPY, MOVE, UID EXPUNGE ----------------------------------------------------------


def _fill(server: ServerProcess, user: str, count: int) -> None:
    for n in range(1, count + 1):
        send_mail(server, user, f"Subject: n{n}\r\nMessage-ID: <n{n}@x>\r\n\r\nbody {n}\r\n".encode())
        wait_for_files(maildir(server.state, user) / "new", n)


def test_copy_move_copyuid_and_uid_expunge(server: ServerProcess) -> None:
    user = "i4@example.test"
    _fill(server, user, 4)
    client = login(server, user)
    client.select("INBOX")
    typ, data = client.copy("1:2", "Archive")
    (copyuid,) = code(data, b"COPYUID")
    validity, source, target = copyuid.split()
    assert (source, target) == (b"1:2", b"1:2")
    typ, data = client.uid("MOVE", "3", "Archive")
    assert typ == "OK"
    moved = [r for r in client.response("COPYUID")[1] if r]
    assert moved[-1] == validity + b" 3 3"  # RFC 6851 §4.3: in an untagged OK
    assert client.response("EXPUNGE")[1] == [b"3"]
    typ, data = client.copy("1", "Nowhere")
    assert typ == "NO" and data[0].startswith(b"[TRYCREATE]")
    client.store("1:3", "+FLAGS.SILENT", "(\\Deleted)")
    assert client.uid("EXPUNGE", "2:4")[0] == "OK"  # only uids 2 and 4 (now 2 and 3) go
    assert client.response("EXPUNGE")[1] == [b"3", b"2"]
    typ, data = client.uid("FETCH", "1:*", "(FLAGS)")
    assert data == [b"1 (UID 1 FLAGS (\\Deleted \\Recent))"]  # SELECT claimed it
    client.select("Archive")
    typ, data = client.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects = [part[1].strip() for part in data if isinstance(part, tuple)]
    assert subjects == [b"Subject: n1", b"Subject: n2", b"Subject: n3"]
    client.logout()


# -- folders --------------------------------------------------------------------------


def test_rename_folder_with_children(server: ServerProcess) -> None:
    client = login(server, "i5@example.test")
    for name in ("Work", "Work/Projects", "Work/Projects/2024"):
        assert client.create(name)[0] == "OK"
    client.subscribe("Work/Projects")
    client.append("Work/Projects", None, None, b"Subject: p\r\n\r\np\r\n")
    assert client.rename("Work", "Jobs")[0] == "OK"
    typ, data = client.list('""', "Jobs*")
    assert data == [b'(\\HasChildren) "/" "Jobs"', b'(\\HasChildren) "/" "Jobs/Projects"',
                    b'(\\HasNoChildren) "/" "Jobs/Projects/2024"']
    assert client.list('""', "Work*")[1] == [None]
    assert b'() "/" "Jobs/Projects"' in client.lsub('""', "*")[1]
    assert client.status("Jobs/Projects", "(MESSAGES)")[1] == [b'"Jobs/Projects" (MESSAGES 1)']
    assert client.rename("Jobs", "Jobs/Inside")[0] == "NO"
    typ, data = client.create("bad/../x")
    assert typ == "NO" and data[0].startswith(b"[CANNOT]")
    client.logout()


def test_unicode_folder_names(server: ServerProcess) -> None:
    client = client_for(server, "i6@example.test")
    client.create_folder("Entwürfe/Grüße")  # imapclient sends modified UTF-7
    names = [name for _, _, name in client.list_folders()]
    assert "Entwürfe" in names and "Entwürfe/Grüße" in names
    raw = login(server, "i6@example.test")
    assert b'"Entw&APw-rfe/Gr&APwA3w-e"' in b" ".join(raw.list()[1])
    raw.enable("UTF8=ACCEPT")
    listed = b" ".join(raw.list()[1])
    assert '"Entwürfe/Grüße"'.encode() in listed
    raw.logout()
    client.logout()


def test_list_extended_status_and_special_use(server: ServerProcess) -> None:
    client = login(server, "i7@example.test")
    _, data = client.list('""', '"*" RETURN (SPECIAL-USE STATUS (MESSAGES UNSEEN))')
    lines = [d for d in data if d]
    assert b'(\\HasNoChildren \\Sent) "/" "Sent"' in lines
    assert b'(\\HasNoChildren \\Trash) "/" "Trash"' in lines
    statuses = [s for s in client.response("STATUS")[1] if s]
    assert b'"Sent" (MESSAGES 0 UNSEEN 0)' in statuses and len(statuses) == 6
    client._simple_command("LIST", "(SPECIAL-USE)", '""', '"*"')
    special = [d for d in client.response("LIST")[1] if d]
    assert len(special) == 5 and all(b"\\HasNoChildren \\" in s for s in special)
    client.create("Sub/Child")
    client.subscribe("Sub/Child")
    client._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', '"%"')
    lines = [d for d in client.response("LIST")[1] if d]
    assert b'(\\HasChildren) "/" "Sub" ("CHILDINFO" ("SUBSCRIBED"))' in lines
    client.logout()


# -- SEARCH, SORT, THREAD -------------------------------------------------------------


def test_search_sort_and_thread(server: ServerProcess) -> None:
    user = "i8@example.test"
    messages = [
        b"From: Zed <zed@example.org>\r\nSubject: Zebra report\r\nDate: Tue, 2 Jan 2024 10:00:00 +0000\r\n"
        b"Message-ID: <a@x>\r\nX-Tag: blue\r\n\r\nThe quick brown fox.\r\n",
        b"From: Amy <amy@example.org>\r\nSubject: Re: Zebra report\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
        b"Message-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\nReferences: <a@x>\r\n\r\nLazy dog.\r\n",
        b"From: Bob <bob@example.org>\r\nSubject: =?UTF-8?Q?K=C3=A4se?=\r\nDate: Wed, 3 Jan 2024 10:00:00 +0000\r\n"
        b"Message-ID: <c@x>\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"
        b"\r\nR3LDvMOfZSBhdXMgZGVyIFNjaHdlaXo=\r\n",
    ]
    for n, message in enumerate(messages, 1):
        send_mail(server, user, message)
        wait_for_files(maildir(server.state, user) / "new", n)
    client = login(server, user)
    client.select("INBOX")
    assert client.search(None, "FROM", "amy")[1] == [b"2"]
    assert client.search(None, "BODY", "fox")[1] == [b"1"]
    assert client.search(None, "HEADER", "X-Tag", "BLUE")[1] == [b"1"]
    assert client.search(None, "OR", "SUBJECT", "zebra", "FROM", "bob", "NOT", "FROM", "zed")[1] == [b"2 3"]
    client.literal = "Käse".encode()
    assert client.search("UTF-8", "SUBJECT")[1] == [b"3"]
    client.literal = "Grüße".encode()
    assert client.search("UTF-8", "BODY")[1] == [b"3"]
    assert client.search(None, "SENTBEFORE", "2-Jan-2024")[1] == [b"2"]
    assert client.search(None, "SINCE", "1-Jan-2000", "UNSEEN", "LARGER", "10")[1] == [b"1 2 3"]
    assert client.uid("SEARCH", "UID", "2:*")[1] == [b"2 3"]
    assert client.sort("(DATE)", "UTF-8", "ALL")[1] == [b"2 1 3"]
    assert client.sort("(REVERSE FROM)", "UTF-8", "ALL")[1] == [b"1 3 2"]
    # RFC 5256 §2.1: "Re: Zebra report" sorts as "Zebra report"; ties go by number.
    assert client.sort("(SUBJECT)", "UTF-8", "ALL")[1] == [b"3 1 2"]
    assert client.thread("REFERENCES", "UTF-8", "ALL")[1] == [b"(1 2)(3)"]
    # RFC 5256 §3: threads and their members in sent-date order.
    assert client.thread("ORDEREDSUBJECT", "UTF-8", "ALL")[1] == [b"(2 1)(3)"]
    client.logout()


def test_esearch_and_searchres(server: ServerProcess) -> None:
    user = "i9@example.test"
    _fill(server, user, 3)
    client = login(server, user)
    client.select("INBOX")
    client.search(None, "RETURN", "(MIN MAX COUNT ALL)", "ALL")
    (answer,) = client.response("ESEARCH")[1]
    assert re.fullmatch(rb'\(TAG "\w+"\) MIN 1 MAX 3 ALL 1:3 COUNT 3', answer), answer
    client.uid("SEARCH", "RETURN", "(SAVE)", "SUBJECT", "n2")
    _, data = client.fetch("$", "(UID)")
    assert data == [b"2 (UID 2)"]
    client.logout()
