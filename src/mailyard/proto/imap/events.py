"""Events the IMAP server core hands to its adapter, and the sentinels.

``Command`` carries every command that needs the directory or the store;
the adapter answers it with ``send(*untagged)`` and ``finish(status, …)``
(APPEND: first ``accept_append()`` or a refusing ``finish``). ``AppendEnd``
and ``IdleDone`` also wait for ``finish``. ``AppendData``,
``CommandAborted`` and ``ConnectionClosed`` are notifications.

Sentinels (proto/sentinels.py) returned by ``next_event()`` instead:
``NEED_DATA`` (write ``data_to_send()``, feed more bytes), ``AWAITING_REPLY``
(an event still needs its answer), ``CLOSED`` (write, then close).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from mailyard.proto.imap.commands import CommandBody
from mailyard.proto.sentinels import AWAITING_REPLY, CLOSED, NEED_DATA, Sentinel

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
    "Sentinel",
]


@dataclass(frozen=True, slots=True)
class Command:
    """A command for the adapter.

    ``expunge_allowed`` is False while EXPUNGE (and VANISHED) responses are
    forbidden: during FETCH, STORE and SEARCH (and SORT/THREAD) by sequence
    number (RFC 9051 §7.5.1, RFC 3501 §7.4.1); the core refuses them then.
    ``condstore_enabled`` is True when this command turned CONDSTORE on while
    a mailbox is selected: RFC 7162 §3.1 wants the mailbox's HIGHESTMODSEQ
    (``[HIGHESTMODSEQ n]`` or ``[NOMODSEQ]``) sent with its answer.
    """

    tag: str
    body: CommandBody
    expunge_allowed: bool = True
    condstore_enabled: bool = False


@dataclass(frozen=True, slots=True)
class AppendData:
    """The next octets of the accepted APPEND message (at most
    ``ImapLimits.append_chunk`` of them)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class AppendEnd:
    """The whole message and the end of the command arrived: commit, then
    ``finish(OK, AppendUid(…))`` (or NO)."""


@dataclass(frozen=True, slots=True)
class IdleDone:
    """The client ended IDLE with DONE (RFC 2177): ``finish(OK)``."""

    tag: str


@dataclass(frozen=True, slots=True)
class CommandAborted:
    """The pending command ended without the adapter: an APPEND whose command
    line was malformed after the message (the core answered BAD), an IDLE
    ended by something other than DONE (BAD), or either one cut by the end
    of the connection. Drop what it started (the temporary file …)."""

    tag: str
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The client closed the connection (EOF)."""


Event: TypeAlias = Command | AppendData | AppendEnd | IdleDone | CommandAborted | ConnectionClosed
