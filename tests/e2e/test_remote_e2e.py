"""Sending, end to end: the real server delivers to other hosts (a sink SMTP
server on 127.0.0.1, reached through a static route or through MX records of
a DNS server the test runs on 127.0.0.1), bounces what they refuse into the
sender's Maildir, and takes mail over QMTP and QMQP. Loopback only."""

from __future__ import annotations

import asyncio
import email
import email.policy
import smtplib
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from mailyard.proto.qmtp import encode_qmqp_request, encode_qmtp_package, split_netstrings
from mailyard.proto.smtp import Reply
from tests.dispatch.dnsserver import DnsServer
from tests.dispatch.sink import Sink
from tests.e2e.server import ServerProcess, maildir, provision, wait_for_files, write_config

T = TypeVar("T")


class LoopThread:
    """An event loop in a thread, for the sink and the DNS server."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def call(self, func: Callable[[], T]) -> T:
        async def wrapper() -> T:
            return func()

        return self.run(wrapper())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def wait_until(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    loop = LoopThread()
    sink = loop.run(Sink(hostname="sink.test", rcpt={
        "refused@routed.test": [Reply(550, "5.1.1", "no such user at the sink")],
    }).start())
    dns = loop.run(DnsServer(zone={
        "mxdom.test.": {"MX": ["10 mx1.mxdom.test."]},
        "mx1.mxdom.test.": {"A": ["127.0.0.1"]},
        "nullmx.test.": {"MX": ["0 ."]},
    }).start())
    state = tmp_path_factory.mktemp("remote") / "state"
    write_config(state, sections={"smtp": 'relay_networks = ["127.0.0.0/8"]'}, extra=(
        "[delivery]\n"
        'remote = "deliver"\n'
        f'resolver = ["{dns.nameserver}"]\n'
        f"smtp_port = {sink.port}\n"
        "connect_timeout = 5.0\n"
        "[delivery.routes]\n"
        f'"routed.test" = "127.0.0.1:{sink.port}"\n'
        "[qmtp]\n"
        'listen = ["127.0.0.1:0"]\n'
        "[qmqp]\n"
        'listen = ["127.0.0.1:0"]\n'
        'clients = ["127.0.0.1/32"]\n'
    ))
    provision(state)
    server = ServerProcess(state).start()
    try:
        yield {"server": server, "sink": sink, "dns": dns, "loop": loop, "state": state}
    finally:
        server.stop()
        loop.run(sink.stop())
        loop.call(dns.stop)
        loop.close()


def send(server: ServerProcess, sender: str, recipients: list[str], body: bytes) -> None:
    host, port = server.address("smtp")
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.sendmail(sender, recipients, body)


def sink_got(world: dict[str, Any], recipient: str) -> list[bytes]:
    sink: Sink = world["sink"]
    return world["loop"].call(lambda: [t.data for t in sink.transactions
                                       if recipient in t.recipients])


def test_static_route_delivers_byte_exact(world: dict[str, Any]) -> None:
    body = b"Subject: routed\r\n\r\n.dot line\r\nend\r\n"
    send(world["server"], "alice@example.test", ["someone@routed.test"], body)
    wait_until("the sink to receive", lambda: bool(sink_got(world, "someone@routed.test")))
    data = sink_got(world, "someone@routed.test")[0]
    assert data.endswith(body)  # after our Received: field
    assert data.startswith(b"Received: ")


def test_mx_lookup_through_the_test_dns_server(world: dict[str, Any]) -> None:
    send(world["server"], "alice@example.test", ["friend@mxdom.test"],
         b"Subject: by MX\r\n\r\nhello\r\n")
    wait_until("the sink to receive", lambda: bool(sink_got(world, "friend@mxdom.test")))
    dns: DnsServer = world["dns"]
    assert ("mxdom.test.", "MX") in world["loop"].call(lambda: list(dns.queries))


def _bounces(state: Path) -> list[email.message.EmailMessage]:
    box = maildir(state, "alice@example.test")
    found = []
    for sub in ("new", "cur"):
        for path in (box / sub).iterdir():
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if msg.get_content_type() == "multipart/report":
                found.append(msg)
    return found  # type: ignore[return-value]


def _bounce_mentioning(state: Path, needle: str) -> email.message.EmailMessage | None:
    for msg in _bounces(state):
        if needle in msg.as_string():
            return msg
    return None


def test_refused_recipient_bounces_to_the_sender(world: dict[str, Any]) -> None:
    state = world["state"]
    send(world["server"], "alice@example.test", ["refused@routed.test"],
         b"Subject: will bounce\r\n\r\nx\r\n")
    wait_until("the bounce", lambda: _bounce_mentioning(state, "refused@routed.test") is not None)
    report = _bounce_mentioning(state, "refused@routed.test")
    assert report is not None
    text = report.as_string()
    assert "550" in text and "5.1.1" in text  # the remote host's reply
    assert "Remote-MTA" in text


def test_null_mx_bounces(world: dict[str, Any]) -> None:
    state = world["state"]
    send(world["server"], "alice@example.test", ["nobody@nullmx.test"],
         b"Subject: null mx\r\n\r\nx\r\n")
    wait_until("the null-MX bounce",
               lambda: _bounce_mentioning(state, "nobody@nullmx.test") is not None)
    report = _bounce_mentioning(state, "nobody@nullmx.test")
    assert report is not None and "5.1.10" in report.as_string()  # RFC 7505


def _exchange(address: tuple[str, int], request: bytes, answers: int) -> list[bytes]:
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while True:
            items, _ = split_netstrings(data)
            if len(items) >= answers:
                return items
            chunk = sock.recv(65536)
            if not chunk:
                return items
            data += chunk


def test_qmtp_round_trip(world: dict[str, Any]) -> None:
    server: ServerProcess = world["server"]
    box = maildir(server.state, "bob@example.test") / "new"
    before = len(list(box.iterdir()))
    package = encode_qmtp_package(b"Subject: qmtp\n\nby qmtp\n", b"q@example.org",
                                  [b"bob@example.test", b"nobody@example.test"])
    answers = _exchange(server.address("qmtp"), package, 2)
    assert [a[:1] for a in answers] == [b"K", b"D"]
    files = wait_for_files(box, before + 1)
    assert any(p.read_bytes().endswith(b"\r\n\r\nby qmtp\r\n") for p in files)


def test_qmqp_round_trip(world: dict[str, Any]) -> None:
    server: ServerProcess = world["server"]
    box = maildir(server.state, "carol@example.net") / "new"
    before = len(list(box.iterdir()))
    request = encode_qmqp_request(b"Subject: qmqp\n\nby qmqp\n", b"q@example.org",
                                  [b"carol@example.net"])
    (answer,) = _exchange(server.address("qmqp"), request, 1)
    assert answer.startswith(b"K")
    wait_for_files(box, before + 1)
