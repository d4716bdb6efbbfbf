"""LIST patterns and answers (server/imap/listing.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailyard.maildir.mailstore import FolderEntry
from mailyard.proto.imap import commands as c
from mailyard.server.imap.listing import list_answer, lsub_answer, pattern_matcher

ENTRIES = [
    FolderEntry("INBOX", True, False, (), True),
    FolderEntry("Archive", True, False, ("\\Archive",), False),
    FolderEntry("Work", False, True, (), False),  # only a superior on disk
    FolderEntry("Work/Projects", True, True, (), False),
    FolderEntry("Work/Projects/2024", True, False, (), False),
]
NAMES = [e.name for e in ENTRIES]


def names(body: c.List, subscriptions: list[str] | None = None, rev2: bool = False) -> list[str]:
    lines = list_answer(ENTRIES, subscriptions or ["INBOX"], body, rev2=rev2)
    return [line.response.mailbox for line in lines]


def test_wildcards() -> None:
    assert names(c.List("", ("*",))) == sorted(NAMES)
    assert names(c.List("", ("%",))) == ["Archive", "INBOX", "Work"]
    assert names(c.List("Work/", ("%",))) == ["Work/Projects"]
    assert names(c.List("", ("Work/*",))) == ["Work/Projects", "Work/Projects/2024"]
    assert names(c.List("", ("inbox",))) == ["INBOX"]  # RFC 9051 §5.1
    assert names(c.List("", ("inbo%",))) == ["INBOX"]
    assert names(c.List("", ("arch*",))) == []  # other names are case-sensitive


def test_attributes() -> None:
    lines = {line.response.mailbox: line for line in list_answer(
        ENTRIES, ["INBOX"], c.List("", ("*",)), rev2=False)}
    assert lines["Work"].response.attributes == ("\\Noselect", "\\HasChildren")
    assert not lines["Work"].selectable
    assert lines["Archive"].response.attributes == ("\\HasNoChildren", "\\Archive")
    extended = list_answer(ENTRIES, [], c.List("", ("Work",), extended=True), rev2=False)
    assert extended[0].response.attributes == ("\\NonExistent", "\\HasChildren")
    rev2 = list_answer(ENTRIES, [], c.List("", ("Work",)), rev2=True)
    assert rev2[0].response.attributes[0] == "\\NonExistent"


def test_selection_options() -> None:
    subscribed = frozenset({c.ListSelect.SUBSCRIBED})
    body = c.List("", ("*",), subscribed, extended=True)
    lines = list_answer(ENTRIES, ["INBOX", "Gone"], body, rev2=False)
    assert [(x.response.mailbox, x.response.attributes) for x in lines] == [
        ("Gone", ("\\NonExistent", "\\HasNoChildren", "\\Subscribed")),
        ("INBOX", ("\\HasNoChildren", "\\Subscribed")),
    ]
    recursive = c.List("", ("%",), subscribed | {c.ListSelect.RECURSIVEMATCH}, extended=True)
    lines = list_answer(ENTRIES, ["Work/Projects/2024"], recursive, rev2=False)
    assert [(x.response.mailbox, x.response.childinfo) for x in lines] == [
        ("Work", ("SUBSCRIBED",))]
    special = c.List("", ("*",), frozenset({c.ListSelect.SPECIAL_USE}), extended=True)
    assert [x.response.mailbox for x in list_answer(ENTRIES, [], special, rev2=False)] == [
        "Archive"]


def test_lsub() -> None:
    answer = lsub_answer(["Work/Projects", "Gone", "INBOX"], ENTRIES, c.Lsub("", "*"))
    assert [(x.mailbox, x.attributes) for x in answer] == [
        ("Gone", ("\\Noselect",)), ("INBOX", ()), ("Work/Projects", ())]


_name = st.text(alphabet="ab/Ic", min_size=1, max_size=8)
_pattern = st.text(alphabet="ab/*%Ic", max_size=6)


def _reference(pattern: str, name: str) -> bool:
    """A second, independent reading of RFC 9051 §6.3.9's wildcards."""
    if not pattern:
        return not name
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        return any(_reference(rest, name[i:]) for i in range(len(name) + 1))
    if head == "%":
        stop = name.find("/") if "/" in name else len(name)
        return any(_reference(rest, name[i:]) for i in range(stop + 1))
    return bool(name) and name[0] == head and _reference(rest, name[1:])


@given(_pattern, _name)
def test_matcher_agrees_with_a_reference(pattern: str, name: str) -> None:
    if name.upper().startswith("INBOX"):
        return  # case-folding of INBOX is tested above
    assert pattern_matcher([pattern])(name) == _reference(pattern, name)


@given(st.text(max_size=12), st.text(max_size=12))
def test_matcher_never_raises(pattern: str, name: str) -> None:
    assert pattern_matcher([pattern])(name) in (True, False)


def test_rfc3501_6_3_9_lsub_percent_lists_unsubscribed_levels_noselect() -> None:
    # "Work/Projects" is subscribed but "Work" is not: LSUB "" "%" shows Work
    # as \Noselect; LSUB "" "*" shows only what is subscribed.
    answer = lsub_answer(["Work/Projects", "INBOX"], ENTRIES, c.Lsub("", "%"))
    assert [(a.mailbox, a.attributes) for a in answer] == [
        ("INBOX", ()), ("Work", ("\\Noselect",))]
    star = lsub_answer(["Work/Projects"], ENTRIES, c.Lsub("", "*"))
    assert [a.mailbox for a in star] == ["Work/Projects"]
    # A subscribed parent keeps its own (selectable) state.
    both = lsub_answer(["Work", "Work/Projects"], ENTRIES, c.Lsub("", "%"))
    assert [(a.mailbox, a.attributes) for a in both] == [("Work", ("\\Noselect",))]
    deeper = lsub_answer(["Work/Projects/2024"], ENTRIES, c.Lsub("Work/", "%"))
    assert [(a.mailbox, a.attributes) for a in deeper] == [("Work/Projects", ("\\Noselect",))]
