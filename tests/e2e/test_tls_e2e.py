"""TLS on every listener of a live server, with Python's ssl as the client.

The server's self-signed certificate (generated as ``mailyard init`` does)
is the only trust anchor, and host names are checked, so every handshake
here is a fully verified one. Covered: the handshake on each listener,
STARTTLS and STLS followed by commands, plaintext pipelined behind
STARTTLS/STLS never executed, TLS 1.1 and non-AEAD suites refused, and a
SIGHUP reload that new connections see while an existing session goes on.
"""

from __future__ import annotations

import contextlib
import poplib
import signal
import smtplib
import socket
import ssl
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from mailyard.server.tls import generate_self_signed
from tests.e2e.server import (
    HOSTNAME,
    PASSWORD,
    ServerProcess,
    maildir,
    provision,
    tls_client_context,
    wait_for_files,
    write_config,
)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    state = tmp_path_factory.mktemp("tls") / "state"
    write_config(state, tls=True)
    provision(state)
    proc = ServerProcess(state).start()
    yield proc
    assert proc.stop() == 0, proc.log_tail()


def _serial(der: bytes | None) -> int:
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _file_serial(state: Path) -> int:
    return x509.load_pem_x509_certificate((state / "tls" / "cert.pem").read_bytes()).serial_number


@contextlib.contextmanager
def _implicit(server: ServerProcess, service: str,
              context: ssl.SSLContext | None = None) -> Iterator[ssl.SSLSocket]:
    ctx = context or tls_client_context(server.state)
    raw = socket.create_connection(server.address(service), timeout=30)
    with ctx.wrap_socket(raw, server_hostname=HOSTNAME) as sock:
        yield sock


def _line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def _reply(sock: socket.socket) -> list[bytes]:
    """One SMTP reply, all its lines."""
    lines = [_line(sock)]
    while lines[-1][3:4] == b"-":
        lines.append(_line(sock))
    return lines


def _wait_log(server: ServerProcess, needle: str, count: int = 1, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.log_tail(10_000).count(needle) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{needle!r} not logged: {server.log_tail()}")


# -- a handshake on every listener ------------------------------------------------------


@pytest.mark.parametrize(("service", "greeting"), [("smtps", b"220 "), ("pop3s", b"+OK")])
def test_implicit_tls_listeners_handshake_first(tls_server: ServerProcess, service: str,
                                                greeting: bytes) -> None:
    with _implicit(tls_server, service) as sock:
        assert sock.version() in ("TLSv1.2", "TLSv1.3")
        assert _serial(sock.getpeercert(binary_form=True)) == _file_serial(tls_server.state)
        assert _line(sock).startswith(greeting)


@pytest.mark.parametrize("service", ["smtp", "submission"])
def test_starttls_on_smtp_listeners(tls_server: ServerProcess, service: str) -> None:
    with smtplib.SMTP(*tls_server.address(service), timeout=30) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        code, _ = client.starttls(context=tls_client_context(tls_server.state))
        assert code == 220
        assert isinstance(client.sock, ssl.SSLSocket)
        client.ehlo()
        # RFC 3207 §4.2: not offered again once TLS is on.
        assert not client.has_extn("starttls")
        assert client.noop()[0] == 250


def test_mx_starttls_then_mail_is_delivered(tls_server: ServerProcess) -> None:
    body = b"Subject: over tls\r\n\r\nsecret body\r\n"
    with smtplib.SMTP(*tls_server.address("smtp"), timeout=30) as client:
        client.starttls(context=tls_client_context(tls_server.state))
        assert client.sendmail("sender@example.org", ["carol@example.net"], body) == {}
    box = maildir(tls_server.state, "carol@example.net") / "new"
    files = wait_for_files(box, 1)
    data = max(files, key=lambda p: p.stat().st_mtime).read_bytes()
    assert b"with ESMTPS id" in data  # RFC 3848: TLS, no AUTH
    assert data.endswith(body)


def test_mx_offers_no_auth_even_under_tls(tls_server: ServerProcess) -> None:
    with smtplib.SMTP(*tls_server.address("smtp"), timeout=30) as client:
        client.starttls(context=tls_client_context(tls_server.state))
        client.ehlo()
        assert not client.has_extn("auth")


def test_pop3_stls_then_login(tls_server: ServerProcess) -> None:
    pop = poplib.POP3(*tls_server.address("pop3"), timeout=30)
    try:
        assert "STLS" in pop.capa()
        pop.stls(context=tls_client_context(tls_server.state))
        assert "STLS" not in pop.capa()
        pop.user("alice@example.test")
        pop.pass_(PASSWORD)
        assert pop.stat()[0] >= 0
    finally:
        pop.quit()


def test_pop3s_login(tls_server: ServerProcess) -> None:
    host, port = tls_server.address("pop3s")
    pop = poplib.POP3_SSL(host, port, timeout=30, context=tls_client_context(tls_server.state))
    try:
        assert "STLS" not in pop.capa()
        pop.user("bob@example.test")
        pop.pass_(PASSWORD)
        assert pop.stat()[0] >= 0
    finally:
        pop.quit()


# -- STARTTLS command injection ------------------------------------------------------------


def test_smtp_plaintext_pipelined_behind_starttls_is_discarded(tls_server: ServerProcess) -> None:
    with socket.create_connection(tls_server.address("smtp"), timeout=30) as raw:
        assert _line(raw).startswith(b"220 ")
        raw.sendall(b"EHLO attacker.example\r\n")
        _reply(raw)
        # One packet: the MITM's classic injection (CVE-2011-0411).
        raw.sendall(b"STARTTLS\r\nMAIL FROM:<evil@x.example>\r\n")
        assert _line(raw).startswith(b"220 2.0.0")
        ctx = tls_client_context(tls_server.state)
        with ctx.wrap_socket(raw, server_hostname=HOSTNAME) as sock:
            sock.sendall(b"EHLO client.example\r\n")
            ehlo = _reply(sock)
            assert ehlo[0].startswith(b"250-"), ehlo  # the first reply is EHLO's, not MAIL's
            sock.sendall(b"RCPT TO:<alice@example.test>\r\n")
            # Had the MAIL run, this would be 250; it was thrown away.
            assert _line(sock).startswith(b"503 ")
            sock.sendall(b"QUIT\r\n")
            assert _line(sock).startswith(b"221 ")


def test_pop3_plaintext_pipelined_behind_stls_is_discarded(tls_server: ServerProcess) -> None:
    with socket.create_connection(tls_server.address("pop3"), timeout=30) as raw:
        assert _line(raw).startswith(b"+OK")
        raw.sendall(b"STLS\r\nUSER alice@example.test\r\n")
        assert _line(raw).startswith(b"+OK")
        ctx = tls_client_context(tls_server.state)
        with ctx.wrap_socket(raw, server_hostname=HOSTNAME) as sock:
            # The USER was dropped with the plaintext: PASS has no user.
            sock.sendall(f"PASS {PASSWORD}\r\n".encode())
            assert _line(sock).startswith(b"-ERR")
            sock.sendall(b"QUIT\r\n")
            assert _line(sock).startswith(b"+OK")


# -- what is refused ----------------------------------------------------------------------


def test_tls_1_1_is_refused(tls_server: ServerProcess) -> None:
    ctx = tls_client_context(tls_server.state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # so that this client can offer TLS 1.1 at all
    before = tls_server.log_tail(10_000).count("unsupported protocol")
    for service in ("smtps", "pop3s"):
        with pytest.raises(ssl.SSLError), _implicit(tls_server, service, ctx):
            pass
    # The server saw the TLS 1.1 hello and refused it (asyncio closes without
    # flushing the alert, so the client sees only the end of the stream).
    _wait_log(tls_server, "unsupported protocol", count=before + 2)


def test_cbc_suites_are_refused(tls_server: ServerProcess) -> None:
    ctx = tls_client_context(tls_server.state)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256")
    with pytest.raises(ssl.SSLError), _implicit(tls_server, "smtps", ctx):
        pass
    # The same client with an AEAD suite gets through.
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    with _implicit(tls_server, "smtps", ctx) as sock:
        assert sock.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"


def test_stalled_handshake_is_closed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_config(state, tls=True, sections={"tls": "handshake_timeout = 0.5"})
    provision(state, users=("alice@example.test",))
    server = ServerProcess(state).start()
    try:
        with socket.create_connection(server.address("smtps"), timeout=30) as raw:
            assert raw.recv(1) == b""  # closed by the server, without a word
        _wait_log(server, "tls.handshake_failed")
    finally:
        assert server.stop() == 0


def test_tls_listener_without_certificate_does_not_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_config(state, sections={"pop3": 'listen_tls = ["127.0.0.1:0"]'})
    provision(state, users=("alice@example.test",))
    with pytest.raises(RuntimeError, match=r"pop3\.listen_tls need a TLS certificate"):
        ServerProcess(state).start()


def test_without_certificate_no_starttls_is_offered(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_config(state)
    provision(state, users=("alice@example.test",))
    server = ServerProcess(state).start()
    try:
        with smtplib.SMTP(*server.address("smtp"), timeout=30) as client:
            client.ehlo()
            assert not client.has_extn("starttls")
        pop = poplib.POP3(*server.address("pop3"), timeout=30)
        assert "STLS" not in pop.capa()
        pop.quit()
    finally:
        assert server.stop() == 0


# -- SIGHUP ---------------------------------------------------------------------------------


def test_sighup_reloads_the_certificate(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_config(state, tls=True)
    provision(state, users=("alice@example.test",))
    server = ServerProcess(state).start()
    assert server.proc is not None
    try:
        first = _file_serial(state)
        host, port = server.address("smtps")
        ctx = tls_client_context(state)
        existing = smtplib.SMTP_SSL(host, port, timeout=30, context=ctx)
        existing.login("alice@example.test", PASSWORD)
        assert _serial(existing.sock.getpeercert(binary_form=True)) == first

        generate_self_signed(HOSTNAME, str(state / "tls" / "cert.pem"),
                             str(state / "tls" / "key.pem"))
        second = _file_serial(state)
        assert second != first
        server.proc.send_signal(signal.SIGHUP)
        _wait_log(server, "tls.reloaded")
        renewed = tls_client_context(state)  # trusts the new certificate
        for service in ("smtps", "pop3s"):
            with _implicit(server, service, renewed) as sock:
                assert _serial(sock.getpeercert(binary_form=True)) == second
        with smtplib.SMTP(*server.address("submission"), timeout=30) as client:
            client.starttls(context=renewed)
            assert _serial(client.sock.getpeercert(binary_form=True)) == second

        # The session from before the reload goes on, on its own handshake.
        assert existing.noop()[0] == 250
        assert existing.sendmail("alice@example.test", ["alice@example.test"],
                                 b"Subject: across a reload\r\n\r\nstill here\r\n") == {}
        existing.quit()

        # A broken certificate is refused and the current one kept.
        (state / "tls" / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\nbroken\n")
        server.proc.send_signal(signal.SIGHUP)
        _wait_log(server, "tls.reload_failed")
        with _implicit(server, "smtps", renewed) as sock:
            assert _serial(sock.getpeercert(binary_form=True)) == second
    finally:
        assert server.stop() == 0, server.log_tail()
