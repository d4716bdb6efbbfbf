"""STARTTLS and AUTH in remote delivery, against the loopback sink.

Certificates are self-signed, made with ``cryptography`` (the tests that
need one are skipped with the reason when it is not installed).
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from mailyard.queue.store import RecipientState
from tests.dispatch.conftest import Site
from tests.dispatch.dnsserver import DnsServer
from tests.dispatch.remote_helpers import remote_site, self_signed, server_context
from tests.dispatch.sink import Sink

CAROL = "carol@remote.test"


def last_error(site: Site, qid: str) -> str:
    (status,) = site.queue.load(qid).statuses
    assert status.state is RecipientState.PENDING
    return status.last_error or ""


def test_opportunistic_starttls_with_a_self_signed_certificate(site: Site,
                                                              tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "sink.test")

    async def scenario() -> None:
        sink = await Sink(tls=server_context(cert, key)).start()
        try:
            routes = {"remote.test": f"127.0.0.1:{sink.port}"}
            async with remote_site(site, {"routes": routes}) as remote:
                assert (await remote.run(site.enqueue([CAROL]))).finished
        finally:
            await sink.stop()
        (txn,) = sink.transactions
        assert txn.tls  # the certificate was not checked: opportunistic (RFC 7435)

    asyncio.run(scenario())


def _verified_routes(port: int, host: str, cert: Path) -> dict[str, object]:
    return {"remote.test": {"host": host, "port": port, "tls": "required",
                            "ca_file": str(cert)}}


def test_required_tls_verifies_the_certificate_and_the_name(site: Site, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "sink.test")

    async def scenario() -> None:
        sink = await Sink(tls=server_context(cert, key)).start()
        dns = await DnsServer({"sink.test.": {"A": ["127.0.0.1"]},
                               "other.test.": {"A": ["127.0.0.1"]}}).start()
        try:
            good = {"routes": _verified_routes(sink.port, "sink.test", cert),
                    "resolver": [dns.nameserver]}
            async with remote_site(site, good) as remote:
                assert (await remote.run(site.enqueue([CAROL]))).finished
            wrong = {"routes": _verified_routes(sink.port, "other.test", cert),
                     "resolver": [dns.nameserver]}
            async with remote_site(site, wrong) as remote:
                qid = site.enqueue([CAROL])
                verdict = await remote.run(qid)
                assert not verdict.finished and verdict.injected == ()
                error = last_error(site, qid)
                assert error.startswith("4.7.0") and "TLS handshake failed" in error
        finally:
            await sink.stop()
            dns.stop()
        assert [t.tls for t in sink.transactions] == [True]

    asyncio.run(scenario())


def test_required_tls_without_starttls_defers(site: Site) -> None:
    async def scenario() -> None:
        sink = await Sink().start()
        try:
            routes = {"remote.test": {"host": "127.0.0.1", "port": sink.port,
                                      "tls": "required"}}
            async with remote_site(site, {"routes": routes}) as remote:
                qid = site.enqueue([CAROL])
                assert not (await remote.run(qid)).finished
                assert "STARTTLS is not offered" in last_error(site, qid)
        finally:
            await sink.stop()
        assert sink.transactions == []

    asyncio.run(scenario())


def test_a_failed_opportunistic_handshake_is_retried_in_plaintext(site: Site,
                                                                  tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "sink.test")
    context = server_context(cert, key)
    # The server wants a client certificate, which an MTA client has none of:
    # with TLS 1.2 the handshake itself fails.
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cert)

    async def scenario() -> None:
        sink = await Sink(tls=context).start()
        try:
            routes = {"remote.test": f"127.0.0.1:{sink.port}"}
            async with remote_site(site, {"routes": routes}) as remote:
                assert (await remote.run(site.enqueue([CAROL]))).finished
        finally:
            await sink.stop()
        assert len(sink.connections) == 2
        assert [t.tls for t in sink.transactions] == [False]

    asyncio.run(scenario())


async def _injecting_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # A man in the middle answers STARTTLS and appends a forged reply.
    writer.write(b"220 evil.test ESMTP\r\n")
    while line := await reader.readline():
        if line.startswith(b"EHLO"):
            writer.write(b"250-evil.test\r\n250 STARTTLS\r\n")
        elif line.startswith(b"STARTTLS"):
            writer.write(b"220 go ahead\r\n250 2.0.0 forged\r\n")
        elif line.startswith(b"QUIT"):
            writer.write(b"221 bye\r\n")
        else:
            writer.write(b"451 4.3.0 not today\r\n")
        await writer.drain()
    writer.close()


def test_data_sent_after_the_starttls_220_is_never_taken_for_tls(site: Site) -> None:
    async def scenario() -> None:
        server = await asyncio.start_server(_injecting_server, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            routes = {"remote.test": {"host": "127.0.0.1", "port": port, "tls": "required"}}
            async with remote_site(site, {"routes": routes}) as remote:
                qid = site.enqueue([CAROL])
                assert not (await remote.run(qid)).finished
                assert "sent data after its 220" in last_error(site, qid)
        finally:
            server.close()

    asyncio.run(scenario())


def test_auth_to_a_loopback_smarthost(site: Site, tmp_path: Path) -> None:
    secret = tmp_path / "relay.pw"
    secret.write_text("relay pass\n")
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("nope\n")

    def route(port: int, password: Path) -> dict[str, object]:
        # Loopback: the password may go without TLS (RFC 4954 §4 is about the network).
        return {"": {"host": "127.0.0.1", "port": port, "user": "relay",
                     "password_file": str(password), "tls": "opportunistic"}}

    async def scenario() -> None:
        sink = await Sink(users={"relay": "relay pass"}).start()
        sink.features = type(sink.features)(auth_mechanisms=("PLAIN", "LOGIN"), chunking=False)
        try:
            async with remote_site(site, {"routes": route(sink.port, secret)}) as remote:
                assert (await remote.run(site.enqueue([CAROL]))).finished
            async with remote_site(site, {"routes": route(sink.port, wrong)}) as remote:
                qid = site.enqueue([CAROL])
                verdict = await remote.run(qid)
                # A refused login is never the sender's fault: deferred, no bounce.
                assert not verdict.finished and verdict.injected == ()
                assert "login refused" in last_error(site, qid)
        finally:
            await sink.stop()
        (txn,) = sink.transactions
        assert txn.user == "relay"

    asyncio.run(scenario())
