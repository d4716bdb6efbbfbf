"""The whole server on uvloop ([server] event_loop = "uvloop"): SMTP in,
delivery, IMAP out."""

from __future__ import annotations

import imaplib
import smtplib
from pathlib import Path

import pytest

from tests.e2e.server import PASSWORD, ServerProcess, maildir, provision, wait_for_files, write_config

pytest.importorskip("uvloop")


def test_mail_flows_on_uvloop(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_config(state, extra='[server]\nevent_loop = "uvloop"\n',
                 sections={"tls": "loopback_plaintext_auth = true"})
    provision(state)
    server = ServerProcess(state).start()
    try:
        with smtplib.SMTP(*server.address("smtp"), timeout=30) as client:
            client.sendmail("a@example.org", ["alice@example.test"],
                            b"From: a@example.org\r\nSubject: on uvloop\r\n\r\nhi\r\n")
        wait_for_files(maildir(state, "alice@example.test") / "new", 1)
        imap = imaplib.IMAP4(*server.address("imap"), timeout=30)
        try:
            imap.login("alice@example.test", PASSWORD)
            typ, data = imap.select("INBOX")
            assert typ == "OK" and data == [b"1"]
        finally:
            imap.logout()
    finally:
        assert server.stop() == 0, server.log_tail()
