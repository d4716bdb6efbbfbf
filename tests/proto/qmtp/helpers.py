"""Drive a QMTP/QMQP core with bytes cut in any way; collect what it does."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from mailyard.proto.qmtp import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    Event,
    MessageChunk,
    MessageStart,
    PackageEnd,
    QmqpServer,
    QmtpLimits,
    QmtpProtocolError,
    QmtpServer,
    Recipient,
    Response,
    Sender,
    Status,
    split_netstrings,
)

Answer = Callable[[PackageEnd, "Run"], Sequence[Response]]


def accept_all(end: PackageEnd, run: Run) -> list[Response]:
    return [Response(Status.ACCEPTED, f"ok {n}") for n in range(end.recipients)]


@dataclass
class Run:
    """What a core produced: events (chunks merged per message), output, error."""

    events: list[Event] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)  # each message's CRLF content
    output: bytes = b""
    error: QmtpProtocolError | None = None
    closed: bool = False

    @property
    def responses(self) -> list[bytes]:
        found, rest = split_netstrings(self.output)
        assert rest == b""
        return found

    def kinds(self) -> list[str]:
        return [type(ev).__name__ for ev in self.events]


def _drain(core: QmtpServer | QmqpServer, run: Run, answer: Answer) -> bool:
    """Pull events until the core needs data; False once it is over."""
    while True:
        try:
            ev = core.next_event()
        except QmtpProtocolError as exc:
            run.error = exc
            assert core.next_event() is CLOSED  # closed for good after the error
            return False
        if ev is NEED_DATA:
            return True
        if ev is CLOSED:
            run.closed = True
            return False
        assert ev is not AWAITING_REPLY, "every PackageEnd is answered at once"
        if isinstance(ev, MessageChunk):
            run.messages[-1] += ev.data
            continue
        run.events.append(ev)
        if isinstance(ev, MessageStart):
            run.messages.append(b"")
        elif isinstance(ev, PackageEnd):
            responses = list(answer(ev, run))
            if isinstance(core, QmqpServer):
                core.answer(responses[0])
            else:
                core.answer(responses)


def drive(core: QmtpServer | QmqpServer, pieces: Iterable[bytes], *, eof: bool = True,
          answer: Answer = accept_all) -> Run:
    run = Run()
    going = _drain(core, run, answer)
    for piece in pieces:
        if not going:
            break
        core.receive_data(piece)
        run.output += core.data_to_send()
        going = _drain(core, run, answer)
    if going and eof:
        core.receive_data(b"")
        _drain(core, run, answer)
    run.output += core.data_to_send()
    return run


def qmtp(limits: QmtpLimits | None = None) -> QmtpServer:
    return QmtpServer(limits or QmtpLimits())


def qmqp(limits: QmtpLimits | None = None) -> QmqpServer:
    return QmqpServer(limits or QmtpLimits())


def cut(data: bytes, points: Iterable[int]) -> list[bytes]:
    edges = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def envelope_of(run: Run) -> list[tuple[bytes, list[bytes]]]:
    """(sender, recipients) per package, from the events."""
    found: list[tuple[bytes, list[bytes]]] = []
    for ev in run.events:
        if isinstance(ev, Sender):
            found.append((ev.address, []))
        elif isinstance(ev, Recipient):
            found[-1][1].append(ev.address)
    return found
