"""A process's own STORE, EXPUNGE and APPEND do not make its next sync list the folder again
(core.py ``own_change``), while another program's changes are still found: at once when they
move the directory's stamp, and within a second of the last listing when they hide in the same
mtime tick as ours."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailyard.maildir import core
from mailyard.maildir.folder import Folder, StoreMode
from mailyard.maildir.scan import SETTLE_NS
from tests.maildir.storehelp import age, deliver_to, plant


class _Listings:
    def __init__(self) -> None:
        self.dirs: list[str] = []


@pytest.fixture
def listings(monkeypatch: pytest.MonkeyPatch) -> _Listings:
    seen = _Listings()
    real = core.list_messages

    def spy(directory: str) -> list[str]:
        seen.dirs.append(os.path.basename(directory))
        return real(directory)

    monkeypatch.setattr(core, "list_messages", spy)
    return seen


def _settled_folder(box: Path, count: int = 3) -> Folder:
    for _ in range(count):
        deliver_to(box)
    folder = Folder.open(str(box))
    folder.sync(claim=True)
    age(box)
    folder.sync()  # lists once more and records settled stamps
    return folder


def test_own_changes_need_no_listing(tmp_path: Path, listings: _Listings) -> None:
    box = tmp_path / "box"
    folder = _settled_folder(box)
    listings.dirs.clear()
    folder.sync()
    assert listings.dirs == []
    folder.store([1, 2], StoreMode.ADD, ["\\Deleted"])
    folder.sync()
    assert folder.expunge() == (1, 2)
    folder.sync()
    with folder.append(["\\Seen"], 1e9) as writer:
        writer.write(b"Subject: appended\r\n\r\nx\r\n")
        writer.commit()
    folder.sync()
    assert listings.dirs == []
    assert list(folder.uids) == [3, 4]
    on_disk = sorted(n.partition(":")[0] for n in os.listdir(box / "cur"))
    assert on_disk == sorted(n.partition(":")[0] for n in folder._table.names)
    folder.close()


def test_foreign_change_after_ours_is_seen_at_once(tmp_path: Path) -> None:
    box = tmp_path / "box"
    folder = _settled_folder(box)
    folder.store([1], StoreMode.ADD, ["\\Flagged"])
    plant(box, "cur", "1700000000.foreign.example:2,S")
    stamp = os.stat(box / "cur")
    os.utime(box / "cur", ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 5_000_000))
    folder.sync()
    assert list(folder.uids) == [1, 2, 3, 4]
    folder.close()


def test_foreign_change_in_the_same_tick_is_seen_a_second_later(tmp_path: Path) -> None:
    box = tmp_path / "box"
    folder = _settled_folder(box)
    folder.store([1], StoreMode.ADD, ["\\Flagged"])
    # Another program's file, with the directory's mtime put back as a coarse
    # clock would leave it: the stamp shows nothing.
    stamp = os.stat(box / "cur")
    plant(box, "cur", "1700000000.foreign.example:2,S")
    os.utime(box / "cur", ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    folder.sync()
    assert list(folder.uids) == [1, 2, 3]  # trusted for now
    # A second after the last listing (moved back rather than slept for) it is listed.
    folder._stamps.listed_at["cur"] -= SETTLE_NS
    folder.sync()
    assert list(folder.uids) == [1, 2, 3, 4]
    folder.close()


def test_a_foreign_change_before_ours_keeps_the_folder_stale(tmp_path: Path,
                                                             listings: _Listings) -> None:
    box = tmp_path / "box"
    folder = _settled_folder(box)
    other = plant(box, "cur", "1700000000.foreign.example:2,")
    stamp = os.stat(box / "cur")
    os.utime(box / "cur", ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 5_000_000))
    listings.dirs.clear()
    folder.store([1], StoreMode.ADD, ["\\Seen"])
    folder.sync()
    assert "cur" in listings.dirs
    assert list(folder.uids) == [1, 2, 3, 4]
    assert other.exists()
    folder.close()
