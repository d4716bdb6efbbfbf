"""Golden transcripts (tests/transcripts/pop3/*.txt) against the core, fed
whole, byte by byte and split at random points. The lead runs the same files
against the live server (see transcript.py for the #! header lines)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailyard.proto.pop3 import Commit, Login, Retrieve, StartTls
from tests.proto.splitting import bytewise, split_at
from tests.proto.pop3.transcript import (
    TranscriptError,
    load_transcript,
    parse_pop3,
    run_against_core,
)

DIR = Path(__file__).resolve().parents[2] / "transcripts" / "pop3"
FILES = sorted(DIR.glob("*.txt"))


def test_transcripts_exist() -> None:
    names = {f.stem for f in FILES}
    assert {
        "basic",
        "pipelining",
        "dotstuffing",
        "top",
        "capa",
        "auth_plain",
        "login_failures",
        "errors",
        "stls",
    } <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("split", [None, bytewise], ids=["whole", "bytewise"])
def test_transcript(path: Path, split) -> None:
    run_against_core(load_transcript(path), split)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(FILES), st.lists(st.integers(0, 500), max_size=6))
def test_transcript_random_splits(path: Path, cuts: list[int]) -> None:
    run_against_core(load_transcript(path), lambda d: split_at(d, cuts))


def test_every_transcript_states_its_drop() -> None:
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        assert "# drop:" in text, path.name
        assert "#! user " in text, path.name


def test_basic_commits_the_deletion() -> None:
    events = run_against_core(load_transcript(DIR / "basic.txt"))
    assert events[-1] == Commit((0,))
    assert [type(e) for e in events] == [Login, Retrieve, Commit]


def test_stls_runs_no_injected_command() -> None:
    events = run_against_core(load_transcript(DIR / "stls.txt"))
    assert [type(e) for e in events] == [StartTls, Login, Commit]


def test_runner_detects_mismatch() -> None:
    head = "#! user bob secret\nS: +OK {hostname} POP3 server ready\n"
    with pytest.raises(TranscriptError):
        run_against_core(parse_pop3(head + "C: NOOP\nS: +OK\n"))  # NOOP is wrong state
    with pytest.raises(TranscriptError):
        run_against_core(parse_pop3(head + "C: CAPA\nS: +OK capability list follows\n"))


def test_header_lines() -> None:
    t = parse_pop3("#! user a b c\n#! message x\\r\\n\\x2e\n#! features stls\n")
    assert t.users == {"a": "b c"}
    assert t.messages == [b"x\r\n."]
    assert t.features == frozenset({"stls"})
    with pytest.raises(ValueError):
        parse_pop3("#! mailbox a\n")
