"""APPEND, COPY, MOVE: placement, flags and dates, uids at once, quota."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from mailyard.maildir import names
from mailyard.maildir.deliver import ensure_maildir
from mailyard.maildir.errors import OverQuota
from mailyard.maildir.flags import FLAGGED
from mailyard.maildir.folder import Folder, StoreMode
from mailyard.maildir.quota import Quota, QuotaLimits
from tests.maildir.storehelp import deliver_to, names as listed

DATE = 1_000_000_000.0


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "box"
    ensure_maildir(str(path))
    return path


def _folder(root: Path, name: str = "INBOX") -> Folder:
    path = root if name == "INBOX" else root / ("." + name)
    return Folder.open(str(path), root=str(root), name=name, hostname="imap.example")


def _append(folder: Folder, text: bytes, flags: tuple[str, ...] = (),
            date: float | None = DATE) -> int:
    with folder.append(flags, date, size=len(text)) as writer:
        for i in range(0, len(text), 7):
            writer.write(text[i:i + 7])
        return writer.commit()


def test_append_with_flags_and_date(root: Path) -> None:
    inbox = _folder(root)
    inbox.sync()
    other = _folder(root)
    other.sync()
    uid = _append(inbox, b"Subject: hi\r\n\r\nappended\r\n", ("\\Seen", "Work"))
    # RFC 4315 APPENDUID: the uid is known at once, to every process.
    assert uid == 1 and inbox.uidnext == 2
    (name,) = listed(root)
    base, info = names.split_info(name)
    assert info == "Sa" and names.size_from_name(name) == 25
    assert names.delivery_stamp(base) == (int(DATE), 0)
    assert (root / "cur" / name).stat().st_mtime == DATE
    meta = inbox.info(uid)
    assert meta is not None and meta.internal_date == int(DATE) and meta.size == 25
    assert inbox.flag_names(meta.flags) == ("\\Seen", "Work")
    assert listed(root, "tmp") == []
    other.sync()
    assert list(other.uids) == [1]
    with other.open_message(1) as handle:
        assert handle.read() == b"Subject: hi\r\n\r\nappended\r\n"


def test_append_without_flags_lands_in_new_and_is_recent(root: Path) -> None:
    inbox = _folder(root)
    uid = _append(inbox, b"x\r\n", date=None)
    assert listed(root, "new") and not listed(root, "cur")
    view = inbox.view()
    assert view.is_recent(uid)


def test_append_abort_leaves_nothing(root: Path) -> None:
    inbox = _folder(root)
    with inbox.append(["\\Seen"]) as writer:
        writer.write(b"half a mess")
    assert listed(root, "tmp") == [] and listed(root, "cur") == []
    with pytest.raises(ValueError):
        writer.write(b"more")
    assert inbox.uidnext == 1


def test_copy_keeps_flags_dates_and_translates_keywords(root: Path) -> None:
    inbox = _folder(root)
    ensure_maildir(str(root / ".Archive"))
    archive = _folder(root, "Archive")
    archive.store([], StoreMode.ADD, ["First"])  # makes the target's letter "a" another keyword
    _append(archive, b"already there\r\n", ("First",))
    first = _append(inbox, b"one\r\n", ("\\Flagged", "Work"), DATE)
    second = _append(inbox, b"two\r\n", ("\\Seen",), DATE + 60)
    result = inbox.copy([second, first, 99], archive)
    assert result.uidvalidity == archive.uidvalidity
    assert result.pairs == ((first, 2), (second, 3))
    copied = archive.info(2)
    assert copied is not None
    assert archive.flag_names(copied.flags) == ("\\Flagged", "Work")
    assert archive.keywords.index("Work") == 1 and inbox.keywords.index("Work") == 0
    assert copied.internal_date == int(DATE) and archive.info(3).internal_date == int(DATE + 60)
    # A hard link: the same inode, no second copy of the bytes.
    source = root / "cur" / inbox._table.names[0]
    target = root / ".Archive" / "cur" / archive._table.names[1]
    assert source.stat().st_ino == target.stat().st_ino
    assert list(inbox.uids) == [first, second]
    copy_again = inbox.copy([first], inbox)  # into itself: a new message
    assert copy_again.pairs == ((first, 3),)


def test_copy_across_filesystems_copies_the_bytes(root: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == root.stat().st_dev:
        pytest.skip("no second filesystem to copy across")
    inbox = _folder(root)
    uid = _append(inbox, b"cross\r\n", ("\\Seen",))
    with tempfile.TemporaryDirectory(dir=shm) as other_root:
        ensure_maildir(other_root)
        elsewhere = Folder.open(other_root)
        result = inbox.copy([uid], elsewhere)
        assert result.pairs == ((uid, 1),)
        with elsewhere.open_message(1) as handle:
            assert handle.read() == b"cross\r\n"
        assert os.listdir(os.path.join(other_root, "tmp")) == []
        elsewhere.close()


def test_move_expunges_the_originals(root: Path) -> None:
    inbox = _folder(root)
    for _ in range(3):
        deliver_to(root)
    view = inbox.view()
    ensure_maildir(str(root / ".Archive"))
    archive = _folder(root, "Archive")
    inbox.store([2], StoreMode.ADD, ["\\Flagged"])
    result = inbox.move([2, 3], archive)
    assert result.pairs == ((2, 1), (3, 2))
    assert list(inbox.uids) == [1]
    assert archive.info(1).flags == FLAGGED
    update = view.sync()
    assert update.expunged == (3, 2) and update.vanished == (2, 3)


def test_quota_refuses_append_and_copy(root: Path) -> None:
    quota = Quota(str(root))
    quota.set_limits(QuotaLimits(storage=100, messages=3))
    inbox = _folder(root)
    uid = _append(inbox, b"x" * 40)
    assert quota.usage().storage == 40
    # RFC 9208 §4.4: refused before the literal is read, when the size is known.
    with pytest.raises(OverQuota):
        inbox.append([], size=61)
    inbox.copy([uid], inbox)
    with pytest.raises(OverQuota):
        inbox.copy([uid], inbox)  # 120 octets would exceed 100
    assert quota.usage().storage == 80 and quota.usage().messages == 2
    ensure_maildir(str(root / ".Trash"))
    trash = _folder(root, "Trash")
    moved = inbox.move([uid], trash)  # Trash is not counted (Courier)
    assert moved.pairs and quota.usage().storage == 40
    writer = inbox.append([])
    writer.write(b"y" * 61)
    with pytest.raises(OverQuota):
        writer.commit()
    assert listed(root, "tmp") == []
    inbox.store(inbox.uids, StoreMode.ADD, ["\\Deleted", "\\Seen"])
    inbox.expunge()
    assert quota.usage().storage == 0 and quota.usage().messages == 0
