"""Properties of the client core: the same conversation gives the same events
however the server's bytes are split, and nothing a server sends makes the
core raise (h11's fuzz invariant, turned around)."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailyard.proto.sentinels import CLOSED, NEED_DATA
from mailyard.proto.smtp.client import ClientState, MailOptions, SmtpClient, SmtpClientUsageError
from mailyard.proto.smtp.client_events import ClientEvent, EnvelopeDone, MessageReply
from tests.proto.smtp.client_helpers import EHLO_ALL, GREETING, make

SERVER = (
    GREETING + EHLO_ALL
    + b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no\r\n354 go\r\n"
    + b"250-2.0.0 queued\r\n250 2.0.0 as X\r\n221 2.0.0 bye\r\n"
)


def converse(chunks: list[bytes]) -> tuple[list[ClientEvent], bytes]:
    """The conversation SERVER scripts, the server's bytes arriving in ``chunks``."""
    client = make()
    seen: list[ClientEvent] = []
    written = bytearray()
    feed = iter(chunks)
    while True:
        event = client.next_event()
        if event is CLOSED:
            return seen, bytes(written)
        if event is NEED_DATA:
            client.receive_data(next(feed, b""))
            continue
        assert not isinstance(event, type(CLOSED))
        seen.append(event)
        name = type(event).__name__
        if name == "Greeting":
            client.ehlo()
        elif name == "HelloReply":
            client.mail_transaction("a@here.test", ["b@x.test", "c@x.test"],
                                    MailOptions(size=30))
        elif isinstance(event, EnvelopeDone):
            client.send_body(b"Subject: s\r\n\r\nbody\r\n")
            client.end_body()
        elif isinstance(event, MessageReply):
            client.quit()
        written += client.data_to_send()


WHOLE = converse([SERVER])


@given(st.lists(st.integers(0, len(SERVER)), max_size=12))
def test_same_events_whatever_the_split(cuts: list[int]) -> None:
    points = sorted(set(cuts) | {0, len(SERVER)})
    assert converse([SERVER[a:b] for a, b in itertools.pairwise(points)]) == WHOLE


def test_same_events_byte_by_byte() -> None:
    assert converse([SERVER[i : i + 1] for i in range(len(SERVER))]) == WHOLE
    events, written = WHOLE
    assert [type(e).__name__ for e in events][-2:] == ["MessageReply", "QuitReply"]
    assert written.endswith(b"body\r\n.\r\nQUIT\r\n")


PIECES = [
    GREETING, EHLO_ALL, b"250 ok\r\n", b"354 go\r\n", b"421 bye\r\n", b"550 5.1.1 no\r\n",
    b"334 VXNlcm5hbWU6\r\n", b"220 go\r\n", b"250-", b"\r\n", b"\xff", b"", b"99 x\r\n",
]
OPS = ["ehlo", "starttls", "tls_started", "auth", "mail", "body", "end", "rset", "quit",
       "abort"]


def _op(client: SmtpClient, op: str) -> None:
    if op == "ehlo":
        client.ehlo()
    elif op == "starttls":
        client.starttls()
    elif op == "tls_started":
        client.tls_started()
    elif op == "auth":
        client.auth("LOGIN", "u", "p")
    elif op == "mail":
        client.mail_transaction("a@b.test", ["c@d.test", "e@f.test"], MailOptions(size=3))
    elif op == "body":
        client.send_body(b"x.\r\n.")
    elif op == "end":
        client.end_body()
    elif op == "rset":
        client.rset()
    elif op == "quit":
        client.quit()
    else:
        client.abort("test")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.one_of(st.sampled_from(PIECES), st.binary(max_size=12)),
                          st.sampled_from(OPS)), max_size=30),
       st.booleans())
def test_nothing_from_the_server_makes_the_core_raise(steps: list[tuple[bytes, str]],
                                                      chunking: bool) -> None:
    client = make(chunking=chunking)
    for data, op in steps:
        client.receive_data(data)
        while True:
            event = client.next_event()
            if event is NEED_DATA or event is CLOSED:
                break
        try:
            _op(client, op)
        except SmtpClientUsageError:
            pass  # the adapter's mistake in this random walk, not the server's
        out = client.data_to_send()
        assert out == b"" or out.endswith(b"\r\n") or client.state is ClientState.BODY
        if client.state is ClientState.CLOSED:
            assert client.waiting is None
