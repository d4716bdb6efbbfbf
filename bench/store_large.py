"""The IMAP store on a large folder: cold and warm opens, FETCH metadata, STORE, EXPUNGE.

Builds a folder of N messages (default 100,000 of about 4 KB, written
straight into new/ with delivery names, as deliveries leave them), then
prints the time of each step the IMAP adapter depends on:

* cold: no uid list, no index: the first SELECT gives every message a uid
  and claims it (new/ -> cur/); again with the uid list kept and only the
  index removed (a rebuild: the uids must stay);
* warm: the index present and nothing changed, a new Folder object (what a
  new process pays) and the cached object of a process (what each NOOP or
  IDLE poll pays);
* FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE): the metadata arrays, and
  the same turned into per-message tuples with flag names;
* STORE +FLAGS \\Seen 1:*, EXPUNGE of 1,000, the sync another process's
  folder object then does, and the memory a session view costs.

Aims (issue 3, this 2-core machine): warm SELECT < 100 ms, FETCH 1:* < 1 s,
cold open in a few seconds.

    .venv/bin/python bench/store_large.py [--messages 100000] [--size 4096] [--dir PATH] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from mailyard.maildir import index as store_index
from mailyard.maildir import journal
from mailyard.maildir.deliver import ensure_maildir
from mailyard.maildir.folder import Folder, StoreMode
from mailyard.maildir.names import delivery_name
from mailyard.maildir.scan import SETTLE_NS

T = TypeVar("T")


def timed(label: str, action: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = action()
    print(f"  {label:<58} {1000 * (time.perf_counter() - start):9.1f} ms", flush=True)
    return result


def build(box: str, count: int, size: int) -> None:
    ensure_maildir(box)
    new = os.path.join(box, "new")
    start = 1_700_000_000.0
    header = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: message %d\r\n\r\n"
    for i in range(count):
        head = header % i
        body = head + b"x" * max(size - len(head) - 2, 0) + b"\r\n"
        name = delivery_name(now=start + i * 0.01, pid=4242, counter=i + 1,
                             hostname="bench.example", size=len(body))
        with open(os.path.join(new, name), "wb") as handle:
            handle.write(body)


def settle() -> None:
    # Directory stamps are trusted once they are a second old (scan.py).
    time.sleep(SETTLE_NS / 1e9 + 0.1)


def fetch_all(folder: Folder) -> int:
    columns = folder.columns()
    names = folder.flag_names
    rows = [(uid, names(bits), size, date) for uid, bits, size, date in
            zip(columns.uids, columns.flags, columns.sizes, columns.dates, strict=True)]
    return len(rows)


def view_memory(folder: Folder) -> int:
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    views = [folder.view() for _ in range(100)]
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    total = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    del views
    return total // 100


def run(box: str, count: int, size: int) -> None:
    print(f"building {count} messages of ~{size} octets in {box}", flush=True)
    timed("build (plain writes into new/)", lambda: build(box, count, size))

    print("cold")
    folder = timed("open, no uid list and no index", lambda: Folder.open(box))
    view = timed("first SELECT: uids for all, claim new/ -> cur/", folder.view)
    print(f"  {'':<58} {len(view)} messages, {view.recent} recent")
    timed("flush (write the index)", folder.flush)
    folder.close()
    os.unlink(os.path.join(box, store_index.FILE_NAME))
    settle()
    folder = timed("open, uid list kept, index removed (rebuild)", lambda: Folder.open(box))
    timed("SELECT after the rebuild (lists new/ and cur/)", folder.view)
    folder.close()
    settle()
    Folder.open(box).close()  # saves an index with settled stamps

    print("warm")
    folder = timed("open, index present, nothing changed (new object)", lambda: Folder.open(box))
    view = timed("SELECT on it", folder.view)
    timed("sync on the cached object (NOOP, IDLE poll)", lambda: view.sync())
    timed("FETCH 1:* metadata arrays (columns)", folder.columns)
    rows = timed("FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE) as tuples",
                 lambda: fetch_all(folder))
    print(f"  {'':<58} {rows} rows")
    print(f"  {'memory of one more session view':<58} {view_memory(folder):9d} B")

    print("changes")
    result = timed("STORE +FLAGS \\Seen 1:*",
                   lambda: view.store(view.uids, StoreMode.ADD, ["\\Seen"]))
    print(f"  {'':<58} {len(result.changed)} changed, modseq {result.modseq}")
    other = Folder.open(box)
    timed("another process's object catches up (journal tail + rescan)", other.sync)
    doomed = list(view.uids[:1000])
    timed("STORE +FLAGS \\Deleted on 1,000", lambda: view.store(doomed, StoreMode.ADD,
                                                                ["\\Deleted"]))
    timed("EXPUNGE of 1,000", folder.expunge)
    update = timed("the session's sync after it (1,000 EXPUNGE)", view.sync)
    print(f"  {'':<58} {len(update.expunged)} expunged, {len(view)} left")
    timed("another process's object catches up", other.sync)
    size_of = os.path.getsize(os.path.join(box, journal.FILE_NAME))
    print(f"  {'uid list size':<58} {size_of:9d} B")
    other.close()
    folder.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--dir", default=None, help="where to build (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the folder afterwards")
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="store-large-", dir=args.dir)
    try:
        run(os.path.join(base, "box"), args.messages, args.size)
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
