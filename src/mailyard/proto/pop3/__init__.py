"""Sans-I/O POP3 server core (RFC 1939, 2449, 2595, 3206, 5034).

See ``server.Pop3Server`` for the theory of operation and
docs/design/interfaces.md for the contract with the adapter.
"""

from mailyard.proto.pop3.drop import DropEntry
from mailyard.proto.pop3.events import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    Commit,
    ConnectionClosed,
    Event,
    Login,
    Retrieve,
    Sentinel,
    StartTls,
)
from mailyard.proto.pop3.server import Pop3Server, Pop3UsageError
from mailyard.proto.pop3.settings import Pop3Features, Pop3Limits, Pop3ServerConfig
from mailyard.proto.pop3.states import State

__all__ = [
    "AWAITING_REPLY",
    "CLOSED",
    "NEED_DATA",
    "Commit",
    "ConnectionClosed",
    "DropEntry",
    "Event",
    "Login",
    "Pop3Features",
    "Pop3Limits",
    "Pop3Server",
    "Pop3ServerConfig",
    "Pop3UsageError",
    "Retrieve",
    "Sentinel",
    "StartTls",
    "State",
]
