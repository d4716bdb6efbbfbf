"""Remote delivery wired as the worker wires it, for tests on loopback.

``remote_site`` builds the settings with the real builder, a processor in
"deliver" mode on the test site, the remote channel and the pass runner
(local stage in a thread, remote stage on this loop). Time is a fake clock.
``self_signed`` makes a certificate with ``cryptography`` (skips without it).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailyard.dispatch.channel import DeliveryPasses, RemoteChannel
from mailyard.dispatch.mx import MailDns
from mailyard.dispatch.process import MessageProcessor, Verdict
from mailyard.dispatch.remote import RemoteDelivery
from mailyard.dispatch.settings import build_settings
from tests.dispatch.conftest import BIRTH, HOSTNAME, Site

NOW = BIRTH + 5.0


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Remote:
    site: Site
    clock: FakeClock
    processor: MessageProcessor
    delivery: RemoteDelivery
    channel: RemoteChannel
    passes: DeliveryPasses
    executor: ThreadPoolExecutor

    async def run(self, qid: str) -> Verdict:
        """One whole pass at the clock's time."""
        return await self.passes.run(qid, self.clock.now)

    async def drain(self, first: str) -> list[str]:
        """Passes for ``first`` and every report it injected, transitively."""
        todo, done = [first], []
        while todo:
            qid = todo.pop(0)
            verdict = await self.run(qid)
            done.append(qid)
            todo += verdict.injected
        return done


@asynccontextmanager
async def remote_site(site: Site, delivery: Mapping[str, object],
                      queue: Mapping[str, object] | None = None, *,
                      clock: FakeClock | None = None, **processor: object,
                      ) -> AsyncIterator[Remote]:
    # Without a test DNS server, lookups go to a closed loopback port: no
    # test can ever ask a real name server.
    table: dict[str, object] = {"remote": "deliver", "connect_timeout": 5.0,
                                "command_timeout": 10.0, "dns_timeout": 2.0,
                                "resolver": ["127.0.0.1:9"], **delivery}
    settings = build_settings(table, queue)
    clock = clock or FakeClock()
    proc = site.processor(remote_mode="deliver", retry_skip_remote=settings.retry_skip,
                          delay_warning=settings.delay_warning, **processor)
    executor = ThreadPoolExecutor(4, thread_name_prefix="test-remote")
    dns = MailDns(settings.resolver, settings.dns_timeout)
    delivery_ = RemoteDelivery(settings, HOSTNAME, clock=clock, dns=dns)
    channel = RemoteChannel(proc, delivery_, executor, clock)
    loop = asyncio.get_running_loop()

    async def local(qid: str, now: float) -> Verdict:
        return await loop.run_in_executor(executor, proc.process, qid, now)

    try:
        yield Remote(site, clock, proc, delivery_, channel, DeliveryPasses(local, channel),
                     executor)
    finally:
        executor.shutdown(wait=True)


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` (and 127.0.0.1): (cert, key) PEM files."""
    crypto = pytest.importorskip("cryptography", reason="cryptography is not installed")
    del crypto
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
