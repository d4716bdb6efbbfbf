"""Events the POP3 server core hands to its adapter, and the three sentinels.

Events are nouns (h11 style): frozen, slotted dataclasses. ``Login``,
``Retrieve``, ``Commit`` and ``StartTls`` need an answer through the core's
methods before it reads on (``NEEDS_ANSWER``); ``ConnectionClosed`` is a
notification.

Sentinels returned by ``Pop3Server.next_event()`` instead of an event:

* ``NEED_DATA`` — write ``data_to_send()``, then feed more bytes;
* ``AWAITING_REPLY`` — the last event still needs its answer;
* ``CLOSED`` — the session is over; write ``data_to_send()`` and close.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

from mailyard.proto.sentinels import AWAITING_REPLY, CLOSED, NEED_DATA, Sentinel

__all__ = [
    "AWAITING_REPLY",
    "CLOSED",
    "NEEDS_ANSWER",
    "NEED_DATA",
    "Commit",
    "ConnectionClosed",
    "Event",
    "Login",
    "Retrieve",
    "Sentinel",
    "StartTls",
]


# The sentinels are shared by every core (proto/sentinels.py).


@dataclass(frozen=True, slots=True)
class Login:
    """USER+PASS (RFC 1939 §7) or AUTH PLAIN / LOGIN (RFC 5034, RFC 4616).

    Answer with ``login_ok(drop)``, ``login_failed(text, code)`` or
    ``login_in_use()``. ``authzid`` is "" unless a PLAIN client asked for
    another identity; the adapter decides whether to allow that.
    """

    username: str
    password: str = field(repr=False)
    mechanism: Literal["USER", "PLAIN", "LOGIN"]
    authzid: str = ""


@dataclass(frozen=True, slots=True)
class Retrieve:
    """RETR (``top_lines`` None) or TOP (RFC 1939 §7) of the message at
    0-based ``index`` in the drop given to ``login_ok`` (never a deleted
    one). Answer with ``retrieve_begin(size)`` / ``retrieve_chunk``… /
    ``retrieve_end``, or ``retrieve_failed``. Send the whole message: the
    core dot-stuffs it and cuts TOP (``retrieve_wants_more`` turns False
    once the rest would be dropped anyway)."""

    index: int
    top_lines: int | None = None


@dataclass(frozen=True, slots=True)
class Commit:
    """QUIT in the TRANSACTION state: the UPDATE state (RFC 1939 §6).
    Remove the messages at these 0-based indices (ascending, maybe none),
    then call ``commit_done(ok, text)``."""

    deleted: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class StartTls:
    """STLS (RFC 2595 §4): the core already queued "+OK". Write
    ``data_to_send()``, do the TLS handshake, then call ``start_tls()``;
    nothing more is read until then."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The client closed the connection (EOF) without QUIT: delete nothing
    (RFC 1939 §6)."""


Event: TypeAlias = Login | Retrieve | Commit | StartTls | ConnectionClosed

NEEDS_ANSWER: Final[tuple[type, ...]] = (Login, Retrieve, Commit, StartTls)
