"""server.addrlist: the mailboxes of From:/Sender:, parsed strictly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.message.address import Address, quote_localpart
from mailyard.server.addrlist import MailboxListError, parse_mailbox_list


def keys(value: str) -> list[tuple[str, str]]:
    return [a.key for a in parse_mailbox_list(value)]


@pytest.mark.parametrize(("value", "expected"), [
    ("alice@example.test", [("alice", "example.test")]),
    ("Alice <ALICE@Example.TEST>", [("alice", "example.test")]),
    ('"Doe, Jane" <jane@example.test>', [("jane", "example.test")]),
    ("J. Doe <j@example.test>", [("j", "example.test")]),  # RFC 5322 §4.1 obs-phrase
    ("=?utf-8?q?J=C3=B6rg?= <j@example.test>", [("j", "example.test")]),
    ("a@example.test (Alice <evil@x.example>)", [("a", "example.test")]),  # a comment
    ("(lead) a (in) @ (side) example.test (tail)", [("a", "example.test")]),
    ("<@relay.example,@r2.example:a@example.test>", [("a", "example.test")]),  # §4.4 route
    ('"a b"@example.test', [("a b", "example.test")]),
    ("first.last@example.test", [("first.last", "example.test")]),
    ("Jörg <jörg@bücher.example>", [("jörg", "xn--bcher-kva.example")]),  # RFC 6532
    ("a@[192.0.2.1]", [("a", "[192.0.2.1]")]),
    ("a@example.test, B <b@example.test>", [("a", "example.test"), ("b", "example.test")]),
    ("\t a@example.test \r\n", [("a", "example.test")]),
])
def test_accepted(value: str, expected: list[tuple[str, str]]) -> None:
    assert keys(value) == expected


@pytest.mark.parametrize("value", [
    "",
    "alice",
    "alice@example.test <bob@example.test>",  # an address as display name, unquoted
    "Alice: alice@example.test;",  # RFC 6854 group
    "undisclosed:;",
    "a@example.test,",
    ",a@example.test",
    "a@example.test,,b@example.test",
    "<a@example.test> trailing",
    "<<a@example.test>>",
    "<a@example.test",
    "a@example.test>",
    '"unterminated <a@example.test>',
    "(unterminated a@example.test",
    "a@b@example.test",
    "a..b@example.test",
    ".a@example.test",
    "a@example..test",
    "a@-bad-.example",
    "a@example.test.",
    "a\x00b@example.test",
    "a@[not a literal]",
    "Name <@relay.example a@example.test>",
])
def test_refused(value: str) -> None:
    with pytest.raises(MailboxListError):
        parse_mailbox_list(value)


_atext = st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~")
_local = st.lists(st.text(_atext, min_size=1, max_size=8), min_size=1, max_size=3).map(".".join)
_label = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789"), min_size=1, max_size=10)
_domain = st.lists(_label, min_size=1, max_size=3).map(lambda ls: ".".join([*ls, "test"]))
_name = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(st.lists(st.tuples(_local, _domain, st.none() | _name), min_size=1, max_size=4))
def test_round_trip(mailboxes: list[tuple[str, str, str | None]]) -> None:
    rendered = []
    for local, domain, name in mailboxes:
        spec = f"{quote_localpart(local)}@{domain}"
        rendered.append(spec if name is None else f"{_quoted(name)} <{spec}>")
    parsed = parse_mailbox_list(", ".join(rendered))
    assert parsed == tuple(Address(local, domain) for local, domain, _ in mailboxes)


def _parses_or_refuses(value: str) -> None:
    try:
        addresses = parse_mailbox_list(value)
    except MailboxListError:
        return
    assert addresses and all(isinstance(a, Address) for a in addresses)


@given(st.text(max_size=200))
def test_never_crashes(value: str) -> None:
    _parses_or_refuses(value)


@given(st.lists(st.sampled_from(['a', '@', '.', ',', '<', '>', ':', ';', '"', '(', ')', '\\',
                                 '[', ']', ' ', 'example', 'test', 'ü']), max_size=40))
def test_never_crashes_on_specials(parts: list[str]) -> None:
    _parses_or_refuses("".join(parts))
