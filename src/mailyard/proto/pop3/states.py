"""The POP3 session state machine as data (h11 house rule: transitions live
here).

RFC 1939 §3: AUTHORIZATION until the client is identified, TRANSACTION
while it works on the maildrop, UPDATE after QUIT while the deletions are
committed. ``ALLOWED`` says in which states each verb may run; ``ON_LOGIN``
and ``ON_QUIT`` give the transitions the server makes.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["ALLOWED", "ON_LOGIN", "ON_QUIT", "State", "allowed"]


class State(enum.Enum):
    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"  # waiting for the adapter's commit_done
    CLOSED = "CLOSED"


_AUTH: Final = frozenset({State.AUTHORIZATION})
_TRANS: Final = frozenset({State.TRANSACTION})
_BOTH: Final = _AUTH | _TRANS

ALLOWED: Final[dict[str, frozenset[State]]] = {
    "USER": _AUTH,  # RFC 1939 §7
    "PASS": _AUTH,
    "AUTH": _AUTH,  # RFC 5034 §4
    "STLS": _AUTH,  # RFC 2595 §4: only in the AUTHORIZATION state
    "CAPA": _BOTH,  # RFC 2449 §5
    "QUIT": _BOTH,  # RFC 1939 §4 and §6
    "STAT": _TRANS,  # RFC 1939 §5
    "LIST": _TRANS,
    "UIDL": _TRANS,  # RFC 1939 §7
    "RETR": _TRANS,
    "TOP": _TRANS,  # RFC 1939 §7
    "DELE": _TRANS,
    "RSET": _TRANS,
    "NOOP": _TRANS,
}

# A successful login (USER/PASS or AUTH) enters TRANSACTION (RFC 1939 §4).
ON_LOGIN: Final = {State.AUTHORIZATION: State.TRANSACTION}
# QUIT: from AUTHORIZATION straight to the end (RFC 1939 §6: no UPDATE
# state), from TRANSACTION into UPDATE.
ON_QUIT: Final = {State.AUTHORIZATION: State.CLOSED, State.TRANSACTION: State.UPDATE}


def allowed(state: State, verb: str) -> bool:
    return state in ALLOWED.get(verb, frozenset())
