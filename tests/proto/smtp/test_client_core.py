"""SmtpClient against a scripted server: bytes the core writes, replies fed
back, events out. One test per path of the conversation (RFC section named)."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import pytest

from mailyard.proto.sentinels import CLOSED
from mailyard.proto.smtp.client import (
    ClientConfig,
    ClientState,
    MailOptions,
    SmtpClientUsageError,
)
from mailyard.proto.smtp.client_events import (
    AuthReply,
    DataReply,
    EnvelopeDone,
    Greeting,
    HelloReply,
    MailReply,
    MessageReply,
    QuitReply,
    RcptReply,
    ResetReply,
    ServerClosing,
    StartTlsReply,
    Waiting,
)
from mailyard.proto.smtp.client_reply import ServerReply
from tests.proto.smtp.client_helpers import (
    EHLO_ALL,
    EHLO_PLAIN,
    GREETING,
    HELO,
    events,
    make,
    ready,
)

R250 = b"250 2.0.0 ok\r\n"


def kinds(items: Sequence[object]) -> list[str]:
    return [type(item).__name__ for item in items]


# -- greeting and hello ------------------------------------------------------------


def test_greeting_then_ehlo_with_extensions() -> None:
    client = make()
    assert client.waiting is Waiting.GREETING and client.data_to_send() == b""
    (greeting,) = events(client, GREETING)
    assert isinstance(greeting, Greeting) and greeting.reply.code == 220
    assert client.state is ClientState.CONNECTED
    client.ehlo()
    assert client.data_to_send() == f"EHLO {HELO}\r\n".encode()
    assert client.waiting is Waiting.COMMAND
    (hello,) = events(client, EHLO_ALL)
    assert isinstance(hello, HelloReply) and hello.extended
    ext = hello.extensions
    assert ext.pipelining and ext.size == 10000 and ext.eightbitmime and ext.smtputf8
    assert ext.starttls and ext.chunking and ext.enhancedstatuscodes
    assert ext.auth == frozenset({"PLAIN", "LOGIN"})
    assert client.state is ClientState.READY and client.waiting is None


def test_a_554_greeting_is_reported_and_quit_is_allowed() -> None:
    # RFC 5321 §3.1: a 554 greeting means no service; the client QUITs.
    client = make()
    (greeting,) = events(client, b"554 5.7.1 go away\r\n")
    assert isinstance(greeting, Greeting) and greeting.reply.permanent
    client.quit()
    assert client.data_to_send() == b"QUIT\r\n"
    (bye,) = events(client, b"221 bye\r\n")
    assert isinstance(bye, QuitReply) and client.state is ClientState.CLOSED


def test_ehlo_refused_falls_back_to_helo() -> None:
    # RFC 5321 §3.2: a server that does not know EHLO gets HELO.
    client = make()
    events(client, GREETING)
    client.ehlo()
    client.data_to_send()
    assert events(client, b"502 5.5.1 what?\r\n") == []
    assert client.data_to_send() == f"HELO {HELO}\r\n".encode()
    (hello,) = events(client, b"250 mx.remote.test\r\n")
    assert isinstance(hello, HelloReply) and not hello.extended
    assert not hello.extensions.pipelining and client.state is ClientState.READY


def test_a_temporary_ehlo_failure_is_no_fallback() -> None:
    client = make()
    events(client, GREETING)
    client.ehlo()
    client.data_to_send()
    (hello,) = events(client, b"451 4.3.0 later\r\n")
    assert isinstance(hello, HelloReply) and hello.reply.code == 451
    assert client.data_to_send() == b"" and client.state is ClientState.CONNECTED


# -- STARTTLS and AUTH -----------------------------------------------------------------


def test_starttls_resets_the_session_and_drops_injected_replies() -> None:
    client = ready()
    client.starttls()
    assert client.data_to_send() == b"STARTTLS\r\n"
    # A man in the middle appends a reply after the 220 (RFC 3207 §5).
    (reply,) = events(client, b"220 2.0.0 go ahead\r\n250 injected\r\n")
    assert isinstance(reply, StartTlsReply) and client.state is ClientState.TLS
    assert events(client) == []  # nothing is read before the handshake
    client.tls_started()
    assert client.tls_active and client.state is ClientState.CONNECTED
    assert client.extensions.keywords == frozenset()
    assert events(client) == []  # the injected line is gone
    client.ehlo()
    assert client.data_to_send() == f"EHLO {HELO}\r\n".encode()
    (hello,) = events(client, b"250-mx\r\n250 PIPELINING\r\n")
    assert isinstance(hello, HelloReply)
    with pytest.raises(SmtpClientUsageError):
        client.starttls()  # not offered again, and TLS is on already


def test_starttls_refused_keeps_the_plaintext_session() -> None:
    client = ready()
    client.starttls()
    client.data_to_send()
    (reply,) = events(client, b"454 4.7.0 no TLS today\r\n")
    assert isinstance(reply, StartTlsReply) and client.state is ClientState.READY


def test_starttls_needs_the_extension() -> None:
    with pytest.raises(SmtpClientUsageError):
        ready(EHLO_PLAIN).starttls()


def test_auth_plain_sends_the_initial_response() -> None:
    # RFC 4954 §4 and RFC 4616 §2: [authzid] NUL authcid NUL passwd.
    client = ready()
    client.auth("plain", "bob", "s3cret")
    line = client.data_to_send()
    assert line.startswith(b"AUTH PLAIN ") and line.endswith(b"\r\n")
    assert base64.b64decode(line[11:-2]) == b"\0bob\0s3cret"
    (done,) = events(client, b"235 2.7.0 ok\r\n")
    assert isinstance(done, AuthReply) and done.reply.code == 235


def test_auth_login_answers_each_challenge_and_cancels_extra_ones() -> None:
    client = ready()
    client.auth("LOGIN", "bob", "s3cret")
    assert client.data_to_send() == b"AUTH LOGIN\r\n"
    assert events(client, b"334 VXNlcm5hbWU6\r\n") == []
    assert client.data_to_send() == base64.b64encode(b"bob") + b"\r\n"
    assert events(client, b"334 UGFzc3dvcmQ6\r\n") == []
    assert client.data_to_send() == base64.b64encode(b"s3cret") + b"\r\n"
    assert events(client, b"334 more?\r\n") == []
    assert client.data_to_send() == b"*\r\n"  # RFC 4954 §4: cancel
    (done,) = events(client, b"501 5.0.0 cancelled\r\n")
    assert isinstance(done, AuthReply) and done.reply.code == 501


def test_auth_refuses_other_mechanisms() -> None:
    with pytest.raises(SmtpClientUsageError):
        ready().auth("CRAM-MD5", "bob", "pw")


# -- transactions -----------------------------------------------------------------


def test_pipelined_transaction_is_one_write_and_replies_match_in_order() -> None:
    # RFC 2920 §3.1: MAIL, the RCPTs and DATA in one group, DATA last.
    client = ready()
    client.mail_transaction("a@here.test", ["b@x.test", "c@x.test", "d@x.test"],
                            MailOptions(size=500, eightbit=True, smtputf8=False))
    assert client.data_to_send() == (
        b"MAIL FROM:<a@here.test> SIZE=500 BODY=8BITMIME\r\n"
        b"RCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nRCPT TO:<d@x.test>\r\nDATA\r\n"
    )
    assert client.waiting is Waiting.MAIL
    got = events(client, b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 unknown\r\n"
                         b"250 2.1.5 ok\r\n354 go\r\n")
    assert kinds(got) == ["MailReply", "RcptReply", "RcptReply", "RcptReply", "DataReply",
                          "EnvelopeDone"]
    assert [e.reply.code for e in got if isinstance(e, RcptReply)] == [250, 550, 250]
    assert got[-1] == EnvelopeDone((0, 2), True)
    assert client.state is ClientState.BODY
    client.send_body(b"Subject: hi\r\n\r\n.leading dot\r\n")
    client.send_body(b"")
    client.end_body()
    # RFC 5321 §4.5.2: the leading dot doubled, then CRLF . CRLF.
    assert client.data_to_send() == b"Subject: hi\r\n\r\n..leading dot\r\n.\r\n"
    assert client.waiting is Waiting.MESSAGE
    (final,) = events(client, b"250 2.0.0 queued as X\r\n")
    assert isinstance(final, MessageReply) and final.reply.code == 250
    assert client.state is ClientState.READY


def test_without_pipelining_each_command_waits_for_its_reply() -> None:
    client = ready(EHLO_PLAIN)
    client.mail_transaction("a@here.test", ["b@x.test", "c@x.test"], MailOptions(size=5))
    # No SIZE extension: no SIZE parameter (RFC 1870 §6).
    assert client.data_to_send() == b"MAIL FROM:<a@here.test>\r\n"
    events(client, R250)
    assert client.data_to_send() == b"RCPT TO:<b@x.test>\r\n"
    assert client.waiting is Waiting.RCPT
    events(client, b"450 4.2.0 busy\r\n")
    assert client.data_to_send() == b"RCPT TO:<c@x.test>\r\n"
    events(client, R250)
    assert client.data_to_send() == b"DATA\r\n"
    assert client.waiting is Waiting.DATA
    got = events(client, b"354 go\r\n")
    assert got[-1] == EnvelopeDone((1,), True)


def test_without_pipelining_a_failed_mail_sends_no_rcpt() -> None:
    client = ready(EHLO_PLAIN)
    client.mail_transaction("a@here.test", ["b@x.test"])
    client.data_to_send()
    got = events(client, b"553 5.1.8 bad sender\r\n")
    assert kinds(got) == ["MailReply", "EnvelopeDone"]
    assert got[-1] == EnvelopeDone((), False)
    assert client.data_to_send() == b"" and client.state is ClientState.READY


def test_without_pipelining_no_accepted_recipient_means_no_data() -> None:
    client = ready(EHLO_PLAIN)
    client.mail_transaction("a@here.test", ["b@x.test"])
    client.data_to_send()
    events(client, R250)
    client.data_to_send()
    got = events(client, b"550 5.1.1 no\r\n")
    assert got[-1] == EnvelopeDone((), False) and client.data_to_send() == b""
    client.rset()
    assert client.data_to_send() == b"RSET\r\n"
    (reset,) = events(client, R250)
    assert isinstance(reset, ResetReply)


def test_pipelined_failed_mail_makes_later_acceptances_count_for_nothing() -> None:
    client = ready()
    client.mail_transaction("a@here.test", ["b@x.test"])
    client.data_to_send()
    got = events(client, b"451 4.3.0 later\r\n250 odd server\r\n554 5.5.1 no valid\r\n")
    assert isinstance(got[0], MailReply) and got[-1] == EnvelopeDone((), False)


def test_354_after_every_rcpt_failed_gets_a_lone_dot() -> None:
    # RFC 2920 §3.1: the client must end a DATA the server wrongly accepted.
    client = ready()
    client.mail_transaction("a@here.test", ["b@x.test"])
    client.data_to_send()
    got = events(client, b"250 ok\r\n550 no\r\n354 go\r\n")
    assert kinds(got) == ["MailReply", "RcptReply", "DataReply"]
    assert client.data_to_send() == b".\r\n"
    assert events(client, b"554 5.5.1 no recipients\r\n") == [EnvelopeDone((), False)]
    assert client.state is ClientState.READY


def test_data_refused_ends_the_envelope_without_content() -> None:
    client = ready()
    client.mail_transaction("a@here.test", ["b@x.test"])
    client.data_to_send()
    got = events(client, b"250 ok\r\n250 ok\r\n451 4.3.0 not now\r\n")
    assert isinstance(got[-2], DataReply) and got[-1] == EnvelopeDone((0,), False)


def test_smtputf8_parameter_and_utf8_addresses() -> None:
    client = ready()
    client.mail_transaction("jös@here.test", ["ü@x.test"], MailOptions(smtputf8=True))
    assert client.data_to_send().startswith("MAIL FROM:<jös@here.test> SMTPUTF8\r\n".encode())


def test_utf8_address_without_smtputf8_is_an_adapter_bug() -> None:
    with pytest.raises(SmtpClientUsageError):
        ready(EHLO_PLAIN).mail_transaction("a@here.test", ["ü@x.test"],
                                           MailOptions(smtputf8=True))


@pytest.mark.parametrize("address", ["a\r\n@x.test", "a\0@x.test", "a\n@x"])
def test_line_breaks_in_addresses_are_refused(address: str) -> None:
    with pytest.raises(SmtpClientUsageError):
        ready().mail_transaction("a@here.test", [address])


def test_bdat_when_chunking_is_wanted_and_offered() -> None:
    # RFC 3030 §2: BDAT <n> and n octets, no stuffing; BDAT 0 LAST ends it.
    client = ready(chunking=True)
    client.mail_transaction("a@here.test", ["b@x.test"])
    assert client.data_to_send().endswith(b"RCPT TO:<b@x.test>\r\n")  # no DATA
    got = events(client, b"250 ok\r\n250 ok\r\n")
    assert got[-1] == EnvelopeDone((0,), True)
    client.send_body(b".dot\r\n")
    client.send_body(b"end\r\n")
    client.end_body()
    assert client.data_to_send() == b"BDAT 6\r\n.dot\r\nBDAT 5\r\nend\r\nBDAT 0 LAST\r\n"
    (final,) = events(client, b"250 ok\r\n250 ok\r\n250 2.0.0 done\r\n")
    assert isinstance(final, MessageReply) and final.reply.code == 250


def test_a_failed_bdat_chunk_is_the_message_reply() -> None:
    client = ready(chunking=True)
    client.mail_transaction("a@here.test", ["b@x.test"])
    client.data_to_send()
    events(client, b"250 ok\r\n250 ok\r\n")
    client.send_body(b"x\r\n")
    client.end_body()
    (final,) = events(client, b"552 5.3.4 too big\r\n503 5.5.1 no\r\n")
    assert final.reply.code == 552


def test_chunking_needs_pipelining_too() -> None:
    client = ready(b"250-mx\r\n250 CHUNKING\r\n", chunking=True)
    client.mail_transaction("a@here.test", ["b@x.test"])
    assert client.data_to_send() == b"MAIL FROM:<a@here.test>\r\n"


# -- failures of the connection --------------------------------------------------------


def test_421_answers_the_command_and_everything_after_it() -> None:
    # RFC 5321 §3.8: 421 means the server is closing the channel.
    client = ready()
    client.mail_transaction("a@here.test", ["b@x.test", "c@x.test"])
    client.data_to_send()
    got = events(client, b"250 ok\r\n421 4.3.2 shutting down\r\n")
    assert kinds(got) == ["MailReply", "RcptReply", "RcptReply", "DataReply", "EnvelopeDone"]
    assert [e.reply.code for e in got[1:4]] == [421, 421, 421]  # type: ignore[union-attr]
    assert got[-1] == EnvelopeDone((), False)
    assert client.state is ClientState.CLOSED and client.next_event() is CLOSED


def test_eof_mid_transaction_is_a_synthetic_451_for_what_waits() -> None:
    # RFC 5321 §3.8: a lost connection counts as a 451.
    client = ready()
    client.mail_transaction("a@here.test", ["b@x.test"])
    client.data_to_send()
    client.receive_data(b"250 ok\r\n250 o")
    client.receive_data(b"")
    got = events(client)
    assert kinds(got) == ["MailReply", "RcptReply", "DataReply", "EnvelopeDone"]
    lost = got[1].reply  # type: ignore[union-attr]
    assert lost.code == 451 and lost.synthetic and "closed by the server" in lost.text
    assert client.state is ClientState.CLOSED


def test_garbage_from_the_server_closes_with_a_protocol_error() -> None:
    client = make()
    (greeting,) = events(client, b"HTTP/1.1 400 Bad Request\r\n")
    assert isinstance(greeting, Greeting) and greeting.reply.synthetic
    assert "protocol error" in greeting.reply.text and client.state is ClientState.CLOSED


def test_abort_while_sending_the_body_reports_the_message_lost() -> None:
    client = ready()
    client.mail_transaction("a@here.test", ["b@x.test"])
    client.data_to_send()
    events(client, b"250 ok\r\n250 ok\r\n354 go\r\n")
    client.send_body(b"partial")
    client.abort("timeout writing")
    (final,) = events(client)
    assert isinstance(final, MessageReply) and final.reply.synthetic
    assert final.reply.code == 451 and "timeout writing" in final.reply.text


def test_abort_while_waiting_for_the_final_reply() -> None:
    client = ready()
    client.mail_transaction("a@here.test", ["b@x.test"])
    client.data_to_send()
    events(client, b"250 ok\r\n250 ok\r\n354 go\r\n")
    client.end_body()
    client.abort("timeout after 600 s")
    (final,) = events(client)
    assert isinstance(final, MessageReply) and final.reply.synthetic


def test_an_unsolicited_421_while_idle() -> None:
    client = ready()
    (closing,) = events(client, b"421 4.3.2 bye\r\n")
    assert isinstance(closing, ServerClosing) and client.state is ClientState.CLOSED
    client.quit()  # a no-op once closed
    assert client.data_to_send() == b""


def test_eof_while_idle_just_closes() -> None:
    client = ready()
    client.receive_data(b"")
    assert events(client) == [] and client.state is ClientState.CLOSED


# -- misuse ------------------------------------------------------------------------------


def test_methods_at_the_wrong_moment_are_usage_errors() -> None:
    client = make()
    with pytest.raises(SmtpClientUsageError):
        client.ehlo()  # before the greeting
    events(client, GREETING)
    with pytest.raises(SmtpClientUsageError):
        client.mail_transaction("a@b.test", ["c@d.test"])  # before EHLO
    client.ehlo()
    with pytest.raises(SmtpClientUsageError):
        client.quit()  # EHLO's reply is outstanding
    events(client, EHLO_ALL)
    with pytest.raises(SmtpClientUsageError):
        client.mail_transaction("a@b.test", [])
    with pytest.raises(SmtpClientUsageError):
        client.send_body(b"x")
    with pytest.raises(SmtpClientUsageError):
        client.tls_started()


def test_config_refuses_a_bad_helo() -> None:
    for helo in ("", "two words", "bad\r\n", "é.test"):
        with pytest.raises(ValueError):
            ClientConfig(helo)


def test_synthetic_reply_describes_itself() -> None:
    reply = ServerReply(451, ("4.4.2 connection closed by the server",), synthetic=True)
    assert reply.enhanced == "4.4.2" and reply.describe().startswith("451 4.4.2")
