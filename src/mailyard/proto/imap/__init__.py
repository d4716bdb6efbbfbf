"""Sans-I/O IMAP4rev1 / IMAP4rev2 server core (RFC 3501, RFC 9051 and the
extensions listed in ``settings.ImapFeatures``).

See ``server.ImapServer`` for the theory of operation and
docs/design/imap-core.md for the contract with the adapter. Commands,
responses and values live in their modules, meant to be imported as
namespaces (``from mailyard.proto.imap import commands, responses``).
"""

from mailyard.proto.imap import commands, responses, values
from mailyard.proto.imap.errors import ImapUsageError, Status
from mailyard.proto.imap.events import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    AppendData,
    AppendEnd,
    Command,
    CommandAborted,
    ConnectionClosed,
    Event,
    IdleDone,
    Sentinel,
)
from mailyard.proto.imap.sequence import SequenceSet
from mailyard.proto.imap.server import ImapServer
from mailyard.proto.imap.settings import ImapFeatures, ImapLimits, ImapServerConfig
from mailyard.proto.imap.states import State
from mailyard.proto.imap.utf7 import decode_mailbox, encode_mailbox

__all__ = [
    "AWAITING_REPLY",
    "CLOSED",
    "NEED_DATA",
    "AppendData",
    "AppendEnd",
    "Command",
    "CommandAborted",
    "ConnectionClosed",
    "Event",
    "IdleDone",
    "ImapFeatures",
    "ImapLimits",
    "ImapServer",
    "ImapServerConfig",
    "ImapUsageError",
    "Sentinel",
    "SequenceSet",
    "State",
    "Status",
    "commands",
    "decode_mailbox",
    "encode_mailbox",
    "responses",
    "values",
]
