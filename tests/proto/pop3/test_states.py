"""The state table (states.py), checked two ways: as data, and against the
core for every (state, verb) pair: the verb runs, or gets exactly the
documented "-ERR command not valid in this state"."""

from __future__ import annotations

import pytest

from mailyard.proto.pop3 import AWAITING_REPLY, Commit, Pop3Server, State
from mailyard.proto.pop3.commands import ARITY
from mailyard.proto.pop3.states import ALLOWED, ON_LOGIN, ON_QUIT, allowed
from tests.proto.pop3.helpers import LOGIN, lines, make_core, run

WRONG_STATE = "-ERR command not valid in this state"

# A well-formed sample of every verb.
SAMPLES = {
    "USER": "USER bob",
    "PASS": "PASS secret",
    "AUTH": "AUTH",
    "STLS": "STLS",
    "CAPA": "CAPA",
    "QUIT": "QUIT",
    "STAT": "STAT",
    "LIST": "LIST",
    "UIDL": "UIDL 1",
    "RETR": "RETR 1",
    "TOP": "TOP 1 0",
    "DELE": "DELE 1",
    "RSET": "RSET",
    "NOOP": "NOOP",
}
LIVE_STATES = (State.AUTHORIZATION, State.TRANSACTION)


def test_table_covers_every_verb_of_the_grammar() -> None:
    assert set(ALLOWED) == set(ARITY) == set(SAMPLES)


def test_nothing_runs_in_update_or_closed() -> None:
    for verb in ALLOWED:
        assert not allowed(State.UPDATE, verb)
        assert not allowed(State.CLOSED, verb)


def test_rfc1939_3_transitions() -> None:
    assert ON_LOGIN == {State.AUTHORIZATION: State.TRANSACTION}
    assert ON_QUIT == {State.AUTHORIZATION: State.CLOSED, State.TRANSACTION: State.UPDATE}


def core_in(state: State) -> Pop3Server:
    core = make_core()
    if state is State.TRANSACTION:
        run([LOGIN], core=core)
    assert core.state is state
    return core


@pytest.mark.parametrize("state", LIVE_STATES, ids=lambda s: s.value)
@pytest.mark.parametrize("verb", sorted(SAMPLES))
def test_every_state_verb_pair(state: State, verb: str) -> None:
    core = core_in(state)
    result = run([lines(SAMPLES[verb])], core=core)
    first = result.lines[0] if result.lines else ""
    if allowed(state, verb):
        assert first != WRONG_STATE
        assert first.startswith(("+OK", "-ERR", "+ ")), first
    else:
        assert result.lines == [WRONG_STATE]
        assert core.state is state


def test_update_state_reads_nothing() -> None:
    core = core_in(State.TRANSACTION)
    core.receive_data(lines("QUIT", "STAT", "NOOP"))
    assert core.next_event() == Commit(())
    assert core.state is State.UPDATE
    assert core.next_event() is AWAITING_REPLY
    assert core.data_to_send() == b""
