"""The uid list's line format and its file: round trips, garbage, torn tails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.maildir import journal
from mailyard.maildir.journal import Added, Expunged, FlagsSet, Header, Journal, JournalCorrupt

uids = st.integers(min_value=1, max_value=journal.MAX_UID)
modseqs = st.integers(min_value=1, max_value=journal.MAX_MODSEQ)
fields = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
records = st.one_of(
    st.builds(Added, uids, modseqs, st.integers(0, 2**62), st.integers(-(2**62), 2**62),
              fields, fields.filter(bool)),
    st.builds(FlagsSet, uids, modseqs, fields),
    st.builds(Expunged, uids, modseqs),
)


@given(fields)
def test_escape_round_trip(text: str) -> None:
    field = journal.escape(text)
    assert field and " " not in field and "\n" not in field and field.isascii()
    assert journal.unescape(field) == text


def test_escape_forms() -> None:
    assert journal.escape("") == "-"
    assert journal.escape("-") == "%2D"
    assert journal.escape("a b%c\n") == "a%20b%25c%0A"
    assert journal.escape(":2,RS") == ":2,RS"
    with pytest.raises(ValueError):
        journal.unescape("%G0")


@given(records)
def test_record_round_trip(record: journal.Record) -> None:
    line = journal.format_record(record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert journal.parse_record(line) == record


@given(st.binary(max_size=120))
def test_record_parser_never_crashes(line: bytes) -> None:
    record = journal.parse_record(line)
    if record is not None:
        assert journal.parse_record(journal.format_record(record)) == record


@given(st.builds(Header, uids, st.integers(1, journal.MAX_UID + 1), modseqs,
                 st.integers(0, journal.MAX_MODSEQ), st.from_regex(r"[0-9a-f]{1,16}", fullmatch=True)))
def test_header_round_trip(header: Header) -> None:
    assert journal.parse_header(journal.format_header(header)) == header


@given(st.binary(max_size=120))
def test_header_parser_never_crashes(line: bytes) -> None:
    try:
        journal.parse_header(line)
    except JournalCorrupt:
        pass


def test_bad_lines_are_skipped(tmp_path: Path) -> None:
    j = Journal(str(tmp_path))
    header = j.rewrite(Header(7, 1, 1, 0, ""), [Added(1, 1, 10, 5, "", "a")])
    assert header.uidvalidity == 7 and header.generation
    with open(j.path, "ab") as handle:
        handle.write(b"garbage line\nA 2 1 10 5 - b\nF 99\nX 2 2\n\0\0\0")
    j2 = Journal(str(tmp_path))
    assert j2.open() == header
    assert j2.read() == [Added(1, 1, 10, 5, "", "a"), Added(2, 1, 10, 5, "", "b"),
                         Expunged(2, 2)]
    # The NUL tail has no newline: not consumed, and marks the file as torn.
    assert j2.torn()
    with open(j.path, "ab") as handle:
        handle.write(b"\nF 1 3 :2,S\n")
    assert j2.read() == [FlagsSet(1, 3, ":2,S")]
    assert not j2.torn()


def test_incremental_reads_and_rewrite(tmp_path: Path) -> None:
    j = Journal(str(tmp_path))
    j.rewrite(Header(7, 1, 1, 0, ""), [])
    j.append([Added(1, 2, 3, 4, "", "x")])
    reader = Journal(str(tmp_path))
    reader.open()
    assert reader.read() == [Added(1, 2, 3, 4, "", "x")]
    assert reader.read() == []
    offset = reader.offset
    j.append([Expunged(1, 3)])
    assert reader.read() == [Expunged(1, 3)]
    again = Journal(str(tmp_path))
    again.open()
    assert again.seek(offset) and again.read() == [Expunged(1, 3)]
    assert not again.seek(offset - 1) and not again.seek(10**9)
    assert not reader.replaced()
    j.rewrite(Header(7, 2, 3, 0, ""), [])
    assert reader.replaced()
    os.unlink(j.path)
    assert reader.replaced()


def test_corrupt_or_missing_header(tmp_path: Path) -> None:
    j = Journal(str(tmp_path))
    assert j.open() is None
    (tmp_path / journal.FILE_NAME).write_bytes(b"mailyard-uidlist 1 V7 N1")
    with pytest.raises(JournalCorrupt):
        j.open()
    (tmp_path / journal.FILE_NAME).write_bytes(b"something else\n")
    with pytest.raises(JournalCorrupt):
        j.open()
