"""The AUTHORIZATION state: greeting, USER/PASS (RFC 1939 §4, §7), response
codes (RFC 2449 §8, RFC 3206), QUIT before login, CAPA (RFC 2449 §5)."""

from __future__ import annotations

import pytest

from mailyard.proto.pop3 import (
    AWAITING_REPLY,
    CLOSED,
    Commit,
    ConnectionClosed,
    Login,
    State,
)
from tests.proto.pop3.helpers import (
    HOSTNAME,
    LOGIN,
    TOTAL,
    Adapter,
    lines,
    make_core,
    run,
)


def test_rfc1939_4_greeting() -> None:
    core = make_core(greet=False)
    core.greeting()
    assert core.data_to_send() == f"+OK {HOSTNAME} POP3 server ready\r\n".encode()
    assert core.state is State.AUTHORIZATION


def test_rfc1939_7_user_pass_login(feed) -> None:
    result = feed(LOGIN + lines("STAT"))
    assert result.events == [Login("bob", "secret", "USER")]
    assert result.lines == [
        "+OK send PASS",
        f"+OK maildrop has 3 messages ({TOTAL} octets)",
        f"+OK 3 {TOTAL}",
    ]


def test_rfc1939_7_login_enters_transaction() -> None:
    core = make_core()
    run([LOGIN], core=core)
    assert core.state is State.TRANSACTION


def test_rfc1939_7_pass_may_contain_spaces(feed) -> None:
    adapter = Adapter(users={"bob": " my  secret pass "})
    result = feed(b"USER bob\r\nPASS  my  secret pass \r\n", adapter=adapter)
    assert result.events == [Login("bob", " my  secret pass ", "USER")]
    assert result.lines[-1].startswith("+OK maildrop has")


def test_rfc1939_7_user_answer_does_not_reveal_unknown_names(feed) -> None:
    result = feed(lines("USER bob", "USER nobody-here"))
    assert result.lines == ["+OK send PASS", "+OK send PASS"]


def test_rfc1939_7_pass_without_user(feed) -> None:
    result = feed(lines("PASS secret"))
    assert result.lines == ["-ERR send USER first"]
    assert result.events == []


def test_rfc1939_7_pass_only_right_after_user(feed) -> None:
    result = feed(lines("USER bob", "CAPA", "PASS secret"))
    assert result.lines[-1] == "-ERR send USER first"
    assert not result.events


def test_rfc1939_7_user_without_pass_then_again(feed) -> None:
    result = feed(lines("USER alice", "USER bob", "PASS secret"))
    assert result.events == [Login("bob", "secret", "USER")]


def test_rfc1939_7_failed_login_may_be_retried(feed) -> None:
    result = feed(lines("USER bob", "PASS wrong", "PASS secret", "USER bob", "PASS secret"))
    assert result.lines == [
        "+OK send PASS",
        "-ERR [AUTH] authentication failed",  # RFC 3206 §4: AUTH code
        "-ERR send USER first",  # the failed PASS used up the USER
        "+OK send PASS",
        f"+OK maildrop has 3 messages ({TOTAL} octets)",
    ]


def test_rfc3206_sys_temp_code(feed) -> None:
    adapter = Adapter(users={"broken": "x"})
    result = feed(lines("USER broken", "PASS x"), adapter=adapter)
    assert result.lines[-1] == "-ERR [SYS/TEMP] mailbox unavailable; try again later"


def test_rfc2449_8_1_1_in_use(feed) -> None:
    result = feed(lines("USER locked", "PASS secret", "USER bob", "PASS secret"))
    assert result.lines[1] == "-ERR [IN-USE] maildrop already in use"
    assert result.lines[-1].startswith("+OK maildrop has")  # still AUTHORIZATION


def test_login_failed_without_code() -> None:
    core = make_core()
    core.receive_data(LOGIN)
    assert isinstance(core.next_event(), Login)
    core.login_failed("no", code=None)
    assert core.data_to_send().endswith(b"-ERR no\r\n")
    assert core.state is State.AUTHORIZATION


def test_rfc1939_6_quit_in_authorization_ends_without_update(feed) -> None:
    result = feed(lines("USER bob", "QUIT", "NOOP"))
    assert result.lines[-1] == f"+OK {HOSTNAME} POP3 server signing off"
    assert result.closed
    assert not any(isinstance(e, Commit) for e in result.events)


def test_input_after_quit_is_ignored() -> None:
    core = make_core()
    result = run([lines("QUIT"), lines("USER bob")], core=core)
    assert result.lines == [f"+OK {HOSTNAME} POP3 server signing off"]
    core.receive_data(b"NOOP\r\n")
    assert core.next_event() is CLOSED
    assert core.data_to_send() == b""
    assert core.state is State.CLOSED


def test_rfc1939_6_eof_before_login() -> None:
    result = run([lines("USER bob"), b""])
    assert result.events == [ConnectionClosed()]
    assert result.closed


def test_user_pass_disabled(feed) -> None:
    core = make_core(user_pass=False)
    result = feed(lines("USER bob", "PASS secret", "CAPA"), core=core)
    assert result.lines[:2] == ["-ERR command not available"] * 2
    assert "USER" not in result.lines


def test_password_not_in_repr() -> None:
    assert "secret" not in repr(Login("bob", "secret", "USER"))


# -- CAPA (RFC 2449 §5, §6) ----------------------------------------------------------


def test_rfc2449_5_capa_before_login(feed) -> None:
    result = feed(lines("CAPA"))
    assert result.lines == [
        "+OK capability list follows",
        "USER",
        "SASL PLAIN LOGIN",
        "STLS",
        "TOP",
        "UIDL",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        "PIPELINING",
        "IMPLEMENTATION mailyard",
        ".",
    ]


def test_rfc2449_5_capa_after_login_drops_login_capabilities(feed) -> None:
    result = feed(LOGIN + lines("CAPA"))
    caps = result.lines[3:-1]
    assert "USER" not in caps and "STLS" not in caps
    assert not any(c.startswith("SASL") for c in caps)
    assert {"TOP", "UIDL", "PIPELINING", "RESP-CODES"} <= set(caps)


def test_capa_defaults_of_the_plain_listener() -> None:
    core = make_core(stls=False, sasl_mechanisms=("PLAIN",), implementation="")
    result = run([lines("CAPA")], core=core)
    assert result.lines[1:3] == ["USER", "SASL PLAIN"]
    assert "STLS" not in result.lines
    assert not any(c.startswith("IMPLEMENTATION") for c in result.lines)


def test_capa_with_argument_is_a_syntax_error(feed) -> None:
    assert feed(lines("CAPA now")).lines == ["-ERR syntax error"]


@pytest.mark.parametrize("verb", ["USER bob", "PASS x", "AUTH PLAIN", "STLS"])
def test_login_commands_after_login_are_refused(feed, verb: str) -> None:
    result = feed(LOGIN + lines(verb))
    assert result.lines[-1] == "-ERR command not valid in this state"
    assert len(result.events) == 1


def test_login_answer_awaited_before_reading_on() -> None:
    core = make_core()
    core.receive_data(LOGIN + lines("STAT"))
    assert isinstance(core.next_event(), Login)
    assert core.next_event() is AWAITING_REPLY
    assert core.data_to_send() == b"+OK send PASS\r\n"  # STAT not read yet
    core.login_ok([])
    assert core.next_event() is not AWAITING_REPLY
    assert core.data_to_send() == b"+OK maildrop has 0 messages (0 octets)\r\n+OK 0 0\r\n"
