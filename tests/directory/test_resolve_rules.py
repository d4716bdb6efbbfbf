"""The routing rules beyond exact mailboxes: aliases, extensions, catch-all,
domain aliases, receive/expiry, and alias expansion."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from mailyard.directory.model import Alias, Domain, DomainSettings, Mailbox, Snapshot, maildir_for
from mailyard.directory.resolve import (
    MAX_EXPANSION_DEPTH,
    Forward,
    LocalMailbox,
    NotLocal,
    Refused,
    UnknownLocal,
    expand,
    resolve,
)
from mailyard.message.address import Address

D = "example.test"


def box(local: str, domain: str = D, **settings: object) -> Mailbox:
    address = Address(local, domain)
    mailbox = Mailbox(address, maildir_for(address), True, "h", 0.0)
    return dataclasses.replace(mailbox, **settings)  # type: ignore[arg-type]


def alias(local: str, *targets: str, owner: str | None = None, domain: str = D) -> Alias:
    return Alias(Address(local, domain), targets, owner)


def snap(
    mailboxes: list[Mailbox],
    aliases: list[Alias] = [],  # noqa: B006 - never mutated
    **settings: object,
) -> Snapshot:
    domain = Domain(D, None, 0.0, DomainSettings(**settings))  # type: ignore[arg-type]
    return Snapshot.build([domain, Domain("other.test", None, 0.0)], mailboxes, aliases)


def r(s: Snapshot, text: str, now: float | None = None) -> object:
    local, _, domain = text.rpartition("@")
    return resolve(s, Address(local, domain), now)


def test_alias_resolves_to_a_forward_with_its_owner() -> None:
    s = snap([box("bob")], [alias("team", "bob@example.test", "x@remote.test", owner="o@x.test")])
    assert r(s, "team@example.test") == Forward(
        Address("team", D), ("bob@example.test", "x@remote.test"), "o@x.test"
    )
    assert r(s, "TEAM@example.test") == r(s, "team@example.test")


def test_mailbox_forwards_with_and_without_copy() -> None:
    keep = box("ann", forwards=("a@remote.test",))
    drop = box("joe", forwards=("j@remote.test",), keep_copy=False)
    s = snap([keep, drop])
    assert r(s, "ann@example.test") == Forward(Address("ann", D), ("a@remote.test",), None, keep)
    assert r(s, "joe@example.test") == Forward(Address("joe", D), ("j@remote.test",), None, None)


def test_extension_plus_by_default_and_dash_only_when_configured() -> None:
    bob = box("bob")
    s = snap([bob])
    assert r(s, "bob+lists@example.test") == LocalMailbox(bob, "lists")
    assert r(s, "bob-lists@example.test") == UnknownLocal()
    assert r(s, "bob+@example.test") == UnknownLocal()
    dashed = snap([bob], extension_chars="+-")
    assert r(dashed, "bob-lists@example.test") == LocalMailbox(bob, "lists")


def test_longest_base_first_and_exact_match_wins() -> None:
    a, ab, exact = box("a"), box("a-b"), box("a-b-c")
    s = snap([a, ab], extension_chars="-")
    assert r(s, "a-b-c@example.test") == LocalMailbox(ab, "c")
    assert r(s, "a-x-c@example.test") == LocalMailbox(a, "x-c")
    s2 = snap([a, ab, exact], extension_chars="-")
    assert r(s2, "a-b-c@example.test") == LocalMailbox(exact)


def test_extension_of_an_alias_keeps_the_extension() -> None:
    s = snap([], [alias("list", "x@remote.test")])
    found = r(s, "list+tag@example.test")
    assert isinstance(found, Forward) and found.extension == "tag"


def test_catch_all_only_for_unknown_local_parts() -> None:
    bob = box("bob")
    s = snap([bob], catch_all=("bob@example.test",))
    assert r(s, "bob@example.test") == LocalMailbox(bob)
    assert r(s, "anything@example.test") == Forward(
        Address("anything", D), ("bob@example.test",)
    )


def test_domain_alias_maps_every_local_part() -> None:
    bob = box("bob")
    domains = [
        Domain(D, None, 0.0),
        Domain("alias.test", None, 0.0, DomainSettings(alias_of=D)),
        Domain("chain.test", None, 0.0, DomainSettings(alias_of="alias.test")),
        Domain("dangling.test", None, 0.0, DomainSettings(alias_of="gone.test")),
    ]
    s = Snapshot.build(domains, [bob])
    assert r(s, "Bob@alias.test") == LocalMailbox(bob)
    assert r(s, "bob+x@alias.test") == LocalMailbox(bob, "x")
    assert r(s, "nobody@alias.test") == UnknownLocal()
    # One level only, and never through a missing domain.
    assert r(s, "bob@chain.test") == UnknownLocal()
    assert r(s, "bob@dangling.test") == UnknownLocal()
    assert r(s, "bob@elsewhere.test") == NotLocal()


def test_receive_off_and_expiry_refuse() -> None:
    s = snap([box("off", receive=False), box("old", expires=100.0), box("nologin", enabled=False)])
    assert r(s, "off@example.test") == Refused("this mailbox does not accept mail")
    assert r(s, "old@example.test", now=100.0) == Refused("this mailbox has expired")
    assert isinstance(r(s, "old@example.test", now=99.0), LocalMailbox)
    assert isinstance(r(s, "old@example.test"), LocalMailbox)  # no clock: no expiry
    assert isinstance(r(s, "nologin@example.test"), LocalMailbox)


def _fw(s: Snapshot, text: str) -> Forward:
    found = r(s, text)
    assert isinstance(found, Forward)
    return found


def test_expand_flattens_aliases_and_removes_duplicates() -> None:
    s = snap(
        [box("bob"), box("amy")],
        [
            alias("all", "staff@example.test", "bob@example.test", "ext@remote.test"),
            alias("staff", "Bob+work@example.test", "amy@example.test", "EXT@remote.test"),
        ],
    )
    assert expand(s, _fw(s, "all@example.test")) == (
        "Bob+work@example.test", "amy@example.test", "EXT@remote.test"
    )


def test_expand_cuts_cycles_and_keeps_mailboxes_with_forwards() -> None:
    fwd = box("fwd", forwards=("far@remote.test",))
    s = snap([fwd], [alias("a", "b@example.test", "fwd@example.test"), alias("b", "a@example.test")])
    assert expand(s, _fw(s, "a@example.test")) == ("fwd@example.test",)


def test_expand_excludes_shared_keys_and_the_kept_mailbox() -> None:
    ann = box("ann", forwards=("ann@example.test", "x@remote.test"))
    s = snap([ann, box("bob")], [alias("l1", "bob@example.test"), alias("l2", "bob@example.test")])
    seen: set[tuple[str, str]] = set()
    assert expand(s, _fw(s, "l1@example.test"), exclude=seen) == ("bob@example.test",)
    assert expand(s, _fw(s, "l2@example.test"), exclude=seen) == ()
    # A mailbox forwarding to itself with keep_copy: the copy is kept once.
    assert expand(s, _fw(s, "ann@example.test")) == ("x@remote.test",)


def test_expand_is_bounded_in_depth() -> None:
    chain = [alias(f"a{i}", f"a{i + 1}@example.test") for i in range(20)]
    s = snap([box("end")], [*chain, alias("a20", "end@example.test")])
    assert expand(s, _fw(s, "a0@example.test")) == ()
    short = snap([box("end")], [alias("a0", "a1@example.test"), alias("a1", "end@example.test")])
    assert expand(short, _fw(short, "a0@example.test")) == ("end@example.test",)
    assert MAX_EXPANSION_DEPTH > 2


def test_expand_drops_unparsable_targets() -> None:
    s = snap([], [alias("bad", "not an address", "ok@remote.test")])
    assert expand(s, _fw(s, "bad@example.test")) == ("ok@remote.test",)


@given(st.text("ab+-", min_size=1, max_size=12))
def test_resolution_never_crashes_on_any_local_part(local: str) -> None:
    s = snap([box("a"), box("a-b")], [alias("b", "a@example.test")], extension_chars="+-")
    found = resolve(s, Address(local, D))
    assert isinstance(found, LocalMailbox | Forward | UnknownLocal)
