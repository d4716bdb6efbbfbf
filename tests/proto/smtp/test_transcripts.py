"""Golden transcripts (tests/transcripts/smtp/*.txt) against the core, fed
whole, byte by byte and split at random points. The lead runs the same files
against the live server."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailyard.proto.smtp import (
    DataChunk,
    DataEnd,
    DataStart,
    Event,
    Hello,
    MailFrom,
    RcptTo,
    Reply,
    SmtpServer,
    SmtpServerConfig,
)
from tests.proto.splitting import bytewise, split_at
from tests.proto.smtp.transcript import (
    TranscriptError,
    load_transcript,
    parse_transcript,
    run_against_core,
)

DIR = Path(__file__).resolve().parents[2] / "transcripts" / "smtp"
FILES = sorted(DIR.glob("*.txt"))
HOSTNAME = "mx.example.test"


def make_core() -> SmtpServer:
    """Defaults of the plain SMTP listener (no STARTTLS, no AUTH)."""
    return SmtpServer(SmtpServerConfig(HOSTNAME))


def policy(event: Event) -> Reply | None:
    """Same texts as server/smtpd.py, so transcripts fit the live server too."""
    if isinstance(event, Hello):
        return Reply(250, None, HOSTNAME)
    if isinstance(event, MailFrom):
        return Reply(250, "2.1.0", "sender ok")
    if isinstance(event, RcptTo):
        if event.recipient.domain != "example.test":
            return Reply(554, "5.7.1", "relay access denied")
        if event.recipient.local in ("alice", "bob", "postmaster"):
            return Reply(250, "2.1.5", "recipient ok")
        return Reply(550, "5.1.1", "no such user here")
    if isinstance(event, DataStart):
        return Reply(354, None, "end data with <CR><LF>.<CR><LF>")
    if isinstance(event, DataEnd):
        return Reply(250, "2.0.0", "ok queued as TEST")
    return None


def test_transcripts_exist() -> None:
    names = {f.stem for f in FILES}
    assert {"basic", "pipelining", "bad_sequence", "dotstuffing", "size", "smuggling"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("split", [None, bytewise], ids=["whole", "bytewise"])
def test_transcript(path: Path, split) -> None:
    run_against_core(load_transcript(path), make_core, policy, split)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(FILES), st.lists(st.integers(0, 500), max_size=6))
def test_transcript_random_splits(path: Path, cuts: list[int]) -> None:
    run_against_core(load_transcript(path), make_core, policy, lambda d: split_at(d, cuts))


def test_dotstuffing_content_is_exact() -> None:
    events = run_against_core(load_transcript(DIR / "dotstuffing.txt"), make_core, policy)
    content = b"".join(e.data for e in events if isinstance(e, DataChunk))
    assert content == b"Subject: dots\r\n\r\n.leading dot\r\n..\r\n.\r\n. space\r\nmiddle . dot\r\n"


def test_smuggling_sends_one_message_per_transaction() -> None:
    events = run_against_core(load_transcript(DIR / "smuggling.txt"), make_core, policy)
    assert sum(isinstance(e, MailFrom) for e in events) == 2
    assert sum(isinstance(e, DataEnd) for e in events) == 1


def test_runner_detects_mismatch() -> None:
    steps = parse_transcript("S: 220 {hostname} ESMTP mailyard\nC: NOOP\nS: 250 2.0.0 NOT OK\n")
    with pytest.raises(TranscriptError):
        run_against_core(steps, make_core, policy)
    extra = parse_transcript("S: 220 {hostname} ESMTP mailyard\nC: NOOP\n")
    with pytest.raises(TranscriptError):
        run_against_core(extra, make_core, policy)


def test_escapes_in_raw_client_lines() -> None:
    (step,) = parse_transcript(r"C+ a\r\n\x00\\b")
    assert step.payload() == b"a\r\n\x00\\b"
