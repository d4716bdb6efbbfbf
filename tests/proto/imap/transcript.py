"""Golden IMAP transcripts: header, loader and a runner against the core.

The steps are the SMTP transcripts' format (tests/proto/smtp/transcript.py:
``C:``, ``C+``, ``S:``, ``S~``, ``{hostname}``, ``#`` comments). Consecutive
C steps are sent together, as a pipelining client would; the S steps up to
the next C group are exactly the lines the server writes (a literal's
content shows as the lines it contains). Each transcript states the world
it assumes in ``#!`` lines (plain comments to the step parser), so the same
file can later drive the live server:

* ``#! user <name> <password>``  a login that succeeds;
* ``#! mailbox <name> [<special-use attribute>]``  a mailbox besides INBOX;
* ``#! message <mailbox> <flags,comma,separated|-> <epoch seconds> <text>``
  the next message of that mailbox (UIDs from 1 in order; ``\\r``, ``\\n``,
  ``\\\\``, ``\\xNN`` escapes);
* ``#! features <name>=<value> …``  core features beyond the defaults
  (``starttls=1``, ``literal=LITERAL-`` …).

STARTTLS: the handshake comes after the whole client group was sent, so
what the group pipelined after STARTTLS went in plaintext; the core run
calls ``start_tls()`` at that point.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mailyard.proto.imap import commands as c
from mailyard.proto.imap.events import AWAITING_REPLY, CLOSED, NEED_DATA, Command, Event
from mailyard.proto.imap.server import ImapServer
from tests.proto.imap.fakestore import FakeStore
from tests.proto.imap.helpers import HOSTNAME, make_core
from tests.proto.smtp.transcript import Step, TranscriptError, groups, parse_transcript

__all__ = ["Transcript", "TranscriptError", "load_transcript", "parse_imap", "run_against_core"]

_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|r|n|\\)")
Splitter = Callable[[bytes], list[bytes]]


@dataclass(frozen=True, slots=True)
class Transcript:
    steps: list[Step]
    users: dict[str, str] = field(default_factory=dict)
    mailboxes: list[tuple[str, str | None]] = field(default_factory=list)
    messages: list[tuple[str, tuple[str, ...], int, bytes]] = field(default_factory=list)
    features: dict[str, object] = field(default_factory=dict)


def _unescape(text: str) -> bytes:
    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        return {"r": "\r", "n": "\n", "\\": "\\"}.get(code) or chr(int(code[1:], 16))

    return _ESCAPE.sub(one, text).encode("latin-1")


def _feature(value: str) -> object:
    if value.isdigit():
        return bool(int(value)) if value in ("0", "1") else int(value)
    return value


def parse_imap(text: str) -> Transcript:
    t = Transcript(parse_transcript(text))
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.startswith("#! "):
            continue
        key, _, value = line[3:].partition(" ")
        if key == "user":
            name, password = value.split(" ", 1)
            t.users[name] = password
        elif key == "mailbox":
            name, _, special = value.partition(" ")
            t.mailboxes.append((name, special or None))
        elif key == "message":
            box, flags, when, body = value.split(" ", 3)
            flag_list = () if flags == "-" else tuple(flags.split(","))
            t.messages.append((box, flag_list, int(when), _unescape(body)))
        elif key == "features":
            for item in value.split():
                name, _, setting = item.partition("=")
                t.features[name] = _feature(setting)
        else:
            raise ValueError(f"line {lineno}: unknown header {key!r}")
    return t


def load_transcript(path: str | Path) -> Transcript:
    return parse_imap(Path(path).read_text(encoding="utf-8"))


def make_store(t: Transcript) -> FakeStore:
    store = FakeStore(users=dict(t.users))
    for name, special in t.mailboxes:
        store.mailbox(name, special)
    for box, flags, when, body in t.messages:
        store.mailbox(box).add(set(flags), datetime.fromtimestamp(when, UTC), body)
    for box in store.mailboxes.values():
        # The real store gives the messages it finds at once one mod-sequence.
        if box.messages:
            box.modseq = 2
            for message in box.messages:
                message.modseq = 2
    return store


@dataclass
class _Runner:
    core: ImapServer
    store: FakeStore
    events: list[Event] = field(default_factory=list)
    tls_pending: bool = False

    def drain(self) -> bytes:
        out = b""
        while True:
            event = self.core.next_event()
            if event is NEED_DATA or event is CLOSED:
                return out + self.core.data_to_send()
            if event is AWAITING_REPLY:
                if self.tls_pending:
                    return out + self.core.data_to_send()
                raise TranscriptError("the fake store left an event unanswered")
            self.events.append(event)
            self.store.answer(self.core, event)
            if isinstance(event, Command) and isinstance(event.body, c.StartTls):
                self.tls_pending = True


def run_against_core(t: Transcript, split: Splitter | None = None) -> list[Event]:
    """Replay against a fresh core and store; TranscriptError on a mismatch."""
    core = make_core(greet=False, **t.features)
    runner = _Runner(core, make_store(t))
    core.greeting()
    pending = core.data_to_send()
    for client, server in groups(t.steps):
        data = b"".join(step.payload() for step in client)
        for piece in (split or (lambda d: [d]))(data) if data else []:
            core.receive_data(piece)
            pending += runner.drain()
        pending += runner.drain()
        if runner.tls_pending:
            runner.tls_pending = False
            core.start_tls()
            pending += runner.drain()
        text = pending.decode("utf-8", errors="replace")
        pending = b""
        got, rest = text.split("\r\n")[:-1], text.split("\r\n")[-1]
        if rest:
            raise TranscriptError(f"incomplete reply line {rest!r}")
        _compare(server, got)
    return runner.events


def _compare(expected: Sequence[Step], got: Sequence[str]) -> None:
    for i, step in enumerate(expected):
        if i >= len(got):
            raise TranscriptError(f"line {step.lineno}: expected {step.text!r}, got nothing")
        if not step.matches(got[i], HOSTNAME):
            raise TranscriptError(f"line {step.lineno}: expected {step.text!r}, got {got[i]!r}")
    if len(got) > len(expected):
        raise TranscriptError(f"unexpected extra reply lines {list(got[len(expected) :])!r}")
