"""Message submission (RFC 6409, RFC 4954) on a live server: ports 587
(STARTTLS) and 465 (implicit TLS), with smtplib and aiosmtplib.

AUTH is offered only under TLS and required before MAIL; authenticated
users relay anywhere (remote mail stays held in the queue); the envelope
sender and From: must be the user's own; Date: and Message-ID: are added
when missing and the message is otherwise stored byte for byte. Failed
logins are throttled per client address and per account; every test that
fails logins uses loopback source addresses of its own, so the throttles
of different tests never meet.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import smtplib
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiosmtplib
import pytest

from mailyard.directory.store import Directory
from mailyard.message.address import parse_address
from mailyard.queue.store import Queue
from tests.e2e.server import (
    PASSWORD,
    ServerProcess,
    maildir,
    provision,
    strip_delivery_headers,
    tls_client_context,
    wait_for_files,
    write_config,
)

WRONG = "not the password"
ALICE = "alice@example.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    state = tmp_path_factory.mktemp("submission") / "state"
    write_config(state, tls=True, sections={
        "login": "max_failures = 3\nmax_account_failures = 4\nfailure_window = 600.0",
    })
    provision(state)
    proc = ServerProcess(state).start()
    yield proc
    assert proc.stop() == 0, proc.log_tail()


def _starttls(server: ServerProcess, source: str = "127.0.0.1") -> smtplib.SMTP:
    client = smtplib.SMTP(*server.address("submission"), timeout=30,
                          source_address=(source, 0))
    client.starttls(context=tls_client_context(server.state))
    client.ehlo()
    return client


def _smtps(server: ServerProcess, source: str = "127.0.0.1") -> smtplib.SMTP_SSL:
    host, port = server.address("smtps")
    client = smtplib.SMTP_SSL(host, port, timeout=30, context=tls_client_context(server.state),
                              source_address=(source, 0))
    client.ehlo()
    return client


def _auth(client: smtplib.SMTP, user: str, password: str,
          mechanism: str = "PLAIN") -> tuple[int, bytes]:
    """One AUTH exchange (smtplib's login() would retry with every mechanism)."""
    client.user, client.password = user, password
    try:
        return client.auth(mechanism, getattr(client, "auth_" + mechanism.lower()))
    except smtplib.SMTPAuthenticationError as exc:
        return exc.smtp_code, exc.smtp_error


def _newest(state: Path, address: str, count: int) -> bytes:
    files = wait_for_files(maildir(state, address) / "new", count)
    return max(files, key=lambda p: p.stat().st_mtime_ns).read_bytes()


def _count(state: Path, address: str) -> int:
    box = maildir(state, address) / "new"
    return len(list(box.iterdir())) if box.exists() else 0


def _log(server: ServerProcess) -> str:
    return (server.state / "server.log").read_text(errors="replace")


# -- AUTH only under TLS --------------------------------------------------------------------


def test_auth_is_not_offered_before_tls(server: ServerProcess) -> None:
    with smtplib.SMTP(*server.address("submission"), timeout=30) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")
        token = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
        # RFC 4954 §6: the mechanism needs an encrypted channel first.
        assert client.docmd("AUTH", f"PLAIN {token}")[0] == 538
        code, text = client.docmd("MAIL", f"FROM:<{ALICE}>")
        assert (code, text) == (530, b"5.7.0 must issue a STARTTLS command first")


def test_auth_plain_under_starttls(server: ServerProcess) -> None:
    with _starttls(server) as client:
        assert client.has_extn("auth")
        assert set(client.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN"}
        code, text = client.docmd("MAIL", f"FROM:<{ALICE}>")
        assert (code, text[:5]) == (530, b"5.7.0")  # RFC 6409 §4.3: AUTH first
        client.rset()
        client.user, client.password = ALICE, PASSWORD
        code, _ = client.auth("PLAIN", client.auth_plain)
        assert code == 235
        assert client.sendmail(ALICE, [ALICE], b"Subject: plain\r\n\r\nbody\r\n") == {}


def test_auth_login_on_smtps(server: ServerProcess) -> None:
    with _smtps(server) as client:
        assert not client.has_extn("starttls")  # already TLS
        client.user, client.password = ALICE, PASSWORD
        code, _ = client.auth("LOGIN", client.auth_login)
        assert code == 235
        assert client.sendmail(ALICE, [ALICE], b"Subject: login\r\n\r\nbody\r\n") == {}
    data = _newest(server.state, ALICE, 1)
    assert b"with ESMTPSA id" in data  # RFC 3848: TLS and AUTH


def test_wrong_password_then_throttled(server: ServerProcess) -> None:
    attacker = "127.0.0.21"
    for mechanism in ("PLAIN", "LOGIN", "PLAIN"):
        with _starttls(server, attacker) as client:
            code, text = _auth(client, "bob@example.test", WRONG, mechanism)
        assert (code, text[:5]) == (535, b"5.7.8")
    # Refused before the password is looked at, right or not (RFC 4954 §6: 454 4.7.0).
    with _starttls(server, attacker) as client:
        code, text = _auth(client, "bob@example.test", PASSWORD)
        assert (code, text[:5]) == (454, b"4.7.0")
    # Another address is not affected.
    with _starttls(server, "127.0.0.22") as client:
        client.login("bob@example.test", PASSWORD)
    log = _log(server)
    assert WRONG not in log and PASSWORD not in log
    assert "smtp.auth service=submission ip=127.0.0.21 user=bob@example.test mechanism=PLAIN " \
           "result=failed" in log


def test_failures_are_throttled_per_account_across_addresses(server: ServerProcess) -> None:
    for n in range(4):  # max_account_failures, each from an address of its own
        with _smtps(server, f"127.0.1.{n + 1}") as client:
            assert _auth(client, "pm@example.test", WRONG)[0] == 535
    with _smtps(server, "127.0.1.99") as client:
        # Any spelling of the login names the same account.
        assert _auth(client, "PM%example.test", PASSWORD)[0] == 454
    with _smtps(server, "127.0.1.99") as client:
        assert _auth(client, "alice@example.test", PASSWORD)[0] == 235


def test_disabled_account_fails_like_a_wrong_password(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_config(state, tls=True)
    provision(state, users=(ALICE, "bob@example.test"))
    directory = Directory.open(str(state / "directory.sqlite"))
    try:
        directory.set_enabled(parse_address("bob@example.test"), False)
    finally:
        directory.close()
    proc = ServerProcess(state).start()
    try:
        with _smtps(proc) as client:
            disabled = _auth(client, "bob@example.test", PASSWORD)
        with _smtps(proc) as client:
            wrong = _auth(client, ALICE, WRONG)
        assert disabled == wrong == (535, b"5.7.8 authentication credentials invalid")
    finally:
        assert proc.stop() == 0


# -- relay -----------------------------------------------------------------------------------


def test_relay_after_auth_is_queued_and_held(server: ServerProcess) -> None:
    queue = Queue(str(server.state / "queue"))
    before = set(queue.list_ids())
    with _smtps(server) as client:
        client.login(ALICE, PASSWORD)
        assert client.sendmail(ALICE, ["friend@remote.example"],
                               b"Subject: out\r\n\r\nto the world\r\n") == {}
    new = [q for q in queue.list_ids() if q not in before]
    assert [queue.load(q).envelope.recipients for q in new] == [("friend@remote.example",)]


def test_relay_without_auth_is_refused(server: ServerProcess) -> None:
    # The MX port: remote recipients refused (no relay_networks).
    with smtplib.SMTP(*server.address("smtp"), timeout=30) as client:
        client.ehlo()
        client.mail(ALICE)
        code, text = client.rcpt("friend@remote.example")
        assert (code, text[:5]) == (554, b"5.7.1")
    # The submission port: nothing without AUTH.
    with _starttls(server) as client:
        code, _ = client.mail(ALICE)
        assert code == 530


# -- sender checks -------------------------------------------------------------------------


def test_envelope_sender_must_be_the_users(server: ServerProcess) -> None:
    with _smtps(server) as client:
        client.login(ALICE, PASSWORD)
        code, text = client.mail("bob@example.test")
        assert (code, text[:5]) == (553, b"5.7.1")
        code, text = client.mail("")
        assert code == 553  # <> is nobody's address
        assert client.mail("ALICE@Example.Test")[0] == 250  # case does not matter


@pytest.mark.parametrize("from_field", [
    b"From: bob@example.test",
    b'From: "alice@example.test" <bob@example.test>',
    b"From: Alice <alice@example.test>, Bob <bob@example.test>",
    b"From: alice@example.test <bob@example.test>",  # malformed: refused, not guessed
    b"Sender: bob@example.test\r\nFrom: alice@example.test",
])
def test_from_header_must_be_the_users(server: ServerProcess, from_field: bytes) -> None:
    before = _count(server.state, "carol@example.net")
    with _smtps(server) as client:
        client.login(ALICE, PASSWORD)
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(ALICE, ["carol@example.net"],
                            from_field + b"\r\nSubject: spoof\r\n\r\nbody\r\n")
        assert (refused.value.smtp_code, refused.value.smtp_error[:5]) == (550, b"5.7.1")
        # The session goes on.
        assert client.sendmail(ALICE, ["carol@example.net"],
                               b"From: Alice <alice@example.test>\r\n\r\nfine\r\n") == {}
    assert _newest(server.state, "carol@example.net", before + 1).endswith(b"\r\n\r\nfine\r\n")
    assert "smtp.content_denied" in _log(server)


def test_sender_check_off(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_config(state, tls=True, sections={"submission": 'sender_check = "off"'})
    provision(state, users=(ALICE, "bob@example.test"))
    proc = ServerProcess(state).start()
    try:
        with _smtps(proc) as client:
            client.login(ALICE, PASSWORD)
            assert client.sendmail("bob@example.test", ["bob@example.test"],
                                   b"From: bob@example.test\r\n\r\nas bob\r\n") == {}
        assert _newest(state, "bob@example.test", 1).endswith(b"as bob\r\n")
    finally:
        assert proc.stop() == 0


# -- Date and Message-ID --------------------------------------------------------------------


def _fields(data: bytes) -> list[bytes]:
    header = data.split(b"\r\n\r\n", 1)[0]
    return [line.split(b":", 1)[0].lower() for line in header.split(b"\r\n")
            if line and line[:1] not in (b" ", b"\t")]


def test_date_and_message_id_added_when_missing(server: ServerProcess) -> None:
    body = (b"From: Alice <alice@example.test>\r\nSubject: bare\r\n\r\n"
            b"line one\r\n.leading dot\r\n\r\nlast\r\n")
    before = _count(server.state, "carol@example.net")
    with _starttls(server) as client:
        client.login(ALICE, PASSWORD)
        assert client.sendmail(ALICE, ["carol@example.net"], body) == {}
    stored = strip_delivery_headers(_newest(server.state, "carol@example.net", before + 1))
    fields = _fields(stored)
    assert fields[:2] == [b"date", b"message-id"]  # RFC 6409 §8.2, §8.3, put in front
    assert fields.count(b"date") == 1 and fields.count(b"message-id") == 1
    added, original = stored.split(b"\r\nFrom: ", 1)
    assert b"@mx.example.test>" in added
    assert b"From: " + original == body  # the rest byte for byte


def test_date_and_message_id_left_alone_when_present(server: ServerProcess) -> None:
    body = (b"Date: Tue, 1 Dec 2026 17:00:00 +0000\r\nMessage-ID: <given@alice.example>\r\n"
            b"from: alice@example.test\r\nSubject: complete\r\n\r\nbody\r\n")
    before = _count(server.state, "carol@example.net")
    with _smtps(server) as client:
        client.login(ALICE, PASSWORD)
        assert client.sendmail(ALICE, ["carol@example.net"], body) == {}
    stored = strip_delivery_headers(_newest(server.state, "carol@example.net", before + 1))
    assert stored == body


def test_aiosmtplib_starttls_login_large_message(server: ServerProcess) -> None:
    host, port = server.address("submission")
    context = tls_client_context(server.state)
    # Larger than the spool's flush size: the body streams past the held header.
    lines = b"".join(b"%06d " % n + b"y" * 70 + b"\r\n" for n in range(5000))
    message = (b"From: alice@example.test\r\nTo: carol@example.net\r\nSubject: aio\r\n"
               b"\r\n" + lines)
    before = _count(server.state, "carol@example.net")

    async def send() -> None:
        client = aiosmtplib.SMTP(hostname=host, port=port, start_tls=False, tls_context=context)
        await client.connect()
        await client.starttls(tls_context=context)
        await client.login(ALICE, PASSWORD)
        await client.sendmail(ALICE, ["carol@example.net"], message)
        await client.quit()

    asyncio.run(send())
    stored = strip_delivery_headers(_newest(server.state, "carol@example.net", before + 1))
    assert stored.endswith(message)


def _bdat(client: smtplib.SMTP, data: bytes) -> tuple[int, bytes]:
    client.putcmd("BDAT", f"{len(data)} LAST")
    client.send(data)
    return client.getreply()


def test_bdat_goes_through_the_same_checks(server: ServerProcess) -> None:
    before = _count(server.state, "carol@example.net")
    with _smtps(server) as client:
        client.login(ALICE, PASSWORD)
        assert client.has_extn("chunking")
        client.mail(ALICE)
        client.rcpt("carol@example.net")
        code, text = _bdat(client, b"From: bob@example.test\r\n\r\nspoof\r\n")
        assert (code, text[:5]) == (550, b"5.7.1")
        client.mail(ALICE)
        client.rcpt("carol@example.net")
        body = b"From: alice@example.test\r\nSubject: chunked\r\n\r\nbody\r\n"
        assert _bdat(client, body)[0] == 250
    stored = strip_delivery_headers(_newest(server.state, "carol@example.net", before + 1))
    assert _fields(stored)[:2] == [b"date", b"message-id"]
    assert stored.endswith(body)


def test_plaintext_auth_on_loopback_when_allowed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_config(state, tls=True, sections={"tls": "loopback_plaintext_auth = true"})
    provision(state, users=(ALICE,))
    proc = ServerProcess(state).start()
    try:
        with smtplib.SMTP(*proc.address("submission"), timeout=30) as client:
            client.ehlo()
            assert client.has_extn("auth")
            client.login(ALICE, PASSWORD)
            assert client.sendmail(ALICE, [ALICE], b"Subject: plain\r\n\r\nok\r\n") == {}
        assert b"with ESMTPA id" in _newest(state, ALICE, 1)
    finally:
        assert proc.stop() == 0


def test_mx_auth_when_configured(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_config(state, tls=True, sections={"smtp": "auth = true"})
    provision(state, users=(ALICE,))
    proc = ServerProcess(state).start()
    try:
        with smtplib.SMTP(*proc.address("smtp"), timeout=30) as client:
            client.ehlo()
            assert not client.has_extn("auth")  # not before TLS
            client.starttls(context=tls_client_context(state))
            client.ehlo()
            assert client.has_extn("auth")
            client.mail("someone@example.org")  # the MX port: AUTH is optional
            assert client.rcpt("friend@remote.example")[0] == 554
            client.rset()
            client.login(ALICE, PASSWORD)
            # Authenticated: relay allowed; no sender check on the MX port.
            assert client.sendmail("anyone@example.org", ["friend@remote.example"],
                                   b"Subject: via mx\r\n\r\nbody\r\n") == {}
    finally:
        assert proc.stop() == 0


def test_tls_context_is_verified(server: ServerProcess) -> None:
    # The tests' trust anchor is the server's own certificate, nothing else.
    with pytest.raises(ssl.SSLCertVerificationError), smtplib.SMTP(
            *server.address("submission"), timeout=30) as client:
        client.starttls(context=ssl.create_default_context())


def test_swaks_submits_over_starttls(server: ServerProcess) -> None:
    swaks = shutil.which("swaks")
    if swaks is None:
        pytest.skip("swaks is not installed (.ci/run installs it from Debian)")
    host, port = server.address("submission")
    before = _count(server.state, "carol@example.net")
    result = subprocess.run(
        [swaks, "--server", host, "--port", str(port), "-tls", "--auth", "LOGIN",
         "--auth-user", ALICE, "--auth-password", PASSWORD, "--from", ALICE,
         "--to", "carol@example.net", "--header", "From: Alice <alice@example.test>",
         "--body", "sent by swaks"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "235 2.7.0" in result.stdout
    data = _newest(server.state, "carol@example.net", before + 1)
    assert b"sent by swaks" in data and b"with ESMTPSA id" in data
