"""Helpers for the SMTP client core tests: a scripted server, bytes in and out."""

from __future__ import annotations

from mailyard.proto.sentinels import CLOSED, NEED_DATA
from mailyard.proto.smtp.client import ClientConfig, SmtpClient
from mailyard.proto.smtp.client_events import ClientEvent

HELO = "me.example.test"
GREETING = b"220 mx.remote.test ESMTP ready\r\n"
EHLO_ALL = (
    b"250-mx.remote.test hello\r\n"
    b"250-PIPELINING\r\n"
    b"250-SIZE 10000\r\n"
    b"250-8BITMIME\r\n"
    b"250-SMTPUTF8\r\n"
    b"250-STARTTLS\r\n"
    b"250-ENHANCEDSTATUSCODES\r\n"
    b"250-CHUNKING\r\n"
    b"250 AUTH PLAIN LOGIN\r\n"
)
EHLO_PLAIN = b"250-mx.remote.test hello\r\n250 8BITMIME\r\n"  # no PIPELINING


def make(*, chunking: bool = False) -> SmtpClient:
    return SmtpClient(ClientConfig(HELO, chunking=chunking))


def events(client: SmtpClient, data: bytes = b"") -> list[ClientEvent]:
    """Feed ``data`` and pull every event that is ready."""
    if data:
        client.receive_data(data)
    out: list[ClientEvent] = []
    while True:
        event = client.next_event()
        if event is NEED_DATA or event is CLOSED:
            return out
        assert not isinstance(event, type(NEED_DATA))
        out.append(event)


def ready(ehlo: bytes = EHLO_ALL, *, chunking: bool = False) -> SmtpClient:
    """A client past the greeting and EHLO, its output drained."""
    client = make(chunking=chunking)
    events(client, GREETING)
    client.ehlo()
    assert client.data_to_send() == f"EHLO {HELO}\r\n".encode()
    events(client, ehlo)
    return client
