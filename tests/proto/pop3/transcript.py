"""Golden POP3 transcripts: header, loader and a runner against the core.

The steps are the SMTP transcripts' format (tests/proto/smtp/transcript.py:
``C:``, ``C+``, ``S:``, ``S~``, ``{hostname}``, ``#`` comments); consecutive
C steps are sent together as a pipelining client would, and the S steps up
to the next C group are exactly the lines the server writes, multi-line
bodies and their "." included. On top of that, POP3 transcripts state the
world they assume in machine-readable ``#!`` lines (plain ``#`` comments to
the SMTP parser), so the same file can drive the live server:

* ``#! user <name> <password>``  a mailbox login that succeeds (several allowed);
* ``#! message <text>``  the next message of that mailbox, in maildrop
  order, with ``\\r``, ``\\n``, ``\\\\`` and ``\\xNN`` escapes; the live run
  must store exactly these octets (sizes in S lines are their lengths);
* ``#! features <name> …``  listener features beyond the defaults (``stls``).

``{uidN}`` in S lines stands for the unique-id of message N: the core run
uses ``uidN`` itself, a live run reads the real ones with UIDL first.

STLS: once a group's STLS was accepted, the TLS handshake comes after the
whole group was sent, so what the group pipelined after STLS went over in
plaintext (the injection a correct server must not run); the core run calls
``start_tls()`` at that point.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from mailyard.proto.pop3 import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    Commit,
    DropEntry,
    Event,
    Login,
    Pop3Features,
    Pop3Server,
    Pop3ServerConfig,
    Retrieve,
    StartTls,
)
from tests.proto.smtp.transcript import Step, TranscriptError, groups, parse_transcript

__all__ = ["Transcript", "TranscriptError", "load_transcript", "parse_pop3", "run_against_core"]

HOSTNAME = "pop.example.test"
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|r|n|\\)")
_PLACEHOLDER = re.compile(r"\{uid(\d+)\}")
Splitter = Callable[[bytes], list[bytes]]


@dataclass(frozen=True, slots=True)
class Transcript:
    steps: list[Step]
    users: dict[str, str] = field(default_factory=dict)
    messages: list[bytes] = field(default_factory=list)
    features: frozenset[str] = frozenset()

    def uid(self, number: int) -> str:
        return f"uid{number}"


def _unescape(text: str) -> bytes:
    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        return {"r": "\r", "n": "\n", "\\": "\\"}.get(code) or chr(int(code[1:], 16))

    return _ESCAPE.sub(one, text).encode("latin-1")


def parse_pop3(text: str) -> Transcript:
    users: dict[str, str] = {}
    messages: list[bytes] = []
    features: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.startswith("#! "):
            continue
        key, _, value = line[3:].partition(" ")
        if key == "user":
            name, password = value.split(" ", 1)
            users[name] = password
        elif key == "message":
            messages.append(_unescape(value))
        elif key == "features":
            features.update(value.split())
        else:
            raise ValueError(f"line {lineno}: unknown header {key!r}")
    return Transcript(parse_transcript(text), users, messages, frozenset(features))


def load_transcript(path: str | Path) -> Transcript:
    return parse_pop3(Path(path).read_text(encoding="utf-8"))


def make_core(transcript: Transcript) -> Pop3Server:
    """The plain POP3 listener's defaults, plus the transcript's features."""
    features = Pop3Features(stls="stls" in transcript.features)
    return Pop3Server(Pop3ServerConfig(HOSTNAME, features=features))


@dataclass
class TranscriptAdapter:
    """Answers like server/pop3d.py, with the same texts."""

    transcript: Transcript
    chunk: int = 7
    events: list[Event] = field(default_factory=list)
    tls_pending: bool = False  # STLS accepted; the handshake comes after the group

    def answer(self, core: Pop3Server, event: Event) -> None:
        self.events.append(event)
        t = self.transcript
        if isinstance(event, Login):
            if t.users.get(event.username) == event.password:
                drop = [DropEntry(len(m), t.uid(i)) for i, m in enumerate(t.messages, 1)]
                core.login_ok(drop)
            else:
                core.login_failed("authentication failed")
        elif isinstance(event, Retrieve):
            data = t.messages[event.index]
            core.retrieve_begin(len(data))
            for start in range(0, len(data), self.chunk):
                core.retrieve_chunk(data[start : start + self.chunk])
            core.retrieve_end()
        elif isinstance(event, Commit):
            core.commit_done(True, "bye")
        elif isinstance(event, StartTls):
            self.tls_pending = True


def _drain(core: Pop3Server, adapter: TranscriptAdapter) -> bytes:
    out = b""
    while True:
        event = core.next_event()
        if event is NEED_DATA or event is CLOSED:
            return out + core.data_to_send()
        if event is AWAITING_REPLY:
            if adapter.tls_pending:
                return out + core.data_to_send()
            raise TranscriptError("the adapter left an event unanswered")
        adapter.answer(core, event)


def _expand(step: Step, transcript: Transcript) -> Step:
    def value(match: re.Match[str]) -> str:
        uid = transcript.uid(int(match.group(1)))
        return re.escape(uid) if step.kind == "S~" else uid

    return replace(step, text=_PLACEHOLDER.sub(value, step.text))


def run_against_core(transcript: Transcript, split: Splitter | None = None) -> list[Event]:
    """Replay against a fresh core; raise TranscriptError on a mismatch.
    ``split`` cuts each client group into the pieces fed to ``receive_data``."""
    core = make_core(transcript)
    adapter = TranscriptAdapter(transcript)
    core.greeting()
    pending = core.data_to_send()
    for client, server in groups(transcript.steps):
        data = b"".join(step.payload() for step in client)
        for piece in (split or (lambda d: [d]))(data) if data else []:
            core.receive_data(piece)
            pending += _drain(core, adapter)
        pending += _drain(core, adapter)
        if adapter.tls_pending:
            # The handshake starts once the client has sent its whole group:
            # whatever it pipelined after STLS went in plaintext, before TLS.
            adapter.tls_pending = False
            core.start_tls()
            pending += _drain(core, adapter)
        text = pending.decode("utf-8", errors="replace")
        pending = b""
        got, rest = text.split("\r\n")[:-1], text.split("\r\n")[-1]
        if rest:
            raise TranscriptError(f"incomplete reply line {rest!r}")
        _compare([_expand(s, transcript) for s in server], got)
    return adapter.events


def _compare(expected: Sequence[Step], got: Sequence[str]) -> None:
    for i, step in enumerate(expected):
        if i >= len(got):
            raise TranscriptError(f"line {step.lineno}: expected {step.text!r}, got nothing")
        if not step.matches(got[i], HOSTNAME):
            raise TranscriptError(f"line {step.lineno}: expected {step.text!r}, got {got[i]!r}")
    if len(got) > len(expected):
        raise TranscriptError(f"unexpected extra reply lines {list(got[len(expected) :])!r}")
