"""QmtpServer (cr.yp.to/proto/qmtp.txt): packages in, K/Z/D netstrings out.

Every case is fed whole and byte by byte (the framing must not depend on
how the bytes arrive); test_props.py adds random cuts and garbage.
"""

from __future__ import annotations

import pytest

from mailyard.proto.qmtp import (
    CLOSED,
    NEED_DATA,
    ConnectionClosed,
    LineEnding,
    MessageChunk,
    MessageStart,
    PackageEnd,
    PackageRefused,
    QmtpLimits,
    QmtpProtocolError,
    QmtpServer,
    QmtpUsageError,
    Recipient,
    Refusal,
    Response,
    Sender,
    Status,
    encode_netstring,
    encode_qmtp_package,
)
from mailyard.proto.qmtp.engine import CHUNK
from tests.proto.qmtp.helpers import Run, drive, envelope_of, qmtp
from tests.proto.splitting import bytewise, whole

MESSAGE = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
FEEDS = [whole, bytewise]
SMALL = QmtpLimits(max_message_size=100, max_discard_size=300, max_address_length=20,
                   max_recipients=3)


def package(*recipients: bytes, message: bytes = MESSAGE, sender: bytes = b"a@example.org",
            ending: LineEnding = LineEnding.CRLF) -> bytes:
    return encode_qmtp_package(message, sender, recipients, line_ending=ending)


def k_k_d(end: PackageEnd, run: Run) -> list[Response]:
    return [Response(Status.ACCEPTED, "ok"), Response(Status.ACCEPTED, "ok"),
            Response(Status.PERMANENT, "no such user (#5.1.1)")][: end.recipients]


@pytest.mark.parametrize("feed", FEEDS)
def test_one_package_answered_per_recipient_in_order(feed: object) -> None:
    data = package(b"x@example.test", b"y@example.test", b"nobody@example.test")
    run = drive(qmtp(), feed(data), answer=k_k_d)  # type: ignore[operator]
    assert run.kinds() == ["MessageStart", "Sender", "Recipient", "Recipient", "Recipient",
                           "PackageEnd", "ConnectionClosed"]
    assert run.events[0] == MessageStart(len(MESSAGE) + 1, LineEnding.CRLF)
    assert run.messages == [MESSAGE]
    assert envelope_of(run) == [(b"a@example.org",
                                 [b"x@example.test", b"y@example.test", b"nobody@example.test"])]
    assert run.responses == [b"Kok", b"Kok", b"Dno such user (#5.1.1)"]
    assert run.events[-1] == ConnectionClosed(mid_package=False)


@pytest.mark.parametrize("feed", FEEDS)
def test_lf_convention_is_stored_as_crlf(feed: object) -> None:
    lf = encode_netstring(b"\nSubject: lf\n\nline\n") + encode_netstring(b"") + \
        encode_netstring(encode_netstring(b"x@example.test"))
    run = drive(qmtp(), feed(lf))  # type: ignore[operator]
    assert run.messages == [b"Subject: lf\r\n\r\nline\r\n"]
    assert envelope_of(run) == [(b"", [b"x@example.test"])]  # the null sender


def test_several_packages_pipelined_are_answered_in_order() -> None:
    data = (package(b"one@example.test") + package(b"two@example.test", b"three@example.test",
                                                   ending=LineEnding.LF)
            + package(b"four@example.test"))
    seen: list[list[bytes]] = []

    def answer(end: PackageEnd, run: Run) -> list[Response]:
        rcpts = envelope_of(run)[-1][1]
        seen.append(rcpts)
        return [Response(Status.ACCEPTED, r.decode()) for r in rcpts]

    run = drive(qmtp(), [data], answer=answer)
    assert run.messages == [MESSAGE] * 3
    assert run.responses == [b"Kone@example.test", b"Ktwo@example.test",
                             b"Kthree@example.test", b"Kfour@example.test"]


def test_nothing_is_answered_before_the_last_octet() -> None:
    # QMTP §2: not one octet of the responses before the package is complete.
    data = package(b"x@example.test")
    core = qmtp()
    run = drive(core, bytewise(data[:-1]), eof=False)
    assert run.output == b""
    assert core.next_event() is NEED_DATA
    core.receive_data(data[-1:])
    assert isinstance(core.next_event(), PackageEnd)
    core.answer([Response(Status.ACCEPTED, "ok")])
    assert core.data_to_send() == b"3:Kok,"


def test_end_of_file_mid_package_throws_it_away() -> None:
    data = package(b"x@example.test")
    for at in (1, 5, len(data) - 1):
        run = drive(qmtp(), [data[:at]])
        assert run.events[-1] == ConnectionClosed(mid_package=True)
        assert not any(isinstance(ev, PackageEnd) for ev in run.events)
        assert run.output == b""


def test_end_of_file_after_a_complete_package_still_answers_it() -> None:
    core = qmtp()
    core.receive_data(package(b"x@example.test"))
    core.receive_data(b"")
    events = []
    while (ev := core.next_event()) is not CLOSED:
        events.append(ev)
        if isinstance(ev, PackageEnd):
            core.answer([Response(Status.ACCEPTED, "ok")])
    assert events[-1] == ConnectionClosed(mid_package=False)
    assert core.data_to_send() == b"3:Kok,"


def test_an_empty_recipient_list_needs_no_answer() -> None:
    run = drive(qmtp(), [package()])
    assert PackageEnd(0) in run.events
    assert run.output == b""


@pytest.mark.parametrize("feed", FEEDS)
def test_message_at_the_limit_is_streamed_one_over_is_refused(feed: object) -> None:
    fits = b"x" * (SMALL.max_message_size - 1)  # + the marker octet = the limit
    over = fits + b"y"
    data = package(b"a@b.c", message=fits) + package(b"a@b.c", b"d@e.f", message=over) \
        + package(b"g@h.i", message=fits)
    run = drive(QmtpServer(SMALL), feed(data))  # type: ignore[operator]
    assert run.messages == [fits, fits]
    refused = [ev for ev in run.events if isinstance(ev, PackageRefused)]
    assert refused == [PackageRefused(Refusal.MESSAGE_TOO_LARGE, len(over) + 1, 2)]
    # qmail-qmtpd's answer: D for every recipient, after reading to the end.
    assert run.responses == [b"Kok 0", b"Dmessage too large (#5.3.4)",
                             b"Dmessage too large (#5.3.4)", b"Kok 0"]


def test_over_the_discard_ceiling_closes_the_connection() -> None:
    data = b"%d:" % (SMALL.max_discard_size + 1) + b"\r"
    run = drive(QmtpServer(SMALL), [data])
    assert run.error is not None
    assert run.output == b""


@pytest.mark.parametrize("feed", FEEDS)
def test_over_long_sender_refuses_the_package(feed: object) -> None:
    data = package(b"x@example.test", b"y@example.test", sender=b"s" * 21)
    run = drive(QmtpServer(SMALL), feed(data))  # type: ignore[operator]
    assert isinstance(run.events[0], MessageStart)  # the message came first
    assert not any(isinstance(ev, (Sender, Recipient)) for ev in run.events)
    assert PackageRefused(Refusal.SENDER_TOO_LONG, len(MESSAGE) + 1, 2) in run.events
    assert run.responses == [b"Dsender address too long (#5.1.7)"] * 2


@pytest.mark.parametrize("feed", FEEDS)
def test_over_long_recipient_refused_alone(feed: object) -> None:
    data = package(b"x@example.test", b"r" * 21, b"y@example.test")
    run = drive(QmtpServer(SMALL), feed(data))  # type: ignore[operator]
    assert envelope_of(run) == [(b"a@example.org", [b"x@example.test", b"y@example.test"])]
    assert run.responses == [b"Kok 0", b"Drecipient address too long (#5.1.3)", b"Kok 1"]


def test_recipients_beyond_the_limit_are_told_to_come_back() -> None:
    rcpts = [b"r%d@example.test" % n for n in range(5)]
    run = drive(QmtpServer(SMALL), [package(*rcpts)])
    assert envelope_of(run)[0][1] == rcpts[:3]
    assert run.responses[:3] == [b"Kok 0", b"Kok 1", b"Kok 2"]
    assert run.responses[3:] == [b"Ztoo many recipients; send the rest later (#4.5.3)"] * 2


def test_message_chunks_are_bounded() -> None:
    body = b"x" * (3 * CHUNK + 5)
    core = QmtpServer(QmtpLimits(max_message_size=10 * CHUNK, max_discard_size=10 * CHUNK))
    core.receive_data(package(b"x@example.test", message=body, ending=LineEnding.LF))
    sizes = []
    while not isinstance(ev := core.next_event(), PackageEnd):
        if isinstance(ev, MessageChunk):
            sizes.append(len(ev.data))
    assert sum(sizes) == len(body) and max(sizes) <= CHUNK


@pytest.mark.parametrize("garbage", [
    b"0:,0:,0:,",  # an empty message has no end-of-line marker
    b"5:Xabcd,0:,0:,",  # neither CR nor LF first
    b"05:\rabcd,0:,0:,",  # a leading zero
    b"5:\rabcd;0:,0:,",  # no comma
    b"5\rabcd,",  # no colon
    b"abc",  # not a length at all
    b"2:\ra,0:,5:9:abcdefghi,,",  # a recipient running past its list
    b"2:\ra,0:,3:0:,x",  # no comma after a recipient
    b"2:\ra,0:,3:0:,,GET / HTTP/1.0\r\n",  # a second "package" that is garbage
])
@pytest.mark.parametrize("feed", FEEDS)
def test_garbage_is_a_protocol_error(garbage: bytes, feed: object) -> None:
    core = qmtp()
    run = drive(core, feed(garbage))  # type: ignore[operator]
    assert isinstance(run.error, QmtpProtocolError)
    assert core.next_event() is CLOSED
    core.receive_data(b"more")  # ignored once closed
    assert core.next_event() is CLOSED


def test_answers_already_given_survive_a_later_protocol_error() -> None:
    run = drive(qmtp(), [package(b"x@example.test") + b"garbage"])
    assert run.error is not None
    assert run.responses == [b"Kok 0"]  # the adapter flushes them before closing


def test_answer_misuse_is_a_usage_error() -> None:
    core = qmtp()
    with pytest.raises(QmtpUsageError):
        core.answer([])
    core.receive_data(package(b"x@example.test"))
    while not isinstance(core.next_event(), PackageEnd):
        pass
    with pytest.raises(QmtpUsageError):
        core.answer([])
    with pytest.raises(TypeError):
        core.answer(["K"])  # type: ignore[list-item]
    core.answer([Response(Status.TEMPORARY, "later")])
    assert core.data_to_send() == b"6:Zlater,"


@pytest.mark.parametrize("text", [" reserved", "two\r\nlines", "tab\there"])
def test_response_text_must_fit_one_netstring(text: str) -> None:
    with pytest.raises(ValueError):
        Response(Status.ACCEPTED, text)


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        QmtpLimits(max_message_size=10, max_discard_size=9)
    with pytest.raises(ValueError):
        QmtpLimits(max_recipients=0)
