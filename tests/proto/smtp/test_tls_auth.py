"""STARTTLS (RFC 3207) and AUTH (RFC 4954, PLAIN RFC 4616, LOGIN) in the core."""

from __future__ import annotations

from base64 import b64encode

import pytest

from mailyard.proto.smtp import (
    AWAITING_REPLY,
    Authenticate,
    Hello,
    MailFrom,
    Reply,
    SmtpServer,
    SmtpUsageError,
    StartTls,
    State,
)
from tests.proto.smtp.helpers import Result, accept_policy, make_core, run
from tests.proto.splitting import SPLITTERS

EHLO = b"EHLO client.example\r\n"
MAIL = b"MAIL FROM:<sender@example.org>\r\n"


def b64(data: bytes) -> bytes:
    return b64encode(data)


@pytest.fixture(params=sorted(SPLITTERS))
def feed(request: pytest.FixtureRequest):
    splitter = SPLITTERS[request.param]

    def _feed(data: bytes, **kwargs: object) -> Result:
        return run(splitter(data), **kwargs)  # type: ignore[arg-type]

    return _feed


# -- STARTTLS ---------------------------------------------------------------------------


def test_rfc3207_4_2_starttls_discards_buffered_plaintext() -> None:
    core = make_core()
    # The injection: commands pipelined after STARTTLS in the same plaintext packet.
    core.receive_data(EHLO + b"STARTTLS\r\n" + MAIL + b"RCPT TO:<a@example.test>\r\n")
    assert isinstance(core.next_event(), Hello)
    core.send(Reply(250, None, "mx"))
    assert core.next_event() == StartTls()
    core.send(Reply(220, "2.0.0", "ready"))
    assert core.next_event() is AWAITING_REPLY  # nothing is read before start_tls()
    assert core.data_to_send().endswith(b"220 2.0.0 ready\r\n")
    core.start_tls()
    assert core.state is State.INITIAL
    result = run([MAIL, EHLO, b"STARTTLS\r\n"], core=core)
    assert not any(isinstance(e, MailFrom) for e in result.events)
    assert result.lines[0] == "503 5.5.1 send EHLO/HELO first"  # RFC 3207: EHLO again
    assert "250-STARTTLS" not in result.lines  # not offered twice
    assert result.lines[-1] == "503 5.5.1 TLS already active"


def test_start_tls_without_starttls_is_usage_error() -> None:
    with pytest.raises(SmtpUsageError):
        make_core().start_tls()


def test_starttls_not_offered_502(feed) -> None:
    result = feed(EHLO + b"STARTTLS\r\n", core=make_core(starttls=False))
    assert result.lines[-1] == "502 5.5.1 command not implemented"


def test_starttls_with_argument_501(feed) -> None:
    result = feed(EHLO + b"STARTTLS now\r\n")
    assert result.lines[-1] == "501 5.5.4 no arguments allowed"


def test_starttls_in_transaction_503(feed) -> None:
    result = feed(EHLO + MAIL + b"STARTTLS\r\n")
    assert result.lines[-1] == "503 5.5.1 command not allowed during a mail transaction"


def test_starttls_refused_keeps_session(feed) -> None:
    def policy(event):
        if isinstance(event, StartTls):
            return Reply(454, "4.7.0", "TLS not available")
        return accept_policy(event)

    result = feed(EHLO + b"STARTTLS\r\n" + MAIL, policy=policy)
    assert result.codes[-2:] == ["454", "250"]


def test_starttls_drops_authentication() -> None:
    core = make_core()
    cred = b64(b"\x00bob\x00secret")
    run([EHLO + b"AUTH PLAIN " + cred + b"\r\nSTARTTLS\r\n"], core=core)
    result = run([EHLO], core=core)
    assert "250 AUTH PLAIN LOGIN" in result.lines  # offered again: auth state forgotten


# -- AUTH ------------------------------------------------------------------------------------


def test_rfc4954_auth_plain_initial_response(feed) -> None:
    result = feed(EHLO + b"AUTH PLAIN " + b64(b"admin\x00bob\x00secret") + b"\r\n" + MAIL)
    assert result.events[1] == Authenticate("PLAIN", "admin", "bob", "secret")
    assert result.lines[-2:] == ["235 2.7.0 authentication successful", "250 2.1.0 sender ok"]


def test_rfc4954_auth_plain_empty_challenge(feed) -> None:
    result = feed(EHLO + b"AUTH plain\r\n" + b64(b"\x00bob\x00secret") + b"\r\n")
    assert result.lines[-2:] == ["334 ", "235 2.7.0 authentication successful"]
    assert result.events[-1] == Authenticate("PLAIN", "", "bob", "secret")


def test_auth_login(feed) -> None:
    result = feed(EHLO + b"AUTH LOGIN\r\n" + b64(b"bob") + b"\r\n" + b64(b"secret") + b"\r\n")
    assert result.lines[-3:] == [
        "334 VXNlcm5hbWU6",
        "334 UGFzc3dvcmQ6",
        "235 2.7.0 authentication successful",
    ]
    assert result.events[-1] == Authenticate("LOGIN", "", "bob", "secret")


def test_auth_login_with_initial_username(feed) -> None:
    result = feed(EHLO + b"AUTH LOGIN " + b64(b"bob") + b"\r\n" + b64(b"wrong") + b"\r\n")
    assert result.lines[-2:] == ["334 UGFzc3dvcmQ6", "535 5.7.8 authentication credentials invalid"]


def test_rfc4954_4_star_cancels_501(feed) -> None:
    result = feed(EHLO + b"AUTH LOGIN\r\n*\r\nNOOP\r\n")
    assert result.lines[-2:] == ["501 5.0.0 authentication cancelled", "250 2.0.0 OK"]
    assert not any(isinstance(e, Authenticate) for e in result.events)


@pytest.mark.parametrize(
    "response",
    [b"not base64!", b"\xff\xfe", b64(b"no-nuls"), b64(b"a\x00b\x00c\x00d"), b64(b"\x00\x00pw")],
)
def test_auth_plain_malformed_501(feed, response: bytes) -> None:
    result = feed(EHLO + b"AUTH PLAIN\r\n" + response + b"\r\nNOOP\r\n")
    assert result.lines[-2].startswith("501 5.5.2")
    assert result.lines[-1] == "250 2.0.0 OK"


def test_auth_not_offered_502(feed) -> None:
    result = feed(EHLO + b"AUTH PLAIN\r\n", core=make_core(auth_mechanisms=()))
    assert result.lines[-1] == "502 5.5.1 command not implemented"
    assert "AUTH" not in " ".join(result.lines)


def test_auth_unknown_mechanism_504(feed) -> None:
    result = feed(EHLO + b"AUTH CRAM-MD5\r\n")
    assert result.lines[-1] == "504 5.5.4 unrecognized authentication mechanism"


def test_rfc4954_4_auth_not_during_transaction(feed) -> None:
    result = feed(EHLO + MAIL + b"AUTH PLAIN\r\n")
    assert result.lines[-1] == "503 5.5.1 command not allowed during a mail transaction"


def test_rfc4954_4_auth_twice_503(feed) -> None:
    cred = b"AUTH PLAIN " + b64(b"\x00bob\x00secret") + b"\r\n"
    result = feed(EHLO + cred + cred)
    assert result.lines[-1] == "503 5.5.1 already authenticated"


def test_auth_failure_then_retry(feed) -> None:
    bad = b"AUTH PLAIN " + b64(b"\x00bob\x00nope") + b"\r\n"
    good = b"AUTH PLAIN " + b64(b"\x00bob\x00secret") + b"\r\n"
    result = feed(EHLO + bad + good)
    assert result.codes[-2:] == ["535", "235"]


def test_rfc4954_6_auth_required_530(feed) -> None:
    core = make_core(auth_required=True)
    good = b"AUTH PLAIN " + b64(b"\x00bob\x00secret") + b"\r\n"
    result = feed(EHLO + MAIL + good + MAIL, core=core)
    assert result.lines[-3:] == [
        "530 5.7.0 authentication required",
        "235 2.7.0 authentication successful",
        "250 2.1.0 sender ok",
    ]


def test_auth_mail_param_accepted_when_auth_offered(feed) -> None:
    result = feed(EHLO + b"MAIL FROM:<a@example.org> AUTH=<>\r\n")
    assert result.events[-1] == MailFrom(
        result.events[-1].sender, {"AUTH": "<>"}  # type: ignore[union-attr]
    )


def test_auth_response_too_long(feed) -> None:
    result = feed(EHLO + b"AUTH PLAIN\r\n" + b"A" * 200 + b"\r\nNOOP\r\n")
    assert result.lines[-2:] == ["500 5.5.2 line too long", "250 2.0.0 OK"]


def test_password_not_in_repr() -> None:
    assert "secret" not in repr(Authenticate("PLAIN", "", "bob", "secret"))


# -- AUTH only under TLS (RFC 4954 §4) --------------------------------------------------------


def _tls_session(core):  # type: ignore[no-untyped-def]
    """EHLO, STARTTLS accepted, handshake 'done': the core is now under TLS."""
    core.receive_data(EHLO + b"STARTTLS\r\n")
    assert isinstance(core.next_event(), Hello)
    core.send(Reply(250, None, "mx"))
    assert core.next_event() == StartTls()
    core.send(Reply(220, "2.0.0", "ready"))
    core.start_tls()
    core.data_to_send()


def test_rfc4954_4_auth_not_advertised_before_tls() -> None:
    core = make_core(auth_requires_tls=True)
    result = run([EHLO + b"AUTH PLAIN " + b64(b"\x00bob\x00secret") + b"\r\n"], core=core)
    assert not any(line.startswith("250-AUTH") or line.startswith("250 AUTH")
                   for line in result.lines)
    assert not any(isinstance(e, Authenticate) for e in result.events)
    # RFC 4954 §6: 538 5.7.11, the mechanism needs an encrypted channel.
    assert result.lines[-1].startswith("538 5.7.11 ")


def test_rfc4954_4_auth_offered_and_accepted_under_tls() -> None:
    core = make_core(auth_requires_tls=True)
    _tls_session(core)
    result = run([EHLO + b"AUTH PLAIN " + b64(b"\x00bob\x00secret") + b"\r\n"], core=core)
    assert "250 AUTH PLAIN LOGIN" in result.lines
    assert any(isinstance(e, Authenticate) for e in result.events)


def test_rfc3207_4_mail_before_starttls_530_when_auth_needs_tls() -> None:
    core = make_core(auth_requires_tls=True, auth_required=True)
    result = run([EHLO + MAIL], core=core)
    assert result.lines[-1] == "530 5.7.0 must issue a STARTTLS command first"


def test_implicit_tls_core_offers_auth_but_not_starttls() -> None:
    config = make_core(auth_requires_tls=True).config
    core = SmtpServer(config, tls_active=True)
    core.greeting()
    result = run([EHLO], core=core)
    assert "250-STARTTLS" not in result.lines
    assert "250 AUTH PLAIN LOGIN" in result.lines
