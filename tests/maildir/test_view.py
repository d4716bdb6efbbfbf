"""Session views: EXISTS, EXPUNGE (or VANISHED), FETCH FLAGS, \\Recent, RFC 3501 §7.4.1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailyard.maildir import journal
from mailyard.maildir.errors import FolderReset
from mailyard.maildir.folder import Folder, StoreMode
from mailyard.maildir.view import ViewUpdate
from tests.maildir.storehelp import deliver_to


@pytest.fixture
def box(tmp_path: Path) -> Path:
    return tmp_path / "box"


def _open(box: Path) -> Folder:
    return Folder.open(str(box))


def test_two_sessions_of_one_process(box: Path) -> None:
    for _ in range(3):
        deliver_to(box)
    folder = _open(box)
    first = folder.view()
    second = folder.view()
    assert len(first) == 3 and first.recent == 3
    assert second.recent == 0  # claimed by the first session
    assert second.uids is folder.uids  # shared, not copied
    assert first.sync().empty

    deliver_to(box)
    update = second.sync()
    assert update == ViewUpdate(exists=4, recent=1)
    assert second.is_recent(4) and not first.is_recent(4)
    assert first.sync() == ViewUpdate(exists=4)

    first.store([2], StoreMode.ADD, ["\\Seen"])
    assert first.sync().empty  # its own STORE answered already
    assert second.sync() == ViewUpdate(changed=(2,))

    folder.store([1, 3], StoreMode.ADD, ["\\Deleted"])
    folder.expunge()
    # RFC 3501 §7.4.1: sent one after the other, so highest number first.
    update = second.sync()
    assert update.expunged == (3, 1) and update.vanished == (1, 3)
    assert update.changed == () and update.recent is None
    assert list(second.uids) == [2, 4]
    assert second.seq_of(4) == 2 and second.uid_of(1) == 2 and second.seq_of(3) is None


def test_expunges_wait_while_forbidden(box: Path) -> None:
    for _ in range(4):
        deliver_to(box)
    folder = _open(box)
    view = folder.view()
    other = _open(box)  # another process
    other.sync()
    other.store([2], StoreMode.ADD, ["\\Deleted"])
    other.store([3], StoreMode.ADD, ["\\Flagged"])
    other.expunge()
    deliver_to(box)
    update = view.sync(expunges_allowed=False)
    # Numbering kept: the ghost of uid 2 stays message 2 until allowed.
    assert update.expunged == () and update.exists == 5
    assert update.changed == (3,)
    assert list(view.uids) == [1, 2, 3, 4, 5]
    assert folder.info(2) is None
    update = view.sync()
    assert update.expunged == (2,) and update.vanished == (2,) and update.exists is None
    assert list(view.uids) == [1, 3, 4, 5]
    assert view.uids is folder.uids


def test_another_process_changes_are_seen(box: Path) -> None:
    for _ in range(2):
        deliver_to(box)
    view = _open(box).view()
    other = _open(box)
    other.sync()
    other.store([1], StoreMode.ADD, ["Work"])
    assert view.sync() == ViewUpdate(changed=(1,))
    assert view.folder.flag_names(view.folder.info(1).flags) == ("Work",)


def test_examine_claims_nothing(box: Path) -> None:
    deliver_to(box)
    folder = _open(box)
    examining = folder.view(readonly=True)
    assert examining.recent == 1 and os.listdir(box / "new")
    selecting = folder.view()
    assert selecting.recent == 1 and not os.listdir(box / "new")
    assert examining.sync().recent == 0
    deliver_to(box)
    assert examining.sync() == ViewUpdate(exists=2, recent=1)


def test_a_new_uidvalidity_ends_the_view(box: Path) -> None:
    deliver_to(box)
    folder = _open(box)
    view = folder.view()
    os.unlink(box / journal.FILE_NAME)
    with pytest.raises(FolderReset):
        view.sync()
