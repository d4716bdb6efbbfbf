"""mailyard side by side with Postfix + Dovecot: the same workload against
both servers in one run, one table (issue 7).

    .venv/bin/python bench/compare.py [--only ingest,pop3,imap,idle,mixed,disk]
                                      [--runs 3] [--quick] [--write-results]

The reference is installed by bench/reference/install.sh and started here
(bench/reference/start.sh) unless it already runs; it is stopped at the end
only if it was started here. mailyard runs from temporary state folders on
kernel-chosen loopback ports. Every connection goes to 127.0.0.1.

Ratio: how many times better mailyard is; above 1.0 mailyard wins. For a
rate it is mailyard / reference, for a time, CPU or memory figure it is
reference / mailyard. Each cell: the median of the runs (min–max).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BENCH,
    PASSWORD,
    REF_DIR,
    Imap,
    Mailyard,
    Pop3,
    Reference,
    Stat,
    Target,
    all_users,
    build_template,
    imap_open,
    count_new,
    link_into,
    machine_summary,
    message,
    temp_base,
    wait_until,
)

FIGURES = ("ingest", "pop3", "imap", "idle", "mixed", "disk")


@dataclass(frozen=True)
class Sizes:
    ingest: tuple[tuple[int, int, int], ...]  # (messages, sessions, size)
    pop3: int
    imap: tuple[int, ...]
    idle: int
    mixed: tuple[int, ...]
    mixed_seconds: float
    disk_seconds: float


FULL = Sizes(ingest=((5000, 1, 4096), (5000, 20, 4096), (1000, 20, 100 * 1024)), pop3=2000,
             imap=(10_000, 100_000), idle=2000, mixed=(10, 50), mixed_seconds=30.0,
             disk_seconds=3.0)
QUICK = Sizes(ingest=((500, 1, 4096), (1000, 20, 4096), (200, 20, 100 * 1024)), pop3=500,
              imap=(2_000, 10_000), idle=200, mixed=(10, 50), mixed_seconds=5.0,
              disk_seconds=1.0)


@dataclass
class Row:
    """One line of the table; ``higher``: a bigger value is better."""

    label: str
    higher: bool
    digits: int = 0
    stats: dict[str, Stat] = field(default_factory=lambda: {"mailyard": Stat(),
                                                            "reference": Stat()})

    def ratio(self) -> str:
        mine, ref = self.stats["mailyard"].median, self.stats["reference"].median
        if not (mine == mine and ref == ref) or min(mine, ref) <= 0:  # NaN or zero
            return "—"
        return f"{(mine / ref) if self.higher else (ref / mine):.2f}"


class Table:
    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    def add(self, label: str, target: str, value: float, *, higher: bool, digits: int = 0) -> None:
        row = self.rows.setdefault(label, Row(label, higher, digits))
        row.stats[target].add(value)
        print(f"  {target:<9} {label:<62} {value:12,.{digits}f}", flush=True)

    def markdown(self) -> str:
        lines = ["| figure | mailyard | reference | ratio |", "|---|---:|---:|---:|"]
        for row in self.rows.values():
            lines.append(f"| {row.label} | {row.stats['mailyard'].text(row.digits)} | "
                         f"{row.stats['reference'].text(row.digits)} | {row.ratio()} |")
        return "\n".join(lines)


# -- 1. SMTP ingest ------------------------------------------------------------------


def ingest_once(target: Target, messages: int, sessions: int, size: int) -> dict[str, float]:
    from smtp_ingest import session

    users = all_users()
    jobs = [(users[i % len(users)], message(i, size, users[i % len(users)]))
            for i in range(messages)]
    per_session = [jobs[i::sessions] for i in range(sessions)]
    host, port = target.address("smtp")
    root = target.mail_root()
    # One message first, delivered before the clock starts: the processes a
    # long-running server has (mailyard's lspawn children, Postfix's smtpd,
    # cleanup and virtual) exist, their start-up is not billed to the figure.
    asyncio.run(session(host, port, [(users[-1], message(0, 1024, users[-1]))]))
    wait_until(lambda: count_new(root) >= 1, timeout=60)
    os.sync()  # the previous run's writeback is not billed to this one
    cpu_before = target.cpu("smtp")
    started = time.perf_counter()

    async def drive() -> None:
        await asyncio.gather(*(session(host, port, j) for j in per_session if j))

    asyncio.run(drive())
    finished = wait_until(lambda: count_new(root) >= messages + 1, timeout=600)
    cpu = target.cpu("smtp") - cpu_before
    elapsed = finished - started
    return {"msg/s": messages / elapsed, "MB/s": sum(len(b) for _, b in jobs) / elapsed / 1e6,
            "cpu": 1000 * cpu / messages}


def figure_ingest(table: Table, ref: Reference, sizes: Sizes, runs: int) -> None:
    for messages, sessions, size in sizes.ingest:
        label = f"ingest {size // 1024} KB × {messages:,}, {sessions} session{'s' * (sessions > 1)}"
        print(label, flush=True)
        for _ in range(runs):
            base = temp_base("compare-ingest-")
            server = Mailyard(base).start()
            try:
                mine = ingest_once(server, messages, sessions, size)
            finally:
                server.stop()
                _later.append(base)
            ref.fresh_mail()
            theirs = ingest_once(ref, messages, sessions, size)
            for name, result in (("mailyard", mine), ("reference", theirs)):
                table.add(f"{label}: messages/s", name, result["msg/s"], higher=True)
                table.add(f"{label}: MB/s", name, result["MB/s"], higher=True, digits=1)
                table.add(f"{label}: server CPU s / 1,000 msgs", name, result["cpu"],
                          higher=False, digits=2)


# -- 2. POP3 -------------------------------------------------------------------------

POP3_USER = "user2@bench-one.test"


def pop3_once(target: Target, files: list[Path]) -> tuple[float, float]:
    """(LOGIN seconds, LIST + RETR all + DELE all + QUIT seconds)."""
    link_into(files, target.maildir(POP3_USER), "new", target.mail_owner)
    os.sync()
    started = time.perf_counter()
    client = Pop3(target.address("pop3"))
    client.command(f"USER {POP3_USER}")
    client.command(f"PASS {PASSWORD}")
    logged_in = time.perf_counter()
    client.command("LIST", multiline=True)
    for n in range(1, len(files) + 1):
        client.command(f"RETR {n}", multiline=True)
    for n in range(1, len(files) + 1):
        client.command(f"DELE {n}")
    client.command("QUIT")
    done = time.perf_counter()
    client.sock.close()
    return logged_in - started, done - logged_in



def figure_pop3(table: Table, mine: Mailyard, ref: Reference, sizes: Sizes, runs: int,
                base: Path) -> None:
    count = sizes.pop3
    files = build_template(base / "pop3-template", count, 4096)
    label = f"POP3 {count:,} × 4 KB: LIST, RETR all, DELE all, QUIT"
    print(label, flush=True)
    for _ in range(runs):
        for target in (mine, ref):
            login, work = pop3_once(target, files)
            table.add(f"{label}, s", target.name, work, higher=False, digits=2)
            table.add("POP3 USER + PASS, ms", target.name, 1000 * login, higher=False, digits=1)


# -- 3. IMAP on a large folder -------------------------------------------------------

IMAP_USERS = {0: "user0@bench-one.test", 1: "user1@bench-one.test"}
IMAP_STEPS = (
    ("FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE ENVELOPE)",
     "FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE ENVELOPE)"),
    ("FETCH 500 full bodies", "FETCH 1:500 BODY.PEEK[]"),
    ("UID SEARCH SUBJECT", "UID SEARCH SUBJECT needle"),
    ("STORE +FLAGS (\\Seen) 1:*", "STORE 1:* +FLAGS (\\Seen)"),
)


def imap_session(target: Target, user: str) -> dict[str, float]:
    """One timed pass over the folder; leaves it as it found it but for 1,000 messages."""
    times: dict[str, float] = {}
    started = time.perf_counter()
    client = Imap(target.address("imap"))
    client.login(user)
    client.command("SELECT INBOX")
    times["LOGIN + SELECT"] = time.perf_counter() - started
    for label, command in IMAP_STEPS:
        started = time.perf_counter()
        client.command(command)
        times[label] = time.perf_counter() - started
    client.command("STORE 1:* -FLAGS.SILENT (\\Seen)")
    client.command("STORE 1:1000 +FLAGS.SILENT (\\Deleted)")
    started = time.perf_counter()
    client.command("EXPUNGE")
    times["EXPUNGE 1,000"] = time.perf_counter() - started
    client.close()
    return times


def refill(targets: tuple[Target, ...], user: str, base: Path, first: int) -> None:
    """1,000 new messages in new/ (for the 1,000 expunged), taken in by one SELECT."""
    files = build_template(base / f"refill-{first}", 1000, 4096, first=first)
    for target in targets:
        link_into(files, target.maildir(user), "new", target.mail_owner)
        client = Imap(target.address("imap"))
        client.login(user)
        client.command("SELECT INBOX")
        client.close()
    time.sleep(1.1)  # Maildir directory stamps settle after a second (maildir/scan.py)


def figure_imap(table: Table, mine: Mailyard, ref: Reference, sizes: Sizes, runs: int,
                base: Path) -> None:
    for slot, count in enumerate(sizes.imap):
        user = IMAP_USERS[slot]
        print(f"building a {count:,}-message folder for {user}", flush=True)
        files = build_template(base / f"imap-template-{count}", count, 4096)
        for target in (mine, ref):
            link_into(files, target.maildir(user), "cur", target.mail_owner)
        os.sync()
        time.sleep(1.1)
        label = f"IMAP {count // 1000}k"
        for run in range(runs + 1):
            kind = "cold" if run == 0 else "warm"
            for target in (mine, ref):
                if isinstance(target, Mailyard) and run > 0:
                    target.restart()  # warm: a new process reads the index from disk
                times = imap_session(target, user)
                for step, seconds in times.items():
                    if kind == "cold" and step not in ("LOGIN + SELECT", IMAP_STEPS[0][0]):
                        continue
                    table.add(f"{label} {kind}: {step}, ms", target.name, 1000 * seconds,
                              higher=False, digits=1)
            refill((mine, ref), user, base, first=10_000_000 + slot * 1_000_000 + run * 1000)


# -- 4. idle connections -----------------------------------------------------------


async def _idle_one(address: tuple[str, int], user: str) -> asyncio.StreamWriter:
    reader, writer = await imap_open(address, user)
    writer.write(b"b SELECT INBOX\r\nc IDLE\r\n")
    while not (line := await reader.readline()).startswith(b"+"):
        if not line:
            raise ConnectionError("closed before IDLE")
    return writer


async def _idle_all(target: Target, count: int) -> tuple[int, int, float]:
    """(PSS KiB before, PSS KiB with ``count`` sessions in IDLE, seconds to open them)."""
    users = all_users()
    address = target.address("imap")
    warm = Imap(address)  # every long-lived server process started: "before" is the base
    warm.login(users[0])
    warm.command("SELECT INBOX")
    warm.close()
    await asyncio.sleep(2)
    before = target.pss("imap")
    started = time.perf_counter()
    writers: list[asyncio.StreamWriter] = []
    for first in range(0, count, 50):
        writers += await asyncio.gather(*(_idle_one(address, users[n % len(users)])
                                          for n in range(first, min(first + 50, count))))
    opened = time.perf_counter() - started
    await asyncio.sleep(2)  # allocators and watchers settle
    after = target.pss("imap")
    for writer in writers:
        writer.write(b"DONE\r\nd LOGOUT\r\n")
    await asyncio.gather(*(w.drain() for w in writers), return_exceptions=True)
    for writer in writers:
        writer.close()
    await asyncio.sleep(1)
    return before, after, opened


def idle_memory(table: Table, mine: Mailyard, ref: Reference, count: int, runs: int) -> None:
    print(f"{count:,} idle IMAP connections", flush=True)
    mine.restart()  # the total is then not that of the folders earlier figures opened
    for _ in range(runs):
        for target in (mine, ref):
            before, after, opened = asyncio.run(_idle_all(target, count))
            table.add(f"idle: {count:,} IMAP sessions in IDLE, PSS KiB per connection",
                      target.name, (after - before) / count, higher=False, digits=1)
            table.add(f"idle: {count:,} sessions, total PSS of the server, MiB", target.name,
                      after / 1024, higher=False, digits=1)
            table.add(f"idle: time to log {count:,} sessions in, s", target.name, opened,
                      higher=False, digits=1)
            time.sleep(2)  # sessions ended, processes gone


# -- 5. mixed IMAP load --------------------------------------------------------------

MIXED_FIRST_USER = 10
MIXED_MESSAGES = 300
MIXED_OPS = (("FETCH", 30), ("STORE", 20), ("SEARCH", 15), ("SELECT", 10), ("APPEND", 15),
             ("EXPUNGE", 10))


class _Client:
    """One mixed-load client: its connection, what it knows of its mailbox."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.tag = 0
        self.exists = 0

    async def run(self, text: bytes, literal: bytes | None = None) -> None:
        self.tag += 1
        tag = b"m%d " % self.tag
        if literal is None:
            self.writer.write(tag + text + b"\r\n")
        else:
            self.writer.write(tag + text + b" {%d}\r\n" % len(literal))
            if not (await self.reader.readline()).startswith(b"+"):
                raise RuntimeError("APPEND refused")
            self.writer.write(literal + b"\r\n")
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("server closed")
            while line.endswith(b"}\r\n") and b"{" in line:
                await self.reader.readexactly(int(line[line.rindex(b"{") + 1:-3].rstrip(b"+")))
                line = await self.reader.readline()
            if line.startswith(tag):
                if not line[len(tag):].startswith(b"OK"):
                    raise RuntimeError(f"{text[:40]!r}: {line!r}")
                return
            if line.startswith(b"* ") and line.endswith(b" EXISTS\r\n"):
                self.exists = int(line.split()[1])
            elif line.startswith(b"* ") and line.endswith(b" EXPUNGE\r\n"):
                self.exists -= 1


async def _mixed_client(address: tuple[str, int], user: str, seconds: float, seed: int,
                        latencies: list[float]) -> None:
    rng = random.Random(seed)
    client = _Client(*await imap_open(address, user))
    await client.run(b"SELECT INBOX")
    names = [name for name, _ in MIXED_OPS]
    weights = [weight for _, weight in MIXED_OPS]
    body = message(seed, 4096, user)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        op = rng.choices(names, weights)[0]
        n = max(client.exists, 1)
        first = rng.randint(1, n)
        if op == "EXPUNGE":
            await client.run(b"STORE %d +FLAGS.SILENT (\\Deleted)" % first)
        started = time.perf_counter()
        if op == "FETCH":
            await client.run(b"FETCH %d:%d (FLAGS UID RFC822.SIZE ENVELOPE)"
                             % (first, min(n, first + 19)))
        elif op == "STORE":
            await client.run(b"STORE %d %sFLAGS (\\Flagged)" % (first, rng.choice((b"+", b"-"))))
        elif op == "SEARCH":
            await client.run(b"UID SEARCH SUBJECT %s" % rng.choice(WORDS_B))
        elif op == "SELECT":
            await client.run(b"SELECT INBOX")
        elif op == "APPEND":
            await client.run(b"APPEND INBOX (\\Seen)", body)
        else:
            await client.run(b"EXPUNGE")
        latencies.append(time.perf_counter() - started)
    await client.run(b"LOGOUT")
    client.writer.close()


WORDS_B = (b"alpha", b"bravo", b"needle", b"hotel")


def mixed_load(table: Table, mine: Mailyard, ref: Reference, clients: tuple[int, ...],
               seconds: float, runs: int, base: Path) -> None:
    users = [f"user{i}@bench-one.test" for i in range(MIXED_FIRST_USER,
                                                      MIXED_FIRST_USER + max(clients))]
    files = build_template(base / "mixed-template", MIXED_MESSAGES, 4096)
    for target in (mine, ref):
        for user in users:
            link_into(files, target.maildir(user), "cur", target.mail_owner)
    os.sync()
    time.sleep(1.1)
    for count in clients:
        print(f"mixed IMAP load, {count} clients, {seconds:.0f} s", flush=True)
        for run in range(runs):
            for target in (mine, ref):
                latencies: list[float] = []

                async def drive(target: Target = target, latencies: list[float] = latencies,
                                count: int = count, run: int = run) -> None:
                    await asyncio.gather(*(
                        _mixed_client(target.address("imap"), users[i], seconds,
                                      run * 1000 + i, latencies) for i in range(count)))

                cpu = target.cpu("imap")
                asyncio.run(drive())
                cpu = target.cpu("imap") - cpu
                latencies.sort()
                label = f"mixed IMAP, {count} clients"
                table.add(f"{label}: commands/s", target.name, len(latencies) / seconds,
                          higher=True)
                table.add(f"{label}: p50 latency, ms", target.name,
                          1000 * latencies[len(latencies) // 2], higher=False, digits=1)
                table.add(f"{label}: p99 latency, ms", target.name,
                          1000 * latencies[int(len(latencies) * 0.99)], higher=False, digits=1)
                table.add(f"{label}: server CPU ms / command", target.name,
                          1000 * cpu / len(latencies), higher=False, digits=2)


# -- 6. the disk ---------------------------------------------------------------------


def figure_disk(table: Table, sizes: Sizes, runs: int, where: Path) -> None:
    from disk_ceiling import run

    print("disk ceiling", flush=True)
    for threads in (1, 4):
        for _ in range(runs):
            rate = run(threads, False, sizes.disk_seconds, str(where))
            row = f"disk: fsync'd 4 KB file creations/s, {threads} thread{'s' * (threads > 1)}"
            table.add(row, "mailyard", rate, higher=True)
            table.add(row, "reference", rate, higher=True)


# -- the run -------------------------------------------------------------------------

_later: list[Path] = []


def reference_notes() -> list[str]:
    conf = str(REF_DIR / "dovecot" / "dovecot.conf")

    def dove(name: str) -> str:
        out = subprocess.run(["doveconf", "-c", conf, "-h", name], capture_output=True, text=True)
        return out.stdout.strip() or "?"

    version = subprocess.run(["postconf", "-c", str(REF_DIR / "postfix"), "-h", "mail_version"],
                             capture_output=True, text=True).stdout.strip()
    dversion = subprocess.run(["dovecot", "--version"], capture_output=True,
                              text=True).stdout.strip()
    return [
        f"reference: Postfix {version}, Dovecot {dversion} (Debian packages), "
        f"config in {REF_DIR} (bench/reference/)",
        "fsync: mailyard fsyncs every local delivery (file, then its directory); Postfix "
        "fsyncs its queue file and virtual(8) fsyncs each Maildir file before the rename "
        "(no directory fsync); Dovecot "
        f"mail_fsync = {dove('mail_fsync')} (its default)",
        f"Dovecot login processes: imap-login service_count = "
        f"{dove('service/imap-login/service_count')} (the default high-security mode: one "
        f"login process per connection), imap client_limit = {dove('service/imap/client_limit')}"
        " (one imap process per session)",
        "passwords: argon2id on both sides (mailyard: argon2-cffi defaults m=64 MiB t=3 p=4; "
        "Dovecot: ARGON2ID, libsodium, m=64 MiB t=3 p=1); no auth cache on either",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(FIGURES),
                        help=f"comma-separated figures among {','.join(FIGURES)}")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median, spread)")
    parser.add_argument("--idle-runs", type=int, help="runs of the idle figure (default --runs)")
    parser.add_argument("--imap-sizes", help="override the IMAP folder sizes, e.g. 10000")
    parser.add_argument("--mailyard-toml", default="",
                        help="TOML appended to mailyard's config, e.g. an opt-in speed-up "
                             "such as '[server]\\nevent_loop = \"uvloop\"' once it exists")
    parser.add_argument("--quick", action="store_true", help="smaller counts, shorter runs")
    parser.add_argument("--write-results", action="store_true",
                        help="write the table to bench/results/ as Markdown")
    args = parser.parse_args()
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(only) - set(FIGURES)
    if unknown:
        parser.error(f"unknown figures {sorted(unknown)}")
    sizes = QUICK if args.quick else FULL
    if args.imap_sizes:
        sizes = Sizes(**{**sizes.__dict__,
                         "imap": tuple(int(x) for x in args.imap_sizes.split(","))})
    Mailyard.extra_toml = args.mailyard_toml.replace("\\n", "\n")
    # A run stopped with kill (or a closed terminal) still stops both
    # servers and removes its folders: the finally below runs on SystemExit.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda number, _frame: sys.exit(128 + number))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    command = "python bench/compare.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    base = temp_base("compare-")
    header = [f"command: `{command}`", f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
              *machine_summary(base)]
    if Mailyard.extra_toml:
        header.append(f"mailyard config addition: {Mailyard.extra_toml!r}")
    for line in header:
        print(line, flush=True)
    table = Table()
    ref = Reference().start()
    for line in reference_notes():
        header.append(line)
        print(line, flush=True)
    try:
        run_figures(only, table, ref, sizes, args, base)
    except BaseException as exc:
        header.append(f"INCOMPLETE: the run stopped on {exc!r}")
        raise
    finally:
        ref.stop()
        ref.clean_trash()
        for path in [*_later, base]:
            shutil.rmtree(path, ignore_errors=True)
        report(header, table, args.write_results, args.quick)


def run_figures(only: list[str], table: Table, ref: Reference, sizes: Sizes,
                args: argparse.Namespace, base: Path) -> None:
    """Each figure in order; POP3, IMAP, idle and mixed share one mailyard server."""
    if "disk" in only:
        figure_disk(table, sizes, args.runs, base)
    if "ingest" in only:
        figure_ingest(table, ref, sizes, args.runs)
    shared = [f for f in ("pop3", "imap", "idle", "mixed") if f in only]
    if not shared:
        return
    ref.fresh_mail()
    mine = Mailyard(base / "mailyard").start()
    try:
        steps: dict[str, Callable[[], None]] = {
            "pop3": lambda: figure_pop3(table, mine, ref, sizes, args.runs, base),
            "imap": lambda: figure_imap(table, mine, ref, sizes, args.runs, base),
            "idle": lambda: idle_memory(table, mine, ref, sizes.idle,
                                        args.idle_runs or args.runs),
            "mixed": lambda: mixed_load(table, mine, ref, sizes.mixed, sizes.mixed_seconds,
                                        args.runs, base),
        }
        for name in shared:
            steps[name]()
    finally:
        mine.stop()


def report(header: list[str], table: Table, write: bool, quick: bool) -> None:
    text = "\n".join(f"- {line}" for line in header) + "\n\n" + table.markdown() + "\n"
    print("\n" + text)
    if write:
        out = BENCH / "results"
        out.mkdir(exist_ok=True)
        name = time.strftime("%Y-%m-%d-%H%M") + ("-quick" if quick else "") + ".md"
        intro = ("# mailyard vs Postfix + Dovecot\n\nRatio above 1.0: mailyard better "
                 "(rates: mailyard / reference; times, CPU, memory: reference / mailyard). "
                 "Cells: median of the runs (min–max).\n\n")
        (out / name).write_text(intro + text)
        print(f"written to {out / name}")


if __name__ == "__main__":
    main()
