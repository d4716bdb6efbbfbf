"""`mailyard check`: configuration, certificate, permissions, and DNS advice.

DNS is only ever asked of a loopback server of our own (tests/dispatch/dnsserver.py)
or not at all (--no-dns).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailyard.cli.check_cmds import Level, check_dns, make_lookup
from tests.cli.conftest import Cli
from tests.dispatch.dnsserver import DnsServer


def _findings(cli: Cli, *args: str) -> tuple[int, dict[str, tuple[str, str]]]:
    result = cli.run("check", "--json", *args)
    assert result.exception is None or result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    return result.exit_code, {f["check"]: (f["level"], f["detail"]) for f in data}


def _write_cert(state: Path, name: str, days: int) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=400))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (state / "tls" / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (state / "tls" / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (state / "tls" / "key.pem").chmod(0o600)


def test_a_fresh_state_passes(cli: Cli) -> None:
    code, found = _findings(cli, "--no-dns")
    assert code == 0
    assert found["config"][0] == "ok"
    assert found["certificate"][0] == "ok"
    assert found["certificate issuer"][0] == "warn"  # mailyard init's self-signed one
    assert found["perm directory.sqlite"] == ("ok", "600")
    assert not any(check.startswith(("MX", "SPF")) for check in found)
    # The table for people says the same.
    assert "certificate" in cli.ok("check", "--no-dns")


def test_a_broken_config_fails(cli: Cli) -> None:
    with (cli.state / "mailyard.toml").open("a") as handle:
        handle.write("\n[listen_typo]\nx = 1\n")
    code, found = _findings(cli, "--no-dns")
    assert code == 1
    assert found["config"][0] == "fail" and "listen_typo" in found["config"][1]


def test_secrets_readable_by_others_fail(cli: Cli) -> None:
    (cli.state / "directory.sqlite").chmod(0o644)
    (cli.state / "queue").chmod(0o777)
    code, found = _findings(cli, "--no-dns")
    assert code == 1
    assert found["perm directory.sqlite"][0] == "fail"
    assert found["perm queue"][0] == "fail"


@pytest.mark.parametrize(("days", "level"), [(-1, "fail"), (5, "warn"), (90, "ok")])
def test_certificate_expiry(cli: Cli, days: int, level: str) -> None:
    _write_cert(cli.state, "mx.example.test", days)
    code, found = _findings(cli, "--no-dns")
    assert found["certificate"][0] == level
    assert code == (1 if level == "fail" else 0)


def test_certificate_for_another_name(cli: Cli) -> None:
    _write_cert(cli.state, "other.example", 90)
    _, found = _findings(cli, "--no-dns")
    assert found["certificate name"][0] == "warn"


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    loop = asyncio.new_event_loop()
    server = DnsServer(zone={
        "a.test.": {"MX": ["10 mx.example.test."], "TXT": ['"v=spf1 mx -all"']},
        "_dmarc.a.test.": {"TXT": ['"v=DMARC1; p=reject"']},
        "mailyard._domainkey.a.test.": {"TXT": ['"v=DKIM1; k=rsa; p=MIIB"']},
        "b.test.": {"MX": ["10 elsewhere.example."],
                    "TXT": ['"v=spf1 -all"', '"v=spf1 mx -all"']},
        "mx.example.test.": {"A": ["127.0.0.1"]},
        "1.0.0.127.in-addr.arpa.": {"PTR": ["mx.example.test."]},
    })
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    yield server
    loop.call_soon_threadsafe(server.stop)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_dns_advice_from_a_loopback_server(cli: Cli, dns_server: DnsServer) -> None:
    code, found = _findings(cli, "--resolver", dns_server.nameserver)
    assert code == 0  # advice never fails the check
    assert found["MX a.test"][0] == "ok"
    assert found["SPF a.test"] == ("ok", "v=spf1 mx -all")
    assert found["DMARC a.test"][0] == "ok"
    assert found["DKIM a.test"][0] == "ok"
    assert found["MX b.test"][0] == "advice" and "elsewhere.example" in found["MX b.test"][1]
    assert found["SPF b.test"][0] == "advice" and "RFC 7208" in found["SPF b.test"][1]
    assert found["DMARC b.test"][0] == "advice" and "_dmarc.b.test" in found["DMARC b.test"][1]
    assert found["DKIM b.test"][0] == "advice"
    assert found["PTR 127.0.0.1"] == ("ok", "mx.example.test")


def test_dns_without_records_or_server(dns_server: DnsServer) -> None:
    lookup = make_lookup([("127.0.0.1", dns_server.port)])
    found = {f.check: f for f in check_dns(["none.test"], "nohost.test", lookup)}
    assert found["MX none.test"].level is Level.ADVICE
    assert "no MX" in found["MX none.test"].detail
    assert "no A or AAAA" in found["address nohost.test"].detail
    # A server that does not answer: advice that the lookup failed, quickly.
    silent = make_lookup([("127.0.0.1", 9)], timeout=0.5)
    findings = check_dns(["x.test"], "mx.example.test", silent)
    assert len(findings) == 5
    assert all(f.level is Level.ADVICE and "could not look up" in f.detail for f in findings)


def _with_server_users(cli: Cli, text: str) -> None:
    """Keys in the [server] table of mailyard init's configuration."""
    path = cli.state / "mailyard.toml"
    config = path.read_text()
    assert config.count("\n[server]\n") == 1
    path.write_text(config.replace("\n[server]\n", f"\n[server]\n{text}\n"))


def test_code_access_of_the_worker_users(cli: Cli) -> None:
    from mailyard.server.preload import code_folders, readable_by
    from mailyard.server.privileges import resolve_user

    _with_server_users(cli, 'user = "nobody"')
    code, found = _findings(cli, "--no-dns")
    nobody = resolve_user("nobody")
    closed = [f for f in code_folders() if not readable_by(f, nobody)]
    level, detail = found["code access nobody"]
    # This machine's interpreter lies under /root: a warning, not a failure.
    assert (level, bool(closed)) in {("warn", True), ("ok", False)}
    assert code == 0
    if closed:
        assert closed[0] in detail and "/usr/local" in detail


def test_code_access_of_an_unknown_user_fails(cli: Cli) -> None:
    _with_server_users(cli, 'user = "nobody"\nmail_user = "no-such-user-here"')
    code, found = _findings(cli, "--no-dns")
    assert code == 1
    assert found["code access no-such-user-here"][0] == "fail"
    assert "code access nobody" in found
