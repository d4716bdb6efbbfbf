from __future__ import annotations

import pytest

from mailyard.directory.errors import AlreadyExists, InvalidInput, NotFound
from mailyard.directory.model import Alias, Vacation, maildir_for
from mailyard.directory.store import Directory
from mailyard.message.address import Address

DAY = 86400.0


@pytest.fixture
def d(directory: Directory) -> Directory:
    directory.add_domain("a.test")
    directory.add_domain("b.test")
    for text in ("ann@a.test", "bob@b.test"):
        local, _, domain = text.partition("@")
        address = Address(local, domain)
        directory.add_mailbox(address, maildir_for(address), "h")
    return directory


ANN = Address("ann", "a.test")


def test_alias_crud(d: Directory) -> None:
    alias = Alias(Address("Info", "a.test"), ("ann@a.test", "x@remote.test"), None, 5.0)
    assert d.add_alias(alias) == alias
    with pytest.raises(AlreadyExists):
        d.add_alias(Alias(Address("INFO", "a.test"), ("y@z.test",)))
    with pytest.raises(NotFound, match="no such domain"):
        d.add_alias(Alias(Address("x", "nope.test"), ("y@z.test",)))
    assert d.get_alias(Address("info", "a.test")) == alias
    assert d.get_alias(Address("other", "a.test")) is None
    d.add_alias(Alias(Address("list", "a.test"), ("bob@b.test",), "ann@a.test", 6.0))
    d.add_alias(Alias(Address("all", "b.test"), ("bob@b.test",)))
    assert [str(a.address) for a in d.list_aliases()] == [
        "Info@a.test",
        "list@a.test",
        "all@b.test",
    ]
    assert [str(a.address) for a in d.list_aliases("a.test")] == ["Info@a.test", "list@a.test"]
    updated = d.update_alias(Alias(Address("info", "a.test"), ("bob@b.test",), "ann@a.test"))
    # The spelling and the creation time stay.
    assert updated == Alias(Address("Info", "a.test"), ("bob@b.test",), "ann@a.test", 5.0)
    assert d.get_alias(Address("info", "a.test")) == updated
    with pytest.raises(NotFound):
        d.update_alias(Alias(Address("nobody", "a.test"), ("x@y.test",)))
    assert d.remove_alias(Address("INFO", "a.test")) == updated
    with pytest.raises(NotFound):
        d.remove_alias(Address("info", "a.test"))


def test_alias_list_order_and_snapshot(d: Directory) -> None:
    for text in ("zed@a.test", "all@b.test", "abe@a.test"):
        local, _, domain = text.partition("@")
        d.add_alias(Alias(Address(local, domain), ("ann@a.test",)))
    assert [str(a.address) for a in d.list_aliases()] == ["abe@a.test", "zed@a.test", "all@b.test"]
    snap = d.snapshot()
    assert set(snap.aliases) == {("abe", "a.test"), ("zed", "a.test"), ("all", "b.test")}
    assert snap.aliases[("zed", "a.test")].targets == ("ann@a.test",)


def test_targets_with_line_breaks_are_refused(d: Directory) -> None:
    with pytest.raises(InvalidInput):
        d.add_alias(Alias(Address("x", "a.test"), ("a@b.test\nc@d.test",)))
    with pytest.raises(InvalidInput):
        d.add_alias(Alias(Address("x", "a.test"), ("",)))
    assert d.list_aliases() == []


def test_vacation_crud(d: Directory) -> None:
    assert d.get_vacation(ANN) is None
    vacation = Vacation(Address("Ann", "a.test"), "Away", "Back on Monday.\n", 10.0, 20.0, 3)
    stored = d.set_vacation(vacation)
    # The address is the mailbox's, as it was created.
    assert stored == Vacation(ANN, "Away", "Back on Monday.\n", 10.0, 20.0, 3, True)
    assert d.get_vacation(ANN) == stored
    replaced = d.set_vacation(Vacation(ANN, "Still away", "x", None, None, 7, False))
    assert d.get_vacation(ANN) == replaced and not replaced.enabled
    assert d.snapshot().vacations[ANN.key] == replaced
    with pytest.raises(NotFound):
        d.set_vacation(Vacation(Address("nobody", "a.test"), "s", "b"))
    d.remove_vacation(ANN)
    assert d.get_vacation(ANN) is None
    with pytest.raises(NotFound):
        d.remove_vacation(ANN)


def test_reply_record_once_per_interval(d: Directory) -> None:
    week = 7 * DAY
    assert d.note_vacation_reply(ANN, "x@remote.test", 1000.0, week)
    assert not d.note_vacation_reply(ANN, "X@Remote.Test", 1000.0 + DAY, week)
    assert d.note_vacation_reply(ANN, "y@remote.test", 1000.0 + DAY, week)
    assert d.note_vacation_reply(ANN, "x@remote.test", 1000.0 + week, week)
    assert not d.note_vacation_reply(ANN, "x@remote.test", 1000.0 + week + 1, week)
    # A record from the future (the clock went back) does not hold a reply back.
    assert d.note_vacation_reply(ANN, "x@remote.test", 500.0, week)
    with pytest.raises(NotFound):
        d.note_vacation_reply(Address("nobody", "a.test"), "x@remote.test", 0.0, week)


def test_reply_record_survives_reopening(db_path: str, d: Directory) -> None:
    assert d.note_vacation_reply(ANN, "x@remote.test", 1000.0, DAY)
    with Directory.open(db_path) as again:
        assert not again.note_vacation_reply(ANN, "x@remote.test", 1001.0, DAY)


def _records(d: Directory) -> list[tuple[str, float]]:
    return [
        (str(s), float(t))
        for s, t in d._conn.execute(
            "SELECT sender, sent FROM vacation_replies ORDER BY sent, sender"
        ).fetchall()
    ]


def test_reply_record_is_bounded(d: Directory) -> None:
    for i in range(10):
        assert d.note_vacation_reply(ANN, f"s{i}@remote.test", 100.0 + i, DAY, limit=4)
    assert _records(d) == [(f"s{i}@remote.test", 100.0 + i) for i in range(6, 10)]
    # The dropped ones may get a reply again; old records expire by themselves.
    assert d.note_vacation_reply(ANN, "s0@remote.test", 200.0, DAY, limit=4)
    assert d.note_vacation_reply(ANN, "new@remote.test", 100.0 + 2 * DAY, DAY, limit=4)
    assert _records(d) == [("new@remote.test", 100.0 + 2 * DAY)]


def test_removing_the_mailbox_or_the_vacation_drops_the_record(d: Directory) -> None:
    d.set_vacation(Vacation(ANN, "away", "back"))
    d.note_vacation_reply(ANN, "x@remote.test", 1.0, DAY)
    d.remove_vacation(ANN)
    assert _records(d) == []
    d.set_vacation(Vacation(ANN, "away", "back"))
    d.note_vacation_reply(ANN, "x@remote.test", 1.0, DAY)
    d.remove_mailbox(ANN)
    assert _records(d) == []
    assert d._conn.execute("SELECT count(*) FROM vacations").fetchone()[0] == 0
    local = Address("ann", "a.test")
    d.add_mailbox(local, maildir_for(local), "h")
    assert d.get_vacation(local) is None


def test_removing_a_domain_takes_everything_along(d: Directory) -> None:
    d.add_alias(Alias(Address("info", "a.test"), ("ann@a.test",)))
    d.set_vacation(Vacation(ANN, "away", "back"))
    d.note_vacation_reply(ANN, "x@remote.test", 1.0, DAY)
    d.remove_domain("a.test", force=True)
    for table in ("aliases", "vacations", "vacation_replies"):
        assert d._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
