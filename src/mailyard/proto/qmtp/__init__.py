"""Sans-I/O QMTP and QMQP server cores (qmail-qmtpd's and qmail-qmqpd's roles).

``QmtpServer`` (server.py) and ``QmqpServer`` (qmqp.py) share the netstring
engine (engine.py) and the events (events.py); ``encode_*`` build what a
client sends. The adapter is server/qmtpd.py; server.py's module doc is the
contract (the events to expect, when and how to answer).
"""

from mailyard.proto.qmtp.encode import encode_qmqp_request, encode_qmtp_package
from mailyard.proto.qmtp.errors import NetstringError, QmtpProtocolError, QmtpUsageError
from mailyard.proto.qmtp.events import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    ConnectionClosed,
    Event,
    MessageChunk,
    MessageStart,
    PackageEnd,
    PackageRefused,
    Recipient,
    Refusal,
    Response,
    Sender,
    Sentinel,
    Status,
)
from mailyard.proto.qmtp.lineends import LineEndConverter, LineEnding
from mailyard.proto.qmtp.netstring import LengthReader, encode_netstring, split_netstrings
from mailyard.proto.qmtp.qmqp import QmqpServer
from mailyard.proto.qmtp.server import QmtpServer
from mailyard.proto.qmtp.settings import QmtpLimits

__all__ = [
    "AWAITING_REPLY",
    "CLOSED",
    "NEED_DATA",
    "ConnectionClosed",
    "Event",
    "LengthReader",
    "LineEndConverter",
    "LineEnding",
    "MessageChunk",
    "MessageStart",
    "NetstringError",
    "PackageEnd",
    "PackageRefused",
    "QmqpServer",
    "QmtpLimits",
    "QmtpProtocolError",
    "QmtpServer",
    "QmtpUsageError",
    "Recipient",
    "Refusal",
    "Response",
    "Sender",
    "Sentinel",
    "Status",
    "encode_netstring",
    "encode_qmqp_request",
    "encode_qmtp_package",
    "split_netstrings",
]
