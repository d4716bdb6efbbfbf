"""Round trips for the command parsers: typed values rendered as a client
would write them (a test-only writer) parse back to the same values."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from mailyard.proto.imap import commands as c
from mailyard.proto.imap.fetchspec import (
    BinarySection,
    BinarySize,
    BodySection,
    FetchAttr,
    Partial,
    Section,
    SectionText,
)
from mailyard.proto.imap.lexer import MONTHS
from mailyard.proto.imap.search import (
    And,
    DateKey,
    DateWhich,
    FlagKey,
    HeaderKey,
    Not,
    Or,
    SequenceKey,
    SizeKey,
    TextKey,
    TextWhere,
)
from mailyard.proto.imap.sequence import SequenceSet
from mailyard.proto.imap.utf7 import encode_mailbox
from tests.proto.imap.encoder_helpers import client_string
from tests.proto.imap.helpers import LOGIN, parse_one, run

# -- strategies --------------------------------------------------------------------------

texts = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00\r\n"), max_size=20
)
keywords = st.from_regex(r"\$?[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True)
sequences = st.lists(
    st.tuples(st.integers(0, 500), st.integers(0, 500)), min_size=1, max_size=4
).map(lambda items: SequenceSet(tuple(items)))
days = st.dates(min_value=date(1970, 1, 1), max_value=date(2100, 12, 31))

leaves = st.one_of(
    st.builds(
        FlagKey,
        st.sampled_from(["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]),
        st.booleans(),
    ),
    st.builds(FlagKey, keywords, st.booleans()),
    st.builds(TextKey, st.sampled_from(list(TextWhere)), texts),
    st.builds(HeaderKey, st.from_regex(r"[A-Z][A-Z0-9-]{0,10}", fullmatch=True), texts),
    st.builds(
        DateKey, st.sampled_from(list(DateWhich)), st.sampled_from(["BEFORE", "ON", "SINCE"]), days
    ),
    st.builds(SizeKey, st.booleans(), st.integers(0, 10**9)),
    st.builds(SequenceKey, sequences, st.booleans()),
)
search_keys = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(Or, inner, inner),
        st.lists(inner, min_size=2, max_size=3).map(lambda keys: And(tuple(keys))),
    ),
    max_leaves=8,
)

_FLAG_WORDS = {"\\Seen": "SEEN", "\\Answered": "ANSWERED", "\\Flagged": "FLAGGED",
               "\\Deleted": "DELETED", "\\Draft": "DRAFT"}  # fmt: skip


def write_key(key, *, top: bool = False) -> str:
    """A search key as client syntax (test-only writer)."""
    if isinstance(key, And):
        inner = " ".join(write_key(k) for k in key.keys)
        return inner if top else f"({inner})"
    if isinstance(key, Or):
        return f"OR {write_key(key.left)} {write_key(key.right)}"
    if isinstance(key, Not):
        return f"NOT {write_key(key.key)}"
    if isinstance(key, FlagKey):
        word = _FLAG_WORDS.get(key.flag)
        if word is None:
            return f"{'KEYWORD' if key.present else 'UNKEYWORD'} {key.flag}"
        return word if key.present else "UN" + word
    if isinstance(key, TextKey):
        return f"{key.where.value} {client_string(key.value)}"
    if isinstance(key, HeaderKey):
        return f"HEADER {key.field} {client_string(key.value)}"
    if isinstance(key, DateKey):
        prefix = "SENT" if key.which is DateWhich.SENT else ""
        d = key.day
        return f"{prefix}{key.relation} {d.day}-{MONTHS[d.month - 1]}-{d.year:04d}"
    if isinstance(key, SizeKey):
        return f"{'LARGER' if key.larger else 'SMALLER'} {key.size}"
    assert isinstance(key, SequenceKey)
    return ("UID " if key.uid else "") + str(key.numbers)


@settings(max_examples=200, deadline=None)
@given(search_keys)
def test_search_round_trip(key) -> None:
    line = ("a SEARCH " + write_key(key, top=True)).encode() + b"\r\n"
    body = parse_one(line, state="selected")
    assert isinstance(body, c.Search)
    assert body.criteria == key


sections = st.builds(
    Section,
    st.lists(st.integers(1, 30), max_size=3).map(tuple),
    st.sampled_from([None, *SectionText]),
    st.just(()),
).filter(lambda s: not (s.text is SectionText.MIME and not s.part))
partials = st.none() | st.builds(Partial, st.integers(0, 10**6), st.integers(1, 10**6))
fetch_items = st.one_of(
    st.sampled_from(list(FetchAttr)),
    st.builds(BodySection, sections, partials, st.booleans()),
    st.builds(
        BinarySection, st.lists(st.integers(1, 9), max_size=3).map(tuple), partials, st.booleans()
    ),
    st.builds(BinarySize, st.lists(st.integers(1, 9), max_size=3).map(tuple)),
)


def write_item(item) -> str:
    if isinstance(item, FetchAttr):
        return item.value
    part = ".".join(map(str, item.part)) if hasattr(item, "part") else ""
    tail = ""
    if getattr(item, "partial", None) is not None:
        tail = f"<{item.partial.offset}.{item.partial.count}>"
    if isinstance(item, BodySection):
        s = item.section
        spec = ".".join(map(str, s.part))
        if s.text is not None:
            spec += ("." if spec else "") + s.text.value
            if s.text in (SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT):
                spec += " (" + " ".join(s.fields) + ")"
        return f"{'BODY.PEEK' if item.peek else 'BODY'}[{spec}]{tail}"
    if isinstance(item, BinarySection):
        return f"{'BINARY.PEEK' if item.peek else 'BINARY'}[{part}]{tail}"
    return f"BINARY.SIZE[{part}]"


@settings(max_examples=150, deadline=None)
@given(st.lists(fetch_items, min_size=1, max_size=5, unique=True), sequences)
def test_fetch_round_trip(items, sequence) -> None:
    fixed = [
        BodySection(
            Section(i.section.part, i.section.text, ("FROM", "X-A"))
            if i.section.text in (SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT)
            else i.section,
            i.partial,
            i.peek,
        )
        if isinstance(i, BodySection)
        else i
        for i in items
    ]
    fixed = list(dict.fromkeys(fixed))
    line = f"a FETCH {sequence} ({' '.join(write_item(i) for i in fixed)})\r\n".encode()
    body = parse_one(line, state="selected")
    assert body == c.Fetch(False, sequence, tuple(fixed))


@settings(max_examples=150, deadline=None)
@given(texts, texts)
def test_login_round_trip(user: str, password: str) -> None:
    line = f"a LOGIN {client_string(user)} {client_string(password)}\r\n".encode()
    assert parse_one(line, state="none") == c.Login(user, password)


@settings(max_examples=150, deadline=None)
@given(texts.filter(lambda t: t.upper() != "INBOX" and "\x7f" not in t))
def test_mailbox_round_trip(name: str) -> None:
    line = b"a SELECT " + client_string(encode_mailbox(name)).encode() + b"\r\n"
    assert parse_one(line, state="auth") == c.Select(name)
    utf8 = run(
        [LOGIN + b"e ENABLE UTF8=ACCEPT\r\na SELECT " + client_string(name).encode() + b"\r\n"]
    )
    assert utf8.commands[-1] == c.Select(name)


def test_writer_sanity() -> None:
    assert (
        write_key(And((FlagKey("\\Seen"), Not(SizeKey(True, 5)))), top=True) == "SEEN NOT LARGER 5"
    )
