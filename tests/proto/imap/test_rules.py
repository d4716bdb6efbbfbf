"""The adapter's side of the contract: what it may send when, and
ImapUsageError (raised before anything is written) when it errs."""

from __future__ import annotations

import pytest

from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import ImapUsageError, Status
from mailyard.proto.imap.events import AppendEnd, Command
from mailyard.proto.imap.responses import Condition, Exists, Expunge, Vanished
from mailyard.proto.imap.rules import expunge_allowed
from mailyard.proto.imap.sequence import SequenceSet
from tests.proto.imap.helpers import LOGIN, SELECT, lines, make_core, run

S = SequenceSet.parse


def _pending(data: bytes, command: bytes = b"", **kwargs: object):
    """A core after ``data``, holding ``command`` (default: the last line) unanswered."""
    if not command:
        cut = data.rindex(b"\r\n", 0, len(data) - 2) + 2
        data, command = data[:cut], data[cut:]
    core = make_core(**kwargs)
    run([data], core=core)
    core.receive_data(command)
    event = core.next_event()
    assert isinstance(event, Command), event
    core.data_to_send()
    return core, event


def test_expunge_forbidden_during_fetch_store_search_by_number() -> None:
    for command in ("FETCH 1 FLAGS", "STORE 1 +FLAGS \\Seen", "SEARCH ALL", "SORT (SIZE) UTF-8 ALL",
                    "THREAD REFERENCES UTF-8 ALL"):  # fmt: skip
        core, event = _pending(SELECT + lines("t " + command))
        assert not event.expunge_allowed
        with pytest.raises(ImapUsageError):
            core.send(Expunge(1))
        assert core.data_to_send() == b""
        core.send(Exists(3))  # other updates are fine


def test_expunge_allowed_otherwise() -> None:
    for command in ("UID FETCH 1 FLAGS", "UID STORE 1 +FLAGS \\Seen", "UID SEARCH ALL", "NOOP",
                    "MOVE 1 x", "EXPUNGE", "COPY 1 x"):  # fmt: skip
        core, event = _pending(SELECT + lines("t " + command))
        assert event.expunge_allowed
        core.send(Expunge(1))
        assert core.data_to_send() == b"* 1 EXPUNGE\r\n"


def test_expunge_allowed_table() -> None:
    assert not expunge_allowed(c.Fetch(False, S("1"), ()))
    assert expunge_allowed(c.Fetch(True, S("1"), ()))
    assert expunge_allowed(c.Noop())


def test_vanished_only_with_qresync() -> None:
    core, _ = _pending(SELECT + lines("t NOOP"))
    with pytest.raises(ImapUsageError):
        core.send(Vanished(S("3")))
    core, _ = _pending(LOGIN + lines("e ENABLE QRESYNC", "s SELECT INBOX", "t NOOP"))
    with pytest.raises(ImapUsageError):
        core.send(Expunge(1))  # RFC 7162 §3.2.10
    core.send(Vanished(S("3")))
    assert core.data_to_send() == b"* VANISHED 3\r\n"
    core, _ = _pending(LOGIN + lines("e ENABLE QRESYNC", "s SELECT INBOX", "t FETCH 1 FLAGS"))
    with pytest.raises(ImapUsageError):
        core.send(Vanished(S("3")))
    core.send(Vanished(S("3"), earlier=True))


def test_send_and_finish_need_a_command() -> None:
    core = make_core()
    with pytest.raises(ImapUsageError):
        core.send(Exists(1))
    with pytest.raises(ImapUsageError):
        core.finish(Status.OK)
    with pytest.raises(ImapUsageError):
        core.accept_append()
    with pytest.raises(ImapUsageError):
        core.start_tls()


def test_invalid_answers_write_nothing() -> None:
    core, _ = _pending(SELECT + lines("t NOOP"))
    with pytest.raises(ImapUsageError):
        core.finish(Status.OK, text="two\r\nlines")
    with pytest.raises(ImapUsageError):
        core.finish(Status.BYE)
    with pytest.raises(ImapUsageError):
        core.send(Condition(Status.BYE, "no"))
    with pytest.raises(ImapUsageError):
        core.send(Exists(1), Condition(Status.OK, "bad\n"))
    assert core.data_to_send() == b""  # all or nothing
    with pytest.raises(ImapUsageError):
        core.send(Exists("1"))  # type: ignore[arg-type]
    core.finish(Status.OK)
    assert core.data_to_send() == b"t OK NOOP completed\r\n"
    with pytest.raises(ImapUsageError):
        core.bye("a\rb")


def test_append_answers() -> None:
    core, event = _pending(LOGIN, b"t APPEND INBOX {3+}\r\nabc\r\n")
    assert isinstance(event.body, c.Append)
    with pytest.raises(ImapUsageError):
        core.finish(Status.OK)  # accept first
    core.accept_append()
    with pytest.raises(ImapUsageError):
        core.accept_append()
    while not isinstance(core.next_event(), AppendEnd):
        pass
    core.finish(Status.OK)
    assert core.data_to_send().endswith(b"t OK APPEND completed\r\n")
