"""SMTP ingest benchmark: N messages over C parallel sessions to 200 users in 2
domains, timed from the first connection until every message is a file in a
Maildir new/. Prints messages/s, MB/s and the server's CPU seconds.

    .venv/bin/python bench/smtp_ingest.py                 # default matrix
    .venv/bin/python bench/smtp_ingest.py -n 5000 -c 20 -s 4096

The client is a small pipelining asyncio SMTP client so that the load
generator costs as little CPU as possible on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.server import ServerProcess, write_config

USERS_PER_DOMAIN = 100
DOMAINS = ("bench-one.test", "bench-two.test")


def provision_many(state: Path) -> list[str]:
    from mailyard.directory.admin import create_user
    from mailyard.directory.passwords import hash_password
    from mailyard.directory.store import Directory
    from mailyard.message.address import Address

    directory = Directory.open(str(state / "directory.sqlite"))
    hashed = hash_password("bench password")
    users = []
    for domain in DOMAINS:
        directory.add_domain(domain)
        for i in range(USERS_PER_DOMAIN):
            create_user(directory, str(state / "mail"), Address(f"user{i}", domain), hashed)
            users.append(f"user{i}@{domain}")
    directory.close()
    return users


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants (the server and its delivery worker)."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            pids.extend(process_tree(int(child)))
    return pids


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of the server's process tree, reaped children included."""
    ticks = os.sysconf("SC_CLK_TCK")
    user = system = 0.0
    for member in process_tree(pid):
        fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        user += (int(fields[11]) + int(fields[13])) / ticks
        system += (int(fields[12]) + int(fields[14])) / ticks
    return user, system


async def expect(reader: asyncio.StreamReader, code: bytes) -> None:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed")
        if line[3:4] != b"-":
            if not line.startswith(code):
                raise RuntimeError(f"unexpected reply {line!r}")
            return


async def session(host: str, port: int, jobs: list[tuple[str, bytes]]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    await expect(reader, b"220")
    writer.write(b"EHLO bench.example\r\n")
    await expect(reader, b"250")
    for rcpt, body in jobs:
        writer.write(b"MAIL FROM:<bench@example.org>\r\nRCPT TO:<%s>\r\nDATA\r\n" % rcpt.encode())
        await expect(reader, b"250")
        await expect(reader, b"250")
        await expect(reader, b"354")
        writer.write(body + b".\r\n")
        await expect(reader, b"250")
    writer.write(b"QUIT\r\n")
    await expect(reader, b"221")
    writer.close()


def make_body(size: int, n: int) -> bytes:
    head = b"From: bench@example.org\r\nSubject: bench %d\r\n\r\n" % n
    line = b"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789ab\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


def count_new(state: Path) -> int:
    total = 0
    for domain in DOMAINS:
        for entry in os.scandir(state / "mail" / domain):
            total += sum(1 for _ in os.scandir(os.path.join(entry.path, "new")))
    return total


def start_profiler(pid: int, output: str) -> subprocess.Popen[bytes]:
    """py-spy on the server for the whole run, collapsed stacks (`--format raw`)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
                             "--output", output, "--nonblocking", "--threads"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


_to_remove: list[Path] = []


def run_one(messages: int, concurrency: int, size: int, keep: bool,
            profile: str | None = None) -> dict[str, float]:
    # Start on a quiet disk: the previous run's writeback must not be billed
    # to this one. State folders are removed only after the last run: on ext4
    # without a journal, thousands of fresh deletions make every inode
    # allocation of the next minutes slower (see src/mailyard/queue/recycle.py).
    os.sync()
    base = Path(tempfile.mkdtemp(prefix="mailyard-bench-", dir=os.environ.get("BENCH_DIR")))
    state = base / "state"
    write_config(state, "")
    text = (state / "mailyard.toml").read_text().replace('level = "debug"', 'level = "warning"')
    (state / "mailyard.toml").write_text(text)
    users = provision_many(state)
    server = ServerProcess(state).start()
    try:
        host, port = server.address("smtp")
        assert server.proc is not None
        user_before, sys_before = cpu_times(server.proc.pid)
        spy = start_profiler(server.proc.pid, profile) if profile else None
        jobs = [(users[i % len(users)], make_body(size, i)) for i in range(messages)]
        per_session = [jobs[i::concurrency] for i in range(concurrency)]
        started = time.perf_counter()

        async def drive() -> None:
            await asyncio.gather(*(session(host, port, j) for j in per_session if j))

        asyncio.run(drive())
        acked = time.perf_counter()
        while count_new(state) < messages:
            time.sleep(0.01)
        finished = time.perf_counter()
        user_after, sys_after = cpu_times(server.proc.pid)
        user, system = user_after - user_before, sys_after - sys_before
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
    finally:
        server.stop()
        if not keep:
            _to_remove.append(base)
    elapsed = finished - started
    total_bytes = sum(len(b) for _, b in jobs)
    return {
        "messages": messages,
        "sessions": concurrency,
        "size": size,
        "acked_s": acked - started,
        "elapsed_s": elapsed,
        "msg_per_s": messages / elapsed,
        "mb_per_s": total_bytes / elapsed / 1e6,
        "server_cpu_s": user + system,
        "server_user_s": user,
        "server_sys_s": system,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--messages", type=int)
    parser.add_argument("-c", "--concurrency", type=int)
    parser.add_argument("-s", "--size", type=int)
    parser.add_argument("--keep", action="store_true", help="keep the state folder")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure; prints the median")
    parser.add_argument("--profile", metavar="FILE",
                        help="record the server with py-spy (collapsed stacks) into FILE")
    args = parser.parse_args()
    if args.messages or args.concurrency or args.size:
        matrix = [(args.messages or 2000, args.concurrency or 20, args.size or 4096)]
    else:
        matrix = [(2000, 1, 4096), (5000, 20, 4096), (1000, 20, 100 * 1024)]
    print(f"{'messages':>8} {'sessions':>8} {'size':>7} {'elapsed s':>9} {'msg/s':>8} "
          f"{'MB/s':>7} {'server CPU s':>12} {'user':>6} {'sys':>6} {'CPU ms/msg':>10}")
    try:
        for messages, concurrency, size in matrix:
            runs = [run_one(messages, concurrency, size, args.keep, args.profile)
                    for _ in range(args.repeat)]
            for r in runs:
                print_row(r)
            if len(runs) > 1:
                rates = sorted(r["msg_per_s"] for r in runs)
                print(f"{'':>8} {'':>8} {'':>7} median {statistics.median(rates):.0f} msg/s "
                      f"(min {rates[0]:.0f}, max {rates[-1]:.0f}, {len(runs)} runs)", flush=True)
    finally:
        for base in _to_remove:
            shutil.rmtree(base, ignore_errors=True)


def print_row(r: dict[str, float]) -> None:
    print(f"{r['messages']:>8.0f} {r['sessions']:>8.0f} {r['size']:>7.0f} {r['elapsed_s']:>9.2f} "
          f"{r['msg_per_s']:>8.0f} {r['mb_per_s']:>7.1f} {r['server_cpu_s']:>12.2f} "
          f"{r['server_user_s']:>6.2f} {r['server_sys_s']:>6.2f} "
          f"{1000 * r['server_cpu_s'] / r['messages']:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
