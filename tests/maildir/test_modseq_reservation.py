"""Mod-sequences reserved in fsync'd blocks: HIGHESTMODSEQ survives a power loss.

Flag and expunge lines of the uid list are written without an fsync
(journal.py). A power loss may take them, and with them mod-sequences a
client already saw; RFC 7162 §3.1.2.1 wants HIGHESTMODSEQ never to go back.
Each block of mod-sequences is reserved first by an fsync'd ``R`` line
naming the boot; after a reboot the replay (or a saved index) raises
HIGHESTMODSEQ to the last ceiling.

A power loss is simulated as the disk would show it: the uid list and the
index copied at the moment of the last fsync are put back after more
(unsynced) changes, and the boot id is changed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.maildir import index as store_index
from mailyard.maildir import journal, table
from mailyard.maildir.folder import Folder, StoreMode
from tests.maildir.storehelp import deliver_to, read_uidlist

BOOT_A = 0x1111_2222_3333_4444
BOOT_B = 0x5555_6666_7777_8888


@pytest.fixture
def boot(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The boot id, settable: ``boot[0] = BOOT_B`` is a reboot."""
    current = [BOOT_A]
    monkeypatch.setattr(journal, "boot_id", lambda: current[0])
    monkeypatch.setattr(table, "boot_id", lambda: current[0])
    return current


def _open(box: Path) -> Folder:
    return Folder.open(str(box), hostname="imap.example")


def _reservations(box: Path) -> list[str]:
    return [line for line in read_uidlist(box, reservations=True) if line.startswith("R ")]


def test_the_first_batch_of_a_boot_reserves_a_block(tmp_path: Path, boot: list[int]) -> None:
    box = tmp_path / "box"
    for i in range(3):
        deliver_to(box, b"m%d\r\n" % i)
    folder = _open(box)
    folder.sync()
    assert _reservations(box) == [f"R {1 + journal.MODSEQ_BLOCK + 1} {BOOT_A:x}"]
    for uid in (1, 2, 3):
        folder.store([uid], StoreMode.ADD, ["\\Seen"])
    assert len(_reservations(box)) == 1  # under the ceiling: no new line, no fsync
    folder.close()
    boot[0] = BOOT_B
    again = _open(box)
    again.store([1], StoreMode.ADD, ["\\Flagged"])
    reserved = _reservations(box)
    assert len(reserved) == 2 and reserved[1].endswith(f" {BOOT_B:x}")
    again.close()


def test_crossing_the_ceiling_reserves_the_next_block(tmp_path: Path, boot: list[int],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table, "MODSEQ_BLOCK", 3)
    box = tmp_path / "box"
    deliver_to(box)
    folder = _open(box)
    folder.sync()  # modseq 2, reserved up to 5
    for _ in range(3):  # 3, 4, 5 under the ceiling; 6 reserves up to 9; 7, 8 under it
        folder.store([1], StoreMode.ADD, ["\\Seen"])
        folder.store([1], StoreMode.REMOVE, ["\\Seen"])
    assert [int(line.split()[1]) for line in _reservations(box)] == [5, 9]
    assert folder.highest_modseq == 8
    folder.close()


def _power_loss(tmp_path: Path, boot: list[int], *, keep_index: bool,
                reboot: bool) -> tuple[int, Folder]:
    """Changes, an fsync'd moment copied, more changes seen by a client, the
    copy put back: (the HIGHESTMODSEQ the client saw, the folder reopened)."""
    box = tmp_path / "box"
    for i in range(5):
        deliver_to(box, b"m%d\r\n" % i)
    folder = _open(box)
    folder.sync()
    folder.store([1], StoreMode.ADD, ["\\Seen"])
    folder.flush()  # fsyncs the pending lines, then saves the index naming them
    disk = tmp_path / "disk"
    disk.mkdir()
    for name in (journal.FILE_NAME, store_index.FILE_NAME):
        shutil.copy2(box / name, disk / name)
    for uid in (2, 3, 4, 5):  # unsynced flag lines, seen by a CONDSTORE client
        folder.store([uid], StoreMode.ADD, ["\\Flagged"])
    seen = folder.highest_modseq
    folder.close()
    shutil.copy2(disk / journal.FILE_NAME, box / journal.FILE_NAME)
    if keep_index:
        shutil.copy2(disk / store_index.FILE_NAME, box / store_index.FILE_NAME)
    else:
        (box / store_index.FILE_NAME).unlink()
    if reboot:
        boot[0] = BOOT_B
    return seen, _open(box)


@pytest.mark.parametrize("keep_index", [True, False], ids=["index", "no-index"])
def test_after_a_power_loss_highestmodseq_does_not_go_back(
        tmp_path: Path, boot: list[int], keep_index: bool) -> None:
    seen, folder = _power_loss(tmp_path, boot, keep_index=keep_index, reboot=True)
    assert folder.highest_modseq >= seen
    # The rescan finds the flags the lost lines recorded, with a new modseq
    # above anything the client saw: CHANGEDSINCE <seen> reports them.
    folder.sync()
    assert folder.highest_modseq > seen
    changed = dict(folder.changes_since(seen))
    assert set(changed) == {2, 3, 4, 5}
    assert all(modseq > seen for modseq in changed.values())
    folder.close()


def test_without_the_boot_check_it_would_go_back(tmp_path: Path, boot: list[int]) -> None:
    """The same lost lines in the same boot (impossible for real: only a
    power loss or a kernel crash drops the page cache, and both reboot):
    nothing raises HIGHESTMODSEQ, which shows what the reservation is for."""
    seen, folder = _power_loss(tmp_path, boot, keep_index=True, reboot=False)
    assert folder.highest_modseq < seen
    folder.close()


def test_a_rewrite_keeps_the_reservation(tmp_path: Path, boot: list[int]) -> None:
    box = tmp_path / "box"
    deliver_to(box)
    folder = _open(box)
    folder.sync()
    before = _reservations(box)
    folder.compact()
    assert _reservations(box) == before
    folder.close()
    boot[0] = BOOT_B
    again = _open(box)
    assert again.highest_modseq >= int(before[0].split()[1])
    again.close()


def test_reservation_lines_parse_and_format() -> None:
    record = journal.Reserved(12345, 0xABCDEF)
    line = journal.format_record(record)
    assert line == b"R 12345 abcdef\n"
    assert journal.parse_record(line) == record
    for bad in (b"R", b"R 5", b"R 0 ab", b"R 5 xyz", b"R 5 ABC", b"R 5 " + b"a" * 17,
                b"R -1 ab", b"R 5 ab extra"):
        assert journal.parse_record(bad) is None, bad


@given(st.integers(1, journal.MAX_MODSEQ), st.integers(0, 2**64 - 1))
def test_any_reservation_round_trips(ceiling: int, boot_value: int) -> None:
    record = journal.Reserved(ceiling, boot_value)
    assert journal.parse_record(journal.format_record(record)) == record


def test_boot_id_is_read_from_the_kernel() -> None:
    value = journal.boot_id()
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            expected = int(handle.read().strip().replace("-", "")[:16], 16)
    except OSError:
        expected = 0
    assert value == expected
