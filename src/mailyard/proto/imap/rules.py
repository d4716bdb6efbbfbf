"""Rules the core enforces, as plain functions over values: which verbs
run where, limits on literals (checked before any octet is read), what
an APPEND literal may be, and which untagged responses the adapter may
send at the moment (RFC 9051 §7.5.1, RFC 7162 §3.2.10)."""

from __future__ import annotations

from typing import Final

from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import CommandError, ImapUsageError, Status
from mailyard.proto.imap.events import Command
from mailyard.proto.imap.parser import AppendPrefix, handlers
from mailyard.proto.imap.reader import Marker, Pending
from mailyard.proto.imap.responses import Code, Expunge, Untagged, Vanished
from mailyard.proto.imap.settings import LITERAL_MINUS_MAX, ImapFeatures, ImapLimits
from mailyard.proto.imap.states import State, allowed

__all__ = [
    "append_command",
    "check_literal",
    "check_untagged",
    "expunge_allowed",
    "verb_refusal",
]

# RFC 9051 §7.5.1: no EXPUNGE while answering these by sequence number
# (SORT and THREAD return sequence numbers too: the same reasoning applies).
_NO_EXPUNGE: Final = (c.Fetch, c.Store, c.Search, c.Sort, c.Thread)


def expunge_allowed(body: c.CommandBody) -> bool:
    return not (isinstance(body, _NO_EXPUNGE) and not body.uid)


def verb_refusal(verb: str, state: State, features: ImapFeatures) -> CommandError | None:
    """BAD for an unknown verb or one not valid in this state (RFC 9051 §6)."""
    if verb not in handlers(features):
        return CommandError(f"unknown command {verb}")
    if not allowed(state, verb):
        return CommandError(f"{verb} not allowed in the {state.value} state")
    return None


def check_literal(
    pending: Pending, marker: Marker, max_size: int, limits: ImapLimits, features: ImapFeatures
) -> None:
    """Refuse a literal before reading it: count, literal8, LITERAL+/-, size."""
    if len(pending.literals) >= limits.max_literals:
        raise CommandError("too many literals in one command", code=Code.LIMIT)
    if marker.binary and pending.verb != "APPEND":
        raise CommandError("literal8 is only allowed in APPEND")  # RFC 3516 §4.4
    if not marker.sync:
        if not features.literal:
            raise CommandError("non-synchronizing literals are not supported")
        if features.literal == "LITERAL-" and marker.size > LITERAL_MINUS_MAX:
            # RFC 7888 §5: LITERAL- allows {n+} only up to 4096 octets.
            raise CommandError("non-synchronizing literal too large", code=Code.TOOBIG)
    if marker.size > max_size:
        raise CommandError("literal too large", code=Code.TOOBIG)
    if pending.verb != "APPEND" and pending.size + marker.size > limits.max_command_size:
        raise CommandError("command too large", code=Code.TOOBIG)


def append_command(
    pending: Pending,
    marker: Marker,
    prefix: AppendPrefix,
    *,
    limits: ImapLimits,
    features: ImapFeatures,
    utf8: bool,
) -> c.Append:
    """The APPEND event for a message literal, or CommandError."""
    if marker.binary and not features.binary:
        raise CommandError("literal8 needs BINARY")
    if prefix.utf8 and not (utf8 and marker.binary):
        # RFC 6855 §4: UTF8 (literal8), once UTF8=ACCEPT is enabled.
        raise CommandError("UTF8 APPEND data needs ENABLE UTF8=ACCEPT and literal8")
    if marker.size > limits.max_append_size:
        # RFC 7889 §4: a message over APPENDLIMIT gets NO [TOOBIG].
        raise CommandError("message too large", Status.NO, Code.TOOBIG)
    check_literal(pending, marker, limits.max_append_size, limits, features)
    return c.Append(prefix.mailbox, prefix.flags, prefix.date, marker.size, marker.sync,
                    marker.binary, prefix.utf8)  # fmt: skip


def check_untagged(pending: Command, response: Untagged, qresync: bool) -> None:
    """ImapUsageError for an EXPUNGE/VANISHED the client must not get now."""
    if not isinstance(response, Expunge | Vanished):
        return
    live = isinstance(response, Expunge) or not response.earlier
    if live and not pending.expunge_allowed:
        raise ImapUsageError("EXPUNGE/VANISHED is forbidden now (RFC 9051 §7.5.1)")
    if isinstance(response, Expunge) and qresync:
        raise ImapUsageError("QRESYNC is enabled: send VANISHED (RFC 7162 §3.2.10)")
    if isinstance(response, Vanished) and not qresync:
        raise ImapUsageError("VANISHED needs ENABLE QRESYNC")
