"""POP3's maildrop: exclusive lock, new -> cur, delivery order, sizes, UIDLs, deletion."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mailyard.maildir import names
from mailyard.maildir.deliver import deliver, ensure_maildir
from mailyard.maildir.drop import DropEntry, Maildrop, MaildropBusy


def _deliver(box: Path, text: bytes) -> str:
    ensure_maildir(str(box))
    return deliver(str(box), b"", io.BytesIO(text), len(text), hostname="mx.example")


def _read(drop: Maildrop, index: int) -> bytes:
    with drop.open_message(index) as handle:
        return handle.read()


@pytest.fixture
def box(tmp_path: Path) -> Path:
    return tmp_path / "mail" / "example.test" / "u"


def test_open_creates_a_missing_maildir(box: Path) -> None:
    with Maildrop.open(str(box)) as drop:
        assert drop.entries == []
    assert all((box / sub).is_dir() for sub in ("tmp", "new", "cur"))


def test_lock_is_exclusive_within_a_process(box: Path) -> None:
    first = Maildrop.open(str(box))
    with pytest.raises(MaildropBusy):
        Maildrop.open(str(box))
    failures: list[BaseException] = []

    def other_thread() -> None:
        try:
            Maildrop.open(str(box))
        except MaildropBusy as exc:
            failures.append(exc)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert len(failures) == 1
    first.close()
    first.close()  # idempotent
    assert first.closed
    Maildrop.open(str(box)).close()


def test_lock_is_released_when_the_object_goes(box: Path) -> None:
    drop = Maildrop.open(str(box))
    del drop  # a session that forgot close()
    Maildrop.open(str(box)).close()


_HOLDER = """
import sys
from mailyard.maildir.drop import Maildrop
drop = Maildrop.open(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()
"""


def test_lock_across_processes_freed_when_holder_dies(box: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(box)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
        with pytest.raises(MaildropBusy):
            Maildrop.open(str(box))
        holder.kill()
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)
    Maildrop.open(str(box)).close()


def test_other_process_sees_our_lock(box: Path) -> None:
    probe = ("import sys\nfrom mailyard.maildir.drop import Maildrop, MaildropBusy\n"
             "try:\n    Maildrop.open(sys.argv[1])\nexcept MaildropBusy:\n    sys.exit(3)\n")
    with Maildrop.open(str(box)):
        assert subprocess.run([sys.executable, "-c", probe, str(box)], timeout=60).returncode == 3
    assert subprocess.run([sys.executable, "-c", probe, str(box)], timeout=60).returncode == 0


def test_new_moves_to_cur_with_stable_uids(box: Path) -> None:
    delivered = [_deliver(box, b"Subject: %d\r\n\r\nbody\r\n" % i) for i in range(3)]
    expected_uids = [names.uidl_for(n) for n in delivered]
    with Maildrop.open(str(box)) as drop:
        assert list((box / "new").iterdir()) == []
        assert [e.name for e in drop.entries] == [n + ":2," for n in delivered]
        in_cur = sorted(p.name for p in (box / "cur").iterdir())
        assert in_cur == sorted(n + ":2," for n in delivered)
        assert [e.uid for e in drop.entries] == expected_uids
        texts = [b"Subject: %d\r\n\r\nbody\r\n" % i for i in range(3)]
        assert [_read(drop, i) for i in range(3)] == texts
    with Maildrop.open(str(box)) as drop:
        assert [e.uid for e in drop.entries] == expected_uids


def test_sizes_are_exact_octets(box: Path) -> None:
    texts = [b"a\r\n", b"Subject: x\r\n\r\n" + b"y" * 5000 + b"\r\n"]
    for text in texts:
        _deliver(box, text)
    (box / "cur" / "foreign-message").write_bytes(b"no size field\r\n")
    (box / "cur" / "1.M1P1Q1.h,S=99999999999999999:2,").write_bytes(b"implausible S=\r\n")
    with Maildrop.open(str(box)) as drop:
        sizes = {e.name: e.size for e in drop.entries}
        assert len(sizes) == 4
        for name, size in sizes.items():
            assert (box / "cur" / name).stat().st_size == size


def _stamped(secs: int, usec: int, tag: str) -> str:
    return f"{secs}.M{usec}P1Q1.{tag},S=1:2,S"


def test_delivery_order(box: Path) -> None:
    (box / "cur").mkdir(parents=True)
    ordered = [
        _stamped(1000, 5, "a"),
        _stamped(1000, 40, "b"),
        _stamped(1000, 300000, "c"),
        _stamped(1001, 1, "d"),
        "1002.M7P3.dovecot-style,S=1",  # Dovecot's form carries the same stamp
        _stamped(99999999999, 0, "e"),
        "old-qmail-name-2",  # not our format: after, by mtime
        "old-qmail-name-1",
    ]
    for name in ordered:
        (box / "cur" / name).write_bytes(b"x")
    os.utime(box / "cur" / "old-qmail-name-2", ns=(10**9, 10**9))
    os.utime(box / "cur" / "old-qmail-name-1", ns=(2 * 10**9, 2 * 10**9))
    with Maildrop.open(str(box)) as drop:
        assert [e.name for e in drop.entries] == ordered


def test_dot_files_symlinks_and_directories_are_ignored(box: Path, tmp_path: Path) -> None:
    name = _deliver(box, b"real\r\n")
    secret = tmp_path / "secret"
    secret.write_bytes(b"not mail")
    (box / "new" / ".hidden").write_bytes(b"x")
    (box / "cur" / ".also-hidden:2,").write_bytes(b"x")
    (box / "cur" / "link").symlink_to(secret)
    (box / "cur" / "adir").mkdir()
    with Maildrop.open(str(box)) as drop:
        assert [e.name for e in drop.entries] == [name + ":2,"]
    assert (box / "new" / ".hidden").exists()


def test_duplicate_base_names_count_once(box: Path) -> None:
    (box / "cur").mkdir(parents=True)
    base = "5.M5P1Q1.x,S=1"
    (box / "cur" / names.with_info(base, "")).write_bytes(b"x")
    (box / "cur" / names.with_info(base, "RS")).write_bytes(b"x")
    with Maildrop.open(str(box)) as drop:
        # RFC 1939 §7: unique-ids are unique within the maildrop.
        assert [e.uid for e in drop.entries] == [base]


def test_delete_then_reopen(box: Path) -> None:
    delivered = [_deliver(box, b"m%d\r\n" % i) for i in range(4)]
    with Maildrop.open(str(box)) as drop:
        drop.delete([0, 2])
        drop.delete([])
    with Maildrop.open(str(box)) as drop:
        assert [e.name for e in drop.entries] == [delivered[1] + ":2,", delivered[3] + ":2,"]
        assert [_read(drop, i) for i in range(2)] == [b"m1\r\n", b"m3\r\n"]
        drop.delete([0, 1])
    with Maildrop.open(str(box)) as drop:
        assert drop.entries == []


def test_vanished_message(box: Path) -> None:
    for i in range(2):
        _deliver(box, b"m%d\r\n" % i)
    with Maildrop.open(str(box)) as drop:
        (box / "cur" / drop.entries[0].name).unlink()  # another reader deleted it
        with pytest.raises(OSError):
            drop.open_message(0)
        drop.delete([0, 1])  # the gone one is not an error
    assert list((box / "cur").iterdir()) == []


def test_message_renamed_by_another_reader(box: Path) -> None:
    _deliver(box, b"first\r\n")
    _deliver(box, b"second\r\n")
    with Maildrop.open(str(box)) as drop:
        old = drop.entries[0]
        base = names.split_info(old.name)[0]
        # An IMAP session marks it \Seen: same base, new info.
        os.rename(box / "cur" / old.name, box / "cur" / names.with_info(base, "S"))
        assert _read(drop, 0) == b"first\r\n"
        renamed = DropEntry(name=names.with_info(base, "S"), uid=old.uid, size=old.size)
        assert drop.entries[0] == renamed
        os.rename(box / "cur" / drop.entries[1].name,
                  box / "cur" / names.with_info(names.split_info(drop.entries[1].name)[0], "RS"))
        drop.delete([1])
    with Maildrop.open(str(box)) as drop:
        assert [e.uid for e in drop.entries] == [old.uid]


def test_bad_indices_and_use_after_close(box: Path) -> None:
    _deliver(box, b"m\r\n")
    drop = Maildrop.open(str(box))
    for bad in (-1, 1):
        with pytest.raises(IndexError):
            drop.open_message(bad)
        with pytest.raises(IndexError):
            drop.delete([bad])
    drop.close()
    with pytest.raises(ValueError):
        drop.open_message(0)
    with pytest.raises(ValueError):
        drop.delete([0])
