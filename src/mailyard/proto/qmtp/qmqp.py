"""QmqpServer: the sans-I/O QMQP server core (cr.yp.to/proto/qmqp.html).

QMQP hands a message to a central queue: ONE request per connection, one
netstring holding the message netstring (lines joined by LF, no marker),
the sender netstring and one netstring per recipient (one or more). The
server answers once, a single K/Z/D netstring, only after the request's
last octet, and then the session is over.

Events are QMTP's (events.py); ``answer(response)`` gives the one answer.
With a single answer for every recipient, the core refuses the whole
request itself (``PackageRefused``) when the message is over the size
limit, an address is over-long, there are too many recipients or none.
After the answer (or a refusal) the core is ``CLOSED``: anything the
client sends after its request is ignored.
"""

from __future__ import annotations

from mailyard.proto.qmtp.engine import Engine, Step
from mailyard.proto.qmtp.errors import QmtpUsageError
from mailyard.proto.qmtp.events import (
    PackageEnd,
    PackageRefused,
    Recipient,
    Refusal,
    Response,
    Sender,
)
from mailyard.proto.qmtp.lineends import LineEnding
from mailyard.proto.qmtp.settings import QmtpLimits

__all__ = ["QmqpServer"]


class QmqpServer(Engine):
    """One QMQP connection, server side; see the module doc."""

    _first = Step.REQUEST_LENGTH
    _after_sender = Step.RCPT_LENGTH
    _after_recipients = Step.REQUEST_COMMA

    def __init__(self, limits: QmtpLimits) -> None:
        super().__init__(limits)
        self._handlers |= {
            Step.REQUEST_LENGTH: self._request_length,
            Step.MESSAGE_LENGTH: self._message_length,
            Step.REQUEST_COMMA: self._request_comma,
        }

    def answer(self, response: Response) -> None:
        """The one answer to the request; the session ends with it."""
        if self._step is not Step.AWAITING:
            raise QmtpUsageError("no request awaits an answer")
        if not isinstance(response, Response):
            raise TypeError("response must be a Response")
        self._out += response.render()
        self._close()

    # -- steps -------------------------------------------------------------------------

    def _request_length(self) -> bool:
        length = self._read_length(self.limits.request_ceiling)
        if length is None:
            return False
        self._in.frame = length
        self._step = Step.MESSAGE_LENGTH
        return True

    def _message_length(self) -> bool:
        length = self._read_length(self.limits.max_discard_size)
        if length is None:
            return False
        self._start_message(length, length, LineEnding.LF)
        return True

    def _request_comma(self) -> bool:
        if not self._comma(Step.AWAITING):
            return False
        package = self.package
        if package.refusal is None and package.count == 0:
            package.refusal = Refusal.NO_RECIPIENTS
        if package.refusal is not None:
            self._out += package.refusal.response.render()
            self._events.append(PackageRefused(package.refusal, package.size, package.count))
            self._close()
        else:
            self._events.append(PackageEnd(package.asked))
        return True

    # -- what QMQP decides -------------------------------------------------------------

    def _sender(self, address: bytes) -> None:
        if self.package.refusal is None:
            self._events.append(Sender(address))

    def _recipient(self, address: bytes | None) -> None:
        package = self.package
        if package.refusal is not None:
            return
        if package.count > self.limits.max_recipients:
            self._refuse(Refusal.TOO_MANY_RECIPIENTS)
        elif address is None:
            self._refuse(Refusal.RECIPIENT_TOO_LONG)
        else:
            package.asked += 1
            self._events.append(Recipient(address))
