"""Several processes on one folder: uids unique and ascending; POP3 and IMAP side by side."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from mailyard.maildir import names
from mailyard.maildir.drop import Maildrop
from mailyard.maildir.folder import Folder, StoreMode
from tests.maildir.storehelp import deliver_to, read_uidlist

_WORKER = """
import io, sys
from mailyard.maildir.deliver import deliver, ensure_maildir
from mailyard.maildir.folder import Folder
box, count, claim = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "claim"
ensure_maildir(box)
folder = Folder.open(box)
sys.stdin.readline()  # start together
for i in range(count):
    body = b"Subject: %d\\r\\n\\r\\nx\\r\\n" % i
    deliver(box, b"", io.BytesIO(body), len(body), hostname="mx.example")
    folder.sync(claim=claim and i % 2 == 0)
folder.sync()
for uid, name in zip(folder.uids, folder._table.names):
    print(uid, name.partition(":")[0])
"""


def _mapping(output: bytes) -> dict[int, str]:
    pairs = (line.split(" ", 1) for line in output.decode().splitlines())
    return {int(uid): base for uid, base in pairs}


def test_two_processes_assign_uids_at_once(tmp_path: Path) -> None:
    box = tmp_path / "box"
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER, str(box), "40", mode],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
               for mode in ("claim", "noclaim")]
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(b"go\n")
        worker.stdin.flush()
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0]
    views = [_mapping(out) for out in outputs]
    final = Folder.open(str(box))
    final.sync()
    mapping = {uid: name.partition(":")[0]
               for uid, name in zip(final.uids, final._table.names, strict=True)}
    # Each process saw a part of the same file: one uid per message, no gaps
    # or reuse, and the uids in delivery order.
    for view in views:
        assert view.items() <= mapping.items()
    assert sorted(mapping) == list(range(1, 81))
    # Uids follow the order in which messages appeared: each process's own
    # deliveries (one after the other) ascend with their delivery times. (Across
    # processes a message stamped earlier may appear later, after a slower fsync.)
    for pid in {base.split("P")[1].split("Q")[0] for base in mapping.values()}:
        stamps = [names.delivery_stamp(mapping[uid]) for uid in sorted(mapping)
                  if f"P{pid}Q" in mapping[uid]]
        assert len(stamps) == 40 and stamps == sorted(stamps)
    added = [line for line in read_uidlist(box) if line.startswith("A ")]
    assert len(added) == 80


def test_threads_of_one_process_share_the_folder(tmp_path: Path) -> None:
    box = tmp_path / "box"
    for _ in range(30):
        deliver_to(box)
    folder = Folder.shared(str(box))
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            view = folder.view()
            for i in range(10):
                uid = 1 + (offset * 10 + i) % 30
                view.store([uid], StoreMode.ADD, ["\\Seen"])
                deliver_to(box)
                view.sync()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    folder.sync()
    assert list(folder.uids) == list(range(1, 61))
    assert all(folder.info(uid).flags for uid in range(1, 31))


_POP3 = """
import sys
from mailyard.maildir.drop import Maildrop
box = sys.argv[1]
drop = Maildrop.open(box)
print(" ".join(e.uid for e in drop.entries), flush=True)
sys.stdin.readline()
drop.delete([0, 2])
drop.close()
print("quit", flush=True)
"""


def test_pop3_and_imap_on_one_maildir(tmp_path: Path) -> None:
    box = tmp_path / "box"
    delivered = [deliver_to(box, b"m%d\r\n" % i) for i in range(4)]
    folder = Folder.open(str(box))
    view = folder.view()
    view.store([2], StoreMode.ADD, ["\\Seen"])  # renamed while POP3 lists
    pop3 = subprocess.Popen([sys.executable, "-c", _POP3, str(box)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert pop3.stdout is not None and pop3.stdin is not None
    uidls = pop3.stdout.readline().decode().split()
    # POP3 UIDLs are the base names, as before the uid list existed.
    assert uidls == [names.uidl_for(n) for n in delivered]
    view.store([3], StoreMode.ADD, ["\\Flagged"])  # IMAP renames during the POP3 session
    deliver_to(box, b"late\r\n")
    pop3.stdin.write(b"quit\n")
    pop3.stdin.flush()
    assert pop3.stdout.readline() == b"quit\n"
    assert pop3.wait(timeout=60) == 0
    update = view.sync()
    assert update.expunged == (3, 1) and update.vanished == (1, 3)
    assert update.exists == 3
    assert list(view.uids) == [2, 4, 5]
    with Maildrop.open(str(box)) as drop:
        assert [e.uid for e in drop.entries] == [
            names.uidl_for(delivered[1]), names.uidl_for(delivered[3]),
            drop.entries[2].uid]
