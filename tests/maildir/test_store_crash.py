"""Crash injection in the store: killed at each step of a uid list, index, expunge, append or
copy write, a folder never loses or reuses a uid and never brings an expunged message back.

The child really makes every system call up to the step named in MAILYARD_CRASH_AT, then
dies with os._exit(99) (fsio.crash_point), as tests/maildir/test_crash.py does for delivery.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailyard.maildir import journal
from mailyard.maildir.deliver import ensure_maildir
from mailyard.maildir.folder import Folder, StoreMode
from mailyard.maildir.names import split_info
from tests.maildir.storehelp import deliver_to, names as listed

_CHILD = """
import sys
from mailyard.maildir.folder import Folder, StoreMode
box, action = sys.argv[1], sys.argv[2]
folder = Folder.open(box)
if action == "sync":
    folder.sync(claim=True)
elif action == "index":
    folder.sync(claim=True)
    folder.flush()
elif action == "expunge":
    folder.sync()
    folder.store([2], StoreMode.ADD, ["\\\\Deleted"])
    folder.expunge()
elif action == "append":
    with folder.append(["\\\\Seen"], 1e9) as writer:
        writer.write(b"Subject: appended\\r\\n\\r\\nx\\r\\n")
        writer.commit()
elif action == "copy":
    folder.sync()
    target = Folder.open(box + "/.Copies", root=box, name="Copies")
    folder.copy([1, 2], target)
folder.close()
"""

CASES = [
    ("sync", "maildir.uidlist.append"),
    ("sync", "maildir.uidlist.fsync"),
    ("torn", "maildir.uidlist.rewrite"),
    ("torn", "maildir.uidlist.rewritten"),
    ("index", "maildir.index.write"),
    ("index", "maildir.index.written"),
    ("expunge", "maildir.expunge.unlinked"),
    ("expunge", "maildir.uidlist.append:3"),  # the X lines, after the sync's and the STORE's
    ("append", "maildir.append.linked"),
    ("append", "maildir.uidlist.fsync"),
    ("copy", "maildir.copy.linked"),
]


def _run(box: Path, action: str, step: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MAILYARD_CRASH_AT"}
    if step is not None:
        env["MAILYARD_CRASH_AT"] = step
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(box), action],
                          env=env, capture_output=True, timeout=60)
    assert proc.returncode in (0, 99), proc.stderr.decode()
    return proc.returncode


def _mapping(folder: Folder) -> dict[int, str]:
    folder.sync()
    return {uid: split_info(name)[0]
            for uid, name in zip(folder.uids, folder._table.names, strict=True)}


def _check(folder: Folder, before: dict[int, str], uidvalidity: int) -> dict[int, str]:
    after = _mapping(folder)
    assert folder.uidvalidity == uidvalidity
    assert list(folder.uids) == sorted(set(folder.uids))
    for uid, base in after.items():
        assert before.get(uid, base) == base  # a uid never changes its message
    files = {split_info(n)[0] for sub in ("new", "cur") for n in listed(Path(folder.path), sub)}
    assert set(after.values()) == files  # every file has exactly one uid
    assert len(set(after.values())) == len(after)
    return after


@pytest.mark.parametrize(("action", "step"), CASES)
def test_crash(tmp_path: Path, action: str, step: str) -> None:
    box = tmp_path / "box"
    for i in range(3):
        deliver_to(box, b"Subject: %d\r\n\r\nbefore\r\n" % i)
    ensure_maildir(str(box / ".Copies"))
    folder = Folder.open(str(box))
    folder.sync()
    folder.store([1], StoreMode.ADD, ["\\Flagged"])
    before = _mapping(folder)
    uidvalidity, uidnext = folder.uidvalidity, folder.uidnext
    folder.close()
    for i in range(2):
        deliver_to(box, b"Subject: %d\r\n\r\nafter\r\n" % i)
    if action == "torn":
        with open(box / journal.FILE_NAME, "ab") as handle:
            handle.write(b"A 99 99 1 1 - torn-by-an-earlier-cr")
    child_action = "sync" if action == "torn" else action

    assert _run(box, child_action, step) == 99

    reopened = Folder.open(str(box))
    after = _check(reopened, before, uidvalidity)
    assert min(uid for uid in after if uid not in before) >= uidnext
    assert "torn-by-an-earlier-cr" not in (box / journal.FILE_NAME).read_text()
    if action == "expunge":
        # Unlinked before the crash: recorded (now or at the next sync), never back.
        assert 2 not in after
        assert reopened.vanished_since(0) == [(2, 2)]
    if action == "copy":
        copies = Folder.open(str(box / ".Copies"), root=str(box), name="Copies")
        copies.sync()
        assert len(copies.uids) in (0, 2)  # linked and synced: all or nothing
    # And the folder goes on working after the crash.
    assert _run(box, child_action, None) == 0
    _check(Folder.open(str(box)), after, uidvalidity)


def test_without_a_crash(tmp_path: Path) -> None:
    box = tmp_path / "box"
    deliver_to(box)
    ensure_maildir(str(box / ".Copies"))
    for action in ("sync", "index", "expunge", "append", "copy"):
        assert _run(box, action, None) == 0
