"""IDLE (RFC 2177): "+ idling", updates pushed any time, DONE, then OK."""

from __future__ import annotations

import pytest

from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import ImapUsageError, Status
from mailyard.proto.imap.events import (
    NEED_DATA,
    Command,
    CommandAborted,
    ConnectionClosed,
    IdleDone,
)
from mailyard.proto.imap.responses import Exists, Expunge, FetchResponse, FlagsData
from tests.proto.imap.helpers import SELECT, lines, make_core, run, tagged


def _idle_core():
    core = make_core()
    run([SELECT], core=core)
    core.receive_data(b"i IDLE\r\n")
    event = core.next_event()
    assert isinstance(event, Command) and isinstance(event.body, c.Idle)
    assert core.next_event() is NEED_DATA  # reading for DONE, not awaiting
    return core


def test_idle_push_and_done() -> None:
    core = _idle_core()
    assert core.data_to_send() == b"+ idling\r\n"
    core.send(Exists(4))  # a delivery while idling
    core.send(Expunge(2), FetchResponse(1, (FlagsData(("\\Seen",)),)))
    assert core.data_to_send() == b"* 4 EXISTS\r\n* 2 EXPUNGE\r\n* 1 FETCH (FLAGS (\\Seen))\r\n"
    with pytest.raises(ImapUsageError):
        core.finish(Status.OK)  # only the client ends IDLE
    core.receive_data(b"DONE\r\nn NOOP\r\n")
    assert core.next_event() == IdleDone("i")
    core.finish(Status.OK)
    event = core.next_event()
    assert isinstance(event, Command) and isinstance(event.body, c.Noop)
    assert core.data_to_send() == b"i OK IDLE completed\r\n"


def test_idle_done_is_case_insensitive(feed) -> None:
    result = feed(SELECT + lines("i IDLE", "done", "n NOOP"))
    assert result.lines[-3:] == ["+ idling", "i OK IDLE completed", "n OK NOOP completed"]


def test_idle_ended_by_garbage() -> None:
    result = run([SELECT + lines("i IDLE", "x NOOP", "n NOOP")])
    assert result.lines[-3:] == ["+ idling", "i BAD expected DONE", "n OK NOOP completed"]
    assert any(isinstance(e, CommandAborted) and e.tag == "i" for e in result.events)


def test_idle_cut_by_eof() -> None:
    result = run([SELECT + lines("i IDLE")], eof=True)
    assert [type(e) for e in result.events[-2:]] == [CommandAborted, ConnectionClosed]


def test_idle_timeout_hint() -> None:
    core = _idle_core()
    assert core.timeout == core.config.limits.timeout_idle
    core.receive_data(b"DONE\r\n")
    core.next_event()
    core.finish(Status.OK)
    assert core.timeout == core.config.limits.timeout_authenticated
    assert make_core().timeout == make_core().config.limits.timeout_unauthenticated


def test_idle_not_offered() -> None:
    result = run([SELECT + lines("i IDLE")], core=make_core(idle=False, imap4rev2=False))
    assert tagged(result, "i") == "i BAD unknown command IDLE"


def test_bye_while_idling() -> None:
    core = _idle_core()
    core.data_to_send()
    core.bye("server shutting down")
    assert core.data_to_send() == b"* BYE server shutting down\r\n"
    from mailyard.proto.imap.events import CLOSED

    assert core.next_event() is CLOSED
