"""Crash injection: a delivery killed at each step leaves all or nothing in new/.

The child process really makes every system call up to the step named in
MAILYARD_CRASH_AT, then dies with os._exit(99) (fsio.crash_point).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailyard.maildir import names
from mailyard.maildir.drop import Maildrop

STEPS = ("maildir.create", "maildir.write", "maildir.fsync", "maildir.rename", "maildir.dirsync")
PREFIX = b"Delivered-To: u@example.test\r\n"
PAYLOAD = b"Subject: crash\r\n\r\n" + b"0123456789abcdef" * 20000 + b"end\r\n"

_CHILD = """
import sys
from mailyard import fsio
from mailyard.maildir.deliver import deliver, ensure_maildir
box, spool, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
ensure_maildir(box)
with open(spool, "rb") as body:
    body.seek(7)
    deliver(box, PREFIX, body, size, hostname="mx.example", syncer=fsio.DirSyncer())
""".replace("PREFIX", repr(PREFIX))


def _run(tmp_path: Path, step: str | None) -> tuple[int, Path]:
    box = tmp_path / "box"
    spool = tmp_path / "spool"
    spool.write_bytes(b"header\0" + PAYLOAD)
    env = dict(os.environ)
    env.pop("MAILYARD_CRASH_AT", None)
    if step is not None:
        env["MAILYARD_CRASH_AT"] = step
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(box), str(spool), str(len(PAYLOAD))],
                          env=env, capture_output=True, timeout=60)
    return proc.returncode, box


def _new_files(box: Path) -> list[Path]:
    return sorted((box / "new").iterdir())


@pytest.mark.parametrize("step", STEPS)
def test_crash_at_each_step(tmp_path: Path, step: str) -> None:
    code, box = _run(tmp_path, step)
    assert code == 99
    files = _new_files(box)
    if STEPS.index(step) < STEPS.index("maildir.rename"):
        # Killed before the rename: new/ is empty; tmp/ debris is never read.
        assert files == []
        assert len(list((box / "tmp").iterdir())) == 1
    else:
        assert len(files) == 1
        assert files[0].read_bytes() == PREFIX + PAYLOAD
        assert names.size_from_name(files[0].name) == len(PREFIX + PAYLOAD)
        assert list((box / "tmp").iterdir()) == []
    # A reader afterwards sees exactly what new/ held: all or nothing.
    with Maildrop.open(str(box)) as drop:
        assert len(drop.entries) == len(files)
        for i in range(len(drop.entries)):
            with drop.open_message(i) as handle:
                assert handle.read() == PREFIX + PAYLOAD


def test_without_a_crash_the_child_delivers(tmp_path: Path) -> None:
    code, box = _run(tmp_path, None)
    assert code == 0
    assert [p.read_bytes() for p in _new_files(box)] == [PREFIX + PAYLOAD]
