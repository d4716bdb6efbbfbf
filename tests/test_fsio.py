from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from mailyard import fsio


def test_safe_component_refuses_escapes() -> None:
    for bad in ("", ".", "..", "a/b", "a\0b", "a\nb", "x" * 256, "\x7f"):
        with pytest.raises(fsio.UnsafePathError):
            fsio.safe_component(bad)
    assert fsio.safe_component("user.name+tag") == "user.name+tag"


def test_safe_join_keeps_inside(tmp_path: Path) -> None:
    assert fsio.safe_join(str(tmp_path), "a/b") == str(tmp_path / "a" / "b")
    with pytest.raises(fsio.UnsafePathError):
        fsio.safe_join(str(tmp_path), "a/../../etc")
    with pytest.raises(fsio.UnsafePathError):
        fsio.safe_join(str(tmp_path), "/etc")


def test_write_file_atomic_replaces(tmp_path: Path) -> None:
    fsio.write_file_atomic(str(tmp_path), "f", [b"one"])
    fsio.write_file_atomic(str(tmp_path), "f", [b"two", b"!"])
    assert (tmp_path / "f").read_bytes() == b"two!"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_create_excl_refuses_existing(tmp_path: Path) -> None:
    fd = fsio.create_excl(str(tmp_path), "x")
    fsio.write_all(fd, b"data")
    os.close(fd)
    with pytest.raises(FileExistsError):
        fsio.create_excl(str(tmp_path), "x")


def test_ensure_dir_nested(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c"
    fsio.ensure_dir(str(target))
    assert target.is_dir()
    fsio.ensure_dir(str(target))


def test_dir_syncer_shares_syncs_between_threads(tmp_path: Path) -> None:
    syncer = fsio.DirSyncer()
    barrier = threading.Barrier(20)

    def work(i: int) -> None:
        barrier.wait()
        fd = fsio.create_excl(str(tmp_path), f"f{i}")
        os.close(fd)
        syncer.sync(str(tmp_path))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= syncer.syncs_done <= 20
    assert len(list(tmp_path.iterdir())) == 20


def test_crash_point_is_inert_without_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILYARD_CRASH_AT", raising=False)
    fsio.crash_point("anything")


def test_disk_full_classification() -> None:
    import errno

    assert fsio.is_disk_full(OSError(errno.ENOSPC, "full"))
    assert not fsio.is_disk_full(OSError(errno.EIO, "io"))
