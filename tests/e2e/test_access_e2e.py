"""Access rules allow / deny / relay per network, against the real server process.

Client networks are loopback addresses (127.0.0.1 … .5: all of 127.0.0.0/8
is loopback on Linux): each client binds its source address before it
connects to the server on 127.0.0.1.
"""

from __future__ import annotations

import smtplib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import ServerProcess, write_config
from tests.e2e.test_limits_e2e import Client, refused, smtp_client, smtp_quit, start

SMTP_DENIED = b"554 5.7.1 mx.example.test access denied\r\n"
RULES = """
[[access]]
network = "127.0.0.2/32"
action = "deny"

[[access]]
network = ["127.0.0.3", "::ffff:127.0.0.6"]
services = ["smtp"]
relay = true

[[access]]
network = "127.0.0.4"
services = "smtp"
greeting_delay = "30s"

[[access]]
network = "127.0.0.5"
services = ["smtp", "pop3"]
max_connections = 1
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    state = tmp_path_factory.mktemp("access")
    write_config(state, RULES)
    yield from start(state)


def test_denied_network_gets_each_protocols_refusal(server: ServerProcess) -> None:
    assert refused(server.address("smtp"), "127.0.0.2") == SMTP_DENIED
    assert refused(server.address("pop3"), "127.0.0.2") == b"-ERR access denied\r\n"
    assert refused(server.address("imap"), "127.0.0.2") == b"* BYE access denied\r\n"
    with pytest.raises(smtplib.SMTPConnectError) as caught:  # a real client's view
        smtplib.SMTP(*server.address("smtp"), source_address=("127.0.0.2", 0), timeout=10)
    assert caught.value.smtp_code == 554
    log = (server.state / "server.log").read_text()
    for service in ("smtp", "pop3", "imap"):
        assert f"{service}.access_denied ip=127.0.0.2 rule=1:127.0.0.2/32" in log


def test_other_networks_are_served(server: ServerProcess) -> None:
    smtp_quit(smtp_client(server, "127.0.0.1"))
    client = Client(server.address("pop3"), "127.0.0.3")
    assert client.line().startswith(b"+OK ")
    client.close()


def _relay_reply(server: ServerProcess, source: str) -> int:
    with smtplib.SMTP(*server.address("smtp"), source_address=(source, 0), timeout=10) as smtp:
        smtp.ehlo("client.example")
        smtp.mail("sender@example.org")
        code, _ = smtp.rcpt("someone@elsewhere.example")
        return code


def test_relay_per_network(server: ServerProcess) -> None:
    assert _relay_reply(server, "127.0.0.3") == 250  # rule 2: relay = true
    assert _relay_reply(server, "127.0.0.1") == 554  # no rule: relay access denied
    assert _relay_reply(server, "127.0.0.5") == 554  # its rule has no relay


def test_blind_smtp_client_is_refused_during_the_greeting_delay(server: ServerProcess) -> None:
    client = Client(server.address("smtp"), "127.0.0.4")
    client.send(b"EHLO bot.example\r\nMAIL FROM:<spam@example.org>\r\n")
    assert client.rest() == (
        b"554 5.5.1 mx.example.test protocol error: talked before the greeting\r\n")
    client.close()
    assert "smtp.pregreet ip=127.0.0.4 rule=3:127.0.0.4/32" in (
        server.state / "server.log").read_text()


def test_connection_limit_of_a_rule(server: ServerProcess) -> None:
    held = smtp_client(server, "127.0.0.5")
    assert refused(server.address("smtp"), "127.0.0.5") == (
        b"421 4.7.0 too many connections; try again later\r\n")
    smtp_quit(smtp_client(server, "127.0.0.1"))  # other clients are not counted
    smtp_quit(held)
    smtp_quit(smtp_client(server, "127.0.0.5"))  # the slot is free again


def _check(state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mailyard", "--state", str(state), "serve",
                           "--check"], capture_output=True, text=True, timeout=60, check=False)


def test_serve_check_reports_the_rules(tmp_path: Path) -> None:
    write_config(tmp_path, RULES + '\n[[access]]\nnetwork = "127.0.0.0/8"\nservices = "smtp"\n'
                 '\n[[access]]\nnetwork = "127.0.0.9"\nservices = "smtp"\n')
    result = _check(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "access: 6 rule(s)" in result.stdout
    assert "access: warning: rule 6 is never used: rule 5 matches first" in result.stdout
    write_config(tmp_path, '[[access]]\nnetwork = "127.0.0.0/33"\n')
    result = _check(tmp_path)
    assert result.returncode != 0
    assert "access rule 1: network" in result.stderr
