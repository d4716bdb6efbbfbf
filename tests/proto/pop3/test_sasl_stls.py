"""AUTH (RFC 5034, PLAIN RFC 4616, LOGIN) and STLS (RFC 2595 §4) in the core."""

from __future__ import annotations

from base64 import b64encode

import pytest

from mailyard.proto.pop3 import (
    AWAITING_REPLY,
    Login,
    Pop3UsageError,
    StartTls,
    State,
)
from tests.proto.pop3.helpers import LOGIN, TOTAL, Adapter, lines, make_core, run


def b64(data: bytes) -> str:
    return b64encode(data).decode("ascii")


PLAIN_OK = b64(b"\x00bob\x00secret")
WELCOME = f"+OK maildrop has 3 messages ({TOTAL} octets)"

# -- AUTH PLAIN / LOGIN ----------------------------------------------------------


def test_rfc5034_4_auth_plain_initial_response(feed) -> None:
    result = feed(lines(f"AUTH PLAIN {PLAIN_OK}", "STAT"))
    assert result.events == [Login("bob", "secret", "PLAIN", "")]
    assert result.lines == [WELCOME, f"+OK 3 {TOTAL}"]


def test_rfc4616_2_authzid_is_passed_on(feed) -> None:
    result = feed(lines("AUTH PLAIN " + b64(b"admin\x00bob\x00secret")))
    assert result.events == [Login("bob", "secret", "PLAIN", "admin")]


def test_rfc5034_4_auth_plain_empty_challenge(feed) -> None:
    result = feed(lines("auth plain", PLAIN_OK))
    assert result.lines == ["+ ", WELCOME]
    assert result.events == [Login("bob", "secret", "PLAIN", "")]


def test_auth_login_exchange(feed) -> None:
    result = feed(lines("AUTH LOGIN", b64(b"bob"), b64(b"secret")))
    assert result.lines == ["+ VXNlcm5hbWU6", "+ UGFzc3dvcmQ6", WELCOME]
    assert result.events == [Login("bob", "secret", "LOGIN", "")]


def test_rfc5034_4_star_cancels(feed) -> None:
    result = feed(lines("AUTH PLAIN", "*", "USER bob", "PASS secret"))
    assert result.lines[:2] == ["+ ", "-ERR authentication cancelled"]
    assert result.events == [Login("bob", "secret", "USER")]


def test_cancel_does_not_count_as_error(feed) -> None:
    core = make_core(max_bad_commands=0)
    result = feed(lines("AUTH PLAIN", "*", "AUTH PLAIN", "*", "CAPA"), core=core)
    assert result.lines.count("-ERR authentication cancelled") == 2
    assert not result.closed


def test_rfc5034_4_equals_is_an_empty_initial_response(feed) -> None:
    result = feed(lines("AUTH PLAIN ="))
    assert result.lines == ["-ERR malformed credentials"]  # an empty PLAIN message


@pytest.mark.parametrize(
    "response",
    [
        "not base64!",
        "AGJvYgBzZWNyZXQ",
        b64(b"no-nuls"),
        b64(b"a\x00b\x00c\x00d"),
        b64(b"\x00\x00pw"),
        b64(b"\x00bob\x00"),
        b64(b"\x00\xff\x00pw"),
    ],
)
def test_auth_plain_malformed(feed, response: str) -> None:
    result = feed(lines("AUTH PLAIN", response, "CAPA"))
    assert result.lines[1] in ("-ERR invalid base64 data", "-ERR malformed credentials")
    assert result.lines[2] == "+OK capability list follows"  # back to commands
    assert not result.events


def test_rfc5034_4_auth_without_mechanism_lists_them(feed) -> None:
    result = feed(lines("AUTH"))
    assert result.lines == ["+OK SASL mechanisms follow", "PLAIN", "LOGIN", "."]


def test_auth_unknown_mechanism(feed) -> None:
    result = feed(lines("AUTH CRAM-MD5", "AUTH LOGIN"))
    assert result.lines == ["-ERR unsupported authentication mechanism", "+ VXNlcm5hbWU6"]


def test_auth_mechanism_not_offered(feed) -> None:
    core = make_core(sasl_mechanisms=("PLAIN",))
    result = feed(lines("AUTH LOGIN", "AUTH"), core=core)
    assert result.lines == [
        "-ERR unsupported authentication mechanism",
        "+OK SASL mechanisms follow",
        "PLAIN",
        ".",
    ]


def test_auth_failure_then_retry(feed) -> None:
    bad = "AUTH PLAIN " + b64(b"\x00bob\x00nope")
    result = feed(lines(bad, f"AUTH PLAIN {PLAIN_OK}"))
    assert result.lines == ["-ERR [AUTH] authentication failed", WELCOME]


def test_rfc5034_4_sasl_response_longer_than_a_command_line(feed) -> None:
    password = "p" * 150  # base64 of the message is over max_line_length (100)
    adapter = Adapter(users={"bob": password})
    result = feed(lines("AUTH PLAIN", b64(b"\x00bob\x00" + password.encode())), adapter=adapter)
    assert result.lines[-1] == WELCOME


def test_sasl_response_over_the_auth_limit(feed) -> None:
    result = feed(lines("AUTH PLAIN", "A" * 400, "CAPA"))
    assert result.lines[:2] == ["+ ", "-ERR line too long"]
    assert result.lines[2] == "+OK capability list follows"


def test_auth_with_too_many_arguments(feed) -> None:
    assert feed(lines("AUTH PLAIN a b")).lines == ["-ERR syntax error"]


# -- STLS (RFC 2595 §4) -------------------------------------------------------------


def test_rfc2595_4_stls_discards_buffered_plaintext() -> None:
    core = make_core()
    # The injection: commands pipelined after STLS in the same plaintext packet.
    core.receive_data(lines("CAPA", "STLS", "USER bob", "PASS secret"))
    assert core.next_event() == StartTls()
    assert core.next_event() is AWAITING_REPLY  # nothing read before start_tls()
    assert core.data_to_send().endswith(b"+OK begin TLS negotiation\r\n")
    core.start_tls()
    assert core.state is State.AUTHORIZATION and core.tls_active
    result = run([lines("PASS secret", "CAPA", "STLS")], core=core)
    assert not result.events  # the injected USER/PASS never ran
    assert result.lines[0] == "-ERR send USER first"
    assert "STLS" not in result.lines  # RFC 2595 §4: not offered again
    assert result.lines[-1] == "-ERR TLS already active"


def test_rfc2595_4_stls_forgets_user() -> None:
    core = make_core()
    run([lines("USER bob", "STLS")], core=core)
    result = run([lines("PASS secret")], core=core)
    assert result.lines == ["-ERR send USER first"]


def test_rfc2595_4_stls_not_in_transaction(feed) -> None:
    result = feed(LOGIN + lines("STLS"))
    assert result.lines[-1] == "-ERR command not valid in this state"


def test_stls_not_offered(feed) -> None:
    result = feed(lines("STLS", "CAPA"), core=make_core(stls=False))
    assert result.lines[0] == "-ERR command not available"
    assert "STLS" not in result.lines


def test_stls_with_argument(feed) -> None:
    assert feed(lines("STLS now")).lines == ["-ERR syntax error"]


def test_login_after_tls() -> None:
    # The client waits for "+OK" and the handshake before it says more.
    result = run([lines("STLS"), LOGIN])
    assert result.events == [StartTls(), Login("bob", "secret", "USER")]


def test_start_tls_without_stls_is_usage_error() -> None:
    with pytest.raises(Pop3UsageError):
        make_core().start_tls()
