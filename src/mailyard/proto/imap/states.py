"""The IMAP session state machine as data (h11 house rule: transitions live
here), RFC 9051 §3 / RFC 3501 §3.

``ALLOWED`` says in which states each command may run; ``ON_OK`` and
``ON_FAILURE`` give the state a tagged completion leads to (commands
absent keep the state). LOGOUT is reached by the core itself (LOGOUT, BYE).
"""

from __future__ import annotations

import enum
from typing import Final

from mailyard.proto.imap import commands as c

__all__ = ["ALLOWED", "ON_FAILURE", "ON_OK", "State", "allowed"]


class State(enum.Enum):
    NOT_AUTHENTICATED = "NOT_AUTHENTICATED"
    AUTHENTICATED = "AUTHENTICATED"
    SELECTED = "SELECTED"
    LOGOUT = "LOGOUT"


_NA: Final = frozenset({State.NOT_AUTHENTICATED})
_AUTH: Final = frozenset({State.AUTHENTICATED, State.SELECTED})
_SEL: Final = frozenset({State.SELECTED})
_ANY: Final = _NA | _AUTH

# Verbs (UID-prefixed ones as "UID FETCH" …) -> the states that allow them.
ALLOWED: Final[dict[str, frozenset[State]]] = {
    # RFC 9051 §6.1: any state.
    "CAPABILITY": _ANY,
    "NOOP": _ANY,
    "LOGOUT": _ANY,
    "ID": _ANY,  # RFC 2971 §3.1
    # RFC 9051 §6.2: not authenticated.
    "STARTTLS": _NA,
    "AUTHENTICATE": _NA,
    "LOGIN": _NA,
    # RFC 5161 §3.1: ENABLE only before a mailbox is selected.
    "ENABLE": frozenset({State.AUTHENTICATED}),
    # RFC 9051 §6.3: authenticated (and so selected).
    "SELECT": _AUTH,
    "EXAMINE": _AUTH,
    "CREATE": _AUTH,
    "DELETE": _AUTH,
    "RENAME": _AUTH,
    "SUBSCRIBE": _AUTH,
    "UNSUBSCRIBE": _AUTH,
    "LIST": _AUTH,
    "LSUB": _AUTH,
    "NAMESPACE": _AUTH,
    "STATUS": _AUTH,
    "APPEND": _AUTH,
    "IDLE": _AUTH,  # RFC 2177 §3
    "GETQUOTA": _AUTH,  # RFC 9208 §4
    "GETQUOTAROOT": _AUTH,
    "SETQUOTA": _AUTH,
    # RFC 9051 §6.4: selected.
    "CHECK": _SEL,
    "CLOSE": _SEL,
    "UNSELECT": _SEL,  # RFC 3691
    "EXPUNGE": _SEL,
    "SEARCH": _SEL,
    "FETCH": _SEL,
    "STORE": _SEL,
    "COPY": _SEL,
    "MOVE": _SEL,  # RFC 6851
    "SORT": _SEL,  # RFC 5256
    "THREAD": _SEL,
    "UID EXPUNGE": _SEL,  # RFC 4315 §2.1
    "UID SEARCH": _SEL,
    "UID FETCH": _SEL,
    "UID STORE": _SEL,
    "UID COPY": _SEL,
    "UID MOVE": _SEL,
    "UID SORT": _SEL,
    "UID THREAD": _SEL,
}

# Completion transitions: (command type, state before) -> state after.
# RFC 9051 §6.2.2/§6.2.3: a successful login authenticates.
# RFC 9051 §6.3.2: SELECT/EXAMINE OK selects; a failed one leaves no
# mailbox selected (the previous one was closed when it began).
# RFC 9051 §6.4.1 / RFC 3691: CLOSE and UNSELECT return to authenticated.
ON_OK: Final[dict[type, State]] = {
    c.Login: State.AUTHENTICATED,
    c.Authenticate: State.AUTHENTICATED,
    c.Select: State.SELECTED,
    c.Close: State.AUTHENTICATED,
    c.Unselect: State.AUTHENTICATED,
}
ON_FAILURE: Final[dict[type, State]] = {
    c.Select: State.AUTHENTICATED,
}


def allowed(state: State, verb: str) -> bool:
    return state in ALLOWED.get(verb, frozenset())
