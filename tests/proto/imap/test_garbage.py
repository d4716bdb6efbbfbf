"""h11's fuzz invariant for the IMAP core: whatever a client sends, in any
state and split anywhere, the core raises nothing, keeps making progress,
and writes only well-formed lines (status responses, continuations)."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.proto.imap.helpers import LOGIN, SELECT, lines, make_core, run
from tests.proto.splitting import split_at

PIECES = [
    b"a LOGIN bob secret\r\n", b"a LOGIN {3}\r\n", b"{3+}\r\n", b"bob", b" {6+}\r\nsecret\r\n",
    b"b SELECT INBOX\r\n", b"c FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM)]<0.5>)\r\n",
    b"d UID SEARCH RETURN (MIN) OR (SEEN) NOT 1:3\r\n", b"e IDLE\r\n", b"DONE\r\n",
    b"f APPEND INBOX (\\Seen) {5+}\r\n", b"hello\r\n", b"g APPEND INBOX {2}\r\n", b"~{4}\r\n",
    b"h AUTHENTICATE PLAIN\r\n", b"AGJvYgBzZWNyZXQ=\r\n", b"*\r\n", b"i STARTTLS\r\n",
    b"j ENABLE QRESYNC UTF8=ACCEPT\r\n", b"k STORE 1 +FLAGS (\\Seen)\r\n", b"l LOGOUT\r\n",
    b"m LIST (SUBSCRIBED) \"\" (* %) RETURN (STATUS (MESSAGES))\r\n", b"(((((", b")))\r\n",
    b"\"unterminated\r\n", b"\\\r\n", b"\x00\xff\r\n", b"\n", b"\r\n", b"{99999999999999999999}\r\n",
    b"n SORT (REVERSE) UTF-8 ALL\r\n", b"o THREAD REFERENCES UTF-8 ALL\r\n", b"p UID EXPUNGE $\r\n",
]  # fmt: skip
_LINE = re.compile(rb"(\* (OK|NO|BAD|BYE|CAPABILITY|ENABLED|NAMESPACE|ID) .*|\* ENABLED|\+ .*|"
                   rb"[^ \r\n]+ (OK|NO|BAD)( .*)?)")  # fmt: skip

inputs = st.lists(st.sampled_from(PIECES) | st.binary(max_size=40), max_size=12).map(b"".join)


def _check(data: bytes, prefix: bytes, cuts: list[int]) -> None:
    core = make_core(starttls=True, sasl_mechanisms=("PLAIN", "LOGIN"), max_bad_commands=1000)
    result = run(split_at(prefix + data, cuts), core=core, eof=True)
    for line in result.output.split(b"\r\n")[:-1]:
        assert _LINE.fullmatch(line), line
        assert b"\x00" not in line and b"\n" not in line and b"\r" not in line


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    inputs,
    st.sampled_from([b"", LOGIN, SELECT, SELECT + lines("i IDLE")]),
    st.lists(st.integers(0, 400), max_size=6),
)
def test_garbage_never_breaks_the_core(data: bytes, prefix: bytes, cuts: list[int]) -> None:
    _check(data, prefix, cuts)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=4))
def test_random_bytes(data: bytes, cuts: list[int]) -> None:
    _check(data, SELECT, cuts)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_mid_append_and_sasl(data: bytes) -> None:
    _check(data, LOGIN + b"f APPEND INBOX {50+}\r\n", [])
    _check(data, b"h AUTHENTICATE PLAIN\r\n", [])
    _check(data, LOGIN + b"x LOGIN {20}\r\n", [])
