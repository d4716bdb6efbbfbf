"""Fuzz the POP3 server core: any bytes in any state, split anywhere; the
core may raise nothing and writes only status lines, SASL challenges and
dot-stuffed bodies (RFC 1939 §3)."""

from __future__ import annotations

import itertools
import random
import re
from typing import Final

from fuzz.corpus import client_lines, sessions
from fuzz.engine import Harness, split_points
from mailyard.proto.pop3 import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    Commit,
    DropEntry,
    Login,
    Pop3Features,
    Pop3Limits,
    Pop3Server,
    Pop3ServerConfig,
    Retrieve,
    StartTls,
)

__all__ = ["HARNESS", "check"]

MESSAGES: Final = (b"Subject: a\r\n\r\n.dot\r\n..two\r\n", b"no end", b"", b"x\r\n.\r\n")
_STATUS: Final = re.compile(rb"(\+OK|-ERR)( [^\r\n]*)?|\+ [A-Za-z0-9+/]*={0,2}")
_MULTI: Final = re.compile(rb"\+OK (capability list follows|SASL mechanisms follow|unique-id "
                           rb"listing follows|top of message follows|\d+ octets|\d+ messages? "
                           rb"\(\d+ octets\))")


def _core() -> Pop3Server:
    limits = Pop3Limits(max_line_length=200, max_auth_line=400, max_commands=200,
                        max_bad_commands=50)
    features = Pop3Features(stls=True, sasl_mechanisms=("PLAIN", "LOGIN"))
    core = Pop3Server(Pop3ServerConfig("pop.example.test", limits, features))
    core.greeting()
    return core


def _answer(core: Pop3Server, event: object, rng: random.Random) -> bool:
    """Answer one event in one of its legal ways; True if a body was torn."""
    if isinstance(event, Login):
        if rng.random() < 0.8:
            core.login_ok([DropEntry(len(m), f"u{i}") for i, m in enumerate(MESSAGES)])
        else:
            core.login_failed("no")
    elif isinstance(event, Retrieve):
        message = MESSAGES[event.index]
        if rng.random() < 0.1:
            core.retrieve_failed("gone")
            return False
        core.retrieve_begin(len(message))
        for at in range(0, len(message), 4):
            if at and rng.random() < 0.05:
                core.retrieve_failed("torn")
                return True
            core.retrieve_chunk(message[at:at + 4])
        core.retrieve_end()
    elif isinstance(event, Commit):
        core.commit_done(rng.random() < 0.8, "done")
    elif isinstance(event, StartTls):
        core.start_tls()
    return False


def _well_formed(out: bytes, torn: bool) -> None:
    in_body = False
    for line in out.split(b"\r\n")[:-1]:
        if in_body:
            in_body = line != b"."
            assert not in_body or not line.startswith(b".") or line.startswith(b".."), line
        elif _MULTI.fullmatch(line):
            in_body = True
        else:
            assert _STATUS.fullmatch(line), line
    assert not in_body or torn


def check(data: bytes, rng: random.Random) -> None:
    """Feed ``data`` in random chunks, then end of input."""
    core = _core()
    out, torn = core.data_to_send(), False
    cuts = split_points(rng, len(data))
    for chunk in [data[a:b] for a, b in itertools.pairwise(cuts)] + [b""]:
        core.receive_data(chunk)
        while True:
            event = core.next_event()
            if event is NEED_DATA or event is CLOSED:
                break
            assert event is not AWAITING_REPLY, "every event was answered at once"
            torn |= _answer(core, event, rng)
        out += core.data_to_send()
        if event is CLOSED:
            break
    _well_formed(out, torn)


HARNESS: Final = Harness("pop3", lambda: sessions("pop3") + client_lines("pop3"), check)
