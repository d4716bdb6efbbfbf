"""Folder names: checks, the Maildir++ directory form, and the root's small files."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard import fsio
from mailyard.maildir import folders
from mailyard.maildir.errors import ErrorCode, FolderNameError

level = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/*%"),
    min_size=1, max_size=20,
).filter(lambda s: s not in {".", ".."})
names = st.lists(level, min_size=1, max_size=4).map("/".join)


@pytest.mark.parametrize("bad", [
    "", "/", "/etc", "a//b", "a/", "..", "a/../b", ".", "a/./b", "a\0b", "a\nb", "a\x7fb",
    "a\x85b", "a*b", "a%b", "x" * 201, "/".join(["a"] * 33), "/".join(["ü" * 20] * 6),
    "\ud800",
])
def test_refused_names(bad: str) -> None:
    with pytest.raises(FolderNameError) as caught:
        folders.dirname_for(bad)
    assert caught.value.reason
    assert caught.value.code is ErrorCode.CANNOT


def test_inbox_is_the_root_and_case_insensitive() -> None:
    assert folders.dirname_for("INBOX") == ""
    assert folders.dirname_for("inbox") == ""
    assert folders.canonical("iNbOx/Sub") == "INBOX/Sub"
    assert folders.dirname_for("Inbox/Sub") == ".INBOX.Sub"
    assert folders.is_inbox("Inbox")
    assert folders.name_from_dirname(".INBOX") is None


@pytest.mark.parametrize(("name", "dirname"), [
    ("Sent", ".Sent"),
    ("A/B/C", ".A.B.C"),
    ("a.b/c", ".a&AC4-b.c"),
    ("Entwürfe", ".Entw&APw-rfe"),
    ("R&D", ".R&-D"),
    ("with space", ".with space"),
])
def test_dirnames(name: str, dirname: str) -> None:
    assert folders.dirname_for(name) == dirname
    assert folders.name_from_dirname(dirname) == name


def test_foreign_directory_names_are_read_tolerantly() -> None:
    assert folders.name_from_dirname(".Entwürfe") == "Entwürfe"  # raw UTF-8
    assert folders.name_from_dirname(".a&b") == "a&b"             # broken mUTF-7
    for junk in ("", ".", "..", "...", ".a..b", "cur", ".a.", ".x&AC8-y", ".a\x01"):
        assert folders.name_from_dirname(junk) is None


@given(names)
def test_round_trip(name: str) -> None:
    try:
        dirname = folders.dirname_for(name)
    except FolderNameError:
        return  # too long on disk
    canon = folders.canonical(name)
    if canon == "INBOX":
        assert dirname == ""
        return
    fsio.safe_component(dirname)
    assert dirname.startswith(".") and dirname.isascii()
    assert folders.name_from_dirname(dirname) == canon


@given(st.text(max_size=60))
def test_reading_any_directory_name_never_crashes(dirname: str) -> None:
    name = folders.name_from_dirname(dirname)
    if name is not None:
        assert folders.canonical(name) == name


def test_ancestors_and_trash() -> None:
    assert folders.ancestors("A/B/C") == ["A", "A/B"]
    assert folders.ancestors("A") == []
    assert folders.is_trash("Trash") and folders.is_trash("Trash/old")
    assert not folders.is_trash("Trashcan")


def test_subscriptions_file() -> None:
    data = folders.format_subscriptions(["Sent", "inbox/x", "Sent", "Entwürfe"])
    assert data == "Sent\nINBOX/x\nEntwürfe\n".encode()
    assert folders.parse_subscriptions(data) == ["Sent", "INBOX/x", "Entwürfe"]
    # Dovecot's header line, blank lines, junk: dropped.
    assert folders.parse_subscriptions(b"V\t2\n\nSent\r\n/bad\n\xff\xfe\nA//B\n") == ["Sent"]


def test_special_use_file() -> None:
    table = {"Sent": ["\\sent"], "Trash": ["\\Trash"], "All": ["\\All", "\\Flagged"]}
    data = folders.format_special_use(table)
    assert folders.parse_special_use(data) == {
        "All": ("\\All", "\\Flagged"), "Sent": ("\\Sent",), "Trash": ("\\Trash",)}
    assert folders.parse_special_use(b"\\Bogus X\n\\Sent \n\\Junk Junk\n") == {
        "Junk": ("\\Junk",)}
    with pytest.raises(FolderNameError):
        folders.special_use_attribute("\\Important")


@given(st.lists(names, max_size=5))
def test_subscriptions_round_trip(subscribed: list[str]) -> None:
    try:
        data = folders.format_subscriptions(subscribed)
    except FolderNameError:
        return
    expected = list(dict.fromkeys(folders.canonical(n) for n in subscribed))
    assert folders.parse_subscriptions(data) == expected


@given(st.binary(max_size=300))
def test_root_file_parsers_never_crash(data: bytes) -> None:
    for name in folders.parse_subscriptions(data):
        assert folders.canonical(name) == name
    for name, attrs in folders.parse_special_use(data).items():
        assert folders.canonical(name) == name
        assert all(a in folders.SPECIAL_USE for a in attrs)
