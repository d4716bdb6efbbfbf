"""QmtpServer: the sans-I/O QMTP server core (cr.yp.to/proto/qmtp.txt).

A connection carries any number of packages, each three netstrings: the
encoded message (its first octet names the end-of-line convention,
lineends.py), the sender, and a netstring holding one netstring per
recipient. The core streams the message out as CRLF mail, hands over the
sender and each recipient, and at the package's last octet asks for the
answer (``PackageEnd``); ``answer(responses)`` then queues one K/Z/D
netstring per recipient, in the order the client gave them (QMTP §2:
never reordered, not even for duplicates, and not one octet of them
before the package is complete).

The client may send the next package without waiting (QMTP §2): the core
keeps reading it from its buffer once the answer is given, so responses
leave in order and pipelining is free. The core answers on its own for a
message over ``max_message_size`` (D for every recipient, after reading
the package to its end as QMTP requires), an over-long sender (D for
all), an over-long recipient (D for that one) and recipients beyond
``max_recipients`` (Z for each: come back later).

Usage::

    core = QmtpServer(QmtpLimits(...))
    core.receive_data(chunk)             # b"" at end of file
    ev = core.next_event()               # Event | NEED_DATA | AWAITING_REPLY | CLOSED
    core.answer([Response(Status.ACCEPTED, "ok ..."), ...])   # after PackageEnd
    out = core.data_to_send()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from mailyard.proto.qmtp.engine import Engine, Step
from mailyard.proto.qmtp.errors import QmtpProtocolError, QmtpUsageError
from mailyard.proto.qmtp.events import (
    TOO_MANY_RECIPIENTS_LATER,
    PackageEnd,
    PackageRefused,
    Recipient,
    Refusal,
    Response,
    Sender,
)
from mailyard.proto.qmtp.lineends import LineEnding
from mailyard.proto.qmtp.settings import QmtpLimits

__all__ = ["QmtpServer"]

_RECIPIENT_TOO_LONG: Final = Refusal.RECIPIENT_TOO_LONG.response


class QmtpServer(Engine):
    """One QMTP connection, server side; see the module doc."""

    _first = Step.MESSAGE_LENGTH
    _after_sender = Step.LIST_LENGTH
    _after_recipients = Step.LIST_COMMA

    def __init__(self, limits: QmtpLimits) -> None:
        super().__init__(limits)
        self._handlers |= {
            Step.MESSAGE_LENGTH: self._message_length,
            Step.MESSAGE_MARKER: self._message_marker,
            Step.LIST_LENGTH: self._list_length,
            Step.LIST_COMMA: self._list_comma,
        }

    def answer(self, responses: Sequence[Response]) -> None:
        """One response per ``Recipient`` event of the package, in their order."""
        if self._step is not Step.AWAITING:
            raise QmtpUsageError("no package awaits an answer")
        package = self.package
        if len(responses) != package.asked:
            raise QmtpUsageError(f"{package.asked} responses needed, {len(responses)} given")
        if not all(isinstance(r, Response) for r in responses):
            raise TypeError("responses must be Response values")
        given = iter(responses)
        for slot in package.slots:
            self._out += (next(given) if slot is None else slot).render()
        self._out += TOO_MANY_RECIPIENTS_LATER.render() * package.overflow
        self._next_package()

    # -- steps -------------------------------------------------------------------------

    def _message_length(self) -> bool:
        length = self._read_length(self.limits.max_discard_size)
        if length is None:
            return False
        if length == 0:
            # QMTP §4: an encoded message starts with its convention octet.
            raise QmtpProtocolError("empty message: no end-of-line convention")
        self.package.size = length
        self._step = Step.MESSAGE_MARKER
        return True

    def _message_marker(self) -> bool:
        octet = self._in.take(1)
        if not octet:
            return False
        ending = LineEnding.from_marker(octet[0])
        size = self.package.size
        self._start_message(size, size - 1, ending)
        return True

    def _list_length(self) -> bool:
        length = self._read_length(self.limits.max_discard_size)
        if length is None:
            return False
        self._in.frame = length
        self._step = Step.RCPT_LENGTH
        return True

    def _list_comma(self) -> bool:
        if not self._comma(Step.AWAITING):
            return False
        package = self.package
        if package.refusal is not None:
            self._out += package.refusal.response.render() * package.count
            self._events.append(PackageRefused(package.refusal, package.size, package.count))
            self._next_package()
        else:
            self._events.append(PackageEnd(package.asked))
        return True

    # -- what QMTP decides -------------------------------------------------------------

    def _sender(self, address: bytes) -> None:
        if self.package.refusal is None:
            self._events.append(Sender(address))

    def _recipient(self, address: bytes | None) -> None:
        package = self.package
        if package.refusal is not None:
            return  # everyone gets the package's refusal
        if package.count > self.limits.max_recipients:
            package.overflow += 1
        elif address is None:
            package.slots.append(_RECIPIENT_TOO_LONG)
        else:
            package.slots.append(None)
            package.asked += 1
            self._events.append(Recipient(address))
