"""The folder: uids, flags, keywords, \\Recent, MODSEQ, expunges, index and uid list recovery."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailyard.maildir import index as store_index
from mailyard.maildir import journal, names
from mailyard.maildir.deliver import ensure_maildir
from mailyard.maildir.errors import MessageGone, NoSuchFolder
from mailyard.maildir.flags import DELETED, FLAGGED, SEEN
from mailyard.maildir.folder import Folder, StoreMode
from tests.maildir.storehelp import age, deliver_to, names as listed, plant, read_uidlist


@pytest.fixture
def box(tmp_path: Path) -> Path:
    return tmp_path / "box"


def _open(box: Path) -> Folder:
    return Folder.open(str(box), hostname="imap.example")


def test_uids_follow_delivery_order_and_survive_reopening(box: Path) -> None:
    ours = [deliver_to(box, b"m%d\r\n" % i) for i in range(3)]
    plant(box, "cur", "old-qmail-2", mtime=2000)
    plant(box, "cur", "old-qmail-1", mtime=1000)
    plant(box, "new", "1.M5P1Q1.early,S=3")
    folder = _open(box)
    assert folder.sync() == ()
    order = ["1.M5P1Q1.early,S=3", *ours, "old-qmail-1", "old-qmail-2"]
    assert list(folder.uids) == [1, 2, 3, 4, 5, 6]
    bases = [names.split_info(folder._table.names[i])[0] for i in range(6)]
    assert bases == order
    assert folder.uidnext == 7
    # RFC 3501 §2.3.1.1: the same uids after a restart.
    folder.close()
    again = _open(box)
    again.sync()
    assert list(again.uids) == [1, 2, 3, 4, 5, 6]
    assert [names.split_info(n)[0] for n in again._table.names] == order


def test_uids_are_never_reused(box: Path) -> None:
    for i in range(3):
        deliver_to(box, b"m%d\r\n" % i)
    folder = _open(box)
    folder.sync()
    folder.store([3], StoreMode.ADD, ["\\Deleted"])
    assert folder.expunge() == (3,)
    deliver_to(box, b"later\r\n")
    folder.sync()
    assert list(folder.uids) == [1, 2, 4]
    assert folder.uidnext == 5


def test_claiming_new_messages(box: Path) -> None:
    deliver_to(box)
    deliver_to(box)
    folder = _open(box)
    assert folder.sync(claim=False) == ()
    assert len(listed(box, "new")) == 2 and folder.status().recent == 2
    # RFC 3501 §2.3.2: recent in exactly one session, the one that claims.
    assert folder.sync(claim=True) == (1, 2)
    assert listed(box, "new") == [] and len(listed(box, "cur")) == 2
    assert all(n.endswith(":2,") for n in listed(box, "cur"))
    assert folder.sync(claim=True) == ()
    assert folder.status().recent == 0
    deliver_to(box)
    assert folder.sync(claim=True) == (3,)


def test_store_modes_keywords_and_modseq(box: Path) -> None:
    for _ in range(3):
        deliver_to(box)
    folder = _open(box)
    folder.sync(claim=True)
    start = folder.highest_modseq
    added = folder.store([1, 2, 99], StoreMode.ADD, ["\\Seen", "$Label1", "\\Recent"])
    assert added.changed == (1, 2) and added.modseq == start + 1
    assert folder.highest_modseq == start + 1
    assert folder.flag_names(folder.info(1).flags) == ("\\Seen", "$Label1")
    assert folder.info(1).modseq == start + 1 and folder.info(3).modseq <= start
    assert [n.rpartition(",")[2] for n in listed(box)] == ["Sa", "Sa", ""]
    # Nothing changes: no new mod-sequence (RFC 7162 §3.1.3).
    same = folder.store([1], StoreMode.ADD, ["\\Seen"])
    assert same == type(same)(0, (), ())
    assert folder.highest_modseq == start + 1
    removed = folder.store([1, 2], StoreMode.REMOVE, ["$label1"])
    assert removed.changed == (1, 2) and removed.modseq == start + 2
    replaced = folder.store([2], StoreMode.REPLACE, ["\\Flagged", "\\Draft"])
    assert folder.info(2).flags == FLAGGED | 1
    assert replaced.modseq == start + 3
    assert "$Label1" in folder.permanent_flags() and "\\*" in folder.permanent_flags()
    again = _open(box)
    again.sync()
    assert [again.info(u).flags for u in (1, 2, 3)] == [SEEN, FLAGGED | 1, 0]
    assert again.highest_modseq == folder.highest_modseq


def test_unchanged_since(box: Path) -> None:
    for _ in range(2):
        deliver_to(box)
    folder = _open(box)
    folder.sync()
    seen = folder.store([1], StoreMode.ADD, ["\\Seen"]).modseq
    # RFC 7162 §3.1.3: message 1 changed after `seen - 1`: refused (MODIFIED).
    result = folder.store([1, 2], StoreMode.ADD, ["\\Flagged"], unchanged_since=seen - 1)
    assert result.modified == (1,) and result.changed == (2,)
    assert not folder.info(1).flags & FLAGGED
    assert folder.store([1], StoreMode.ADD, ["\\Flagged"], unchanged_since=seen).changed == (1,)


def test_flag_change_by_another_program_gets_a_modseq(box: Path) -> None:
    deliver_to(box)
    folder = _open(box)
    folder.sync(claim=True)
    before = folder.highest_modseq
    (name,) = listed(box)
    os.rename(box / "cur" / name, box / "cur" / names.with_info(name.partition(":")[0], "FS"))
    folder.sync()
    assert folder.info(1).flags == FLAGGED | SEEN
    assert folder.info(1).modseq == folder.highest_modseq == before + 1
    assert list(folder.changed_since(before)) == [1]
    assert read_uidlist(box)[-1].startswith(f"F 1 {before + 1} :2,FS")


def test_deletion_by_another_program_is_an_expunge(box: Path) -> None:
    for _ in range(3):
        deliver_to(box)
    folder = _open(box)
    folder.sync(claim=True)
    before = folder.highest_modseq
    os.unlink(box / "cur" / listed(box)[1])
    folder.sync()
    assert list(folder.uids) == [1, 3]
    assert folder.vanished_since(before) == [(2, 2)]
    assert folder.vanished_since(folder.highest_modseq) == []
    with pytest.raises(MessageGone):
        folder.open_message(2)


def test_expunge_and_uid_expunge(box: Path) -> None:
    for i in range(4):
        deliver_to(box, b"m%d\r\n" % i)
    folder = _open(box)
    folder.sync(claim=True)
    folder.store([1, 2, 3], StoreMode.ADD, ["\\Deleted"])
    # RFC 4315 UID EXPUNGE: only the given uids, and only if \Deleted.
    assert folder.expunge([2, 4]) == (2,)
    assert folder.expunge() == (1, 3)
    assert list(folder.uids) == [4]
    assert len(listed(box)) == 1
    assert folder.vanished_since(0) == [(1, 3)]
    assert folder.expunge() == ()


def test_open_message_follows_renames(box: Path) -> None:
    deliver_to(box, b"the text\r\n")
    folder = _open(box)
    folder.sync(claim=False)
    other = _open(box)
    other.sync(claim=True)  # another session claimed it: new/ -> cur/
    with folder.open_message(1) as handle:
        assert handle.read() == b"the text\r\n"
    (name,) = listed(box)
    os.rename(box / "cur" / name, box / "cur" / (name + "S"))
    with folder.open_message(1) as handle:
        assert handle.read() == b"the text\r\n"
    # A STORE that finds the file renamed carries on from what is there.
    assert folder.store([1], StoreMode.ADD, ["\\Flagged"]).changed == (1,)
    assert folder.info(1).flags == FLAGGED | SEEN


def test_warm_open_reads_the_index_and_lists_nothing(box: Path) -> None:
    for _ in range(3):
        deliver_to(box)
    folder = _open(box)
    folder.sync(claim=True)
    age(box)
    folder.sync()  # lists again: the stamps were not settled before
    folder.flush()
    folder.close()
    # A file appears without the directory's mtime moving: a warm open that
    # lists nothing cannot see it.
    stamp = (box / "cur").stat()
    plant(box, "cur", "planted:2,")
    os.utime(box / "cur", ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    warm = _open(box)
    warm.sync()
    assert list(warm.uids) == [1, 2, 3]
    os.utime(box / "cur")  # now the directory says it changed
    warm.sync()
    assert list(warm.uids) == [1, 2, 3, 4]


def test_a_change_within_the_same_tick_is_not_missed(box: Path) -> None:
    deliver_to(box)
    folder = _open(box)
    folder.sync(claim=True)
    stamp = (box / "cur").stat()
    plant(box, "cur", "same-tick:2,")
    # The mtime looks as when it was listed (a coarse clock), but that
    # listing was less than a second old, so it is listed again.
    os.utime(box / "cur", ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    folder.sync()
    assert list(folder.uids) == [1, 2]


@pytest.mark.parametrize("damage", ["remove", "garbage", "truncate"])
def test_lost_or_damaged_index_keeps_uids(box: Path, damage: str) -> None:
    for _ in range(4):
        deliver_to(box)
    folder = _open(box)
    folder.sync(claim=True)
    folder.store([2], StoreMode.ADD, ["\\Seen", "Work"])
    folder.store([4], StoreMode.ADD, ["\\Deleted"])
    folder.expunge()
    folder.flush()
    folder.close()
    path = box / store_index.FILE_NAME
    if damage == "remove":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(os.urandom(300))
    else:
        path.write_bytes(path.read_bytes()[:-9])
    again = _open(box)
    again.sync()
    assert list(again.uids) == [1, 2, 3]
    assert again.flag_names(again.info(2).flags) == ("\\Seen", "Work")
    assert again.uidnext == 5 and again.highest_modseq == folder.highest_modseq
    assert again.vanished_since(0) == [(4, 4)]


@pytest.mark.parametrize("damage", ["remove", "header"])
def test_lost_uid_list_means_a_new_uidvalidity(box: Path, damage: str) -> None:
    for _ in range(2):
        deliver_to(box)
    folder = _open(box)
    folder.sync()
    old = folder.uidvalidity
    folder.close()
    path = box / journal.FILE_NAME
    if damage == "remove":
        path.unlink()
    else:
        path.write_bytes(b"not a header\n" + path.read_bytes())
    again = _open(box)
    again.sync()
    # RFC 3501 §2.3.1.1: uids lost, so a new UIDVALIDITY (larger, never reused).
    assert again.uidvalidity > old
    assert list(again.uids) == [1, 2]


def test_torn_tail_is_never_appended_after(box: Path) -> None:
    deliver_to(box)
    folder = _open(box)
    folder.sync()
    with open(box / journal.FILE_NAME, "ab") as handle:
        handle.write(b"A 2 9 1 1 - half-writ")  # a crash tore this append
    generation = read_uidlist(box)[0].rpartition("G")[2]
    deliver_to(box)
    folder.sync()
    lines = read_uidlist(box)
    assert lines[0].rpartition("G")[2] != generation  # rewritten, not appended
    assert not any("half-writ" in line for line in lines)
    assert list(folder.uids) == [1, 2]
    assert _open(box).uids.tolist() == [1, 2]


@pytest.mark.parametrize("how", ["explicit", "grown"])
def test_compaction_keeps_everything(box: Path, how: str) -> None:
    for _ in range(50):
        deliver_to(box)
    folder = _open(box)
    folder.sync(claim=True)
    watcher = _open(box)
    watcher.sync()
    header = read_uidlist(box)[0]
    for i in range(5):
        folder.store(folder.uids, StoreMode.ADD if i % 2 == 0 else StoreMode.REMOVE, ["\\Seen"])
    folder.store([7], StoreMode.ADD, ["\\Deleted"])
    folder.expunge()
    if how == "explicit":
        folder.compact()
    else:
        # A journal grown big with changes (valid, redundant lines): the next
        # change rewrites it.
        seq = folder.highest_modseq
        with open(box / journal.FILE_NAME, "ab") as handle:
            handle.write(f"F 1 {seq} :2,S\n".encode() * 120_000)
        folder.store([2], StoreMode.ADD, ["\\Answered"])
    lines = read_uidlist(box)
    assert lines[0] != header and len(lines) == 1 + 49 + 1
    watcher.sync()  # replays the rewritten file
    for check in (folder, watcher, _open(box)):
        check.sync()
        assert len(check.uids) == 49 and 7 not in check.uids
        assert check.info(1).flags == SEEN
        assert check.highest_modseq == folder.highest_modseq
        assert check.vanished_since(0) == [(7, 7)]


def test_odd_names_duplicates_links_and_dot_files(box: Path, tmp_path: Path) -> None:
    ours = deliver_to(box)
    plant(box, "cur", "odd name %:2,S", mtime=100)
    plant(box, "cur", "dup:2,")
    plant(box, "cur", "dup:2,S")
    plant(box, "cur", ".hidden:2,")
    plant(box, "cur", "line\nbreak:2,")
    (box / "cur" / "link:2,").symlink_to(tmp_path)
    (box / "cur" / "adir").mkdir()
    folder = _open(box)
    folder.sync()
    assert len(folder.uids) == 3
    bases = {n.partition(":")[0] for n in folder._table.names}
    assert bases == {"dup", "odd name %", ours}
    assert _open(box).uids.tolist() == [1, 2, 3]
    pos = [n.partition(":")[0] for n in folder._table.names].index("odd name %")
    assert folder.info(folder.uids[pos]).flags == SEEN
    assert folder.info(folder.uids[pos]).internal_date == 100


def test_status(box: Path) -> None:
    for _ in range(3):
        deliver_to(box, b"12345\r\n")
    folder = _open(box)
    folder.sync(claim=True)
    deliver_to(box, b"1\r\n")
    folder.store([1], StoreMode.ADD, ["\\Seen"])
    status = folder.status()
    assert (status.messages, status.recent, status.unseen, status.size) == (4, 1, 3, 24)
    assert status.uidnext == 5 and status.uidvalidity == folder.uidvalidity
    assert status.first_unseen == 2 and status.highest_modseq == folder.highest_modseq


def test_dovecot_keywords_are_read(box: Path) -> None:
    deliver_to(box)
    (box / "dovecot-keywords").write_text("0 $Label1\n1 Junk\n")
    plant(box, "cur", "from-dovecot:2,Sb")
    folder = _open(box)
    folder.sync()
    assert folder.flag_names(folder.info(2).flags) == ("\\Seen", "Junk")


def test_cache_of_blobs(box: Path) -> None:
    for _ in range(2):
        deliver_to(box)
    folder = _open(box)
    folder.sync()
    folder.cache(1, 1, b"(envelope)")
    folder.cache(1, 2, b"(bodystructure)")
    folder.cache(99, 1, b"no such message")
    assert folder.cached(1, 1) == b"(envelope)" and folder.cached(2, 1) is None
    other = _open(box)
    other.sync()
    assert other.cached(1, 2) == b"(bodystructure)"
    assert other.cached(99, 1) is None
    with open(box / "mailyard-cache", "ab") as handle:
        handle.write(b"\x01\x02torn")
    assert _open(box).cached(1, 1) == b"(envelope)"
    folder.store([1], StoreMode.ADD, ["\\Deleted"])
    folder.expunge()
    assert folder.cached(1, 1) is None


def test_a_deleted_folder_is_not_read_as_empty(box: Path) -> None:
    deliver_to(box)
    folder = _open(box)
    folder.sync()
    for sub in ("tmp", "new", "cur"):
        for path in (box / sub).iterdir():
            path.unlink()
        (box / sub).rmdir()
    with pytest.raises(NoSuchFolder):
        folder.sync()
    assert not (box / "cur").exists()


def test_bits_of_foreign_letters_are_kept_when_renaming(box: Path) -> None:
    ensure_maildir(str(box))
    plant(box, "cur", "1.M1P1Q1.h,S=10:2,SX")
    folder = _open(box)
    folder.sync()
    folder.store([1], StoreMode.ADD, ["\\Deleted"])
    assert listed(box) == ["1.M1P1Q1.h,S=10:2,STX"]
    assert folder.info(1).flags == SEEN | DELETED
