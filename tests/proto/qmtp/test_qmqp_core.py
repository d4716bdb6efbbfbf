"""QmqpServer (cr.yp.to/proto/qmqp.html): one request, one K/Z/D answer."""

from __future__ import annotations

import pytest

from mailyard.proto.qmtp import (
    CLOSED,
    ConnectionClosed,
    LineEnding,
    MessageStart,
    PackageEnd,
    PackageRefused,
    QmqpServer,
    QmtpLimits,
    QmtpUsageError,
    Refusal,
    Response,
    Status,
    encode_netstring,
    encode_qmqp_request,
)
from tests.proto.qmtp.helpers import drive, envelope_of, qmqp
from tests.proto.splitting import bytewise, whole

MESSAGE = b"Subject: q\r\n\r\nline one\r\nline two\r\n"
FEEDS = [whole, bytewise]
SMALL = QmtpLimits(max_message_size=100, max_discard_size=300, max_address_length=20,
                   max_recipients=3)


def request(*recipients: bytes, message: bytes = MESSAGE, sender: bytes = b"a@example.org",
            ) -> bytes:
    return encode_qmqp_request(message, sender, recipients)


@pytest.mark.parametrize("feed", FEEDS)
def test_one_request_one_answer_then_closed(feed: object) -> None:
    data = request(b"x@example.test", b"y@example.org")
    run = drive(qmqp(), feed(data + b"ignored after the request"))  # type: ignore[operator]
    assert run.kinds() == ["MessageStart", "Sender", "Recipient", "Recipient", "PackageEnd"]
    lf_size = len(MESSAGE.replace(b"\r\n", b"\n"))
    assert run.events[0] == MessageStart(lf_size, LineEnding.LF)
    assert run.messages == [MESSAGE]  # LF on the wire, CRLF in the queue
    assert envelope_of(run) == [(b"a@example.org", [b"x@example.test", b"y@example.org"])]
    assert run.responses == [b"Kok 0"]
    assert run.closed


def test_empty_message_and_null_sender() -> None:
    run = drive(qmqp(), [request(b"x@example.test", message=b"", sender=b"")])
    assert run.messages == [b""]
    assert envelope_of(run) == [(b"", [b"x@example.test"])]


@pytest.mark.parametrize(("data", "reason"), [
    (request(message=b"x" * 101), Refusal.MESSAGE_TOO_LARGE),
    (request(b"x@example.test", sender=b"s" * 21), Refusal.SENDER_TOO_LONG),
    (request(b"x@example.test", b"r" * 21), Refusal.RECIPIENT_TOO_LONG),
    (request(*[b"r%d@example.test" % n for n in range(4)]), Refusal.TOO_MANY_RECIPIENTS),
    (request(), Refusal.NO_RECIPIENTS),
])
@pytest.mark.parametrize("feed", FEEDS)
def test_the_core_refuses_alone(data: bytes, reason: Refusal, feed: object) -> None:
    run = drive(QmqpServer(SMALL), feed(data))  # type: ignore[operator]
    refused = [ev for ev in run.events if isinstance(ev, PackageRefused)]
    assert [ev.reason for ev in refused] == [reason]
    assert not any(isinstance(ev, PackageEnd) for ev in run.events)
    assert run.responses == [b"D" + reason.value.encode()]
    assert run.closed


def test_message_at_the_limit_is_accepted() -> None:
    run = drive(QmqpServer(SMALL), [request(b"x@example.test", message=b"x" * 100)])
    assert run.messages == [b"x" * 100]
    assert run.responses == [b"Kok 0"]


@pytest.mark.parametrize("garbage", [
    b"0:,",  # no message inside
    b"3:0:,,",  # a message and no sender
    b"9:5:abcdefgh,0:,,",  # the message runs past the request
    b"8:0:,0:,0:,;",  # the request not closed by a comma
    b"3:0:,0:,",  # the sender runs past the request
    b"x",
    b"01:",
])
@pytest.mark.parametrize("feed", FEEDS)
def test_garbage_is_a_protocol_error(garbage: bytes, feed: object) -> None:
    run = drive(qmqp(), feed(garbage))  # type: ignore[operator]
    assert run.error is not None
    assert run.output == b""


def test_request_over_the_ceiling_is_refused_before_reading_it() -> None:
    data = b"%d:" % (SMALL.request_ceiling + 1)
    assert drive(QmqpServer(SMALL), [data]).error is not None


def test_end_of_file_mid_request() -> None:
    data = request(b"x@example.test")
    for at in (0, 1, len(data) // 2, len(data) - 1):
        run = drive(qmqp(), [data[:at]])
        assert run.events[-1] == ConnectionClosed(mid_package=at > 0)
        assert run.output == b""


def test_answer_once() -> None:
    core = qmqp()
    with pytest.raises(QmtpUsageError):
        core.answer(Response(Status.ACCEPTED, "ok"))
    core.receive_data(request(b"x@example.test"))
    while not isinstance(core.next_event(), PackageEnd):
        pass
    core.answer(Response(Status.TEMPORARY, "disk full (#4.3.1)"))
    assert core.data_to_send() == encode_netstring(b"Zdisk full (#4.3.1)")
    assert core.next_event() is CLOSED
    with pytest.raises(QmtpUsageError):
        core.answer(Response(Status.ACCEPTED, "ok"))
