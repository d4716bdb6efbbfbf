"""Fuzz the SMTP server core: any bytes, split anywhere, answered by a
policy; the core may raise nothing and writes only well-formed replies
(RFC 5321 §4.2: a code, a space or hyphen, text, CRLF)."""

from __future__ import annotations

import itertools
import random
import re
from typing import Final

from fuzz.corpus import client_lines, sessions
from fuzz.engine import Harness, split_points
from mailyard.proto.smtp import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    DataStart,
    Event,
    Features,
    Reply,
    SmtpLimits,
    SmtpServer,
    SmtpServerConfig,
    StartTls,
)
from mailyard.proto.smtp.events import NEEDS_REPLY

__all__ = ["HARNESS", "check"]

_LINE: Final = re.compile(rb"[2-5]\d\d[ -][^\r\n]*")
_CODES: Final = (250, 250, 250, 354, 421, 451, 550, 235, 535, 220)


def _core() -> SmtpServer:
    limits = SmtpLimits(max_message_size=20_000, max_recipients=5, max_line_length=200,
                        max_command_line=200, max_commands=200, max_bad_commands=50)
    features = Features(auth_mechanisms=("PLAIN", "LOGIN"), starttls=True)
    core = SmtpServer(SmtpServerConfig("mx.example.test", limits, features))
    core.greeting()
    return core


def _reply(event: Event, rng: random.Random) -> Reply:
    code = rng.choice(_CODES)
    if isinstance(event, DataStart) and code == 250 and not event.bdat:
        code = 354
    return Reply(code, None if code in (220, 354) else f"{str(code)[0]}.0.0", "x")


def check(data: bytes, rng: random.Random) -> None:
    """Feed ``data`` in random chunks, then end of input."""
    core = _core()
    out = core.data_to_send()
    cuts = split_points(rng, len(data))
    for chunk in [data[a:b] for a, b in itertools.pairwise(cuts)] + [b""]:
        core.receive_data(chunk)
        while True:
            event = core.next_event()
            if event is NEED_DATA or event is CLOSED:
                break
            if event is AWAITING_REPLY:
                core.start_tls()
                continue
            if isinstance(event, NEEDS_REPLY):
                reply = _reply(event, rng)
                core.send(reply)
                if isinstance(event, StartTls) and reply.positive:
                    out += core.data_to_send()
                    core.start_tls()
        out += core.data_to_send()
        if event is CLOSED:
            break
    assert out.endswith(b"\r\n"), out[-80:]
    for line in out.split(b"\r\n")[:-1]:
        assert _LINE.fullmatch(line), line


HARNESS: Final = Harness("smtp", lambda: sessions("smtp") + client_lines("smtp"), check)
