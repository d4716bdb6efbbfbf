"""The disk's own ceiling: fsync'd small-file creations per second.

Each creation is the Maildir/queue pattern: create a 4 KB file in tmp/, write,
fsync it, rename it into new/, fsync new/. Run with 1 and 4 threads, with a
directory fsync per file and with directory syncs shared between threads
(group commit, fsio.DirSyncer), so every ingest figure can be read against
the physical limit of the machine it ran on.

    .venv/bin/python bench/disk_ceiling.py [--seconds 3] [--dir PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from mailyard import fsio

PAYLOAD = b"x" * 4096


def worker(base: str, tid: int, stop: float, syncer: fsio.DirSyncer | None, counts: list[int]) -> None:
    tmp, new = os.path.join(base, "tmp"), os.path.join(base, "new")
    n = 0
    while time.perf_counter() < stop:
        name = f"{tid}.{n}"
        fd = os.open(os.path.join(tmp, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, PAYLOAD)
        os.fsync(fd)
        os.close(fd)
        os.rename(os.path.join(tmp, name), os.path.join(new, name))
        if syncer is None:
            fsio.fsync_dir(new)
        else:
            syncer.sync(new)
        n += 1
    counts[tid] = n


def run(threads: int, shared: bool, seconds: float, where: str | None) -> float:
    base = tempfile.mkdtemp(prefix="mailyard-disk-", dir=where)
    try:
        os.mkdir(os.path.join(base, "tmp"))
        os.mkdir(os.path.join(base, "new"))
        counts = [0] * threads
        syncer = fsio.DirSyncer() if shared else None
        stop = time.perf_counter() + seconds
        started = time.perf_counter()
        pool = [threading.Thread(target=worker, args=(base, i, stop, syncer, counts))
                for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return sum(counts) / (time.perf_counter() - started)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--dir", default=os.environ.get("BENCH_DIR"), help="filesystem to measure")
    args = parser.parse_args()
    print(f"{'threads':>7} {'dir sync':>10} {'files/s':>9}")
    for threads in (1, 4, 20):
        for shared in (False, True):
            rate = run(threads, shared, args.seconds, args.dir)
            print(f"{threads:>7} {'shared' if shared else 'per file':>10} {rate:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
