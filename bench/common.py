"""Shared pieces of the benchmarks: the machine, process trees, the two
servers under test (mailyard and the Postfix + Dovecot reference), Maildir
builders and small loopback clients for SMTP, POP3 and IMAP.

Everything here talks to 127.0.0.1 only. bench/compare.py is the driver;
the older single-server scripts (smtp_ingest.py, imap_idle.py, ...) keep
working on their own and lend their SMTP client and provisioning.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# MAILYARD_TREE: measure the mailyard of another checkout (e.g. a `git archive`
# of a commit) while the benchmarks themselves come from this one.
ROOT = Path(os.environ.get("MAILYARD_TREE") or BENCH.parent).resolve()
for entry in (str(BENCH), str(ROOT), str(ROOT / "src")):
    if entry in sys.path:
        sys.path.remove(entry)
    sys.path.insert(0, entry)
if os.environ.get("MAILYARD_TREE"):
    os.environ["PYTHONPATH"] = os.pathsep.join(
        x for x in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if x)
import mailyard.fsio  # noqa: E402, F401  (the first import wins: the tree chosen above)

__all__ = [
    "DOMAINS", "PASSWORD", "Mailyard", "Reference", "Stat", "Target", "all_users",
    "build_template", "link_into", "machine_summary", "message", "tree_cpu", "tree_pss",
]

PASSWORD = "bench password"  # smtp_ingest.provision_many's password
DOMAINS = ("bench-one.test", "bench-two.test")
USERS_PER_DOMAIN = 100
MAIL_UID = 8  # Debian's "mail" user owns the reference Maildirs
REF_DIR = Path(os.environ.get("REF_DIR", "/var/tmp/mailyard-ref"))
REF_PORTS = {"smtp": int(os.environ.get("REF_SMTP_PORT", "2625")),
             "imap": int(os.environ.get("REF_IMAP_PORT", "1143")),
             "pop3": int(os.environ.get("REF_POP3_PORT", "1110"))}


def all_users() -> list[str]:
    """The 200 users of both servers, in smtp_ingest.py's order."""
    return [f"user{i}@{d}" for d in DOMAINS for i in range(USERS_PER_DOMAIN)]


# -- the machine ---------------------------------------------------------------------


def filesystem_of(path: Path) -> str:
    """"ext4 on /dev/vda (mounted at /)": the mount that holds ``path``."""
    best = ("?", "?", "/")
    real = str(path.resolve())
    for line in Path("/proc/mounts").read_text().splitlines():
        dev, mount, fstype, opts = line.split()[:4]
        if (real == mount or real.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best[2]):
            best = (fstype, f"{dev} ({opts})", mount)
    return f"{best[0]} on {best[1]} mounted at {best[2]}"


def machine_summary(where: Path) -> list[str]:
    """Lines describing the machine: cores, CPU model, memory, filesystem, versions."""
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return [f"cores: {os.cpu_count()}, CPU: {model}, memory: {int(mem) // 1024} MiB",
            f"filesystem: {filesystem_of(where)}",
            f"kernel: {platform.release()}, Python {platform.python_version()}"]


# -- processes -----------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    return children


def tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    children = _children_map()
    found, todo = [], [pid]
    while todo:
        member = todo.pop()
        found.append(member)
        todo.extend(children.get(member, ()))
    return found


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid``'s tree, reaped children included."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for member in tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])
    return total / ticks


def tree_pss(pid: int) -> int:
    """Sum of the PSS (KiB) of every process in ``pid``'s tree (smaps_rollup)."""
    total = 0
    for member in tree(pid):
        try:
            text = Path(f"/proc/{member}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
                break
    return total


# -- statistics ----------------------------------------------------------------------


@dataclass
class Stat:
    """Several runs of one figure: median and spread."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def text(self, digits: int) -> str:
        if not self.values:
            return "n/a"
        med = f"{self.median:,.{digits}f}"
        if len(self.values) < 2:
            return med
        return f"{med} ({min(self.values):,.{digits}f}–{max(self.values):,.{digits}f})"


# -- messages and Maildirs -----------------------------------------------------------

WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")


def message(i: int, size: int, to: str = "user@bench-one.test") -> bytes:
    """Message ``i`` of about ``size`` octets; every 1,000th has "needle" in its Subject."""
    word = "needle" if i % 1000 == 500 else WORDS[i % len(WORDS)]
    head = (f"From: Sender {i} <s{i}@example.org>\r\nTo: {to}\r\n"
            f"Subject: message {i} about {word}\r\nMessage-ID: <{i}@bench.example>\r\n"
            f"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\n").encode()
    line = b"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789ab\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


def build_template(where: Path, count: int, size: int, first: int = 0) -> list[Path]:
    """``count`` message files with Maildir delivery names in ``where``."""
    where.mkdir(parents=True, exist_ok=True)
    paths = []
    stamp = 1_700_000_000
    for i in range(first, first + count):
        body = message(i, size)
        path = where / f"{stamp + i}.M{i % 1_000_000}P4242Q{i}.bench.example,S={len(body)}"
        path.write_bytes(body)
        paths.append(path)
    return paths


def ensure_maildir(box: Path, owner: int | None) -> None:
    """``box`` with cur/, new/, tmp/; with ``owner``, the domain folder too is its."""
    if owner is not None:
        box.parent.mkdir(parents=True, exist_ok=True)
        os.chown(box.parent, owner, owner)
    for sub in ("", "cur", "new", "tmp"):
        (box / sub).mkdir(parents=True, exist_ok=True)
        if owner is not None:
            os.chown(box / sub, owner, owner)


def link_into(files: list[Path], box: Path, sub: str, owner: int | None) -> None:
    """Hard links of ``files`` into ``box``/``sub`` (``cur`` gets ":2," names).

    Maildir files are never rewritten, only renamed or unlinked, so both
    servers can share the inodes: this writes each test folder once."""
    ensure_maildir(box, owner)
    suffix = ":2," if sub == "cur" else ""
    for path in files:
        target = box / sub / (path.name + suffix)
        try:
            os.link(path, target)
        except OSError:  # another filesystem: copy instead
            shutil.copyfile(path, target)


def count_new(mail_root: Path) -> int:
    """Files in every new/ under mail_root/<domain>/<user>/."""
    total = 0
    for domain in DOMAINS:
        try:
            boxes = list(os.scandir(mail_root / domain))
        except FileNotFoundError:
            continue
        for box in boxes:
            try:
                total += sum(1 for _ in os.scandir(os.path.join(box.path, "new")))
            except FileNotFoundError:
                continue
    return total


# -- the servers ---------------------------------------------------------------------


class Target:
    """One server under test: its addresses, its Maildirs, its processes."""

    name = "?"
    mail_owner: int | None = None

    def address(self, service: str) -> tuple[str, int]:
        raise LookupError(service)

    def mail_root(self) -> Path:
        raise LookupError("mail root")

    def maildir(self, user: str) -> Path:
        local, domain = user.split("@")
        return self.mail_root() / domain / local

    def roots(self, service: str) -> list[int]:
        """The pids whose trees are the server for ``service``."""
        raise LookupError(service)

    def cpu(self, service: str) -> float:
        return sum(tree_cpu(p) for p in self.roots(service))

    def pss(self, service: str) -> int:
        return sum(tree_pss(p) for p in self.roots(service))


class Mailyard(Target):
    """A ``mailyard serve`` from a fresh state folder on kernel-chosen loopback ports."""

    name = "mailyard"

    extra_toml = ""  # appended to every mailyard.toml (compare.py --mailyard-toml)

    def __init__(self, base: Path, connections: int = 2500) -> None:
        from smtp_ingest import provision_many

        from tests.e2e.server import ServerProcess, write_config

        self.state = base / "state"
        limits = f"max_connections = {connections}\nmax_connections_per_ip = {connections}"
        write_config(self.state, self.extra_toml, sections={
            "tls": "loopback_plaintext_auth = true", "imap": limits, "pop3": limits,
            "smtp": limits + "\nmax_commands = 10000000", "login": "max_failures = 1000000\nmax_account_failures = 1000000"})
        path = self.state / "mailyard.toml"
        path.write_text(path.read_text().replace('level = "debug"', 'level = "warning"'))
        provision_many(self.state)
        self.server = ServerProcess(self.state)

    def start(self) -> Mailyard:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def address(self, service: str) -> tuple[str, int]:
        return self.server.address(service)

    def mail_root(self) -> Path:
        return self.state / "mail"

    def roots(self, service: str) -> list[int]:
        assert self.server.proc is not None
        return [self.server.proc.pid]


class Reference(Target):
    """Postfix + Dovecot as bench/reference/start.sh configures them."""

    name = "reference"
    mail_owner = MAIL_UID

    def __init__(self) -> None:
        self.started_here = False
        self._trash = 0

    def running(self) -> bool:
        return all(p is not None for p in (self._pid("postfix"), self._pid("dovecot")))

    def start(self) -> Reference:
        if not self.running():
            subprocess.run([str(BENCH / "reference" / "start.sh")], check=True,
                           stdout=subprocess.DEVNULL)
            self.started_here = True
        return self

    def stop(self) -> None:
        if self.started_here:
            subprocess.run([str(BENCH / "reference" / "stop.sh")], check=True,
                           stdout=subprocess.DEVNULL)

    def _pid(self, which: str) -> int | None:
        path = (REF_DIR / "postfix-spool" / "pid" / "master.pid" if which == "postfix"
                else REF_DIR / "dovecot-run" / "master.pid")
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None

    def address(self, service: str) -> tuple[str, int]:
        return "127.0.0.1", REF_PORTS[service]

    def mail_root(self) -> Path:
        return REF_DIR / "mail"

    def roots(self, service: str) -> list[int]:
        pid = self._pid("postfix" if service == "smtp" else "dovecot")
        if pid is None:
            raise RuntimeError(f"reference {service} server not running")
        return [pid]

    def fresh_mail(self) -> None:
        """Move every Maildir aside (deleted at the end: deletions slow ext4 down)."""
        root = self.mail_root()
        if root.exists():
            self._trash += 1
            root.rename(REF_DIR / f"trash-{os.getpid()}-{self._trash}")
        root.mkdir()
        os.chown(root, MAIL_UID, MAIL_UID)
        for domain in DOMAINS:  # as mailyard's side: every mailbox exists, empty
            for i in range(USERS_PER_DOMAIN):
                ensure_maildir(root / domain / f"user{i}", MAIL_UID)

    def clean_trash(self) -> None:
        for entry in REF_DIR.glob(f"trash-{os.getpid()}-*"):
            shutil.rmtree(entry, ignore_errors=True)


def temp_base(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("BENCH_DIR")))


# -- clients -------------------------------------------------------------------------


class Imap:
    """A minimal blocking IMAP client: tagged commands, literals read whole,
    untagged lines only counted (the client must cost the machine little)."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=600)
        self.reader = self.sock.makefile("rb", buffering=1 << 20)
        self.tag = 0
        self.exists = 0
        self.reader.readline()

    def command(self, text: str, literal: bytes | None = None) -> tuple[int, bytes]:
        """Send one command; return (untagged lines, tagged status line)."""
        self.tag += 1
        tag = b"t%d " % self.tag
        self.sock.sendall(tag + text.encode() + (b" {%d}\r\n" % len(literal) if literal is not None
                                                 else b"\r\n"))
        if literal is not None:
            line = self.reader.readline()
            if not line.startswith(b"+"):
                raise RuntimeError(f"{text}: {line!r}")
            self.sock.sendall(literal + b"\r\n")
        lines = 0
        while True:
            line = self.reader.readline()
            if not line:
                raise ConnectionError("server closed")
            while line.endswith(b"}\r\n") and b"{" in line:
                size = int(line[line.rindex(b"{") + 1:-3].rstrip(b"+"))
                self.reader.read(size)
                line = self.reader.readline()
            if line.startswith(tag):
                if not line[len(tag):].startswith(b"OK"):
                    raise RuntimeError(f"{text[:60]}: {line!r}")
                return lines, line
            lines += 1
            if line.startswith(b"* ") and line.endswith(b" EXISTS\r\n"):
                self.exists = int(line.split()[1])

    def login(self, user: str) -> None:
        self.command(f'LOGIN {user} "{PASSWORD}"')

    def close(self) -> None:
        try:
            self.command("LOGOUT")
        except (OSError, RuntimeError):
            pass
        self.sock.close()


class Pop3:
    """A minimal blocking POP3 client (RFC 1939), multi-line answers read whole."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=600)
        self.reader = self.sock.makefile("rb", buffering=1 << 20)
        self.reader.readline()

    def command(self, text: str, multiline: bool = False) -> int:
        self.sock.sendall(text.encode() + b"\r\n")
        line = self.reader.readline()
        if not line.startswith(b"+OK"):
            raise RuntimeError(f"{text}: {line!r}")
        octets = 0
        if multiline:
            while (line := self.reader.readline()) != b".\r\n":
                if not line:
                    raise ConnectionError("server closed")
                octets += len(line)
        return octets


async def imap_open(address: tuple[str, int], user: str) -> tuple[asyncio.StreamReader,
                                                                   asyncio.StreamWriter]:
    """An authenticated asyncio IMAP connection (greeting and LOGIN done)."""
    reader, writer = await asyncio.open_connection(*address, limit=1 << 22)
    await reader.readline()
    writer.write(f'a LOGIN {user} "{PASSWORD}"\r\n'.encode())
    while not (line := await reader.readline()).startswith(b"a "):
        if not line:
            raise ConnectionError("server closed during LOGIN")
    if not line.startswith(b"a OK"):
        raise RuntimeError(f"LOGIN {user}: {line!r}")
    return reader, writer


def wait_until(predicate: object, timeout: float, step: float = 0.005) -> float:
    """Poll ``predicate`` until true; the time.perf_counter() when it was."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return time.perf_counter()
        time.sleep(step)
    raise TimeoutError(f"not done in {timeout} s")
