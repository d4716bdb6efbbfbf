"""Golden SMTP transcripts: loader and a runner against the sans-I/O core.

Format of ``tests/transcripts/smtp/*.txt`` (one step a line):

* ``C: <text>``  the client sends ``text`` verbatim plus CRLF;
* ``C+ <text>``  the client sends ``text`` with ``\\r``, ``\\n``, ``\\\\`` and
  ``\\xNN`` escapes decoded and *no* CRLF added (bare LF, smuggling);
* ``S: <text>``  the next server reply line must equal ``text``;
* ``S~ <regex>`` the next server reply line must fully match ``regex``;
* ``{hostname}`` in S lines is replaced by the server's host name;
* lines starting with ``#`` and blank lines are ignored.

Consecutive C steps form a group sent together (as a pipelining client
would); the S steps up to the next C group are exactly the lines the server
writes in answer. The same files can drive a live server over a socket: send
each group, then read as many lines as there are S steps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mailyard.proto.smtp import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    Event,
    Reply,
    SmtpServer,
    StartTls,
)

__all__ = ["Step", "TranscriptError", "load_transcript", "parse_transcript", "run_against_core"]

_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|r|n|\\)")


class TranscriptError(AssertionError):
    """The server's reply did not match the transcript."""


@dataclass(frozen=True, slots=True)
class Step:
    kind: str  # "C", "C+", "S", "S~"
    text: str
    lineno: int

    def payload(self) -> bytes:
        """Bytes a C or C+ step sends."""
        raw = self.text.encode("utf-8")
        if self.kind == "C":
            return raw + b"\r\n"
        return _ESCAPE.sub(_unescape, raw)

    def matches(self, line: str, hostname: str) -> bool:
        if self.kind == "S":
            return line == self.text.replace("{hostname}", hostname)
        pattern = self.text.replace("{hostname}", re.escape(hostname))
        return re.fullmatch(pattern, line) is not None


def _unescape(match: re.Match[bytes]) -> bytes:
    code = match.group(1)
    return {b"r": b"\r", b"n": b"\n", b"\\": b"\\"}.get(code) or bytes([int(code[1:], 16)])


def parse_transcript(text: str) -> list[Step]:
    steps = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        for kind in ("C+", "S~", "C:", "S:"):
            if line.startswith(kind + " ") or line == kind:
                steps.append(Step(kind.rstrip(":"), line[len(kind) + 1 :], lineno))
                break
        else:
            raise ValueError(f"line {lineno}: not a transcript step: {line!r}")
    return steps


def load_transcript(path: str | Path) -> list[Step]:
    return parse_transcript(Path(path).read_text(encoding="utf-8"))


def groups(steps: Sequence[Step]) -> list[tuple[list[Step], list[Step]]]:
    """(client steps, expected server steps) pairs; the first may send nothing."""
    out: list[tuple[list[Step], list[Step]]] = [([], [])]
    for step in steps:
        is_client = step.kind.startswith("C")
        if is_client and out[-1][1]:
            out.append(([], []))
        (out[-1][0] if is_client else out[-1][1]).append(step)
    return out


Policy = Callable[[Event], "Reply | None"]
Splitter = Callable[[bytes], list[bytes]]


def _drain(core: SmtpServer, policy: Policy, events: list[Event]) -> bytes:
    out = b""
    while True:
        event = core.next_event()
        if event is NEED_DATA or event is CLOSED:
            return out + core.data_to_send()
        if event is AWAITING_REPLY:
            raise TranscriptError("policy left an event unanswered")
        events.append(event)
        reply = policy(event)
        if reply is not None:
            core.send(reply)
        if isinstance(event, StartTls) and reply is not None and reply.positive:
            # No real TLS in the core test: the handshake "happens" here.
            out += core.data_to_send()
            core.start_tls()


def run_against_core(
    steps: Sequence[Step],
    make_core: Callable[[], SmtpServer],
    policy: Policy,
    split: Splitter | None = None,
) -> list[Event]:
    """Replay ``steps`` against a fresh core; raise TranscriptError on mismatch.

    ``split`` cuts each client group into the pieces fed to ``receive_data``
    (default: all at once). Returns every event the core produced.
    """
    core = make_core()
    hostname = core.config.hostname
    core.greeting()
    events: list[Event] = []
    pending = core.data_to_send()
    for client, server in groups(steps):
        data = b"".join(step.payload() for step in client)
        for piece in (split or (lambda d: [d]))(data) if data else []:
            core.receive_data(piece)
            pending += _drain(core, policy, events)
        pending += _drain(core, policy, events)
        lines = pending.decode("utf-8").split("\r\n")
        pending = b""
        got, rest = lines[:-1], lines[-1]
        if rest:
            raise TranscriptError(f"incomplete reply line {rest!r}")
        _compare(server, got, hostname)
    return events


def _compare(expected: Sequence[Step], got: Sequence[str], hostname: str) -> None:
    for i, step in enumerate(expected):
        if i >= len(got):
            raise TranscriptError(f"line {step.lineno}: expected {step.text!r}, got nothing")
        if not step.matches(got[i], hostname):
            raise TranscriptError(f"line {step.lineno}: expected {step.text!r}, got {got[i]!r}")
    if len(got) > len(expected):
        raise TranscriptError(f"unexpected extra reply lines {list(got[len(expected):])!r}")
