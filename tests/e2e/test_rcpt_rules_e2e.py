"""The directory's addressing rules as a client sees them at RCPT and MAIL time,
on a live server over loopback: domain aliases, disabled and expired
mailboxes, per-user size limits, SRS bounce addresses, one copy per mailbox
per message, and sending as an alias on the submission port."""

from __future__ import annotations

import dataclasses
import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailyard.config import load_config
from mailyard.directory.model import Alias, DomainSettings
from mailyard.directory.store import Directory
from mailyard.dispatch.srskey import ensure_secret
from mailyard.message.address import parse_address
from mailyard.message.srs import forward
from tests.e2e.server import (
    PASSWORD,
    USERS,
    ServerProcess,
    maildir,
    provision,
    tls_client_context,
    wait_for_files,
    write_config,
)

EXTRA = ("off@example.test", "old@example.test", "small@example.test")


def _setup(state: Path) -> None:
    directory = Directory.open(str(state / "directory.sqlite"))
    try:
        def change(address: str, **settings: object) -> None:
            box = directory.get_mailbox(parse_address(address))
            assert box is not None
            directory.save_mailbox_settings(dataclasses.replace(box, **settings))  # type: ignore[arg-type]

        directory.add_domain("alias.test")
        directory.set_domain_settings("alias.test", DomainSettings(alias_of="example.test"))
        directory.add_alias(Alias(parse_address("team@example.test"),
                                  ("alice@example.test", "bob@example.test")))
        directory.add_alias(Alias(parse_address("all@example.test"),
                                  ("team@example.test", "alice@example.test")))
        change("off@example.test", receive=False)
        change("old@example.test", expires=time.time() - 60)
        change("small@example.test", max_message_size=1000)
    finally:
        directory.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    state = tmp_path_factory.mktemp("rcpt-rules") / "state"
    write_config(state, tls=True)
    provision(state, users=(*USERS, *EXTRA))
    _setup(state)
    proc = ServerProcess(state).start()
    yield proc
    assert proc.stop() == 0, proc.log_tail()


def _rcpt(server: ServerProcess, recipient: str, size: int | None = None) -> tuple[int, bytes]:
    with smtplib.SMTP(*server.address("smtp"), timeout=30) as client:
        client.ehlo()
        options = [f"SIZE={size}"] if size is not None else []
        assert client.mail("someone@example.org", options)[0] == 250
        return client.rcpt(recipient)


def _mail(subject: str) -> bytes:
    return f"From: a@example.org\r\nSubject: {subject}\r\n\r\nhello\r\n".encode()


def _count(state: Path, address: str, subject: str) -> int:
    box = maildir(state, address)
    return sum(
        f"Subject: {subject}".encode() in p.read_bytes()
        for sub in ("new", "cur") for p in (box / sub).iterdir()
    )


def test_domain_alias_delivers_to_the_same_local_part(server: ServerProcess) -> None:
    with smtplib.SMTP(*server.address("smtp"), timeout=30) as client:
        client.sendmail("a@example.org", ["Bob@alias.test"], _mail("via-domain-alias"))
    wait_for_files(maildir(server.state, "bob@example.test") / "new", 1)
    assert _count(server.state, "bob@example.test", "via-domain-alias") == 1
    assert _rcpt(server, "nobody@alias.test")[0] == 550


def test_disabled_and_expired_mailboxes_are_refused_at_rcpt(server: ServerProcess) -> None:
    code, text = _rcpt(server, "off@example.test")
    assert (code, text[:5]) == (550, b"5.2.1")
    code, text = _rcpt(server, "old@example.test")
    assert (code, text[:5]) == (550, b"5.2.1")


def test_declared_size_above_the_users_limit_is_refused(server: ServerProcess) -> None:
    code, text = _rcpt(server, "small@example.test", size=5000)
    assert (code, text[:5]) == (552, b"5.3.4")
    assert _rcpt(server, "small@example.test", size=500)[0] == 250
    assert _rcpt(server, "alice@example.test", size=5000)[0] == 250


def test_srs_bounce_addresses_valid_accepted_forged_refused(server: ServerProcess) -> None:
    secret = ensure_secret(str(server.state))
    hostname = _hostname(server.state)
    valid = forward("alice@example.test", secret, time.time(), hostname)
    assert valid.startswith("SRS0=")
    assert _rcpt(server, valid)[0] == 250
    local, _, domain = valid.rpartition("@")
    parts = local.split("=")
    parts[1] = "AAAA" if parts[1] != "AAAA" else "BBBB"  # a wrong hash
    assert _rcpt(server, "=".join(parts) + "@" + domain)[0] == 550
    # A bounce to the SRS address reaches the original sender.
    with smtplib.SMTP(*server.address("smtp"), timeout=30) as client:
        client.sendmail("", [valid], _mail("srs-bounce"))
    box = maildir(server.state, "alice@example.test") / "new"
    deadline = time.monotonic() + 20
    while _count(server.state, "alice@example.test", "srs-bounce") == 0:
        assert time.monotonic() < deadline, "the SRS bounce was not delivered"
        wait_for_files(box, 1)
        time.sleep(0.05)


def test_one_copy_per_mailbox_through_nested_aliases(server: ServerProcess) -> None:
    with smtplib.SMTP(*server.address("smtp"), timeout=30) as client:
        client.sendmail("a@example.org", ["all@example.test", "alice@example.test"],
                        _mail("dedup-once"))
    deadline = time.monotonic() + 20
    while _count(server.state, "bob@example.test", "dedup-once") == 0:
        assert time.monotonic() < deadline, "bob never got the list copy"
        time.sleep(0.05)
    time.sleep(0.5)  # any duplicate would be delivered by now
    assert _count(server.state, "alice@example.test", "dedup-once") == 1
    assert _count(server.state, "bob@example.test", "dedup-once") == 1


def test_a_user_may_send_as_an_alias_that_reaches_them(server: ServerProcess) -> None:
    with smtplib.SMTP(*server.address("submission"), timeout=30) as client:
        client.starttls(context=tls_client_context(server.state))
        client.login("alice@example.test", PASSWORD)
        assert client.mail("team@example.test")[0] == 250
        client.rset()
        assert client.mail("alice+news@alias.test")[0] == 250
        client.rset()
        assert client.mail("bob@example.test")[0] == 553


def _hostname(state: Path) -> str:
    return load_config(str(state)).hostname.lower()
