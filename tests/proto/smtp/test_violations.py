"""Abuse the SMTP core records for its adapter to log (issue 7's hostile
drill): bytes in, the reply and the recorded ``Violation`` out. Each kind
is recorded once per connection, however often the client repeats it.

Also here: the shared buffer's part of it (proto/buffer.py: ``discarded``,
``runaway``, ``Violations``), which every core relies on.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailyard.proto.buffer import RUNAWAY_SLACK, TOO_LONG, LineBuffer, Violation, Violations
from mailyard.proto.smtp import NEED_DATA, DataChunk, Reset, SmtpServer
from tests.proto.smtp.helpers import make_core, run

EHLO = b"EHLO client.example\r\n"
MAIL = b"MAIL FROM:<sender@example.org>\r\n"
RCPT = b"RCPT TO:<alice@example.test>\r\n"
TX = EHLO + MAIL + RCPT
LIMIT = 100  # make_core's max_command_line
TEN_GB = 10 * 1024**3


def chunks(data: bytes, size: int = 65536) -> list[bytes]:
    return [data[at : at + size] for at in range(0, len(data), size)]


def recorded(core: SmtpServer) -> tuple[Violation, ...]:
    return core.take_violations()


# -- the shared buffer -------------------------------------------------------------


def test_buffer_counts_what_an_over_long_line_drops() -> None:
    buf = LineBuffer()
    buf.append(b"x" * 50)
    assert buf.next_line(10) is None
    assert buf.discarded == 50 and not buf.runaway
    buf.append(b"y" * RUNAWAY_SLACK)
    assert buf.discarded == 50 + RUNAWAY_SLACK
    assert buf.runaway  # past limit (10) + slack
    buf.append(b"end\r\nnext\r\n")
    assert buf.discarded == 0 and not buf.runaway
    assert buf.next_line(10) is TOO_LONG
    assert buf.next_line(10) == b"next"


def test_buffer_runaway_is_relative_to_the_limit() -> None:
    buf = LineBuffer()
    buf.append(b"z" * (1000 + RUNAWAY_SLACK))
    assert buf.next_line(1000) is None
    assert not buf.runaway  # exactly the slack past the limit: still in bounds
    buf.append(b"z")
    assert buf.runaway
    buf.clear()
    assert buf.discarded == 0 and not buf.runaway


def test_buffer_line_within_the_limit_is_never_runaway() -> None:
    buf = LineBuffer()
    buf.append(b"a" * 9)
    assert buf.next_line(10) is None
    assert buf.discarded == 0 and not buf.runaway


def test_violations_keep_each_kind_once() -> None:
    seen = Violations()
    seen.record(Violation.LINE_TOO_LONG)
    seen.record(Violation.UNKNOWN_COMMAND)
    seen.record(Violation.LINE_TOO_LONG)
    assert seen.take() == (Violation.LINE_TOO_LONG, Violation.UNKNOWN_COMMAND)
    seen.record(Violation.LINE_TOO_LONG)
    assert seen.take() == ()
    seen.record(Violation.TOO_MANY_ERRORS)
    assert seen.take() == (Violation.TOO_MANY_ERRORS,)


# -- over-long lines -------------------------------------------------------------------


def test_over_long_lines_are_answered_in_order_and_recorded_once() -> None:
    core = make_core(max_bad_commands=10)
    long_line = b"NOOP " + b"a" * 500 + b"\r\n"
    result = run([long_line * 3 + b"NOOP\r\n"], core=core)
    assert result.lines == ["500 5.5.2 line too long"] * 3 + ["250 2.0.0 OK"]
    assert recorded(core) == (Violation.LINE_TOO_LONG,)
    assert recorded(core) == ()  # taken


def test_long_line_ending_within_the_bound_keeps_the_session() -> None:
    core = make_core()
    data = b"NOOP " + b"x" * (LIMIT + RUNAWAY_SLACK - 10) + b"\r\nNOOP\r\n"
    result = run(chunks(data), core=core)
    assert result.lines == ["500 5.5.2 line too long", "250 2.0.0 OK"]
    assert not result.closed


def test_runaway_line_is_answered_at_once_and_closed() -> None:
    core = make_core()
    first = run([b"NOOP\r\n", *chunks(b"A" * (LIMIT + RUNAWAY_SLACK))], core=core)
    # Silence up to the bound: the line may still end and be answered in order.
    assert first.lines == ["250 2.0.0 OK"] and not first.closed
    assert core.next_event() is NEED_DATA
    more = run([b"A"], core=core)
    assert more.lines == ["500 5.5.2 line too long",
                          "421 4.7.0 line too long, closing connection"]
    assert more.closed
    assert recorded(core) == (Violation.LINE_TOO_LONG,)


def test_runaway_ten_megabytes_without_newline() -> None:
    core = make_core()
    result = run(chunks(b"A" * (10 << 20)), core=core)
    assert result.closed
    assert result.codes == ["500", "421"]


def test_runaway_auth_response_closes_too() -> None:
    core = make_core()
    result = run([EHLO + b"AUTH PLAIN\r\n", *chunks(b"Q" * (LIMIT + RUNAWAY_SLACK + 1))],
                 core=core)
    assert result.codes[-3:] == ["334", "500", "421"]
    assert result.closed


def test_long_content_line_is_recorded() -> None:
    core = make_core()
    result = run([TX + b"DATA\r\n" + b"x" * 200 + b"\r\n.\r\nQUIT\r\n"], core=core)
    assert "554" in result.codes
    assert recorded(core) == (Violation.LINE_TOO_LONG,)


# -- limits per connection ---------------------------------------------------------------


def test_too_many_commands_is_recorded() -> None:
    core = make_core(max_commands=3)
    result = run([b"NOOP\r\n" * 5], core=core)
    assert result.closed
    assert recorded(core) == (Violation.TOO_MANY_COMMANDS,)


def test_unknown_commands_then_too_many_errors() -> None:
    core = make_core(max_bad_commands=3)
    result = run([b"GET / HTTP/1.1\r\n" * 5], core=core)
    assert result.codes == ["500", "500", "500", "421"]
    assert recorded(core) == (Violation.UNKNOWN_COMMAND, Violation.TOO_MANY_ERRORS)


def test_sequence_errors_alone_are_not_abuse() -> None:
    core = make_core()
    run([EHLO + RCPT + b"DATA\r\n"], core=core)
    assert recorded(core) == ()


def test_an_ordinary_transaction_records_nothing() -> None:
    core = make_core()
    result = run([TX + b"DATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n"], core=core)
    assert result.codes[-2:] == ["250", "221"]
    assert recorded(core) == ()


# -- message size (RFC 1870, RFC 3030) -------------------------------------------------------


def test_size_parameter_over_the_limit() -> None:
    core = make_core()
    result = run([EHLO + b"MAIL FROM:<a@example.org> SIZE=10737418240\r\n"], core=core)
    assert result.lines[-1] == "552 5.3.4 message size exceeds fixed maximum message size"
    assert not result.closed
    assert recorded(core) == (Violation.MESSAGE_TOO_BIG,)


def test_data_over_the_limit() -> None:
    core = make_core(max_message_size=1000)
    body = (b"y" * 50 + b"\r\n") * 40
    result = run([TX + b"DATA\r\n" + body + b".\r\nNOOP\r\n"], core=core)
    assert result.codes[-2:] == ["552", "250"]
    assert recorded(core) == (Violation.MESSAGE_TOO_BIG,)


def test_bdat_ten_gigabytes_is_refused_at_once_and_closed() -> None:
    core = make_core()
    result = run([TX + f"BDAT {TEN_GB} LAST\r\n".encode(), b"y" * 65536], core=core)
    assert result.lines[-2:] == [
        "552 5.3.4 message size exceeds fixed maximum message size",
        "421 4.7.0 chunk too big to skip, closing connection",
    ]
    assert result.closed
    assert Reset() in result.events  # the adapter drops the transaction
    assert recorded(core) == (Violation.MESSAGE_TOO_BIG,)


def test_bdat_too_big_after_a_first_chunk() -> None:
    core = make_core()
    result = run([TX + b"BDAT 5\r\nhello" + f"BDAT {TEN_GB} LAST\r\n".encode()], core=core)
    assert result.codes[-3:] == ["250", "552", "421"]
    assert DataChunk(b"hello") in result.events
    assert result.events[-1] == Reset()
    assert result.closed


def test_small_bdat_chunk_over_the_limit_is_still_read_through() -> None:
    # RFC 3030 §2: a chunk cheap to skip is consumed, and the session goes on.
    core = make_core()
    result = run([TX + b"BDAT 10001 LAST\r\n" + b"x" * 10001 + b"NOOP\r\n"], core=core)
    assert result.codes[-2:] == ["552", "250"]
    assert not result.closed
    assert recorded(core) == (Violation.MESSAGE_TOO_BIG,)


def test_refused_bdat_too_big_to_skip_closes() -> None:
    core = make_core()
    result = run([EHLO + f"BDAT {TEN_GB}\r\n".encode()], core=core)
    assert result.codes[-2:] == ["503", "421"]
    assert result.closed


def test_refused_small_bdat_is_skipped() -> None:
    core = make_core()
    result = run([EHLO + b"BDAT 3\r\nabcNOOP\r\n"], core=core)
    assert result.codes[-2:] == ["503", "250"]


# -- properties ------------------------------------------------------------------------------

_LINES = st.sampled_from([
    b"NOOP", b"BOGUS", b"RCPT TO:<a@example.test>", b"MAIL FROM:<s@example.org> SIZE=99999999",
    b"X" * 300, b"EHLO c.example", b"MAIL FROM:<s@example.org>", b"BDAT 20000 LAST", b"",
])


@settings(max_examples=200, deadline=None)
@given(st.lists(_LINES, max_size=60), st.integers(1, 64))
def test_each_kind_comes_out_once_per_connection(lines: list[bytes], cut: int) -> None:
    core = make_core()
    taken: list[Violation] = []
    data = b"".join(line + b"\r\n" for line in lines)
    for piece in chunks(data, cut):
        run([piece], core=core)
        taken += core.take_violations()
    assert len(taken) == len(set(taken))
