from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.message.address import (
    Address,
    AddressError,
    canonical_domain,
    parse_address,
    parse_path,
    quote_localpart,
)


def test_plain_and_idna() -> None:
    assert parse_address("Joe@Example.COM") == Address("Joe", "example.com")
    assert parse_address("joe@bücher.de").domain == "xn--bcher-kva.de"
    assert parse_address("joe@bücher.de").key == ("joe", "xn--bcher-kva.de")


def test_paths_and_source_routes() -> None:
    assert parse_path("<a@b.example>") == Address("a", "b.example")
    # RFC 5321 §4.1.1.3: the source route is ignored, the final mailbox counts.
    assert parse_path("<@relay.example,@x.example:user@final.example>") == Address("user", "final.example")
    with pytest.raises(AddressError):
        parse_path("a@b.example")


@pytest.mark.parametrize(
    "bad",
    ["", "@x.example", "a@", "a@@b", "a@b@c.example", "a..b@x.example", ".a@x.example",
     "a@-x.example", "a@x_y.example", "a@x.123", "a b@x.example", "a@[300.1.1.1]",
     "x" * 65 + "@x.example", '"unterminated@x.example'],
)
def test_invalid(bad: str) -> None:
    with pytest.raises(AddressError):
        parse_address(bad)


def test_quoted_localpart() -> None:
    a = parse_address('"john doe"@x.example')
    assert a.local == "john doe"
    assert str(a) == '"john doe"@x.example'
    assert parse_address('"victim@elsewhere"@x.example').domain == "x.example"


def test_literals() -> None:
    assert parse_address("a@[127.0.0.1]").domain == "[127.0.0.1]"
    assert parse_address("a@[IPv6:0::1]").domain == "[IPv6:::1]"


def test_utf8_needs_flag() -> None:
    assert parse_address("josé@x.example").local == "josé"
    with pytest.raises(AddressError):
        parse_address("josé@x.example", utf8=False)


def test_canonical_domain_lowercases() -> None:
    assert canonical_domain("MAIL.Example.ORG") == "mail.example.org"


@given(st.text(max_size=80))
def test_parse_never_raises_anything_else(text: str) -> None:
    try:
        parse_address(text)
    except AddressError:
        pass
    try:
        parse_path(text)
    except AddressError:
        pass


_atext = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~", min_size=1, max_size=10)


@given(st.lists(_atext, min_size=1, max_size=3), st.sampled_from(["example.com", "a.b.example"]))
def test_round_trip(atoms: list[str], domain: str) -> None:
    local = ".".join(atoms)
    if len(local) > 64:
        return
    parsed = parse_address(f"{local}@{domain}")
    assert parse_address(str(parsed)) == parsed
    assert quote_localpart(local) == local
