"""LOGIN, AUTHENTICATE PLAIN with SASL-IR (RFC 4959) and "*", STARTTLS
hooks (RFC 9051 §6.2.1): plaintext after STARTTLS is dropped."""

from __future__ import annotations

import base64

import pytest

from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import ImapUsageError, Status
from mailyard.proto.imap.events import AWAITING_REPLY, Command
from mailyard.proto.imap.states import State
from tests.proto.imap.helpers import lines, make_core, run, tagged

PLAIN = base64.b64encode(b"\x00bob\x00secret").decode()
WRONG = base64.b64encode(b"\x00bob\x00nope").decode()


def test_login(feed) -> None:
    result = feed(lines("a LOGIN bob secret"))
    assert result.lines[0].startswith("a OK [CAPABILITY IMAP4rev1 ")
    assert "IDLE" in result.lines[0]  # the authenticated list
    result = feed(lines("a LOGIN bob nope", "b LOGIN bob secret"))
    assert result.lines[0] == "a NO [AUTHENTICATIONFAILED] invalid credentials"
    assert result.lines[1].startswith("b OK")


def test_authenticate_sasl_ir(feed) -> None:
    result = feed(lines(f"a AUTHENTICATE PLAIN {PLAIN}"))
    assert result.commands == [c.Authenticate("PLAIN", "bob", "secret")]
    assert result.lines[0].startswith("a OK [CAPABILITY")


def test_authenticate_challenge_and_response(feed) -> None:
    result = feed(lines("a AUTHENTICATE plain", WRONG, "b AUTHENTICATE PLAIN", PLAIN))
    assert result.lines[0] == "+ "
    assert result.lines[1] == "a NO [AUTHENTICATIONFAILED] invalid credentials"
    assert result.lines[2] == "+ "
    assert result.lines[3].startswith("b OK")


def test_authenticate_cancel_and_garbage(feed) -> None:
    result = feed(
        lines("a AUTHENTICATE PLAIN", "*", "b AUTHENTICATE PLAIN", "!!!", "c AUTHENTICATE PLAIN =")
    )
    assert result.lines == [
        "+ ",
        "a BAD AUTHENTICATE cancelled",  # RFC 9051 §6.2.2
        "+ ",
        "b BAD AUTHENTICATE failed: invalid base64 data",
        "c BAD AUTHENTICATE failed: malformed credentials",
    ]


def test_authenticate_unknown_mechanism() -> None:
    result = run([lines("a AUTHENTICATE CRAM-MD5")])
    assert result.lines == ["a NO unsupported mechanism CRAM-MD5"]
    result = run([lines("a AUTHENTICATE LOGIN", "Ym9i", "c2VjcmV0")],
                 core=make_core(sasl_mechanisms=("PLAIN", "LOGIN")))  # fmt: skip
    assert result.lines[:2] == ["+ VXNlcm5hbWU6", "+ UGFzc3dvcmQ6"]
    assert result.commands == [c.Authenticate("LOGIN", "bob", "secret")]


def test_login_disabled_before_tls() -> None:
    core = make_core(starttls=True, login_without_tls=False)
    result = run(
        [lines("a CAPABILITY", "b LOGIN bob secret", f"c AUTHENTICATE PLAIN {PLAIN}")], core=core
    )
    caps = result.lines[0].split()
    assert "LOGINDISABLED" in caps and "STARTTLS" in caps and "AUTH=PLAIN" not in caps
    assert result.lines[2] == "b NO [PRIVACYREQUIRED] LOGIN needs TLS"
    assert result.lines[3] == "c NO [PRIVACYREQUIRED] AUTHENTICATE needs TLS"


def test_starttls_drops_pipelined_plaintext() -> None:
    core = make_core(starttls=True, login_without_tls=False)
    core.receive_data(lines("a STARTTLS", "b LOGIN bob secret"))
    event = core.next_event()
    assert isinstance(event, Command) and isinstance(event.body, c.StartTls)
    core.finish(Status.OK)
    assert core.next_event() is AWAITING_REPLY  # nothing read until the handshake
    assert core.data_to_send() == b"a OK STARTTLS completed\r\n"
    core.start_tls()  # the injected LOGIN is gone
    assert core.tls_active and core.state is State.NOT_AUTHENTICATED
    result = run([lines("c CAPABILITY", "d STARTTLS", "e LOGIN bob secret")], core=core)
    caps = result.lines[0].split()
    assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps and "AUTH=PLAIN" in caps
    assert tagged(result, "d") == "d BAD TLS is already active"
    assert tagged(result, "e").startswith("e OK")
    assert result.commands == [c.Login("bob", "secret")]


def test_starttls_refused_by_adapter() -> None:
    core = make_core(starttls=True)
    core.receive_data(lines("a STARTTLS", "b NOOP"))
    core.next_event()
    core.finish(Status.NO, text="TLS unavailable")
    event = core.next_event()
    assert isinstance(event, Command) and isinstance(event.body, c.Noop)
    with pytest.raises(ImapUsageError):
        core.start_tls()


def test_starttls_not_offered() -> None:
    assert run([lines("a STARTTLS")]).lines == ["a BAD unknown command STARTTLS"]


def test_greeting() -> None:
    core = make_core(greet=False)
    core.greeting()
    line = core.data_to_send().decode()
    assert line.startswith(
        "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 AUTH=PLAIN SASL-IR ENABLE ID LITERAL+]"
    )
    assert line.endswith("imap.example.test IMAP server ready\r\n")
    with pytest.raises(ImapUsageError):
        core.greeting()
