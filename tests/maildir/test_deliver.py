"""Maildir delivery: byte-exact files, names carrying S=, nothing left on failure."""

from __future__ import annotations

import errno
import io
import os
import stat
import threading
from pathlib import Path

import pytest

from mailyard import fsio
from mailyard.maildir import names
from mailyard.maildir.deliver import deliver, ensure_maildir

PREFIX = b"Return-Path: <s@example.org>\r\nDelivered-To: u@example.test\r\n"
BODY = b"Subject: hi\r\n\r\nline one\r\n.dot line\r\n\xff\xfe 8-bit\r\n"


def _files(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


@pytest.fixture
def box(tmp_path: Path) -> Path:
    path = tmp_path / "mail" / "example.test" / "u"
    ensure_maildir(str(path))
    return path


def _check_delivered(box: Path, name: str, expected: bytes) -> None:
    stored = (box / "new" / name).read_bytes()
    assert stored == expected
    assert names.size_from_name(name) == len(stored)
    assert _files(box / "tmp") == []
    assert _files(box / "new") == [name]


def test_ensure_maildir_creates_layout(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "box"
    ensure_maildir(str(path))
    for sub in ("tmp", "new", "cur"):
        assert (path / sub).is_dir()
        assert stat.S_IMODE((path / sub).stat().st_mode) & 0o077 == 0
    ensure_maildir(str(path))  # idempotent
    (path / "cur").rmdir()
    ensure_maildir(str(path))  # repairs a half-made Maildir
    assert (path / "cur").is_dir()


def test_ensure_maildir_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "box").mkdir()
    (tmp_path / "box" / "new").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        ensure_maildir(str(tmp_path / "box"))


def test_bytes_body_is_copied_exactly(box: Path) -> None:
    name = deliver(str(box), PREFIX, io.BytesIO(BODY), len(BODY), hostname="mx.example")
    _check_delivered(box, name, PREFIX + BODY)
    assert names.split_info(name) == (name, "")


def test_body_starting_mid_file(box: Path, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.write_bytes(b"ENVELOPE\0junk\0" + BODY + b"TRAILER")
    with open(spool, "rb") as body:
        body.read(3)  # the buffered reader now holds more than it reported
        body.seek(len(b"ENVELOPE\0junk\0"))
        name = deliver(str(box), PREFIX, body, len(BODY), hostname="mx.example")
        # Left just past the copied bytes, as a read loop would leave it.
        assert body.read() == b"TRAILER"
    _check_delivered(box, name, PREFIX + BODY)


def test_large_file_body(box: Path, tmp_path: Path) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    spool = tmp_path / "spool"
    spool.write_bytes(b"x" * 100 + payload)
    with open(spool, "rb") as body:
        body.seek(100)
        name = deliver(str(box), PREFIX, body, len(payload), hostname="mx.example")
    _check_delivered(box, name, PREFIX + payload)


def test_empty_prefix_and_body(box: Path) -> None:
    name = deliver(str(box), b"", io.BytesIO(b""), 0, hostname="mx.example")
    _check_delivered(box, name, b"")


def test_body_from_a_pipe(box: Path) -> None:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, BODY + b"more")
    os.close(write_fd)
    with open(read_fd, "rb") as body:
        name = deliver(str(box), PREFIX, body, len(BODY), hostname="mx.example")
    _check_delivered(box, name, PREFIX + BODY)


def test_body_on_another_filesystem(box: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == box.stat().st_dev:
        pytest.skip("needs a second filesystem (/dev/shm)")
    spool = shm / f"mailyard-test-{os.getpid()}"
    spool.write_bytes(b"hdr" + BODY)
    try:
        with open(spool, "rb") as body:
            body.seek(3)
            name = deliver(str(box), PREFIX, body, len(BODY), hostname="mx.example")
    finally:
        spool.unlink()
    _check_delivered(box, name, PREFIX + BODY)


def _assert_empty(box: Path) -> None:
    assert _files(box / "tmp") == []
    assert _files(box / "new") == []


def test_short_bytes_body_fails_and_leaves_nothing(box: Path) -> None:
    with pytest.raises(OSError) as info:
        deliver(str(box), PREFIX, io.BytesIO(BODY), len(BODY) + 1, hostname="mx.example")
    assert info.value.errno == errno.EIO
    _assert_empty(box)


def test_short_file_body_fails_and_leaves_nothing(box: Path, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.write_bytes(b"12345" + BODY)
    with open(spool, "rb") as body:
        body.seek(5)
        with pytest.raises(OSError) as info:
            deliver(str(box), PREFIX, body, len(BODY) + 100, hostname="mx.example")
    assert info.value.errno == errno.EIO
    _assert_empty(box)


class _BrokenBody(io.RawIOBase):
    """A body whose storage fails after a few bytes (a disk error while reading)."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        raise OSError(errno.EIO, "read error")


def test_read_error_leaves_nothing(box: Path) -> None:
    with pytest.raises(OSError):
        deliver(str(box), PREFIX, io.BufferedReader(_BrokenBody()), 10, hostname="mx.example")
    _assert_empty(box)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_tmp_leaves_nothing(box: Path) -> None:
    (box / "tmp").chmod(0o500)
    try:
        with pytest.raises(PermissionError):
            deliver(str(box), PREFIX, io.BytesIO(BODY), len(BODY), hostname="mx.example")
    finally:
        (box / "tmp").chmod(0o700)
    _assert_empty(box)


def test_missing_tmp_fails(box: Path) -> None:
    (box / "tmp").rmdir()
    with pytest.raises(FileNotFoundError):
        deliver(str(box), PREFIX, io.BytesIO(BODY), len(BODY), hostname="mx.example")
    assert _files(box / "new") == []


def test_failed_rename_removes_tmp(box: Path) -> None:
    (box / "new").rmdir()
    with pytest.raises(FileNotFoundError):
        deliver(str(box), PREFIX, io.BytesIO(BODY), len(BODY), hostname="mx.example")
    assert _files(box / "tmp") == []


class _FailingSyncer(fsio.DirSyncer):
    def sync(self, path: str) -> None:
        raise OSError(errno.EIO, "directory sync failed")


def test_failed_directory_sync_leaves_nothing(box: Path) -> None:
    with pytest.raises(OSError):
        deliver(str(box), PREFIX, io.BytesIO(BODY), len(BODY), hostname="mx.example",
                syncer=_FailingSyncer())
    _assert_empty(box)


def test_odd_hostname_makes_a_safe_name(box: Path) -> None:
    name = deliver(str(box), b"", io.BytesIO(b"x"), 1, hostname="a/b:c,S=9\n" + "é" * 200)
    assert names.size_from_name(name) == 1
    _check_delivered(box, name, b"x")


def test_concurrent_deliveries_share_directory_syncs(box: Path, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.write_bytes(BODY)
    syncer = fsio.DirSyncer()
    count = 20
    barrier = threading.Barrier(count)
    results: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        try:
            prefix = b"X-N: %d\r\n" % i
            barrier.wait()
            with open(spool, "rb") as body:
                name = deliver(str(box), prefix, body, len(BODY), hostname="mx.example",
                               syncer=syncer)
            with lock:
                results.append(name)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == count
    assert sorted(results) == _files(box / "new")
    contents = {(box / "new" / n).read_bytes() for n in results}
    assert contents == {b"X-N: %d\r\n" % i + BODY for i in range(count)}
    for n in results:
        assert names.size_from_name(n) == (box / "new" / n).stat().st_size
    assert 1 <= syncer.syncs_done <= count
    assert _files(box / "tmp") == []
