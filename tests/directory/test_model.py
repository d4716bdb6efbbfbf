from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard import fsio
from mailyard.directory.errors import InvalidInput
from mailyard.directory.model import (
    Mailbox,
    Owner,
    canonical_owner_name,
    hosted_domain,
    maildir_for,
    maildir_local,
)
from mailyard.message.address import Address
from tests.directory.strategies import domains, locals_

_PLAIN = set("abcdefghijklmnopqrstuvwxyz0123456789._+=-")


def _decode(name: str) -> str:
    """Inverse of the escaping, to prove it loses nothing."""
    if "%" not in name:
        return name
    out = bytearray()
    i = 0
    while i < len(name):
        if name[i] == "%":
            out.append(int(name[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(ord(name[i]))
            i += 1
    return out.decode("utf-8", "surrogatepass")


def test_plain_and_escaped_examples() -> None:
    assert maildir_local("John.Doe+tag") == "john.doe+tag"
    assert maildir_local("a=b_c-d") == "a=b_c-d"
    assert maildir_local(".hidden") == "%2Ehidden"
    assert maildir_local("..") == "%2E."
    assert maildir_local("a/b") == "a%2Fb"
    assert maildir_local("100%") == "100%25"
    assert maildir_local("José") == "jos%C3%A9"
    assert maildir_for(Address("Bob", "xn--bcher-kva.example")) == "xn--bcher-kva.example/bob"


@given(locals_)
def test_maildir_names_are_always_safe(local: str) -> None:
    name = maildir_local(local)
    assert fsio.safe_component(name) == name
    assert not name.startswith(".")
    assert len(name) <= 192
    assert fsio.safe_join("/srv/mail", maildir_for(Address(local, "example.test"))).startswith(
        "/srv/mail/example.test/"
    )


@given(locals_)
def test_maildir_names_decode_to_the_key(local: str) -> None:
    name = maildir_local(local)
    assert _decode(name) == local.lower()
    if set(local.lower()) <= _PLAIN and not local.startswith("."):
        assert name == local.lower()


@given(locals_, locals_)
def test_maildir_names_are_injective_on_keys(a: str, b: str) -> None:
    if a.lower() != b.lower():
        assert maildir_local(a) != maildir_local(b)
    else:
        assert maildir_local(a) == maildir_local(b)


@given(locals_, domains, domains)
def test_maildir_paths_separate_domains(local: str, d1: str, d2: str) -> None:
    if d1 != d2:
        assert maildir_for(Address(local, d1)) != maildir_for(Address(local, d2))


def test_secrets_stay_out_of_repr_and_equality() -> None:
    owner = Owner("alice", "$argon2id$secret", 1.0)
    assert "secret" not in repr(owner)
    assert owner == Owner("alice", "other", 1.0)
    box = Mailbox(Address("a", "example.test"), "example.test/a", True, "$argon2id$secret", 1.0)
    assert "secret" not in repr(box)


def test_owner_names() -> None:
    assert canonical_owner_name(" Alice ") == "alice"
    assert canonical_owner_name("web-1.ops_x") == "web-1.ops_x"
    for bad in ("", ".x", "-x", "a b", "a/b", "é", "x" * 65):
        with pytest.raises(InvalidInput):
            canonical_owner_name(bad)


def test_hosted_domains() -> None:
    assert hosted_domain("Example.COM") == "example.com"
    assert hosted_domain("bücher.example") == "xn--bcher-kva.example"
    for bad in ("[192.0.2.1]", "example.com.", "", "a_b.test"):
        with pytest.raises(InvalidInput):
            hosted_domain(bad)


@given(st.text(max_size=40))
def test_hosted_domain_never_crashes(text: str) -> None:
    try:
        hosted_domain(text)
    except InvalidInput:
        pass
