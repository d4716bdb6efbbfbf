"""Sans-I/O SMTP server core (RFC 5321, 1870, 2034, 2920, 3030, 3207, 3463, 4954, 6152, 6531).

See ``server.SmtpServer`` for the theory of operation and
docs/design/interfaces.md for the contract with the adapter.
"""

from mailyard.proto.smtp.events import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    Authenticate,
    ConnectionClosed,
    DataAborted,
    DataChunk,
    DataEnd,
    DataStart,
    Event,
    Hello,
    MailFrom,
    RcptTo,
    Reset,
    Sentinel,
    StartTls,
)
from mailyard.proto.smtp.replies import Reply
from mailyard.proto.smtp.server import SmtpServer, SmtpUsageError
from mailyard.proto.smtp.settings import Features, SmtpLimits, SmtpServerConfig
from mailyard.proto.smtp.states import Phase, State

__all__ = [
    "AWAITING_REPLY",
    "CLOSED",
    "NEED_DATA",
    "Authenticate",
    "ConnectionClosed",
    "DataAborted",
    "DataChunk",
    "DataEnd",
    "DataStart",
    "Event",
    "Features",
    "Hello",
    "MailFrom",
    "Phase",
    "RcptTo",
    "Reply",
    "Reset",
    "Sentinel",
    "SmtpLimits",
    "SmtpServer",
    "SmtpServerConfig",
    "SmtpUsageError",
    "StartTls",
    "State",
]
