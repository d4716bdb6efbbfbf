"""The SMTP session state machine as data (h11 house rule: transitions live here).

``State`` is where the session stands in RFC 5321 §3.3's mail transaction;
``SEQUENCE`` says, for every (state, verb), whether the verb may run or which
reply the core sends instead. ``ON_SUCCESS`` gives the state a positive reply
to a verb leads to. Reading modes (command line, DATA content, BDAT chunk,
AUTH response) are the server's business, not part of this table.
"""

from __future__ import annotations

import enum
from typing import Final

from mailyard.proto.smtp.replies import R554_NO_VALID_RECIPIENTS, Reply

__all__ = [
    "KNOWN_VERBS",
    "ON_SUCCESS",
    "SEQUENCE",
    "TRANSACTION_STATES",
    "Phase",
    "State",
    "check_sequence",
]


class State(enum.Enum):
    INITIAL = "INITIAL"  # greeting sent, no EHLO/HELO yet
    GREETED = "GREETED"  # EHLO/HELO accepted, no transaction
    MAIL = "MAIL"  # MAIL accepted, no recipient accepted yet
    RCPT = "RCPT"  # at least one recipient accepted
    BDAT = "BDAT"  # inside a BDAT transaction, between chunks (RFC 3030)
    CLOSED = "CLOSED"


class Phase(enum.Enum):
    """What the core is reading; the adapter picks its timeout from it
    (RFC 5321 §4.5.3.2: command vs. data block timeouts)."""

    COMMAND = "COMMAND"
    DATA = "DATA"


TRANSACTION_STATES: Final = frozenset({State.MAIL, State.RCPT, State.BDAT})

_NEED_HELLO: Final = Reply(503, "5.5.1", "send EHLO/HELO first")
_NESTED_MAIL: Final = Reply(503, "5.5.1", "nested MAIL command")
_NEED_MAIL: Final = Reply(503, "5.5.1", "need MAIL command")
_NOT_IN_BDAT: Final = Reply(503, "5.5.1", "command not allowed during BDAT transfer")
_NOT_IN_TRANSACTION: Final = Reply(503, "5.5.1", "command not allowed during a mail transaction")

# verb -> {state: None (allowed) or the sequence-error reply}; states not
# listed are allowed.
SEQUENCE: Final[dict[str, dict[State, Reply | None]]] = {
    "EHLO": {},
    "HELO": {},
    "RSET": {},
    "NOOP": {},
    "VRFY": {},
    "EXPN": {},
    "HELP": {},
    "QUIT": {},
    "MAIL": {
        State.INITIAL: _NEED_HELLO,
        State.MAIL: _NESTED_MAIL,
        State.RCPT: _NESTED_MAIL,
        State.BDAT: _NESTED_MAIL,
    },
    "RCPT": {
        State.INITIAL: _NEED_MAIL,
        State.GREETED: _NEED_MAIL,
        State.BDAT: _NOT_IN_BDAT,
    },
    # RFC 2920 §3.1: DATA after all RCPTs failed gets 554, not 503.
    "DATA": {
        State.INITIAL: _NEED_MAIL,
        State.GREETED: _NEED_MAIL,
        State.MAIL: R554_NO_VALID_RECIPIENTS,
        State.BDAT: _NOT_IN_BDAT,  # RFC 3030 §2: no DATA inside a BDAT transfer
    },
    "BDAT": {
        State.INITIAL: _NEED_MAIL,
        State.GREETED: _NEED_MAIL,
        State.MAIL: R554_NO_VALID_RECIPIENTS,
    },
    # RFC 4954 §4: AUTH is not permitted during a mail transaction.
    "AUTH": {
        State.INITIAL: _NEED_HELLO,
        State.MAIL: _NOT_IN_TRANSACTION,
        State.RCPT: _NOT_IN_TRANSACTION,
        State.BDAT: _NOT_IN_TRANSACTION,
    },
    # RFC 3207 §4: STARTTLS starts over; we refuse it inside a transaction.
    "STARTTLS": {
        State.MAIL: _NOT_IN_TRANSACTION,
        State.RCPT: _NOT_IN_TRANSACTION,
        State.BDAT: _NOT_IN_TRANSACTION,
    },
}

KNOWN_VERBS: Final = frozenset(SEQUENCE)

# verb -> state after a positive reply (verbs absent keep the state). DATA and
# the last BDAT chunk end the transaction whatever the reply: GREETED.
ON_SUCCESS: Final[dict[str, State]] = {
    "EHLO": State.GREETED,
    "HELO": State.GREETED,
    "MAIL": State.MAIL,
    "RCPT": State.RCPT,
}


def check_sequence(state: State, verb: str) -> Reply | None:
    """None if ``verb`` may run in ``state``, else the reply to send instead.

    RSET in INITIAL stays INITIAL (it is handled by the server, not here).
    """
    if state is State.CLOSED:
        return Reply(503, "5.5.1", "session closed")
    return SEQUENCE[verb].get(state)
