"""The state table (RFC 9051 §3, §6), exhaustively: every verb in every
state, and every completion transition."""

from __future__ import annotations

import pytest

from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.events import Command, Event
from mailyard.proto.imap.parser import handlers
from mailyard.proto.imap.responses import Code
from mailyard.proto.imap.server import ImapServer
from mailyard.proto.imap.settings import ImapFeatures
from mailyard.proto.imap.states import ALLOWED, ON_FAILURE, ON_OK, State
from tests.proto.imap.helpers import LOGIN, SELECT, default_answer, lines, make_core, run, tagged

# A well-formed instance of every verb.
MINIMAL: dict[str, str] = {
    "CAPABILITY": "CAPABILITY",
    "NOOP": "NOOP",
    "LOGOUT": "LOGOUT",
    "ID": "ID NIL",
    "STARTTLS": "STARTTLS",
    "AUTHENTICATE": "AUTHENTICATE PLAIN AGJvYgBzZWNyZXQ=",
    "LOGIN": "LOGIN bob secret",
    "ENABLE": "ENABLE CONDSTORE",
    "SELECT": "SELECT INBOX",
    "EXAMINE": "EXAMINE INBOX",
    "CREATE": "CREATE x",
    "DELETE": "DELETE x",
    "RENAME": "RENAME x y",
    "SUBSCRIBE": "SUBSCRIBE x",
    "UNSUBSCRIBE": "UNSUBSCRIBE x",
    "LIST": 'LIST "" *',
    "LSUB": 'LSUB "" *',
    "NAMESPACE": "NAMESPACE",
    "STATUS": "STATUS INBOX (MESSAGES)",
    "APPEND": "APPEND INBOX {1+}\r\nx",
    "IDLE": "IDLE\r\nDONE",
    "GETQUOTA": 'GETQUOTA ""',
    "GETQUOTAROOT": "GETQUOTAROOT INBOX",
    "SETQUOTA": 'SETQUOTA "" (STORAGE 1)',
    "CHECK": "CHECK",
    "CLOSE": "CLOSE",
    "UNSELECT": "UNSELECT",
    "EXPUNGE": "EXPUNGE",
    "SEARCH": "SEARCH ALL",
    "FETCH": "FETCH 1 FLAGS",
    "STORE": "STORE 1 +FLAGS \\Seen",
    "COPY": "COPY 1 x",
    "MOVE": "MOVE 1 x",
    "SORT": "SORT (ARRIVAL) UTF-8 ALL",
    "THREAD": "THREAD REFERENCES UTF-8 ALL",
    "UID EXPUNGE": "UID EXPUNGE 1",
    "UID SEARCH": "UID SEARCH ALL",
    "UID FETCH": "UID FETCH 1 FLAGS",
    "UID STORE": "UID STORE 1 +FLAGS \\Seen",
    "UID COPY": "UID COPY 1 x",
    "UID MOVE": "UID MOVE 1 x",
    "UID SORT": "UID SORT (ARRIVAL) UTF-8 ALL",
    "UID THREAD": "UID THREAD REFERENCES UTF-8 ALL",
}
PREFIX = {State.NOT_AUTHENTICATED: b"", State.AUTHENTICATED: LOGIN, State.SELECTED: SELECT}


def test_table_covers_every_verb() -> None:
    everything = handlers(ImapFeatures(starttls=True, searchres=True, create_special_use=True))
    assert set(ALLOWED) == set(MINIMAL) == set(everything)


@pytest.mark.parametrize("verb", sorted(MINIMAL))
@pytest.mark.parametrize("state", list(PREFIX), ids=lambda s: s.value)
def test_every_verb_in_every_state(state: State, verb: str) -> None:
    core = make_core(starttls=True)
    result = run([PREFIX[state] + lines("t " + MINIMAL[verb])], core=core)
    line = tagged(result, "t")
    if state in ALLOWED[verb]:
        assert "not allowed" not in line, line
    else:
        assert line == f"t BAD {verb} not allowed in the {state.value} state"


def test_logout_state_reads_nothing_more() -> None:
    result = run([lines("a LOGOUT", "b NOOP")])
    assert result.closed
    assert result.lines == ["* BYE imap.example.test logging out", "a OK LOGOUT completed"]


def _answer_with(status: Status, code: Code | None = None):
    def answer(core: ImapServer, event: Event) -> None:
        if isinstance(event, Command) and isinstance(event.body, c.Select | c.Close | c.Unselect):
            core.finish(status, code)
        else:
            default_answer(core, event)

    return answer


@pytest.mark.parametrize(
    ("data", "status", "expected"),
    [
        (LOGIN, Status.OK, State.AUTHENTICATED),
        (lines("a LOGIN bob wrong"), Status.OK, State.NOT_AUTHENTICATED),
        (SELECT, Status.OK, State.SELECTED),
        (SELECT, Status.NO, State.AUTHENTICATED),
        (SELECT + lines("c CLOSE"), Status.OK, State.AUTHENTICATED),
        (SELECT + lines("c UNSELECT"), Status.OK, State.AUTHENTICATED),
    ],
)
def test_transitions(data: bytes, status: Status, expected: State) -> None:
    core = make_core()
    run([data], core=core, answer=_answer_with(status))
    assert core.state is expected


def test_failed_select_while_selected_deselects() -> None:
    # RFC 9051 §6.3.2: the old mailbox is closed when the new SELECT begins.
    core = make_core()
    result = run([SELECT], core=core)
    result = run(
        [lines("t SELECT nope")], core=core, answer=_answer_with(Status.NO, Code.NONEXISTENT)
    )
    assert result.lines == [
        "* OK [CLOSED] previous mailbox closed",
        "t NO [NONEXISTENT] SELECT failed",
    ]
    assert core.state is State.AUTHENTICATED


def test_examine_is_read_only() -> None:
    core = make_core()
    run([LOGIN + lines("e EXAMINE INBOX")], core=core)
    assert core.read_only
    core = make_core()
    run([SELECT], core=core, answer=_answer_with(Status.OK, Code.READ_ONLY))
    assert core.read_only
    run([lines("c CLOSE")], core=core)
    assert not core.read_only


def test_transition_tables_are_consistent() -> None:
    assert ON_OK[c.Select] is State.SELECTED and ON_FAILURE[c.Select] is State.AUTHENTICATED
    for kind in ON_OK:
        assert isinstance(kind, type)
