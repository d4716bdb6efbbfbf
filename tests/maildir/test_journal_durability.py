"""Which uid-list appends are fsync'd (journal.py, docs/design/store.md): every batch that
assigns uids is, before the uid is shown; flag and expunge batches are not, but they are
made durable before an index that names their offset is saved.

The fsyncs are counted by wrapping fsio.fsync_file (the real fsync still runs), and the
crash points prove the order: a child killed right after the uid fsync has the uid on disk.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mailyard import fsio
from mailyard.maildir import index as store_index
from mailyard.maildir.folder import Folder, StoreMode
from tests.maildir.storehelp import deliver_to, read_uidlist


class _Fsyncs:
    """The descriptors fsync_file was called on, in order."""

    def __init__(self, real: Callable[[int], None]) -> None:
        self.real = real
        self.fds: list[int] = []

    def __call__(self, fd: int) -> None:
        self.fds.append(fd)
        self.real(fd)


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> _Fsyncs:
    spy = _Fsyncs(fsio.fsync_file)
    monkeypatch.setattr(fsio, "fsync_file", spy)
    return spy


def _journal_fd(folder: Folder) -> int:
    fd = folder._journal._fd
    assert fd is not None
    return fd


def test_uid_assignment_is_fsynced(tmp_path: Path, fsyncs: _Fsyncs) -> None:
    box = tmp_path / "box"
    deliver_to(box)
    folder = Folder.open(str(box))
    fd = _journal_fd(folder)
    folder.sync(claim=True)
    assert fd in fsyncs.fds  # the A record of the delivered message
    fsyncs.fds.clear()
    with folder.append(["\\Seen"], 1e9) as writer:
        writer.write(b"Subject: appended\r\n\r\nx\r\n")
        uid = writer.commit()
    assert uid == 2
    assert fsyncs.fds.count(_journal_fd(folder)) == 1  # APPEND's uid, before it is returned
    folder.close()


def test_flag_and_expunge_records_skip_fsync(tmp_path: Path, fsyncs: _Fsyncs) -> None:
    box = tmp_path / "box"
    for _ in range(3):
        deliver_to(box)
    folder = Folder.open(str(box))
    folder.sync(claim=True)
    fd = _journal_fd(folder)
    fsyncs.fds.clear()
    folder.store([1, 2], StoreMode.ADD, ["\\Deleted"])
    assert folder.expunge() == (1, 2)
    assert fd not in fsyncs.fds
    lines = read_uidlist(box)
    assert any(line.startswith("F 1 ") for line in lines)
    assert any(line.startswith("X 2 ") for line in lines)
    # The index names the journal's offset: the pending lines are fsync'd first.
    folder.flush()
    assert fsyncs.fds.count(fd) == 1
    assert (box / store_index.FILE_NAME).exists()
    fsyncs.fds.clear()
    folder.flush()  # nothing pending: no second fsync
    assert fd not in fsyncs.fds
    folder.close()


_CHILD = """
import sys
from mailyard.maildir.folder import Folder
folder = Folder.open(sys.argv[1])
with folder.append([], 1e9) as writer:
    writer.write(b"Subject: appended\\r\\n\\r\\nx\\r\\n")
    writer.commit()
"""


def test_crash_right_after_the_uid_fsync_keeps_the_uid(tmp_path: Path) -> None:
    box = tmp_path / "box"
    deliver_to(box)
    Folder.open(str(box)).close()
    env = {**os.environ, "MAILYARD_CRASH_AT": "maildir.uidlist.fsync"}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(box)], env=env,
                          capture_output=True, timeout=60)
    assert proc.returncode == 99, proc.stderr.decode()
    assert any(line.startswith("A 1 ") for line in read_uidlist(box))
    reopened = Folder.open(str(box))
    reopened.sync()
    assert list(reopened.uids) == [1, 2]
    assert reopened.uidnext == 3
    reopened.close()
