"""Abuse the IMAP core records for its adapter to log (issue 7's hostile
drill): bytes in, the response and the recorded ``Violation`` out, each
kind once per connection."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailyard.proto.buffer import RUNAWAY_SLACK, Violation
from mailyard.proto.imap.events import NEED_DATA
from tests.proto.imap.helpers import LOGIN, SELECT, lines, make_core, run, tagged

TEN_GB = 10 * 1024**3


def chunks(data: bytes, size: int = 65536) -> list[bytes]:
    return [data[at : at + size] for at in range(0, len(data), size)]


def test_runaway_line_is_answered_at_once_and_closed() -> None:
    core = make_core(max_line_length=1024)
    first = run(chunks(b"a NOOP " + b"x" * (1024 + RUNAWAY_SLACK - 7)), core=core)
    assert first.lines == [] and not first.closed  # the line may still end
    assert core.next_event() is NEED_DATA
    more = run([b"x"], core=core)
    assert more.lines == ["* BYE [TOOBIG] Command line too long"]
    assert more.closed
    assert core.take_violations() == (Violation.LINE_TOO_LONG,)


def test_runaway_ten_megabytes_without_newline() -> None:
    core = make_core()
    result = run(chunks(b"A" * (10 << 20)), core=core)
    assert result.lines == ["* BYE [TOOBIG] Command line too long"]
    assert core.take_violations() == (Violation.LINE_TOO_LONG,)


def test_runaway_while_idling() -> None:
    core = make_core(max_line_length=1024)
    result = run([SELECT + lines("i IDLE"), *chunks(b"D" * (1024 + RUNAWAY_SLACK + 1))],
                 core=core)
    assert result.lines[-1] == "* BYE [TOOBIG] Command line too long"
    assert core.take_violations() == (Violation.LINE_TOO_LONG,)


def test_over_long_line_that_ends() -> None:
    core = make_core(max_line_length=1024)
    result = run([b"a NOOP " + b"x" * 2000 + b"\r\n"], core=core)
    assert result.lines == ["* BYE [TOOBIG] Command line too long"]
    assert core.take_violations() == (Violation.LINE_TOO_LONG,)


def test_over_long_sasl_response() -> None:
    core = make_core(max_auth_line=64)
    run([b"a AUTHENTICATE PLAIN\r\n" + b"A" * 80 + b"\r\nb NOOP\r\n"], core=core)
    assert core.take_violations() == (Violation.LINE_TOO_LONG,)


def test_garbage_and_unknown_commands_then_too_many_errors() -> None:
    core = make_core(max_bad_commands=3)
    result = run([lines("GET / HTTP/1.1", "a BOGUS", "\x01\x02", "* x", "b NOOP")], core=core)
    assert result.lines[-1] == "* BYE Too many invalid commands"
    assert core.take_violations() == (Violation.UNKNOWN_COMMAND, Violation.TOO_MANY_ERRORS)


def test_too_many_commands() -> None:
    core = make_core(max_commands=3)
    result = run([lines("a NOOP", "b NOOP", "c NOOP", "d NOOP")], core=core)
    assert result.lines[-1] == "* BYE Too many commands"
    assert core.take_violations() == (Violation.TOO_MANY_COMMANDS,)


def test_literal_too_big() -> None:
    core = make_core(max_literal_size=100)
    result = run([b"a LOGIN {101}\r\nb NOOP\r\n"], core=core)
    assert result.lines == ["a BAD [TOOBIG] literal too large", "b OK NOOP completed"]
    assert core.take_violations() == (Violation.LITERAL_TOO_BIG,)


def test_non_sync_literal_too_big_to_skip() -> None:
    core = make_core(max_discard=1000, max_literal_size=10)
    result = run([b"a LOGIN {1001+}\r\n"], core=core)
    assert result.closed
    assert core.take_violations() == (Violation.LITERAL_TOO_BIG,)


def test_append_of_ten_gigabytes() -> None:
    core = make_core()
    result = run([LOGIN + f"a APPEND INBOX {{{TEN_GB}}}\r\nb NOOP\r\n".encode()], core=core)
    assert result.lines[-2:] == ["a NO [TOOBIG] message too large", "b OK NOOP completed"]
    assert core.take_violations() == (Violation.MESSAGE_TOO_BIG,)
    result = run([f"c APPEND INBOX {{{TEN_GB}+}}\r\n".encode() + b"x" * 1000], core=core)
    assert result.lines[-1] == "* BYE [TOOBIG] Literal too large to skip"
    # message_too_big was logged already on this connection; the BYE is new.
    assert core.take_violations() == (Violation.LITERAL_TOO_BIG,)


def test_nesting_too_deep_in_search_fetch_and_id() -> None:
    deep = b"(" * 20_000 + b"ALL" + b")" * 20_000
    for command in (b"f FETCH 1 ", b"g SEARCH ", b"h ID "):
        core = make_core()
        result = run([SELECT + command + deep + b"\r\nz NOOP\r\n"], core=core)
        tag = command[:1].decode()
        assert tagged(result, tag).startswith(f"{tag} BAD")
        assert tagged(result, "z") == "z OK NOOP completed"
        assert core.take_violations() == (Violation.NESTING_TOO_DEEP,), command


def test_nesting_within_the_limit_or_quoted_is_no_abuse() -> None:
    core = make_core(max_depth=3)
    run([SELECT + lines("a SEARCH (((ALL)))", "b FETCH 1 (((FLAGS)))",
                        'c SEARCH SUBJECT "((((((((((((" BOGUS')], core=core)  # fmt: skip
    assert core.take_violations() == ()


def test_an_ordinary_session_records_nothing() -> None:
    core = make_core()
    result = run([SELECT + lines("a FETCH 1:* (FLAGS)", "b SEARCH ALL", "c LOGOUT")], core=core)
    assert result.closed
    assert core.take_violations() == ()


_LINES = st.sampled_from(["a NOOP", "a BOGUS", "junk", "a LOGIN {999999}", "a SEARCH " + "(" * 40,
                          "L LOGIN bob secret", "a SELECT INBOX", "", "a FETCH 1 (((x)))"])


@settings(max_examples=200, deadline=None)
@given(st.lists(_LINES, max_size=60), st.integers(1, 64))
def test_each_kind_comes_out_once_per_connection(commands: list[str], cut: int) -> None:
    core = make_core()
    taken: list[Violation] = []
    for piece in chunks(lines(*commands), cut):
        run([piece], core=core)
        taken += core.take_violations()
    assert len(taken) == len(set(taken))
