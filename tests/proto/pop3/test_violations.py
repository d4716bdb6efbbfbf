"""Abuse the POP3 core records for its adapter to log (issue 7's hostile
drill): bytes in, the response and the recorded ``Violation`` out, each
kind once per connection."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailyard.proto.buffer import RUNAWAY_SLACK, Violation
from mailyard.proto.pop3 import NEED_DATA
from tests.proto.pop3.helpers import LOGIN, lines, make_core, run

LIMIT = 100  # make_core's max_line_length
AUTH_LIMIT = 300  # and max_auth_line


def chunks(data: bytes, size: int = 65536) -> list[bytes]:
    return [data[at : at + size] for at in range(0, len(data), size)]


def test_over_long_lines_are_answered_in_order_and_recorded_once() -> None:
    core = make_core(max_bad_commands=10)
    result = run([(b"NOOP " + b"a" * 300 + b"\r\n") * 3 + lines("QUIT")], core=core)
    assert result.status == ["-ERR line too long"] * 3 + [
        "+OK pop.example.test POP3 server signing off"]
    assert core.take_violations() == (Violation.LINE_TOO_LONG,)
    assert core.take_violations() == ()


def test_long_line_ending_within_the_bound_keeps_the_session() -> None:
    core = make_core()
    data = b"N" * (LIMIT + RUNAWAY_SLACK - 5) + b"\r\n" + lines("CAPA")
    result = run(chunks(data), core=core)
    assert result.status[:2] == ["-ERR line too long", "+OK capability list follows"]
    assert not result.closed


def test_runaway_line_is_answered_at_once_and_closed() -> None:
    core = make_core()
    first = run(chunks(b"A" * (LIMIT + RUNAWAY_SLACK)), core=core)
    assert first.lines == [] and not first.closed  # the line may still end
    assert core.next_event() is NEED_DATA
    more = run([b"A"], core=core)
    assert more.lines == ["-ERR line too long"]
    assert more.closed
    assert core.take_violations() == (Violation.LINE_TOO_LONG,)


def test_runaway_ten_megabytes_without_newline() -> None:
    result = run(chunks(b"A" * (10 << 20)))
    assert result.lines == ["-ERR line too long"]
    assert result.closed


def test_runaway_sasl_response_closes_too() -> None:
    core = make_core()
    result = run([lines("AUTH PLAIN"), *chunks(b"Q" * (AUTH_LIMIT + RUNAWAY_SLACK + 1))],
                 core=core)
    assert result.lines == ["+ ", "-ERR line too long"]
    assert result.closed


def test_too_many_commands_is_recorded() -> None:
    core = make_core(max_commands=3)
    result = run([lines("CAPA", "CAPA", "CAPA", "CAPA")], core=core)
    assert result.status[-1] == "-ERR too many commands, closing connection"
    assert result.closed
    assert core.take_violations() == (Violation.TOO_MANY_COMMANDS,)


def test_unknown_commands_then_too_many_errors() -> None:
    core = make_core(max_bad_commands=3)
    result = run([lines(*["GET / HTTP/1.1"] * 5)], core=core)
    assert result.status == ["-ERR unknown command"] * 3 + [
        "-ERR too many errors, closing connection"]
    assert core.take_violations() == (Violation.UNKNOWN_COMMAND, Violation.TOO_MANY_ERRORS)


def test_wrong_state_and_missing_messages_are_not_abuse() -> None:
    core = make_core()
    run([lines("STAT", "PASS x") + LOGIN + lines("RETR 9", "DELE 1", "DELE 1", "QUIT")],
        core=core)
    assert core.take_violations() == ()


_LINES = st.sampled_from(["NOOP", "BOGUS", "STAT", "USER bob", "PASS secret", "X" * 300,
                          "RETR 1", "CAPA", ""])


@settings(max_examples=200, deadline=None)
@given(st.lists(_LINES, max_size=60), st.integers(1, 64))
def test_each_kind_comes_out_once_per_connection(commands: list[str], cut: int) -> None:
    core = make_core()
    taken: list[Violation] = []
    for piece in chunks(lines(*commands), cut):
        run([piece], core=core)
        taken += core.take_violations()
    assert len(taken) == len(set(taken))
