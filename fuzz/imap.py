"""Fuzz the IMAP server core: any bytes in any state (not authenticated,
authenticated, selected, mid-APPEND, mid-SASL), split anywhere; the core
raises nothing and writes only well-formed lines without stray CR, LF or
NUL (RFC 9051 §2.2)."""

from __future__ import annotations

import itertools
import random
import re
from typing import Final

from fuzz.corpus import client_lines, sessions
from fuzz.engine import Harness, split_points
from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.events import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    AppendEnd,
    Command,
    IdleDone,
)
from mailyard.proto.imap.responses import Code
from mailyard.proto.imap.server import ImapServer
from mailyard.proto.imap.settings import ImapFeatures, ImapLimits, ImapServerConfig

__all__ = ["HARNESS", "PREFIXES", "check"]

_LINE: Final = re.compile(rb"(\* (OK|NO|BAD|BYE|CAPABILITY|ENABLED|NAMESPACE|ID) .*|\* ENABLED|"
                          rb"\+ .*|[^ \r\n]+ (OK|NO|BAD)( .*)?)")
LOGIN: Final = b"a LOGIN bob secret\r\n"
# Where the fuzz input starts: each state and reading mode of the core.
PREFIXES: Final = (b"", LOGIN, LOGIN + b"s SELECT INBOX\r\n",
                   LOGIN + b"s SELECT INBOX\r\ni IDLE\r\n", LOGIN + b"p APPEND INBOX {40+}\r\n",
                   b"h AUTHENTICATE PLAIN\r\n")


def _core() -> ImapServer:
    limits = ImapLimits(max_bad_commands=1000)
    features = ImapFeatures(starttls=True, sasl_mechanisms=("PLAIN", "LOGIN"))
    core = ImapServer(ImapServerConfig("imap.example.test", limits, features))
    core.greeting()
    return core


def _answer(core: ImapServer, event: object, rng: random.Random) -> None:
    if isinstance(event, Command):
        body = event.body
        if isinstance(body, c.Login | c.Authenticate):
            if (body.username, body.password) == ("bob", "secret"):
                core.finish(Status.OK)
            else:
                core.finish(Status.NO, Code.AUTHENTICATIONFAILED, "invalid credentials")
        elif isinstance(body, c.Append):
            core.accept_append()
        elif isinstance(body, c.StartTls):
            core.finish(Status.OK)
            core.start_tls()
        elif not isinstance(body, c.Idle):
            core.finish(rng.choice((Status.OK, Status.OK, Status.NO)))
    elif isinstance(event, AppendEnd | IdleDone):
        core.finish(Status.OK)


def check(data: bytes, rng: random.Random) -> None:
    """Feed one of PREFIXES and ``data`` in random chunks, then end of input."""
    core = _core()
    payload = rng.choice(PREFIXES) + data
    out = core.data_to_send()
    cuts = split_points(rng, len(payload))
    for chunk in [payload[a:b] for a, b in itertools.pairwise(cuts)] + [b""]:
        core.receive_data(chunk)
        while True:
            event = core.next_event()
            if event is NEED_DATA or event is CLOSED or event is AWAITING_REPLY:
                break
            _answer(core, event, rng)
        out += core.data_to_send()
        if event is CLOSED:
            break
    for line in out.split(b"\r\n")[:-1]:
        assert _LINE.fullmatch(line), line
        assert b"\x00" not in line and b"\n" not in line and b"\r" not in line, line


HARNESS: Final = Harness("imap", lambda: sessions("imap") + client_lines("imap"), check)
