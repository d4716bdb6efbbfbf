"""SmtpServer core: bytes in, events and bytes out; one test per RFC rule.

Every scenario run through ``feed`` is replayed whole and byte by byte; the
hypothesis test at the end replays them split at random points.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailyard.message.address import Address
from mailyard.proto.smtp import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    ConnectionClosed,
    DataAborted,
    DataChunk,
    DataEnd,
    DataStart,
    Hello,
    MailFrom,
    Phase,
    RcptTo,
    Reply,
    Reset,
    SmtpServer,
    SmtpUsageError,
    State,
)
from tests.proto.smtp.helpers import (
    HOSTNAME,
    Result,
    accept_policy,
    make_core,
    run,
)
from tests.proto.splitting import SPLITTERS, split_at

EHLO = b"EHLO client.example\r\n"
MAIL = b"MAIL FROM:<sender@example.org>\r\n"
RCPT = b"RCPT TO:<alice@example.test>\r\n"
TX = EHLO + MAIL + RCPT


@pytest.fixture(params=sorted(SPLITTERS))
def feed(request: pytest.FixtureRequest):
    """feed(data, core=None, policy=...) -> Result, in each split mode."""
    splitter = SPLITTERS[request.param]

    def _feed(data: bytes, **kwargs: object) -> Result:
        return run(splitter(data), **kwargs)  # type: ignore[arg-type]

    return _feed


def of_type(result: Result, kind: type) -> list[object]:
    return [e for e in result.events if isinstance(e, kind)]


# -- greeting, EHLO/HELO (RFC 5321 §4.1.1.1, §4.3.1) ---------------------------------


def test_rfc5321_4_3_1_greeting() -> None:
    core = make_core(greet=False)
    core.greeting()
    assert core.data_to_send() == f"220 {HOSTNAME} ESMTP mailyard\r\n".encode()
    with pytest.raises(SmtpUsageError):
        core.greeting()


def test_rfc5321_4_1_1_1_ehlo_advertises_extensions(feed) -> None:
    result = feed(EHLO)
    assert result.events == [Hello("client.example", True)]
    assert result.lines == [
        f"250-{HOSTNAME}",
        "250-PIPELINING",
        "250-8BITMIME",
        "250-SIZE 10000",
        "250-ENHANCEDSTATUSCODES",
        "250-SMTPUTF8",
        "250-CHUNKING",
        "250-BINARYMIME",
        "250-STARTTLS",
        "250 AUTH PLAIN LOGIN",
    ]


def test_ehlo_omits_features_not_offered(feed) -> None:
    core = make_core(starttls=False, auth_mechanisms=(), chunking=False, smtputf8=False)
    result = feed(EHLO, core=core)
    assert result.lines == [
        f"250-{HOSTNAME}",
        "250-PIPELINING",
        "250-8BITMIME",
        "250-SIZE 10000",
        "250 ENHANCEDSTATUSCODES",
    ]


def test_rfc5321_4_1_1_1_helo_has_no_extensions(feed) -> None:
    result = feed(b"HELO client.example\r\n")
    assert result.events == [Hello("client.example", False)]
    assert result.lines == [f"250 {HOSTNAME}"]


@pytest.mark.parametrize("line", [b"EHLO\r\n", b"EHLO \r\n", b"HELO a b\r\n"])
def test_rfc5321_4_1_1_1_hello_needs_one_argument(feed, line: bytes) -> None:
    result = feed(line)
    assert result.events == []
    assert result.lines == ["501 5.5.4 syntax: EHLO domain"]


def test_refused_hello_keeps_state(feed) -> None:
    def policy(event):
        return Reply(550, "5.7.1", "go away") if isinstance(event, Hello) else None

    result = feed(EHLO + MAIL, policy=policy)
    assert result.codes == ["550", "503"]


def test_rfc5321_4_1_4_ehlo_in_transaction_resets(feed) -> None:
    result = feed(TX + EHLO + b"DATA\r\n")
    assert result.normalized()[-2:] == [Reset(), Hello("client.example", True)]
    assert result.codes[-1] == "503"  # the transaction is gone


# -- MAIL / RCPT (RFC 5321 §4.1.1.2, §4.1.1.3) -----------------------------------------


def test_basic_transaction(feed) -> None:
    body = b"Subject: hi\r\n\r\nhello\r\n"
    result = feed(TX + b"DATA\r\n" + body + b".\r\nQUIT\r\n")
    assert result.normalized() == [
        Hello("client.example", True),
        MailFrom(Address("sender", "example.org"), {}),
        RcptTo(Address("alice", "example.test"), {}),
        DataStart(bdat=False),
        DataChunk(body),
        DataEnd(),
    ]
    assert result.codes == ["250", "250", "250", "354", "250", "221"]
    assert result.lines[-1] == f"221 2.0.0 {HOSTNAME} closing connection"
    assert result.closed


def test_rfc5321_4_1_4_mail_before_ehlo_503(feed) -> None:
    result = feed(MAIL)
    assert result.lines == ["503 5.5.1 send EHLO/HELO first"]


def test_rfc5321_4_5_5_null_reverse_path(feed) -> None:
    result = feed(EHLO + b"MAIL FROM:<> BODY=8BITMIME\r\n")
    assert result.events[-1] == MailFrom(None, {"BODY": "8BITMIME"})


def test_rfc5321_4_1_1_3_rcpt_before_mail_503(feed) -> None:
    result = feed(EHLO + RCPT)
    assert result.lines[-1] == "503 5.5.1 need MAIL command"


def test_rfc5321_4_1_4_nested_mail_503(feed) -> None:
    result = feed(EHLO + MAIL + MAIL)
    assert result.lines[-1] == "503 5.5.1 nested MAIL command"


def test_rfc5321_4_5_1_postmaster_without_domain(feed) -> None:
    result = feed(EHLO + MAIL + b"RCPT TO:<Postmaster>\r\n")
    assert result.events[-1] == RcptTo(Address("postmaster", HOSTNAME), {})


def test_rfc5321_4_1_1_3_source_route_is_ignored(feed) -> None:
    result = feed(EHLO + MAIL + b"RCPT TO:<@relay.example:alice@example.test>\r\n")
    assert result.events[-1] == RcptTo(Address("alice", "example.test"), {})


def test_lenient_space_after_colon(feed) -> None:
    result = feed(EHLO + b"mail from: <a@example.org>\r\n")
    assert result.events[-1] == MailFrom(Address("a", "example.org"), {})


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"MAIL FROM:a@example.org\r\n", "501 5.5.4 syntax: MAIL FROM:<address> [parameters]"),
        (b"MAIL TO:<a@example.org>\r\n", "501 5.5.4 syntax: MAIL FROM:<address> [parameters]"),
        (b"MAIL FROM:<a@example.org>X\r\n", "501 5.5.4 syntax: MAIL FROM:<address> [parameters]"),
        (b"MAIL FROM:<a@@example.org>\r\n", None),
        (b"MAIL FROM:<a@example.org> FOO=bar\r\n", "555 5.5.4 unsupported MAIL/RCPT parameter"),
        (b"MAIL FROM:<a@example.org> SIZE=1 SIZE=2\r\n", "501 5.5.4 duplicate ESMTP parameter"),
        (b"MAIL FROM:<a@example.org> =x\r\n", "501 5.5.4 malformed ESMTP parameter"),
        (b"MAIL FROM:<a@example.org> BODY=foo\r\n", None),
    ],
)
def test_rfc5321_4_1_2_mail_syntax_errors(feed, line: bytes, reply: str | None) -> None:
    result = feed(EHLO + line)
    assert len(result.events) == 1
    if reply is None:
        assert result.lines[-1].startswith("501 5.")
    else:
        assert result.lines[-1] == reply


def test_rfc3463_bad_address_codes(feed) -> None:
    result = feed(EHLO + b"MAIL FROM:<a..b@example.org>\r\n" + MAIL + b"RCPT TO:<x@-bad->\r\n")
    assert result.lines[-3].startswith("501 5.1.7 bad sender address")
    assert result.lines[-1].startswith("501 5.1.3 bad recipient address")


def test_rfc5321_4_1_2_rcpt_params_not_offered_555(feed) -> None:
    result = feed(EHLO + MAIL + b"RCPT TO:<alice@example.test> NOTIFY=NEVER\r\n")
    assert result.lines[-1] == "555 5.5.4 unsupported MAIL/RCPT parameter"


def test_rfc1870_size_param_at_limit_and_over(feed) -> None:
    result = feed(EHLO + b"MAIL FROM:<a@example.org> SIZE=10000\r\nRSET\r\n"
                  b"MAIL FROM:<a@example.org> size=10001\r\n"
                  b"MAIL FROM:<a@example.org> SIZE=99999999999999999999999\r\n")
    assert result.events[1] == MailFrom(Address("a", "example.org"), {"SIZE": "10000"})
    assert result.lines[-2:] == [
        "552 5.3.4 message size exceeds fixed maximum message size",
        "552 5.3.4 message size exceeds fixed maximum message size",
    ]


@pytest.mark.parametrize("param", [b"SIZE", b"SIZE=", b"SIZE=12a", b"SIZE=-1"])
def test_rfc1870_size_param_malformed(feed, param: bytes) -> None:
    result = feed(EHLO + b"MAIL FROM:<a@example.org> " + param + b"\r\n")
    assert result.lines[-1].startswith("501 5.5.4")


def test_rfc6152_rfc3030_body_param(feed) -> None:
    result = feed(
        EHLO
        + b"MAIL FROM:<a@example.org> BODY=7bit\r\nRSET\r\n"
        + b"MAIL FROM:<a@example.org> BODY=BINARYMIME\r\n"
        + RCPT
        + b"DATA\r\n"
    )
    assert result.lines[-1] == "503 5.5.1 BODY=BINARYMIME requires BDAT"


def test_binarymime_needs_chunking(feed) -> None:
    result = feed(EHLO + b"MAIL FROM:<a@example.org> BODY=BINARYMIME\r\n",
                  core=make_core(chunking=False))
    assert result.lines[-1] == "555 5.5.4 unsupported MAIL/RCPT parameter"


def test_rfc6531_non_ascii_address_needs_smtputf8(feed) -> None:
    data = (
        EHLO
        + "MAIL FROM:<δοκιμή@example.org>\r\n".encode()
        + "MAIL FROM:<δοκιμή@example.org> SMTPUTF8\r\n".encode()
        + "RCPT TO:<élise@example.test>\r\n".encode()
    )
    result = feed(data)
    assert result.lines[-3] == "553 5.6.7 non-ASCII address requires SMTPUTF8"
    assert result.events[1] == MailFrom(Address("δοκιμή", "example.org"), {"SMTPUTF8": None})
    assert result.events[2] == RcptTo(Address("élise", "example.test"), {})


def test_rfc6531_non_ascii_rcpt_without_smtputf8(feed) -> None:
    result = feed(EHLO + MAIL + "RCPT TO:<élise@example.test>\r\n".encode())
    assert result.lines[-1] == "553 5.6.7 non-ASCII address requires SMTPUTF8"


def test_smtputf8_not_offered(feed) -> None:
    result = feed(EHLO + b"MAIL FROM:<a@example.org> SMTPUTF8\r\n", core=make_core(smtputf8=False))
    assert result.lines[-1] == "555 5.5.4 unsupported MAIL/RCPT parameter"


def test_rfc5321_4_5_3_1_8_recipients_at_limit_and_over(feed) -> None:
    rcpts = b"".join(b"RCPT TO:<u%d@example.test>\r\n" % i for i in range(6))
    result = feed(EHLO + MAIL + rcpts)
    assert len(of_type(result, RcptTo)) == 5
    assert result.codes[-6:] == ["250"] * 5 + ["452"]
    assert result.lines[-1] == "452 4.5.3 too many recipients"


def test_refused_recipients_do_not_count(feed) -> None:
    rcpts = b"RCPT TO:<nobody@example.test>\r\n" * 6 + RCPT
    result = feed(EHLO + MAIL + rcpts, core=make_core(max_bad_commands=50))
    assert result.codes[-7:] == ["550"] * 6 + ["250"]


# -- DATA (RFC 5321 §4.1.1.4, RFC 2920 §3.1) --------------------------------------------


def test_rfc2920_3_1_data_without_valid_recipient_554(feed) -> None:
    result = feed(EHLO + MAIL + b"RCPT TO:<nobody@example.test>\r\nDATA\r\n")
    assert result.lines[-1] == "554 5.5.1 no valid recipients"
    assert not of_type(result, DataStart)


def test_data_without_mail_503(feed) -> None:
    result = feed(EHLO + b"DATA\r\n")
    assert result.lines[-1] == "503 5.5.1 need MAIL command"


def test_data_with_argument_501(feed) -> None:
    result = feed(TX + b"DATA now\r\n")
    assert result.lines[-1] == "501 5.5.4 no arguments allowed"


def test_rfc5321_4_1_1_4_empty_message(feed) -> None:
    result = feed(TX + b"DATA\r\n.\r\n")
    assert result.content == b""
    assert of_type(result, DataEnd) == [DataEnd()]


def test_rfc5321_4_5_2_dot_unstuffing(feed) -> None:
    wire = b"..leading\r\n...\r\n. x\r\nmid.dle\r\n..\r\n.\r\n"
    result = feed(TX + b"DATA\r\n" + wire)
    assert result.content == b".leading\r\n..\r\n x\r\nmid.dle\r\n.\r\n"


def test_content_keeps_bare_cr_and_8bit(feed) -> None:
    wire = b"a\rb\r\n\xff\xfe\x00\r\n\r\r\n.\r\n"
    result = feed(TX + b"DATA\r\n" + wire)
    assert result.content == b"a\rb\r\n\xff\xfe\x00\r\n\r\r\n"
    assert result.codes[-1] == "250"


def test_data_start_refused_ends_transaction(feed) -> None:
    def policy(event):
        if isinstance(event, DataStart):
            return Reply(451, "4.3.0", "try later")
        return accept_policy(event)

    result = feed(TX + b"DATA\r\nDATA\r\n", policy=policy)
    assert result.lines[-2:] == ["451 4.3.0 try later", "503 5.5.1 need MAIL command"]


def test_phase_is_data_while_reading_content() -> None:
    core = make_core()
    run([TX + b"DATA\r\npartial"], core=core)
    assert core.phase is Phase.DATA
    run([b"\r\n.\r\n"], core=core)
    assert core.phase is Phase.COMMAND
    assert core.state is State.GREETED


SMUGGLING = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b".\n"]


@pytest.mark.parametrize("end", SMUGGLING)
def test_smuggling_bare_lf_never_ends_data(feed, end: bytes) -> None:
    smuggled = b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nevil\r\n"
    data = TX + b"DATA\r\nhello" + end + smuggled + b".\r\nQUIT\r\n"
    result = feed(data)
    assert len(of_type(result, MailFrom)) == 1
    assert of_type(result, DataAborted) == [DataAborted("bare LF in content")]
    assert not of_type(result, DataEnd)
    assert result.lines[-2:] == [
        "554 5.6.0 bare LF in message content is not allowed",
        f"221 2.0.0 {HOSTNAME} closing connection",
    ]


def test_smuggling_bare_cr_dot_is_content(feed) -> None:
    smuggled = b"MAIL FROM:<evil@example.org>\r\n"
    result = feed(TX + b"DATA\r\nhello\r.\r\n" + smuggled + b".\r\n")
    assert len(of_type(result, MailFrom)) == 1
    assert result.content == b"hello\r.\r\n" + smuggled
    assert result.codes[-1] == "250"


def test_rfc5321_4_5_3_1_6_content_line_at_limit_and_over(feed) -> None:
    ok = b"x" * 98 + b"\r\n"  # 100 octets with CRLF: the limit
    dotted = b"." + ok  # unstuffed to 100 octets
    long = b"y" * 99 + b"\r\n"
    result = feed(TX + b"DATA\r\n" + ok + dotted + b".\r\n" + MAIL + RCPT
                  + b"DATA\r\n" + ok + long + ok + b".\r\nNOOP\r\n")
    assert result.normalized()[4] == DataChunk(ok + ok)
    assert of_type(result, DataEnd) == [DataEnd()]
    assert of_type(result, DataAborted) == [DataAborted("line too long")]
    assert result.lines[-2:] == ["554 5.6.0 line too long in message content", "250 2.0.0 OK"]


def test_rfc1870_content_size_at_limit_and_over(feed) -> None:
    line = b"z" * 98 + b"\r\n"
    body = line * 100  # exactly 10000 octets
    result = feed(TX + b"DATA\r\n" + body + b".\r\n" + MAIL + RCPT
                  + b"DATA\r\n" + body + b"!\r\n.\r\nQUIT\r\n")
    assert of_type(result, DataEnd) == [DataEnd()]
    assert of_type(result, DataAborted) == [DataAborted("message too big")]
    events = result.normalized()
    aborted_at = events.index(DataAborted("message too big"))
    assert events[aborted_at - 1] != DataEnd()  # some content went out before
    assert all(not isinstance(e, DataChunk) for e in events[aborted_at:])
    assert result.lines[-2] == "552 5.3.4 message size exceeds fixed maximum message size"
    assert result.codes[-1] == "221"


def test_data_chunks_are_bounded_and_exact() -> None:
    line = b"0123456789" * 9 + b"\r\n"
    body = line * 20_000  # 1.8 MB
    core = make_core(max_message_size=5_000_000)
    result = run([TX + b"DATA\r\n" + body + b".\r\n"], core=core)
    chunks = of_type(result, DataChunk)
    assert max(len(c.data) for c in chunks) <= 64 * 1024  # type: ignore[attr-defined]
    assert result.content == body


# -- BDAT (RFC 3030) ------------------------------------------------------------------


def test_rfc3030_bdat_chunks_and_last(feed) -> None:
    first, second = b"\r\n.\r\nab", b"\n\x00c"
    data = TX + b"BDAT 7\r\n" + first + b"BDAT 3 LAST\r\n" + second + b"QUIT\r\n"
    result = feed(data)
    assert of_type(result, DataStart) == [DataStart(bdat=True)]
    assert result.content == first + second
    assert result.lines[-3:] == [
        "250 2.0.0 7 octets received",
        "250 2.0.0 ok queued",
        f"221 2.0.0 {HOSTNAME} closing connection",
    ]


def test_rfc3030_bdat_0_last(feed) -> None:
    result = feed(TX + b"BDAT 2\r\nhiBDAT 0 LAST\r\n" + TX[len(EHLO):] + b"BDAT 0 LAST\r\n")
    assert of_type(result, DataEnd) == [DataEnd(), DataEnd()]
    assert result.codes[-5:] == ["250", "250", "250", "250", "250"]


def test_rfc3030_bdat_out_of_sequence_consumes_chunk(feed) -> None:
    result = feed(EHLO + b"BDAT 6\r\nQUIT\r\nNOOP\r\n")
    assert result.lines[-2:] == ["503 5.5.1 need MAIL command", "250 2.0.0 OK"]
    assert not result.closed


def test_rfc3030_bdat_after_failed_rcpt_554_consumes_chunk(feed) -> None:
    result = feed(EHLO + MAIL + b"RCPT TO:<nobody@example.test>\r\nBDAT 6 LAST\r\nQUIT\r\n")
    assert result.lines[-1] == "554 5.5.1 no valid recipients"
    assert not result.closed


def test_rfc3030_bdat_refused_by_adapter_consumes_chunk(feed) -> None:
    def policy(event):
        if isinstance(event, DataStart):
            return Reply(452, "4.3.1", "no space")
        return accept_policy(event)

    result = feed(TX + b"BDAT 6\r\nQUIT\r\nBDAT 1 LAST\r\nx", policy=policy)
    assert result.lines[-2:] == ["452 4.3.1 no space", "503 5.5.1 need MAIL command"]


def test_rfc3030_bdat_size_limit(feed) -> None:
    big = b"x" * 10_001
    result = feed(TX + b"BDAT 10001 LAST\r\n" + big + MAIL + RCPT
                  + b"BDAT 6000\r\n" + big[:6000]
                  + b"BDAT 4001 LAST\r\n" + big[:4001] + b"NOOP\r\n")
    assert of_type(result, DataStart) == [DataStart(bdat=True)]  # only the second transaction
    assert of_type(result, DataAborted) == [DataAborted("message too big")]
    assert result.content == big[:6000]
    too_big = "552 5.3.4 message size exceeds fixed maximum message size"
    assert result.lines[-6:] == [
        too_big,
        "250 2.1.0 sender ok",
        "250 2.1.5 recipient ok",
        "250 2.0.0 6000 octets received",
        too_big,
        "250 2.0.0 OK",
    ]


def test_rfc3030_bdat_at_size_limit(feed) -> None:
    result = feed(TX + b"BDAT 10000 LAST\r\n" + b"x" * 10_000)
    assert result.lines[-1] == "250 2.0.0 ok queued"


@pytest.mark.parametrize("arg", [b"BDAT\r\n", b"BDAT x\r\n", b"BDAT -1\r\n", b"BDAT 1 FIRST\r\n",
                                 b"BDAT " + b"9" * 21 + b"\r\n"])
def test_rfc3030_bdat_syntax(feed, arg: bytes) -> None:
    result = feed(TX + arg)
    assert result.lines[-1] == "501 5.5.4 syntax: BDAT size [LAST]"


def test_rfc3030_no_data_or_rcpt_during_bdat(feed) -> None:
    result = feed(TX + b"BDAT 1\r\nxDATA\r\nRCPT TO:<bob@example.test>\r\nBDAT 1 LAST\r\ny")
    assert result.lines[-3:-1] == ["503 5.5.1 command not allowed during BDAT transfer"] * 2
    assert result.content == b"xy"
    assert result.codes[-1] == "250"


def test_bdat_not_offered_consumes_chunk(feed) -> None:
    result = feed(TX + b"BDAT 6\r\nQUIT\r\nNOOP\r\n", core=make_core(chunking=False))
    assert result.lines[-2:] == ["502 5.5.1 command not implemented", "250 2.0.0 OK"]


def test_rset_during_bdat_drops_transaction(feed) -> None:
    result = feed(TX + b"BDAT 1\r\nxRSET\r\nBDAT 1 LAST\r\ny")
    assert Reset() in result.events
    assert result.lines[-1] == "503 5.5.1 need MAIL command"


# -- RSET, NOOP, VRFY, HELP, EXPN, QUIT, unknown ----------------------------------------


def test_rfc5321_4_1_1_5_rset(feed) -> None:
    result = feed(TX + b"RSET\r\nDATA\r\nRSET x\r\n")
    assert Reset() in result.events
    assert result.lines[-3:] == [
        "250 2.0.0 OK",
        "503 5.5.1 need MAIL command",
        "501 5.5.4 no arguments allowed",
    ]


def test_rfc5321_noop_vrfy_help_expn(feed) -> None:
    result = feed(b"NOOP\r\nNOOP anything\r\nVRFY bob\r\nVRFY\r\nHELP\r\nEXPN list\r\n")
    assert result.codes == ["250", "250", "252", "501", "214", "502"]
    assert result.lines[2].startswith("252 2.5.0 ")


@pytest.mark.parametrize(
    "line", [b"FOO\r\n", b"\r\n", b"MAIL\tFROM:<a@b.test>\r\n", b"\x00\xff\r\n", b"EHLOX y\r\n"]
)
def test_rfc5321_4_2_4_unknown_command_500(feed, line: bytes) -> None:
    result = feed(line)
    assert result.lines == ["500 5.5.1 command unrecognized"]


def test_invalid_utf8_argument_501(feed) -> None:
    result = feed(EHLO + b"MAIL FROM:<\xff@example.org>\r\n")
    assert result.lines[-1] == "501 5.5.2 invalid UTF-8 in command"


def test_commands_are_case_insensitive_and_accept_bare_lf(feed) -> None:
    result = feed(b"ehlo client.example\nmail FROM:<a@example.org>\n")
    assert result.events[-1] == MailFrom(Address("a", "example.org"), {})


def test_rfc5321_4_1_1_10_quit_closes_and_ignores_the_rest(feed) -> None:
    result = feed(b"QUIT\r\nNOOP\r\n")
    assert result.lines == [f"221 2.0.0 {HOSTNAME} closing connection"]
    assert result.closed


def test_quit_in_transaction_emits_reset() -> None:
    result = run([TX + b"QUIT\r\n"])
    assert result.events[-1] == Reset()


def test_eof_gives_connection_closed_once() -> None:
    core = make_core()
    result = run([TX, b"partial command", b""], core=core)
    assert result.events[-2:] == [Reset(), ConnectionClosed()]
    assert result.closed
    core.receive_data(b"NOOP\r\n")
    assert core.next_event() is CLOSED
    assert core.data_to_send() == b""


def test_eof_during_data() -> None:
    result = run([TX + b"DATA\r\nsome content", b""])
    assert result.events[-1] == ConnectionClosed()


# -- limits -----------------------------------------------------------------------------


def test_rfc5321_4_5_3_1_4_command_line_at_limit_and_over(feed) -> None:
    at_limit = b"NOOP " + b"a" * 93 + b"\r\n"  # 100 octets with CRLF
    assert len(at_limit) == 100
    over = b"NOOP " + b"a" * 94 + b"\r\n"
    result = feed(at_limit + over + b"NOOP\r\n")
    assert result.lines == ["250 2.0.0 OK", "500 5.5.2 line too long", "250 2.0.0 OK"]


def test_long_command_line_is_not_buffered() -> None:
    core = make_core()
    run([b"NOOP "], core=core)
    for _ in range(100):  # 1 MB: within RUNAWAY_SLACK, so still answered in order
        core.receive_data(b"x" * 10_000)
        assert core.next_event() is NEED_DATA
        assert len(core._buf) < 200  # bounded: the line is dropped as it arrives
    result = run([b"still the same line\r\nNOOP\r\n"], core=core)
    assert result.lines == ["500 5.5.2 line too long", "250 2.0.0 OK"]


def test_max_commands_at_limit_and_over(feed) -> None:
    core = make_core(max_commands=3)
    result = feed(b"NOOP\r\n" * 3 + b"NOOP\r\nNOOP\r\n", core=core)
    bye = "421 4.7.0 too many commands, closing connection"
    assert result.lines == ["250 2.0.0 OK"] * 3 + [bye]
    assert result.closed


def test_max_bad_commands_at_limit_and_over(feed) -> None:
    core = make_core(max_bad_commands=3)
    result = feed(b"BAD\r\nRCPT TO:<a@b.test>\r\nVRFY\r\nNOOP\r\nBAD\r\nNOOP\r\n", core=core)
    assert result.codes == ["500", "503", "501", "250", "421"]
    assert result.lines[-1] == "421 4.7.0 too many errors, closing connection"
    assert result.closed


def test_adapter_421_closes(feed) -> None:
    def policy(event):
        if isinstance(event, MailFrom):
            return Reply(421, "4.3.2", "shutting down")
        return accept_policy(event)

    result = feed(TX + b"NOOP\r\n", policy=policy)
    assert result.lines[-1] == "421 4.3.2 shutting down"
    assert result.closed


_ENHANCED = re.compile(r"^[2-5]\d\d[ -][245]\.\d{1,3}\.\d{1,3} ")


def test_rfc2034_enhanced_codes_on_every_core_reply() -> None:
    data = (TX + b"RSET\r\nFOO\r\nVRFY x\r\nHELP\r\nMAIL FROM:<>\r\nDATA\r\n"
            + b"MAIL FROM:<a@b.test> X=1\r\nRCPT TO:<x>\r\nNOOP\r\nQUIT\r\n")
    result = run([data], core=make_core(max_bad_commands=50))
    replies = result.lines[10:]  # after the EHLO reply
    assert replies and all(_ENHANCED.match(line) for line in replies), replies


# -- pipelining (RFC 2920) -----------------------------------------------------------------


def test_rfc2920_pipelined_replies_in_order(feed) -> None:
    data = (EHLO + b"MAIL FROM:<p@example.org>\r\nRCPT TO:<alice@example.test>\r\n"
            b"RCPT TO:<nobody@example.test>\r\nDATA\r\nSubject: p\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    result = feed(data)
    assert result.codes == ["250", "250", "250", "550", "354", "250", "221"]


def test_rfc2920_awaiting_reply_holds_back_later_commands() -> None:
    core = make_core()
    core.receive_data(EHLO + MAIL)
    assert isinstance(core.next_event(), Hello)
    assert core.next_event() is AWAITING_REPLY
    assert core.data_to_send() == b""
    core.send(Reply(250, None, HOSTNAME))
    assert isinstance(core.next_event(), MailFrom)
    assert core.next_event() is AWAITING_REPLY


def test_rfc2920_refused_mail_fails_the_group(feed) -> None:
    def policy(event):
        if isinstance(event, MailFrom):
            return Reply(550, "5.7.1", "sender refused")
        return accept_policy(event)

    result = feed(TX + b"DATA\r\nbody\r\n.\r\n", policy=policy, core=make_core(max_bad_commands=9))
    assert result.codes[:4] == ["250", "550", "503", "503"]
    assert not of_type(result, DataStart)


# -- API misuse ------------------------------------------------------------------------------


def test_send_without_event_is_usage_error() -> None:
    core = make_core()
    with pytest.raises(SmtpUsageError):
        core.send(Reply(250, "2.0.0", "ok"))
    with pytest.raises(SmtpUsageError):
        core.start_tls()


# -- every scenario, split at random points ----------------------------------------------------

SCENARIOS = [
    TX + b"DATA\r\n..a\r\nb\r\n.\r\nQUIT\r\n",
    TX + b"DATA\r\nhello\n.\nMAIL FROM:<e@x.test>\r\n.\r\nNOOP\r\n",
    TX + b"DATA\r\nx\r.\r\n.\r\n",
    TX + b"BDAT 5\r\n\r\n.\r\nBDAT 0 LAST\r\nNOOP\r\n",
    EHLO + b"BDAT 4\r\nQUITRSET\r\n",
    b"NOOP " + b"x" * 300 + b"\r\nNOOP\r\n",
    EHLO + b"AUTH LOGIN\r\nYm9i\r\nc2VjcmV0\r\n" + MAIL,
    TX + b"DATA\r\n" + (b"a" * 98 + b"\r\n") * 120 + b".\r\n",
]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SCENARIOS), st.lists(st.integers(0, 20_000), max_size=12))
def test_random_splits_give_the_same_result(data: bytes, cuts: list[int]) -> None:
    reference = run([data])
    result = run(split_at(data, cuts))
    assert result.output == reference.output
    assert result.normalized() == reference.normalized()


def test_scenarios_whole_and_bytewise_agree() -> None:
    for data in SCENARIOS:
        assert run([data]).output == run(SPLITTERS["bytewise"](data)).output


def test_core_is_a_session_object() -> None:
    assert isinstance(make_core(), SmtpServer)
