from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailyard.directory.model import (
    EMPTY_SNAPSHOT,
    Domain,
    DomainSettings,
    Mailbox,
    Snapshot,
    maildir_for,
)
from mailyard.directory.resolve import LocalMailbox, NotLocal, UnknownLocal, resolve
from mailyard.message.address import Address
from tests.directory.strategies import domains, locals_, swap_ascii_case


def _mailbox(local: str, domain: str, enabled: bool = True) -> Mailbox:
    address = Address(local, domain)
    return Mailbox(address, maildir_for(address), enabled, "h", 0.0)


@st.composite
def snapshots(draw: st.DrawFn) -> tuple[Snapshot, list[str], list[str]]:
    """A snapshot plus the pools its names were drawn from (to query hits and misses)."""
    domain_pool = draw(st.lists(domains, min_size=1, max_size=4, unique=True))
    local_pool = draw(st.lists(locals_, min_size=1, max_size=6))
    hosted = draw(st.lists(st.sampled_from(domain_pool), unique=True))
    boxes = [
        _mailbox(draw(st.sampled_from(local_pool)), domain, draw(st.booleans()))
        for domain in hosted
        for _ in range(draw(st.integers(0, 3)))
    ]
    # No extension separators: this property is about exact lookups
    # (test_resolve_rules.py covers extensions).
    plain = DomainSettings(extension_chars="")
    snap = Snapshot.build([Domain(d, None, 0.0, plain) for d in hosted], boxes)
    return snap, domain_pool, local_pool


@given(snapshots(), st.data())
def test_resolve_matches_the_definition(
    case: tuple[Snapshot, list[str], list[str]], data: st.DataObject
) -> None:
    snap, domain_pool, local_pool = case
    domain = data.draw(st.sampled_from(domain_pool))
    local = data.draw(st.one_of(st.sampled_from(local_pool), locals_))
    result = resolve(snap, Address(local, domain))
    if domain not in snap.domains:
        assert result == NotLocal()
    elif (local.lower(), domain) in snap.mailboxes:
        assert result == LocalMailbox(snap.mailboxes[(local.lower(), domain)])
    else:
        assert result == UnknownLocal()


@given(snapshots(), st.data())
def test_local_parts_compare_case_insensitively(
    case: tuple[Snapshot, list[str], list[str]], data: st.DataObject
) -> None:
    snap, domain_pool, local_pool = case
    local = data.draw(st.sampled_from(local_pool))
    address = Address(local, data.draw(st.sampled_from(domain_pool)))
    swapped = Address(swap_ascii_case(address.local), address.domain)
    assert resolve(snap, address) == resolve(snap, swapped)


def test_unknown_versus_not_local_and_login_disabled_still_receives() -> None:
    box = _mailbox("Alice", "example.test", enabled=False)
    snap = Snapshot.build([Domain("example.test", None, 0.0)], [box])
    assert resolve(snap, Address("alice", "example.test")) == LocalMailbox(box)
    assert resolve(snap, Address("ALICE", "example.test")) == LocalMailbox(box)
    assert resolve(snap, Address("bob", "example.test")) == UnknownLocal()
    assert resolve(snap, Address("alice", "other.test")) == NotLocal()
    assert resolve(EMPTY_SNAPSHOT, Address("alice", "example.test")) == NotLocal()
