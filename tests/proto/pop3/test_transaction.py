"""The TRANSACTION and UPDATE states (RFC 1939 §5-§7): numbering, deletion
marks, listings, RETR/TOP streaming, QUIT and the commit."""

from __future__ import annotations

import pytest

from mailyard.proto.pop3 import (
    AWAITING_REPLY,
    CLOSED,
    Commit,
    ConnectionClosed,
    DropEntry,
    Login,
    Retrieve,
    State,
)
from tests.proto.pop3.helpers import (
    HOSTNAME,
    LOGIN,
    MESSAGES,
    SIZES,
    TOTAL,
    UIDS,
    Adapter,
    lines,
    make_core,
    run,
)


def after_login(result_lines: list[str]) -> list[str]:
    return result_lines[2:]


# -- STAT / LIST / UIDL ------------------------------------------------------------


def test_rfc1939_5_stat_uses_the_adapters_sizes(feed) -> None:
    adapter = Adapter(sizes=[1000, 2000, 3])
    result = feed(LOGIN + lines("STAT", "LIST", "LIST 2"), adapter=adapter)
    assert after_login(result.lines) == [
        "+OK 3 3003",
        "+OK 3 messages (3003 octets)",
        "1 1000",
        "2 2000",
        "3 3",
        ".",
        "+OK 2 2000",
    ]


def test_rfc1939_5_empty_maildrop(feed) -> None:
    adapter = Adapter(messages=(), uids=())
    result = feed(LOGIN + lines("STAT", "LIST", "UIDL", "RETR 1"), adapter=adapter)
    assert after_login(result.lines) == [
        "+OK 0 0",
        "+OK 0 messages (0 octets)",
        ".",
        "+OK unique-id listing follows",
        ".",
        "-ERR no such message",
    ]


def test_rfc1939_7_uidl(feed) -> None:
    result = feed(LOGIN + lines("UIDL", "UIDL 3"))
    assert after_login(result.lines) == [
        "+OK unique-id listing follows",
        *(f"{n} {uid}" for n, uid in enumerate(UIDS, 1)),
        ".",
        "+OK 3 c3",
    ]


@pytest.mark.parametrize("verb", ["LIST", "UIDL", "RETR", "DELE"])
@pytest.mark.parametrize(
    ("number", "answer"),
    [
        ("0", "-ERR no such message"),
        ("4", "-ERR no such message"),
        ("99999999999999999999", "-ERR no such message"),
        ("-1", "-ERR invalid message number"),
        ("1x", "-ERR invalid message number"),
    ],
)
def test_rfc1939_3_message_number_checks(feed, verb: str, number: str, answer: str) -> None:
    result = feed(LOGIN + lines(f"{verb} {number}", "NOOP"))
    assert after_login(result.lines) == [answer, "+OK"]
    assert not any(isinstance(e, Retrieve) for e in result.events)


def test_rfc1939_5_deleted_messages_keep_their_numbers(feed) -> None:
    result = feed(LOGIN + lines("DELE 1", "STAT", "LIST", "UIDL", "LIST 2", "UIDL 3"))
    assert after_login(result.lines) == [
        "+OK message 1 deleted",
        f"+OK 2 {SIZES[1] + SIZES[2]}",
        f"+OK 2 messages ({SIZES[1] + SIZES[2]} octets)",
        f"2 {SIZES[1]}",
        f"3 {SIZES[2]}",
        ".",
        "+OK unique-id listing follows",
        "2 b2",
        "3 c3",
        ".",
        f"+OK 2 {SIZES[1]}",
        "+OK 3 c3",
    ]


@pytest.mark.parametrize("command", ["LIST 2", "UIDL 2", "RETR 2", "TOP 2 1"])
def test_rfc1939_5_deleted_message_is_refused(feed, command: str) -> None:
    result = feed(LOGIN + lines("DELE 2", command))
    assert result.lines[-1] == "-ERR message deleted"
    assert not any(isinstance(e, Retrieve) for e in result.events)


def test_rfc1939_5_dele_twice(feed) -> None:
    result = feed(LOGIN + lines("DELE 3", "DELE 3"))
    assert after_login(result.lines) == ["+OK message 3 deleted", "-ERR message already deleted"]


def test_rfc1939_5_rset_unmarks(feed) -> None:
    result = feed(LOGIN + lines("DELE 1", "DELE 2", "RSET", "STAT", "QUIT"))
    assert after_login(result.lines)[2:4] == [
        f"+OK maildrop has 3 messages ({TOTAL} octets)",
        f"+OK 3 {TOTAL}",
    ]
    assert result.events[-1] == Commit(())


def test_rfc1939_5_noop(feed) -> None:
    assert after_login(feed(LOGIN + lines("NOOP")).lines) == ["+OK"]


# -- RETR / TOP ------------------------------------------------------------------------


def test_rfc1939_7_retr_is_dot_stuffed(feed) -> None:
    result = feed(LOGIN + lines("RETR 2"))
    assert result.events[-1] == Retrieve(1, None)
    assert after_login(result.lines) == [
        f"+OK {SIZES[1]} octets",
        "Subject: two",
        "",
        "..dotted",
        "...two dots",
        "plain",
        ".",
    ]


@pytest.mark.parametrize("chunk", [1, 2, 3, 64])
def test_retr_content_is_exact_whatever_the_chunks(chunk: int) -> None:
    adapter = Adapter(chunk=chunk)
    result = run([LOGIN + lines("RETR 2", "RETR 1")], adapter=adapter)
    body = result.output.split(b"octets\r\n")
    stuffed = b"Subject: two\r\n\r\n..dotted\r\n...two dots\r\nplain\r\n.\r\n"
    assert body[1] == stuffed + f"+OK {SIZES[0]} ".encode()
    assert body[2] == MESSAGES[0] + b".\r\n"


def test_rfc1939_3_retr_adds_the_missing_final_crlf() -> None:
    adapter = Adapter(messages=(b"Subject: x\r\n\r\nno end",), uids=("x1",))
    result = run([LOGIN + lines("RETR 1")], adapter=adapter)
    assert result.output.endswith(b"+OK 20 octets\r\nSubject: x\r\n\r\nno end\r\n.\r\n")


def test_rfc1939_7_top(feed) -> None:
    result = feed(LOGIN + lines("TOP 3 2", "TOP 3 0", "TOP 1 99"))
    assert [e for e in result.events if isinstance(e, Retrieve)] == [
        Retrieve(2, 2),
        Retrieve(2, 0),
        Retrieve(0, 99),
    ]
    assert after_login(result.lines) == [
        "+OK top of message follows",
        "Subject: three",
        "X-Tag: 3",
        "",
        "line 1",
        "line 2",
        ".",
        "+OK top of message follows",
        "Subject: three",
        "X-Tag: 3",
        "",
        ".",
        "+OK top of message follows",
        "Subject: one",
        "",
        "first body",
        ".",
    ]


@pytest.mark.parametrize("command", ["TOP 1", "TOP 1 -1", "TOP 1 x", "TOP", "TOP 1 2 3"])
def test_rfc1939_7_top_syntax(feed, command: str) -> None:
    result = feed(LOGIN + lines(command))
    assert result.lines[-1] == "-ERR syntax error"


def test_top_lets_the_adapter_stop_reading_early() -> None:
    big = b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n" + b"y\r\n" * 1000
    adapter = Adapter(messages=(big,), uids=("big",), chunk=10, stop_early=True)
    result = run([LOGIN + lines("TOP 1 1", "NOOP")], adapter=adapter)
    assert adapter.fed < 200
    assert after_login(result.lines) == [
        "+OK top of message follows",
        "Subject: big",
        "",
        "x" * 70,
        ".",
        "+OK",
    ]


def test_retrieve_wants_more_outside_retrieval() -> None:
    core = make_core()
    assert not core.retrieve_wants_more
    run([LOGIN], core=core)
    core.receive_data(lines("RETR 1"))
    assert core.next_event() == Retrieve(0, None)
    assert not core.retrieve_wants_more  # not begun
    core.retrieve_begin(3)
    assert core.retrieve_wants_more
    core.retrieve_chunk(b"a\r\n")
    core.retrieve_end()
    assert not core.retrieve_wants_more


def test_retrieve_failed_before_begin_keeps_the_session(feed) -> None:
    adapter = Adapter(vanished=frozenset({0}))
    result = feed(LOGIN + lines("RETR 1", "STAT"), adapter=adapter)
    assert after_login(result.lines) == ["-ERR message is no longer available", f"+OK 3 {TOTAL}"]


def test_retrieve_failed_midway_closes_without_terminator() -> None:
    adapter = Adapter(torn=frozenset({0}))
    result = run([LOGIN + lines("RETR 1", "QUIT")], adapter=adapter)
    assert result.closed
    # No "." line and nothing after it: the client sees a broken connection.
    assert result.output.endswith(f"+OK {SIZES[0]} octets\r\nSubje".encode())
    assert not any(isinstance(e, Commit) for e in result.events)


# -- QUIT / UPDATE (RFC 1939 §6) ----------------------------------------------------


def test_rfc1939_6_quit_commits_the_deletions(feed) -> None:
    adapter = Adapter()
    result = feed(LOGIN + lines("DELE 3", "DELE 1", "QUIT", "NOOP"), adapter=adapter)
    assert adapter.commits == [(0, 2)]  # 0-based, ascending
    assert result.lines[-1] == "+OK bye"
    assert result.closed


def test_rfc1939_6_update_state_waits_for_commit() -> None:
    core = make_core()
    run([LOGIN], core=core)
    core.receive_data(lines("DELE 2", "QUIT", "STAT"))
    assert core.next_event() == Commit((1,))
    assert core.state is State.UPDATE
    assert core.next_event() is AWAITING_REPLY
    core.commit_done(True, "bye")
    assert core.next_event() is CLOSED
    assert core.data_to_send() == b"+OK message 2 deleted\r\n+OK bye\r\n"  # STAT never ran


def test_rfc1939_6_failed_commit_is_an_error(feed) -> None:
    adapter = Adapter(commit_ok=False)
    result = feed(LOGIN + lines("DELE 1", "QUIT"), adapter=adapter)
    assert result.lines[-1] == "-ERR some messages were not deleted"
    assert result.closed


def test_rfc1939_6_eof_without_quit_deletes_nothing() -> None:
    adapter = Adapter()
    result = run([LOGIN + lines("DELE 1"), b""], adapter=adapter)
    assert result.events[-1] == ConnectionClosed()
    assert adapter.commits == []
    assert result.closed


def test_eof_while_an_answer_is_pending_still_runs_the_pipeline() -> None:
    adapter = Adapter()
    core = make_core()
    core.receive_data(LOGIN + lines("DELE 1", "QUIT"))
    core.receive_data(b"")
    result = run([], core=core, adapter=adapter)
    assert adapter.commits == [(0,)]
    assert [type(e) for e in result.events] == [Login, Commit]
    assert result.lines[-1] == "+OK bye"


def test_quit_in_authorization_has_hostname() -> None:
    assert run([lines("QUIT")]).lines == [f"+OK {HOSTNAME} POP3 server signing off"]


def test_numbers_stable_across_rset_and_dele(feed) -> None:
    result = feed(LOGIN + lines("DELE 2", "RSET", "DELE 1", "LIST 2", "RETR 3"))
    assert f"+OK 2 {SIZES[1]}" in result.lines
    assert result.events[-1] == Retrieve(2, None)


def test_drop_entry_validation() -> None:
    DropEntry(0, "!" + "~" * 69)
    for size, uid in [(-1, "a"), (1, ""), (1, "a b"), (1, "x" * 71), (1, "é"), (1, "a\r\n")]:
        with pytest.raises(ValueError):
            DropEntry(size, uid)


def test_duplicate_uids_are_refused_before_anything_changes() -> None:
    core = make_core()
    core.receive_data(LOGIN)
    assert isinstance(core.next_event(), Login)
    with pytest.raises(ValueError):
        core.login_ok([DropEntry(1, "same"), DropEntry(2, "same")])
    assert core.state is State.AUTHORIZATION
    core.login_ok([DropEntry(1, "one")])  # the event still awaits its answer
    assert core.state is State.TRANSACTION
