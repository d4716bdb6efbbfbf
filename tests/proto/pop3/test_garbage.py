"""h11's fuzz invariant for the POP3 core: whatever a client sends, in any
state and split anywhere, the core never raises, and everything it writes is
well-formed POP3: status lines, SASL challenges, or complete dot-stuffed
multi-line bodies. Also: what RETR sends decodes back to the message."""

from __future__ import annotations

import re
from base64 import b64encode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailyard.proto.pop3 import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    Commit,
    DropEntry,
    Login,
    Pop3Server,
    Retrieve,
    StartTls,
)
from tests.proto.pop3.helpers import LOGIN, Adapter, lines, make_core, run
from tests.proto.splitting import split_at

PLAIN = b64encode(b"\x00bob\x00secret")
PIECES = [
    b"USER bob\r\n",
    b"PASS secret\r\n",
    b"PASS x y\r\n",
    b"user\n",
    b"AUTH\r\n",
    b"AUTH PLAIN\r\n",
    b"AUTH PLAIN " + PLAIN + b"\r\n",
    PLAIN + b"\r\n",
    b"AUTH LOGIN\r\n",
    b"Ym9i\r\n",
    b"c2VjcmV0\r\n",
    b"*\r\n",
    b"=\r\n",
    b"STLS\r\n",
    b"CAPA\r\n",
    b"STAT\r\n",
    b"LIST\r\n",
    b"LIST 1\r\n",
    b"UIDL\r\n",
    b"UIDL 2\r\n",
    b"RETR 1\r\n",
    b"RETR 2\r\n",
    b"TOP 1 0\r\n",
    b"TOP 2 1\r\n",
    b"DELE 1\r\n",
    b"DELE 2\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"QUIT\r\n",
    b"LIST 0\r\n",
    b"RETR 99999999999999999999\r\n",
    b"\r\n",
    b"\r",
    b"\n",
    b"\xff\xfe\x00",
    "USER é\r\n".encode(),
    b"x" * 150,
    b"A" * 400 + b"\r\n",
]
# Where the random input starts: every state and reading mode.
STARTS = [b"", LOGIN, b"AUTH PLAIN\r\n", b"AUTH LOGIN\r\n", b"STLS\r\n", LOGIN + b"QUIT\r\n"]
MESSAGES = (b".\r\n..\r\nSubject: a\r\n\r\n.x\r\n", b"no end\r", b"", b"a\nb\n.\n")

STATUS = re.compile(rb"(\+OK|-ERR)( [^\r\n]*)?")
CHALLENGE = re.compile(rb"\+ [A-Za-z0-9+/]*={0,2}")
MULTILINE = re.compile(
    rb"\+OK (capability list follows|SASL mechanisms follow|unique-id listing follows"
    rb"|top of message follows|\d+ octets|\d+ messages? \(\d+ octets\))"
)


def check_output(out: bytes, *, torn: bool) -> None:
    """Every line is a status line, a challenge, or part of a complete body
    (a body may be left open only when a retrieval broke off)."""
    assert out == b"" or out.endswith(b"\r\n") or torn
    in_body = False
    for line in out.split(b"\r\n")[:-1]:
        if in_body:
            if line == b".":
                in_body = False
            else:
                assert not line.startswith(b".") or line.startswith(b".."), line
            continue
        assert len(line) <= 510, line  # RFC 1939 §3: 512 octets with CRLF
        if MULTILINE.fullmatch(line):
            in_body = True
        else:
            assert STATUS.fullmatch(line) or CHALLENGE.fullmatch(line), line
    assert not in_body or torn


class RandomAdapter:
    """Answers each event in one of its legal ways, chosen by hypothesis."""

    def __init__(self, choices: list[int]) -> None:
        self.choices = iter(choices)
        self.torn = False

    def pick(self, n: int) -> int:
        return next(self.choices, 0) % n

    def answer(self, core: Pop3Server, event: object) -> None:
        if isinstance(event, Login):
            [
                lambda: core.login_ok([DropEntry(len(m), f"u{i}") for i, m in enumerate(MESSAGES)]),
                lambda: core.login_failed("no"),
                core.login_in_use,
                lambda: core.login_failed("later", code="SYS/TEMP"),
            ][self.pick(4)]()
        elif isinstance(event, Retrieve):
            self.retrieve(core, event)
        elif isinstance(event, Commit):
            core.commit_done(self.pick(2) == 0, "done")
        elif isinstance(event, StartTls):
            core.start_tls()

    def retrieve(self, core: Pop3Server, event: Retrieve) -> None:
        how = self.pick(4)
        if how == 3:
            core.retrieve_failed("gone")
            return
        data = MESSAGES[event.index]
        core.retrieve_begin(len(data))
        for i in range(0, len(data), 3):
            if how == 2 and i:
                self.torn = True
                core.retrieve_failed("torn")
                return
            core.retrieve_chunk(data[i : i + 3])
        core.retrieve_end()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=30)), max_size=40),
    st.lists(st.integers(0, 3000), max_size=10),
    st.lists(st.integers(0, 11), max_size=40),
    st.booleans(),
    st.sampled_from(STARTS),
    st.sampled_from([0, 3, 1000]),
)
def test_garbage_never_raises(
    parts: list[bytes], cuts: list[int], choices: list[int], eof: bool, start: bytes, bad: int
) -> None:
    data = b"".join(parts)
    chunks = [start, *split_at(data, cuts)] + ([b""] if eof else [])
    core = make_core(max_bad_commands=bad, max_commands=30)
    adapter = RandomAdapter([0, *choices])  # 0: the first login succeeds
    out = core.data_to_send()
    for chunk in chunks:
        core.receive_data(chunk)
        while True:
            event = core.next_event()
            if event is NEED_DATA or event is CLOSED:
                break
            assert event is not AWAITING_REPLY, "every event is answered at once"
            adapter.answer(core, event)
        out += core.data_to_send()
        if event is CLOSED:
            break
    check_output(out, torn=adapter.torn)


def test_checker_rejects_malformed_output() -> None:
    check_output(b"+OK 1 message (3 octets)\r\n1 3\r\n.\r\n+ \r\n-ERR x\r\n", torn=False)
    for bad in (
        b"+OK capability list follows\r\nTOP\r\n",
        b"hello\r\n",
        b"+OK x",
        b"+OK 3 octets\r\n.x\r\n.\r\n",
        b"+OKAY\r\n",
    ):
        with pytest.raises(AssertionError):
            check_output(bad, torn=False)


def unstuff(body: bytes) -> bytes:
    """The client's side of RFC 1939 §3: drop the terminator, unstuff."""
    assert body.endswith(b"\r\n.\r\n") or body == b".\r\n"
    content = body[:-3]
    out = [line[1:] if line.startswith(b".") else line for line in content.split(b"\r\n")]
    return b"\r\n".join(out)


# Stored mail is CRLF text (dotstuff.py: a bare LF is stuffed too, which a
# CRLF client would not undo), so the round trip is over CRLF lines, with or
# without the final line end.
crlf_messages = st.builds(
    lambda body, end: b"\r\n".join(body) + end,
    st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")), max_size=12),
    st.sampled_from([b"", b"\r\n"]),
)


@settings(max_examples=200, deadline=None)
@given(crlf_messages, st.integers(1, 50))
def test_retr_round_trip(message: bytes, chunk: int) -> None:
    adapter = Adapter(messages=(message,), uids=("m",), chunk=chunk)
    result = run([LOGIN + lines("RETR 1")], adapter=adapter)
    head = f"+OK {len(message)} octets\r\n".encode()
    body = result.output.split(head, 1)[1]
    expected = message if not message or message.endswith(b"\r\n") else message + b"\r\n"
    assert unstuff(body) == expected
