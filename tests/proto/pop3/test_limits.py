"""Syntax and state errors, limits (MODELS §7.5 habit 3: at the limit and at
limit + 1), pipelining (RFC 2449 §6.6) and adapter misuse."""

from __future__ import annotations

import pytest

from mailyard.proto.pop3 import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    Commit,
    DropEntry,
    Login,
    Pop3Features,
    Pop3Limits,
    Pop3ServerConfig,
    Pop3UsageError,
    Retrieve,
)
from tests.proto.pop3.helpers import LOGIN, SIZES, TOTAL, Adapter, lines, make_core, run


def test_rfc1939_3_unknown_command(feed) -> None:
    result = feed(lines("XTND", "HELO there", "", "NOOP"))
    assert result.lines == ["-ERR unknown command"] * 3 + ["-ERR command not valid in this state"]


def test_rfc1939_3_keywords_are_case_insensitive(feed) -> None:
    result = feed(b"user bob\r\npAsS secret\r\nsTaT\r\n")
    assert result.lines[-1] == f"+OK 3 {TOTAL}"


def test_bare_lf_ends_a_command_line(feed) -> None:
    result = feed(b"USER bob\nPASS secret\nSTAT\n")
    assert result.lines[-1] == f"+OK 3 {TOTAL}"


@pytest.mark.parametrize(
    "command", ["STAT 1", "RETR", "DELE 1 2", "USER", "USER a b", "PASS", "NOOP x", "RSET 1"]
)
def test_rfc1939_3_wrong_arguments_are_syntax_errors(feed, command: str) -> None:
    prefix = b"" if command.startswith(("USER", "PASS")) else LOGIN
    result = feed(prefix + lines(command))
    assert result.lines[-1] == "-ERR syntax error"


def test_control_characters_and_bad_utf8_are_syntax_errors(feed) -> None:
    result = feed(b"USER a\x00b\r\nUSER \xff\r\nUSER ok\r\n")
    assert result.lines == ["-ERR syntax error", "-ERR syntax error", "+OK send PASS"]


def test_line_length_limit_counts_crlf(feed) -> None:
    core = make_core(max_line_length=20)
    at_limit = b"USER " + b"u" * 13 + b"\r\n"  # 20 octets with CRLF
    over = b"USER " + b"u" * 14 + b"\r\n"
    assert len(at_limit) == 20
    result = feed(at_limit + over + b"NOOP\r\n", core=core)
    assert result.lines == [
        "+OK send PASS",
        "-ERR line too long",
        "-ERR command not valid in this state",
    ]


def test_over_long_line_is_dropped_as_it_arrives() -> None:
    core = make_core(max_line_length=20)
    result = run([b"U" * 50] + [b"x" * 1000] * 50 + [b"\r\nCAPA\r\n"], core=core)
    assert result.lines[0] == "-ERR line too long"
    assert result.lines[1] == "+OK capability list follows"


def test_max_commands(feed) -> None:
    core = make_core(max_commands=4)
    result = feed(LOGIN + lines("NOOP", "NOOP", "NOOP"), core=core)
    assert result.lines[-3:] == ["+OK", "+OK", "-ERR too many commands, closing connection"]
    assert result.closed


def test_max_commands_counts_quit_so_nothing_is_committed(feed) -> None:
    adapter = Adapter()
    core = make_core(max_commands=3)
    result = feed(LOGIN + lines("DELE 1", "QUIT"), core=core, adapter=adapter)
    assert result.lines[-1] == "-ERR too many commands, closing connection"
    assert adapter.commits == []


def test_max_bad_commands(feed) -> None:
    core = make_core(max_bad_commands=2)
    result = feed(lines("BAD1", "STAT", "BAD2", "NOOP"), core=core)
    assert result.lines == [
        "-ERR unknown command",
        "-ERR command not valid in this state",
        "-ERR too many errors, closing connection",
    ]
    assert result.closed


def test_missing_messages_do_not_count_as_errors(feed) -> None:
    core = make_core(max_bad_commands=0)
    result = feed(LOGIN + lines("RETR 9", "LIST 0", "DELE 1", "DELE 1", "STAT"), core=core)
    assert result.lines[-1] == f"+OK 2 {TOTAL - SIZES[0]}"
    assert not result.closed


def test_failed_logins_do_not_count_as_errors(feed) -> None:
    core = make_core(max_bad_commands=0)
    result = feed(
        lines("USER bob", "PASS a", "USER bob", "PASS b", "USER bob", "PASS secret"), core=core
    )
    assert result.lines[-1].startswith("+OK maildrop has")


# -- pipelining (RFC 2449 §6.6) ----------------------------------------------------


def test_rfc2449_6_6_pipelined_commands_answered_in_order() -> None:
    data = LOGIN + lines("STAT", "RETR 1", "DELE 1", "LIST", "UIDL 1", "QUIT")
    result = run([data])
    status = result.status
    assert status == [
        "+OK send PASS",
        f"+OK maildrop has 3 messages ({TOTAL} octets)",
        f"+OK 3 {TOTAL}",
        f"+OK {SIZES[0]} octets",
        "+OK message 1 deleted",
        f"+OK 2 messages ({TOTAL - SIZES[0]} octets)",
        "-ERR message deleted",
        "+OK bye",
    ]


def test_rfc2449_6_6_nothing_read_while_retrieve_awaits() -> None:
    core = make_core()
    run([LOGIN], core=core)
    core.receive_data(lines("RETR 1", "DELE 1", "STAT"))
    assert core.next_event() == Retrieve(0, None)
    assert core.next_event() is AWAITING_REPLY
    core.retrieve_begin(4)
    assert core.next_event() is AWAITING_REPLY
    core.retrieve_chunk(b"ab\r\n")
    core.retrieve_end()
    assert core.next_event() is NEED_DATA
    assert core.data_to_send() == (
        b"+OK 4 octets\r\nab\r\n.\r\n+OK message 1 deleted\r\n"
        + f"+OK 2 {TOTAL - SIZES[0]}\r\n".encode()
    )


# -- adapter misuse ---------------------------------------------------------------------


def test_answers_without_an_event_are_usage_errors() -> None:
    core = make_core()
    for call in (
        lambda: core.login_ok([]),
        lambda: core.login_failed("x"),
        core.login_in_use,
        lambda: core.retrieve_begin(1),
        lambda: core.retrieve_chunk(b"x"),
        core.retrieve_end,
        lambda: core.retrieve_failed("x"),
        lambda: core.commit_done(True, "bye"),
        core.start_tls,
    ):
        with pytest.raises(Pop3UsageError):
            call()


def test_wrong_answer_to_an_event_is_a_usage_error() -> None:
    core = make_core()
    core.receive_data(LOGIN)
    assert isinstance(core.next_event(), Login)
    with pytest.raises(Pop3UsageError):
        core.retrieve_begin(1)
    with pytest.raises(Pop3UsageError):
        core.commit_done(True, "x")
    core.login_ok([DropEntry(1, "u")])


def test_streaming_out_of_order_is_a_usage_error() -> None:
    core = make_core()
    run([LOGIN], core=core)
    core.receive_data(lines("RETR 1"))
    assert isinstance(core.next_event(), Retrieve)
    with pytest.raises(Pop3UsageError):
        core.retrieve_chunk(b"x")
    with pytest.raises(Pop3UsageError):
        core.retrieve_end()
    core.retrieve_begin(1)
    with pytest.raises(Pop3UsageError):
        core.retrieve_begin(1)
    with pytest.raises(Pop3UsageError):
        core.login_ok([])


def test_greeting_twice_is_a_usage_error() -> None:
    with pytest.raises(Pop3UsageError):
        make_core().greeting()


def test_invalid_adapter_text_changes_nothing() -> None:
    core = make_core()
    core.receive_data(LOGIN)
    assert isinstance(core.next_event(), Login)
    with pytest.raises(ValueError):
        core.login_failed("line\r\n+OK injected")
    with pytest.raises(ValueError):
        core.login_failed("x", code="bad code")
    core.login_failed("ok now")
    assert core.data_to_send().endswith(b"-ERR [AUTH] ok now\r\n")


def test_after_close_answers_are_usage_errors() -> None:
    core = make_core()
    run([LOGIN + lines("QUIT")], core=core)
    assert core.next_event() is CLOSED
    with pytest.raises(Pop3UsageError):
        core.commit_done(True, "again")


def test_commit_is_awaited_once() -> None:
    core = make_core()
    run([LOGIN], core=core)
    core.receive_data(lines("QUIT"))
    assert core.next_event() == Commit(())
    core.commit_done(True, "bye")
    with pytest.raises(Pop3UsageError):
        core.commit_done(True, "bye")


@pytest.mark.parametrize(
    "kwargs",
    [{"max_line_length": 15}, {"max_auth_line": 3}, {"max_commands": 0}, {"max_bad_commands": -1}],
)
def test_limits_validation(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Pop3Limits(**kwargs)


def test_config_validation() -> None:
    for bad in ("", "two words", "tab\there"):
        with pytest.raises(ValueError):
            Pop3ServerConfig(bad)
    with pytest.raises(ValueError):
        Pop3Features(sasl_mechanisms=("CRAM-MD5",))
    with pytest.raises(ValueError):
        Pop3Features(implementation="a\r\nb")
