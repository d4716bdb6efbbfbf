from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from mailyard.directory.store import Directory
from mailyard.message.address import Address

_WRITER = """
import sys
from mailyard.directory.store import Directory
d = Directory.open(sys.argv[1])
d.add_domain(sys.argv[2])
d.close()
"""


def test_unchanged_database_gives_the_same_object(directory: Directory) -> None:
    first = directory.snapshot()
    assert directory.snapshot() is first
    assert directory.snapshot() is first


def test_own_writes_invalidate(directory: Directory) -> None:
    empty = directory.snapshot()
    directory.add_domain("example.test")
    after_domain = directory.snapshot()
    assert after_domain is not empty
    assert "example.test" in after_domain.domains
    assert "example.test" not in empty.domains  # old snapshots never change
    directory.add_mailbox(Address("a", "example.test"), "example.test/a", "h")
    after_mailbox = directory.snapshot()
    assert ("a", "example.test") in after_mailbox.mailboxes
    directory.set_enabled(Address("a", "example.test"), False)
    assert not directory.snapshot().mailboxes[("a", "example.test")].enabled


def test_failed_write_does_not_corrupt_the_cache(directory: Directory) -> None:
    directory.add_domain("example.test")
    with pytest.raises(Exception, match="already exists"):
        directory.add_domain("example.test")
    assert list(directory.snapshot().domains) == ["example.test"]


def test_second_directory_object_writes(db_path: str) -> None:
    reader = Directory.open(db_path)
    writer = Directory.open(db_path)
    try:
        before = reader.snapshot()
        writer.add_domain("example.test")
        after = reader.snapshot()
        assert after is not before and "example.test" in after.domains
        assert reader.snapshot() is after
    finally:
        reader.close()
        writer.close()


def test_second_process_writes(db_path: str) -> None:
    with Directory.open(db_path) as reader:
        before = reader.snapshot()
        subprocess.run([sys.executable, "-c", _WRITER, db_path, "other.test"], check=True)
        after = reader.snapshot()
        assert after is not before and "other.test" in after.domains


def test_snapshot_is_read_only(directory: Directory) -> None:
    directory.add_domain("example.test")
    snap = directory.snapshot()
    with pytest.raises(TypeError):
        snap.domains["x.test"] = snap.domains["example.test"]  # type: ignore[index]


def test_snapshot_never_waits_for_a_busy_lock(directory: Directory) -> None:
    # While another thread is inside the store (a write may wait for another
    # process for seconds), the event loop gets the last snapshot at once.
    directory.add_domain("example.test")
    last = directory.snapshot()
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with directory._lock:
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        held.wait(10)
        assert directory.snapshot() is last
    finally:
        release.set()
        thread.join()
