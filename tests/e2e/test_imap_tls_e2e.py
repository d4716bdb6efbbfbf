"""IMAP over TLS: STARTTLS on the plain listener (RFC 9051 §6.2.1, with
LOGINDISABLED until then) and the implicit-TLS listener (IMAPS, RFC 8314),
with real handshakes against the test certificate."""

from __future__ import annotations

import imaplib
import socket
from collections.abc import Iterator

import pytest

from tests.e2e.server import HOSTNAME, PASSWORD, ServerProcess, imap_state, tls_client_context


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    state = imap_state(tmp_path_factory.mktemp("imaptls"), tls=True)
    proc = ServerProcess(state).start()
    yield proc
    assert proc.stop() == 0, proc.log_tail()


def test_starttls_then_login(server: ServerProcess) -> None:
    client = imaplib.IMAP4(*server.address("imap"), timeout=30)
    assert "STARTTLS" in client.capabilities and "LOGINDISABLED" in client.capabilities
    assert "AUTH=PLAIN" not in client.capabilities
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        client.login("i1@example.test", PASSWORD)
    typ, _ = client.starttls(tls_client_context(server.state))
    assert typ == "OK"
    assert "AUTH=PLAIN" in client.capabilities and "STARTTLS" not in client.capabilities
    assert client.login("i1@example.test", PASSWORD)[0] == "OK"
    assert client.select("INBOX")[0] == "OK"
    client.logout()


def test_plaintext_after_starttls_is_never_run(server: ServerProcess) -> None:
    context = tls_client_context(server.state)
    with socket.create_connection(server.address("imap"), timeout=30) as plain:
        reader = plain.makefile("rb")
        reader.readline()
        # The injected command rides along with STARTTLS in the clear.
        plain.sendall(b"a1 STARTTLS\r\na2 LOGIN i1@example.test x\r\n")
        assert reader.readline().startswith(b"a1 OK")
        with context.wrap_socket(plain, server_hostname=HOSTNAME) as tls:
            tls.sendall(b"a3 NOOP\r\n")
            assert tls.makefile("rb").readline() == b"a3 OK NOOP completed\r\n"


def test_imaps(server: ServerProcess) -> None:
    host, port = server.address("imaps")
    client = imaplib.IMAP4_SSL(host, port, ssl_context=tls_client_context(server.state),
                               timeout=30)
    assert "AUTH=PLAIN" in client.capabilities and "STARTTLS" not in client.capabilities
    assert client.login("i2@example.test", PASSWORD)[0] == "OK"
    typ, data = client.list('""', "*")
    assert typ == "OK" and len(data) == 6
    client.logout()
