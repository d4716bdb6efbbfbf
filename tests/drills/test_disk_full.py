"""Disk full: the whole state folder on a small tmpfs created by the drill.

With the disk filled, SMTP answers 452, IMAP APPEND answers NO [OVERQUOTA]
and POP3 either works or answers -ERR [SYS/TEMP] (a POP3 session needs no
new space unless it must give new messages their UIDs); nothing that was
acknowledged is lost; once space is freed every service accepts again and
the acknowledged mail is delivered (after ``mailyard queue flush``: the
deferred local deliveries would otherwise wait for their retry time).
"""

from __future__ import annotations

import imaplib
import os
import poplib
import smtplib
import subprocess
import sys
from pathlib import Path

from tests.drills.common import files, queue_empty, small_tmpfs, wait_until
from tests.e2e.server import PASSWORD, ServerProcess, maildir, provision, write_config

USER = "alice@example.test"
LINE = b"z" * 78 + b"\r\n"
BODY = (LINE * 1300)  # ~100 KB


def message(tag: str) -> bytes:
    return f"Subject: {tag}\r\n\r\n".encode() + BODY


def fill(mount: Path, leave: int) -> Path | None:
    """A filler file that leaves ``leave`` octets free (or none: as many as
    fit); None when not even an empty file can be made (the disk is full)."""
    filler = mount / f"filler{len(files(mount))}"
    try:
        handle = open(filler, "wb", buffering=0)
    except OSError:
        return None
    with handle:
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        try:
            handle.write(b"\0" * max(0, free - leave))
            if leave == 0:
                while True:
                    handle.write(b"\0" * 4096)
        except OSError:
            pass  # ENOSPC: the point of the filler
    return filler


def smtp_until_refused(server: ServerProcess, limit: int) -> tuple[list[str], int | None]:
    """Send until the server refuses: the subjects acknowledged, and the refusal code."""
    accepted: list[str] = []
    with smtplib.SMTP(*server.address("smtp"), timeout=30) as client:
        for n in range(limit):
            tag = f"full-{n}"
            try:
                client.sendmail("s@example.org", [USER], message(tag))
            except smtplib.SMTPResponseException as exc:
                return accepted, exc.smtp_code
            accepted.append(tag)
    return accepted, None


def imap_login(server: ServerProcess) -> imaplib.IMAP4:
    imap = imaplib.IMAP4(*server.address("imap"), timeout=30)
    imap.login(USER, PASSWORD)
    return imap


def pop3_answer(server: ServerProcess) -> bytes:
    pop = poplib.POP3(*server.address("pop3"), timeout=30)
    try:
        pop.user(USER)
        answer = pop.pass_(PASSWORD)
        pop.quit()
        return answer
    except poplib.error_proto as exc:
        return exc.args[0] if isinstance(exc.args[0], bytes) else str(exc).encode()


def subjects(box: Path) -> list[str]:
    found = []
    for sub in ("new", "cur"):
        for path in files(box / sub):
            data = path.read_bytes()
            assert data.endswith(BODY), f"partial message {path}"
            found.append(data.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode())
    return found


def test_disk_full_refuses_temporarily_keeps_and_recovers(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "small", "8m") as mount:
        state = mount / "state"
        write_config(state, sections={"tls": "loopback_plaintext_auth = true"})
        provision(state)
        server = ServerProcess(state).start()
        try:
            _drill(mount, state, server)
        finally:
            server.stop()


def _drill(mount: Path, state: Path, server: ServerProcess) -> None:
    box = maildir(state, USER)
    filler = fill(mount, 600 * 1024)
    accepted, smtp_code = smtp_until_refused(server, 40)
    imap = imap_login(server)
    appended: list[str] = []
    imap_answer = b""
    for n in range(20):
        typ, data = imap.append("INBOX", None, None, message(f"append-{n}"))
        if typ != "OK":
            imap_answer = data[0] or b""
            break
        appended.append(f"append-{n}")
    # Fill to the last block: whatever a POP3 session needs to write now fails.
    last = fill(mount, 0)
    pop3_full = pop3_answer(server)
    print(f"\ndisk-full drill: SMTP accepted {len(accepted)} then {smtp_code}; IMAP appended "
          f"{len(appended)} then {imap_answer!r}; POP3 at 0 free: {pop3_full!r}")
    assert smtp_code == 452, smtp_code
    assert b"[OVERQUOTA]" in imap_answer, imap_answer
    assert pop3_full.startswith(b"+OK") or pop3_full.startswith(b"-ERR [SYS/TEMP]"), pop3_full
    assert server.proc is not None and server.proc.poll() is None, "the server died"
    for made in (filler, last):
        if made is not None:
            made.unlink()
    subprocess.run([sys.executable, "-m", "mailyard", "--state", str(state), "queue", "flush"],
                   check=False, capture_output=True)
    # Space is back: every service accepts again.
    with smtplib.SMTP(*server.address("smtp"), timeout=30) as client:
        client.sendmail("s@example.org", [USER], message("after"))
    typ, _ = imap.append("INBOX", None, None, message("append-after"))
    assert typ == "OK"
    imap.logout()
    assert pop3_answer(server).startswith(b"+OK"), "POP3 did not recover"
    wanted = set(accepted) | set(appended) | {"after", "append-after"}
    wait_until("the acknowledged mail to be delivered",
               lambda: wanted <= set(subjects(box)) and queue_empty(state), timeout=60)
    found = subjects(box)
    print(f"disk-full drill: after freeing space {len(found)} messages in the mailbox, "
          f"{len(found) - len(set(found))} duplicates, lost {sorted(wanted - set(found))}")
    assert wanted <= set(found)
