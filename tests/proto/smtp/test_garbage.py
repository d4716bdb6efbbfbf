"""h11's fuzz invariant for the SMTP core: whatever a client sends, the core
either handles it or (for API misuse by the adapter only) raises
SmtpUsageError. Any other exception is a bug. Output is always well-formed
replies."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailyard.proto.smtp import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    DataStart,
    Event,
    Reply,
    StartTls,
)
from mailyard.proto.smtp.events import NEEDS_REPLY
from tests.proto.smtp.helpers import accept_policy, make_core
import itertools

PIECES = [
    b"EHLO x\r\n", b"HELO y\n", b"MAIL FROM:<a@b.test>\r\n", b"MAIL FROM:<> SMTPUTF8\r\n",
    b"RCPT TO:<c@example.test>\r\n", b"RCPT TO:<postmaster>\r\n", b"DATA\r\n", b"BDAT 3\r\n",
    b"BDAT 0 LAST\r\n", b"\r\n.\r\n", b"\n.\n", b".", b"\r", b"\n", b"RSET\r\n", b"QUIT\r\n",
    b"AUTH PLAIN\r\n", b"AUTH LOGIN Ym9i\r\n", b"AGJvYgBzZWNyZXQ=\r\n", b"*\r\n", b"STARTTLS\r\n",
    b"NOOP\r\n", b"\xff\xfe\x00", "RCPT TO:<é@x.test>\r\n".encode(), b"x" * 150,
]
_LINE = re.compile(rb"[2-5]\d\d[ -][^\r\n]*")

messages = st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=30)), max_size=40)
codes = st.lists(st.sampled_from([250, 354, 421, 451, 550, 235, 535, 220, 454]), max_size=60)


def _reply_for(event: Event, code: int) -> Reply:
    if isinstance(event, DataStart) and code == 250 and not event.bdat:
        code = 354
    enhanced = None if code in (220, 354) else f"{str(code)[0]}.0.0"
    return Reply(code, enhanced, "x")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages, st.lists(st.integers(0, 2000), max_size=10), codes, st.booleans())
def test_garbage_never_raises(parts: list[bytes], cuts: list[int], answers: list[int],
                              policy_accepts: bool) -> None:
    data = b"".join(parts)
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in itertools.pairwise(points)] + [b""]
    core = make_core(max_bad_commands=1000)
    answer = iter(answers)
    out = b""
    for chunk in chunks:
        core.receive_data(chunk)
        while True:
            event = core.next_event()
            if event in (NEED_DATA, CLOSED):
                break
            if event is AWAITING_REPLY:
                assert core.phase  # only legal when STARTTLS awaits start_tls()
                core.start_tls()
                continue
            if isinstance(event, NEEDS_REPLY):
                accepted = accept_policy(event) if policy_accepts else None
                reply = accepted or _reply_for(event, next(answer, 250))
                core.send(reply)
                if isinstance(event, StartTls) and reply.positive:
                    out += core.data_to_send()
                    core.start_tls()
        out += core.data_to_send()
        if event is CLOSED:
            break
    assert out == b"" or out.endswith(b"\r\n")
    for line in out.split(b"\r\n")[:-1]:
        assert _LINE.fullmatch(line), line
