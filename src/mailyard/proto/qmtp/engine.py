"""The reading machinery the QMTP and QMQP cores share (h11's pull model).

Both protocols are netstrings all the way down: a message, a sender and
recipients, each ``<len>:<bytes>,``, with QMTP's recipients and QMQP's whole
request wrapped in one more netstring. ``Engine`` owns the receive buffer
and walks a table of ``Step``\\ s; each step handler consumes what it can
and says whether it made progress. The subclasses (server.py, qmqp.py) give
the table and what happens at the ends of the message, the sender, each
recipient and the package.

Bounded memory: a message is handed out in chunks of at most ``CHUNK``
input octets as they arrive, addresses are collected only up to
``max_address_length``, and anything over a limit is skipped, never kept.
An enclosing netstring is a *frame*: reads inside it stop at its end, so an
inner netstring that would run past it is a protocol error, seen at once.
"""

from __future__ import annotations

import abc
import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from mailyard.proto.buffer import LineBuffer
from mailyard.proto.qmtp.errors import NetstringError, QmtpProtocolError
from mailyard.proto.qmtp.events import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    ConnectionClosed,
    Event,
    MessageChunk,
    MessageStart,
    Refusal,
    Response,
    Sentinel,
)
from mailyard.proto.qmtp.lineends import LineEndConverter, LineEnding
from mailyard.proto.qmtp.netstring import LengthReader
from mailyard.proto.qmtp.settings import QmtpLimits

__all__ = ["CHUNK", "Engine", "Package", "Step"]

CHUNK: Final = 65536  # input octets per MessageChunk at most
_COMMA: Final = b","


class Step(enum.Enum):
    """Where the reader is inside a package (QMTP) or request (QMQP)."""

    REQUEST_LENGTH = "request length"  # QMQP: the netstring around everything
    MESSAGE_LENGTH = "message length"
    MESSAGE_MARKER = "message marker"  # QMTP: the end-of-line convention
    MESSAGE_BODY = "message"
    MESSAGE_COMMA = "message comma"
    SENDER_LENGTH = "sender length"
    SENDER_BODY = "sender"
    SENDER_COMMA = "sender comma"
    LIST_LENGTH = "recipient list length"  # QMTP: the netstring around the recipients
    RCPT_LENGTH = "recipient length"
    RCPT_BODY = "recipient"
    RCPT_COMMA = "recipient comma"
    LIST_COMMA = "recipient list comma"
    REQUEST_COMMA = "request comma"
    AWAITING = "awaiting the answer"
    DONE = "done"  # QMQP after its answer; any core after EOF or a protocol error


@dataclass
class Package:
    """Bookkeeping of the package being read."""

    size: int = 0  # declared length of the encoded message
    refusal: Refusal | None = None  # the core refuses the whole package
    count: int = 0  # recipient netstrings read
    asked: int = 0  # Recipient events emitted: the adapter answers these
    # QMTP, per recipient within the limit: None = the adapter's answer, in
    # order; a Response = the core's own (an over-long address).
    slots: list[Response | None] = field(default_factory=list)
    overflow: int = 0  # QMTP: recipients beyond the limit


class _Input:
    """The receive buffer, and the frame (enclosing netstring) reads stay in."""

    def __init__(self) -> None:
        self.buffer = LineBuffer()
        self.eof = False
        self.frame: int | None = None  # octets left in the enclosing netstring

    def take(self, count: int) -> bytes:
        if self.frame is not None:
            count = min(count, self.frame)
        data = self.buffer.take(count)
        if self.frame is not None:
            self.frame -= len(data)
        return data


class Engine(abc.ABC):
    """Base of QmtpServer and QmqpServer; see the module doc."""

    _first: Step  # where a package starts
    _after_sender: Step  # QMTP: the recipient list; QMQP: the first recipient
    _after_recipients: Step  # the comma that closes the frame

    def __init__(self, limits: QmtpLimits) -> None:
        self.limits = limits
        self._in = _Input()
        self._events: deque[Event] = deque()
        self._out = bytearray()
        self._step = self._first
        self._length: LengthReader | None = None
        self._remaining = 0  # octets left of the netstring being read
        self._skip = False  # that netstring is read and thrown away
        self._field = bytearray()  # the address being read
        self._converter = LineEndConverter(LineEnding.LF)
        self.package = Package()
        self._handlers: dict[Step, Callable[[], bool]] = {
            Step.MESSAGE_BODY: self._message_body,
            Step.MESSAGE_COMMA: lambda: self._comma(Step.SENDER_LENGTH),
            Step.SENDER_LENGTH: lambda: self._field_length(Step.SENDER_BODY),
            Step.SENDER_BODY: lambda: self._field_body(Step.SENDER_COMMA),
            Step.SENDER_COMMA: self._sender_comma,
            Step.RCPT_LENGTH: self._rcpt_length,
            Step.RCPT_BODY: lambda: self._field_body(Step.RCPT_COMMA),
            Step.RCPT_COMMA: self._rcpt_comma,
        }

    # -- the adapter's side ----------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed received octets; ``b""`` means end of file."""
        if self._step is Step.DONE:
            return  # nothing more is read once the session is over
        if not data:
            self._in.eof = True
            return
        self._in.buffer.append(data)

    def next_event(self) -> Event | Sentinel:
        """The next event, or a sentinel; raises QmtpProtocolError once on bad framing."""
        if not self._events and self._step not in (Step.AWAITING, Step.DONE):
            try:
                while not self._events and self._step not in (Step.AWAITING, Step.DONE):
                    if not self._handlers[self._step]():
                        break
            except QmtpProtocolError:
                self._close()
                raise
        if self._events:
            return self._events.popleft()
        if self._step is Step.AWAITING:
            return AWAITING_REPLY
        if self._step is Step.DONE:
            return CLOSED
        if self._in.eof:
            return self._end_of_file()
        return NEED_DATA

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    @property
    def closed(self) -> bool:
        return self._step is Step.DONE

    # -- reading primitives ----------------------------------------------------------

    def _read_length(self, ceiling: int) -> int | None:
        """The next netstring's declared length, or None until its colon arrives."""
        if self._length is None:
            self._length = LengthReader(ceiling)
        while True:
            if self._in.frame == 0:
                raise NetstringError("netstring runs past the one around it")
            octet = self._in.take(1)
            if not octet:
                return None
            length = self._length.feed(octet[0])
            if length is not None:
                self._length = None
                if self._in.frame is not None and length >= self._in.frame:
                    raise NetstringError("netstring runs past the one around it")
                return length

    def _comma(self, then: Step) -> bool:
        octet = self._in.take(1)
        if not octet:
            if self._in.frame == 0:
                raise NetstringError("netstring runs past the one around it")
            return False
        if octet != _COMMA:
            raise NetstringError("netstring not ended by a comma")
        self._step = then
        return True

    def _start_message(self, size: int, body: int, ending: LineEnding) -> None:
        """``size``: the declared length; ``body``: the octets of it still to read."""
        self.package.size = size
        self._remaining = body
        self._skip = size > self.limits.max_message_size
        if self._skip:
            self._refuse(Refusal.MESSAGE_TOO_LARGE)
        else:
            self._converter = LineEndConverter(ending)
            self._events.append(MessageStart(size, ending))
        self._step = Step.MESSAGE_BODY

    def _message_body(self) -> bool:
        if self._remaining == 0:
            self._step = Step.MESSAGE_COMMA
            return True
        data = self._in.take(min(self._remaining, CHUNK))
        if not data:
            return False
        self._remaining -= len(data)
        if not self._skip:
            self._events.append(MessageChunk(self._converter.feed(data)))
        return True

    def _field_length(self, then: Step, skip: bool = False) -> bool:
        """An address netstring's length; ``skip`` throws its bytes away."""
        length = self._read_length(self.limits.max_discard_size)
        if length is None:
            return False
        self._remaining = length
        self._skip = skip or length > self.limits.max_address_length
        self._field.clear()
        self._step = then
        return True

    def _field_body(self, then: Step) -> bool:
        while self._remaining:
            data = self._in.take(self._remaining)
            if not data:
                return False
            self._remaining -= len(data)
            if not self._skip:
                self._field += data
        self._step = then
        return True

    def _sender_comma(self) -> bool:
        if not self._comma(self._after_sender):
            return False
        if self._skip:
            self._refuse(Refusal.SENDER_TOO_LONG)
        else:
            self._sender(bytes(self._field))
        return True

    def _rcpt_length(self) -> bool:
        if self._in.frame == 0:
            self._in.frame = None  # the closing comma is outside the frame
            self._step = self._after_recipients
            return True
        full = self.package.count >= self.limits.max_recipients
        return self._field_length(Step.RCPT_BODY, skip=full or self.package.refusal is not None)

    def _rcpt_comma(self) -> bool:
        if not self._comma(Step.RCPT_LENGTH):
            return False
        self.package.count += 1
        self._recipient(None if self._skip else bytes(self._field))
        return True

    def _refuse(self, reason: Refusal) -> None:
        if self.package.refusal is None:
            self.package.refusal = reason

    # -- what the protocols decide -------------------------------------------------------

    @abc.abstractmethod
    def _sender(self, address: bytes) -> None:
        """The sender was read (and was not too long)."""

    @abc.abstractmethod
    def _recipient(self, address: bytes | None) -> None:
        """One recipient read; None when it was skipped (too long, too many, refused)."""

    # -- endings ---------------------------------------------------------------------

    def _next_package(self) -> None:
        self.package = Package()
        self._step = self._first

    def _close(self) -> None:
        self._step = Step.DONE
        self._in.buffer.clear()
        self._length = None

    def _end_of_file(self) -> ConnectionClosed:
        between = self._step is self._first and not (self._length and self._length.started)
        self._close()
        return ConnectionClosed(mid_package=not between)
