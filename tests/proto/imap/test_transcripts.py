"""Golden transcripts (tests/transcripts/imap/*.txt) against the core and
the fake store, fed whole, byte by byte and split at random points. The
lead runs the same files against the live server later (#! headers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailyard.proto.imap import commands as c
from mailyard.proto.imap.events import Command
from tests.proto.splitting import bytewise, split_at
from tests.proto.imap.transcript import (
    TranscriptError,
    load_transcript,
    parse_imap,
    run_against_core,
)

DIR = Path(__file__).resolve().parents[2] / "transcripts" / "imap"
FILES = sorted(DIR.glob("*.txt"))


def test_transcripts_exist() -> None:
    assert {f.stem for f in FILES} >= {
        "basic", "auth", "literals", "append", "mailboxes", "fetch", "search_sort_thread",
        "copy_move", "condstore", "idle", "errors", "starttls", "utf8", "quota_id_namespace",
    }  # fmt: skip


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("split", [None, bytewise], ids=["whole", "bytewise"])
def test_transcript(path: Path, split) -> None:
    run_against_core(load_transcript(path), split)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(FILES), st.lists(st.integers(0, 2000), max_size=8))
def test_transcript_random_splits(path: Path, cuts: list[int]) -> None:
    run_against_core(load_transcript(path), lambda d: split_at(d, cuts))


def test_every_transcript_states_its_world() -> None:
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        assert "# mailbox content:" in text, path.name
        assert "#! user " in text, path.name


def test_every_command_has_a_transcript() -> None:
    seen: set[type] = set()
    for path in FILES:
        seen |= {
            type(e.body) for e in run_against_core(load_transcript(path)) if isinstance(e, Command)
        }
    adapter_commands = {
        c.Login, c.Authenticate, c.StartTls, c.Select, c.Create, c.Delete, c.Rename, c.Subscribe,
        c.Unsubscribe, c.List, c.Lsub, c.Status, c.Append, c.Idle, c.GetQuota, c.GetQuotaRoot,
        c.SetQuota, c.Close, c.Unselect, c.Expunge, c.Search, c.Fetch, c.Store, c.Copy, c.Move,
        c.Sort, c.Thread, c.Noop,
    }  # fmt: skip
    assert adapter_commands <= seen, adapter_commands - seen


def test_starttls_runs_no_injected_command() -> None:
    events = run_against_core(load_transcript(DIR / "starttls.txt"))
    logins = [e for e in events if isinstance(e, Command) and isinstance(e.body, c.Login)]
    assert len(logins) == 1  # a1 is refused by the core, a3 was dropped, a6 reaches the store


def test_runner_detects_mismatch() -> None:
    head = "#! user bob secret\nS~ \\* OK .*\n"
    with pytest.raises(TranscriptError):
        run_against_core(parse_imap(head + "C: a NOOP\nS: a OK wrong text\n"))
    with pytest.raises(TranscriptError):
        run_against_core(parse_imap(head + "C: a CAPABILITY\nS: a OK CAPABILITY completed\n"))


def test_header_lines() -> None:
    t = parse_imap(
        "#! user a b c\n#! mailbox X \\Sent\n#! message X \\Seen,$J 5 a\\r\\n\n#! features literal=LITERAL- starttls=1\n"
    )
    assert t.users == {"a": "b c"}
    assert t.mailboxes == [("X", "\\Sent")]
    assert t.messages == [("X", ("\\Seen", "$J"), 5, b"a\r\n")]
    assert t.features == {"literal": "LITERAL-", "starttls": True}
    with pytest.raises(ValueError):
        parse_imap("#! nonsense x\n")
