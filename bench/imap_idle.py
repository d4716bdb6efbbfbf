"""Memory of idle IMAP connections: 2,000 authenticated sessions in IDLE.

Starts a real server (connection limits raised for the run), opens the
connections from one asyncio client, each LOGIN, SELECT INBOX, IDLE, and
prints the server's memory per connection: RSS and PSS of the server
process (and of its whole process tree) from /proc/<pid>/smaps_rollup,
before and after. Then one SMTP delivery checks that idling sessions still
hear their mailbox (the time until the IDLE client sees EXISTS).

Aim (issue 3): under 50 KB per idle connection. Figures are printed, never
asserted.

    .venv/bin/python bench/imap_idle.py [--connections 2000] [--users 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.e2e.server import (  # noqa: E402
    PASSWORD,
    ServerProcess,
    maildir,
    provision,
    send_mail,
    wait_for_files,
    write_config,
)


def rollup(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB of one process."""
    rss = pss = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1])
        elif line.startswith("Pss:"):
            pss = int(line.split()[1])
    return rss, pss


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    found = [pid]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found += tree(int(entry.name))
    return found


def memory(pid: int) -> tuple[int, int, int, int]:
    """(server RSS, server PSS, tree RSS, tree PSS) in KiB."""
    server = rollup(pid)
    total = [rollup(p) for p in tree(pid)]
    return server[0], server[1], sum(r for r, _ in total), sum(p for _, p in total)


async def open_idle(address: tuple[str, int], user: str) -> tuple[asyncio.StreamReader,
                                                                    asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(*address)
    await reader.readline()
    writer.write(f'a LOGIN {user} "{PASSWORD}"\r\nb SELECT INBOX\r\nc IDLE\r\n'.encode())
    await writer.drain()
    while not (await reader.readline()).startswith(b"+ "):
        pass
    return reader, writer


async def run_clients(server: ServerProcess, users: list[str], count: int) -> None:
    assert server.proc is not None
    pid = server.proc.pid
    address = server.address("imap")
    # One delivery first: the delivery worker and its lspawn children are
    # then all started, so "before" is the whole tree as it stays.
    await asyncio.to_thread(send_mail, server, users[-1], b"Subject: warm-up\r\n\r\nx\r\n")
    await asyncio.to_thread(wait_for_files, maildir(server.state, users[-1]) / "new", 1)
    await asyncio.sleep(2)
    before = memory(pid)
    print(f"server before: RSS {before[0]} KiB, PSS {before[1]} KiB; "
          f"process tree RSS {before[2]} KiB, PSS {before[3]} KiB", flush=True)
    started = time.perf_counter()
    connections = []
    batch = 50
    for start in range(0, count, batch):
        connections += await asyncio.gather(*(
            open_idle(address, users[n % len(users)]) for n in range(start, min(start + batch, count))))
    print(f"{count} connections logged in, selected, idling in {time.perf_counter() - started:.1f} s",
          flush=True)
    await asyncio.sleep(2)  # let the server settle (allocator, watcher rounds)
    after = memory(pid)
    print(f"server after:  RSS {after[0]} KiB, PSS {after[1]} KiB; "
          f"process tree RSS {after[2]} KiB, PSS {after[3]} KiB")
    for label, index in (("server RSS", 0), ("server PSS", 1), ("tree RSS", 2), ("tree PSS", 3)):
        print(f"  per idle connection, {label:<10} {1024 * (after[index] - before[index]) / count:9.0f} B")
    reader, _ = connections[0]
    sent = time.perf_counter()
    await asyncio.to_thread(send_mail, server, users[0], b"Subject: wake up\r\n\r\nhi\r\n")
    line = await asyncio.wait_for(reader.readline(), 30)
    print(f"  an idling session heard the SMTP delivery {time.perf_counter() - sent:.3f} s after"
          f" the SMTP 250 (delivery included): {line.strip().decode()}")
    for _, writer in connections:
        writer.write(b"DONE\r\nd LOGOUT\r\n")
    await asyncio.gather(*(w.drain() for _, w in connections))
    for _, writer in connections:
        writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--users", type=int, default=200)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="imap-idle-"))
    try:
        state = base / "state"
        limits = f"max_connections = {args.connections + 100}\n" \
                 f"max_connections_per_ip = {args.connections + 100}"
        write_config(state, sections={"tls": "loopback_plaintext_auth = true", "imap": limits,
                                      "login": "max_failures = 100000"})
        users = [f"u{n}@example.test" for n in range(args.users)]
        started = time.perf_counter()
        provision(state, users=tuple(users))
        print(f"{args.users} mailboxes in {time.perf_counter() - started:.1f} s", flush=True)
        server = ServerProcess(state).start()
        try:
            asyncio.run(run_clients(server, users, args.connections))
        finally:
            server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
        os.sync()


if __name__ == "__main__":
    main()
