"""The pure parsers: qmail control files, vpwentry records, Courier's files."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.importers import courier, qmail, vmailmgr
from mailyard.importers.vmailmgr import VpwEntry, VpwError, decode_vpwentry, encode_vpwentry

# -- qmail -----------------------------------------------------------------------

CONTROL = {
    "me": "mx.example.net\n",
    "locals": "localhost\nmx.example.net\n",
    "rcpthosts": "example.com\nexample.org\nbackup.test\n# comment\n\n",
    "virtualdomains": "example.com:vmail-example.com\nexample.org:bob\n"
                      "joe@other.test:joe\n.wild.test:x\nbroken\n",
    "smtproutes": "relay.test:smart.example.net:2525\n:default.example.net\nmx.test:\n",
    "databytes": "10485760\n",
}
ASSIGN = "+vmail-:vmail:1001:1001:/var/vmail:-::\n=bob:bob:1002:1002:/home/bob:::\n.\n"


def test_control_plan_maps_domains_routes_and_reports_the_rest() -> None:
    control = qmail.parse_control(CONTROL, ASSIGN)
    assert control.me == "mx.example.net"
    assert control.databytes == 10485760
    plan = qmail.plan_qmail(control, owners=True)
    assert [(d.name, d.user, d.owner) for d in plan.domains] == [
        ("example.com", "vmail", "vmail"), ("example.org", "bob", "bob")]
    assert plan.config == (
        'hostname = "mx.example.net"', "", "[smtp]", "max_message_size = 10485760", "",
        "[delivery.routes]", '"relay.test" = "smart.example.net:2525"',
        '"" = "default.example.net"', '"mx.test" = ""')
    items = {u.item for u in plan.unmapped}
    assert "virtualdomains: joe@other.test:joe" in items
    assert "virtualdomains: .wild.test:x" in items
    assert "rcpthosts: backup.test" in items
    assert "locals: localhost" in items
    assert any("broken" in item for item in items)


def test_toml_lines_parse_as_toml() -> None:
    import tomllib

    control = qmail.parse_control(CONTROL)
    data = tomllib.loads("\n".join(qmail.toml_lines(control)))
    assert data["delivery"]["routes"][""] == "default.example.net"
    assert data["smtp"]["max_message_size"] == 10485760


def test_prefix_without_assign_is_the_unix_user() -> None:
    assert qmail.user_for_prefix("alice-lists", ()) == ("alice", False)


_line = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(st.dictionaries(st.sampled_from(qmail.CONTROL_FILES), st.lists(_line).map("\n".join)),
       st.none() | st.lists(_line).map("\n".join), st.booleans())
def test_control_parsing_never_crashes(files: dict[str, str], assign: str | None,
                                       owners: bool) -> None:
    plan = qmail.plan_qmail(qmail.parse_control(files, assign), owners=owners)
    assert all(d.name for d in plan.domains)


_host = st.text(string.ascii_lowercase + string.digits + ".-", min_size=1, max_size=20)


@given(st.lists(st.tuples(_host, _host)))
def test_smtproutes_round_trip(routes: list[tuple[str, str]]) -> None:
    text = "".join(f"{d}:{r}\n" for d, r in routes)
    parsed, problems = qmail.parse_smtproutes(text)
    assert problems == []
    assert [(r.domain, r.relay) for r in parsed] == routes


# -- vmailmgr ------------------------------------------------------------------------

_field = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
                 max_size=20)
_number = st.none() | st.integers(0, vmailmgr.UNLIMITED - 1)


@st.composite
def entries(draw: st.DrawFn) -> VpwEntry:
    directory = draw(_field)
    return VpwEntry(
        name=draw(_field.filter(bool)), password=draw(_field), directory=directory,
        forwards=tuple(draw(st.lists(_field.filter(bool), max_size=3))),
        personal=draw(_field), hardquota=draw(_number), softquota=draw(_number),
        msgsize=draw(_number), msgcount=draw(_number), ctime=draw(_number),
        expiry=draw(_number), mailbox_enabled=draw(st.booleans()),
        has_mailbox=bool(directory), version=2)


@given(entries())
def test_vpwentry_round_trip(entry: VpwEntry) -> None:
    raw = encode_vpwentry(entry)
    assert decode_vpwentry(entry.name.encode("utf-8"), raw) == entry


@given(st.binary(max_size=80))
def test_vpwentry_decoding_never_crashes(data: bytes) -> None:
    try:
        decode_vpwentry(b"user", data)
    except VpwError:
        pass


def test_vpwentry_layout_of_the_c_writer() -> None:
    # vpwentry_export: \x02, flags (has mailbox 1, enabled 0), pass, dir,
    # forwards + NUL, personal, six numbers with "-" for UINT_MAX.
    raw = (b"\x02\x0a\x01\x08\x00\x00$1$salt$hash\x00./users/bob\x00a@x.test\x00b\x00\x00"
           b"Bob B.\x001000000\x00-\x00-\x004294967295\x00980000000\x00-\x00")
    entry = decode_vpwentry(b"bob", raw)
    assert entry.password == "$1$salt$hash"
    assert entry.directory == "./users/bob"
    assert entry.forwards == ("a@x.test", "b")
    assert entry.personal == "Bob B."
    assert (entry.hardquota, entry.softquota, entry.msgsize, entry.msgcount) == (
        1000000, None, None, None)
    assert entry.ctime == 980000000 and entry.expiry is None
    assert not entry.mailbox_enabled and entry.has_mailbox


def test_version_1_and_old_records() -> None:
    v1 = b"\x01pw\x00./users/a\x00\x00\x000\x000\x000\x000\x000\x00-\x00"
    assert decode_vpwentry(b"a", v1).mailbox_enabled
    old = decode_vpwentry(b"c", b":pw:&x@y.test,z@y.test")
    assert old.forwards == ("x@y.test", "z@y.test") and not old.has_mailbox
    assert decode_vpwentry(b"d", b":pw:./users/d").directory == "./users/d"
    with pytest.raises(VpwError):
        decode_vpwentry(b"e", b"\x02\x07\x01\x00")


def test_plan_maps_settings_aliases_and_catch_all() -> None:
    bob = VpwEntry("bob", "$6$s$h", "./users/bob", ("carol", "x@remote.test"), "Bob",
                   hardquota=5000, softquota=4000, msgsize=1000, msgcount=0, expiry=2000000000,
                   mailbox_enabled=False)
    alias = VpwEntry("sales", "*", "", ("bob",), has_mailbox=False)
    default = VpwEntry("+", "*", "", ("bob@example.com",), has_mailbox=False)
    outside = VpwEntry("eve", "x", "../../etc")
    plan = vmailmgr.plan_vmailmgr([bob, alias, default, outside], "Example.COM", "/home/v")
    (mailbox,) = plan.mailboxes
    assert mailbox.source == "/home/v/users/bob"
    s = mailbox.settings
    assert s.forwards == ("carol@example.com", "x@remote.test")
    assert (s.quota_bytes, s.quota_messages, s.max_message_size) == (5000, None, 1000)
    assert s.expires == 2000000000.0 and s.display_name == "Bob"
    assert s.receive and not s.keep_copy and s.enabled
    assert [(str(a.address), a.targets) for a in plan.aliases] == [
        ("sales@example.com", ("bob@example.com",))]
    assert plan.catch_all == ("bob@example.com",)
    assert [u.item for u in plan.unmapped] == ["eve"]
    assert any("soft quota" in n for n in plan.notes)


@given(st.lists(entries(), max_size=5))
def test_plan_never_crashes(items: list[VpwEntry]) -> None:
    plan = vmailmgr.plan_vmailmgr(items, "example.com", "/home/v")
    for mailbox in plan.mailboxes:
        assert mailbox.source.startswith("/home/v/")


# -- courier -------------------------------------------------------------------------

_base = st.text(string.ascii_letters + string.digits + ".,=_-", min_size=1, max_size=30)


@given(st.integers(1, 2**32 - 1), st.dictionaries(st.integers(1, 10**6), _base, max_size=20))
def test_uiddb_round_trip(uidvalidity: int, by_uid: dict[int, str]) -> None:
    unique = {uid: base for base, uid in {b: u for u, b in by_uid.items()}.items()}
    nextuid = max(unique, default=0) + 1
    db = courier.UidDb(1, uidvalidity, nextuid, tuple(sorted(unique.items())))
    assert courier.parse_uiddb(courier.format_uiddb(db)) == db


@given(st.binary(max_size=200))
def test_uiddb_never_crashes(data: bytes) -> None:
    try:
        db = courier.parse_uiddb(data)
    except courier.CourierError:
        return
    uids = [uid for uid, _ in db.entries]
    assert uids == sorted(set(uids)) and all(uid < db.nextuid for uid in uids)


def test_uiddb_versions() -> None:
    db = courier.parse_uiddb(b"1 1100000 5\n1 100.a.host\n3 300.c.host\nbad\n9 900.z\n")
    assert db.entries == ((1, "100.a.host"), (3, "300.c.host"), (9, "900.z"))
    assert db.nextuid == 10 and db.skipped == 1
    dove = courier.parse_uiddb(b"3 V77 N20 Gabc\n5 :500.x,S=3:2,S\n7 W12 :700.y:2,\n")
    assert (dove.uidvalidity, dove.nextuid) == (77, 20)
    assert dove.entries == ((5, "500.x,S=3"), (7, "700.y"))
    with pytest.raises(courier.CourierError):
        courier.parse_uiddb(b"2 1 1\n")


_keyword = st.text(string.ascii_letters + "$", min_size=1, max_size=10)


@given(st.lists(_keyword, unique=True, max_size=5).flatmap(
    lambda names: st.tuples(st.just(tuple(names)), st.dictionaries(
        _base, st.lists(st.sampled_from(names), min_size=1, unique=True).map(tuple)
        if names else st.nothing(), max_size=5))))
def test_keyword_list_round_trip(data: tuple[tuple[str, ...], dict[str, tuple[str, ...]]]) -> None:
    names, messages = data
    keywords = courier.KeywordList(names, messages)
    assert courier.parse_keyword_list(courier.format_keyword_list(keywords)) == keywords


@given(st.binary(max_size=200), st.dictionaries(st.text(max_size=10), st.binary(max_size=30),
                                                 max_size=3))
def test_keywords_never_crash(data: bytes, updates: dict[str, bytes]) -> None:
    courier.apply_keyword_updates(courier.parse_keyword_list(data), updates)


def test_keyword_updates_newest_wins() -> None:
    base = courier.parse_keyword_list(b"$Label1\nJunk\n\n100.a:0 1\n200.b:1\n")
    assert base.messages == {"100.a": ("$Label1", "Junk"), "200.b": ("Junk",)}
    updated = courier.apply_keyword_updates(base, {
        ".1.100.a": b"Old\n", ".3.100.a": b"Work\n", "200.b": b"Home\n", ".9.200.b": b"X\n"})
    assert updated.messages["100.a"] == ("Work",)
    assert updated.messages["200.b"] == ("Home",)
    assert updated.names == ("$Label1", "Junk", "Work", "Home")


def test_subscribed() -> None:
    names, skipped = courier.parse_subscribed(b"INBOX\nINBOX.Sent\nINBOX.A.B\nOther.x\n")
    assert names == ["", ".Sent", ".A.B"] and skipped == 1
