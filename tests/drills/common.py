"""Shared pieces of the drills: the short/long scale, a server that can be
killed as a whole (its delivery children too), memory and latency probes."""

from __future__ import annotations

import os
import signal
import smtplib
import statistics
import subprocess
import threading
import time
from contextlib import contextmanager
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.server import PASSWORD, ServerProcess

LONG = os.environ.get("MAILYARD_DRILLS", "") == "long"


@dataclass(frozen=True, slots=True)
class Scale:
    """How hard each drill pushes; the long form is issue 7's figures."""

    messages: int
    clients: int
    kills: int
    concurrency_seconds: float
    slowloris: int
    no_newline_mb: int
    pipelined: int
    fuzz_connections: int
    brute_attempts: int

    @property
    def name(self) -> str:
        return "long" if LONG else "short"


SCALE = (Scale(messages=5000, clients=20, kills=10, concurrency_seconds=60.0, slowloris=1000,
               no_newline_mb=100, pipelined=10_000, fuzz_connections=1000, brute_attempts=60)
         if LONG else
         Scale(messages=1000, clients=20, kills=3, concurrency_seconds=10.0, slowloris=200,
               no_newline_mb=10, pipelined=10_000, fuzz_connections=150, brute_attempts=20))


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, from /proc (parents first)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop(0)
        found.append(current)
        todo += children.get(current, [])
    return found


def kill_whole(server: ServerProcess) -> int:
    """SIGKILL the server and all its children at one moment (a power cut, as
    far as the processes can tell): freeze them all, then kill them all."""
    assert server.proc is not None
    tree = descendants(server.proc.pid)
    for pid in tree:
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            pass
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    server.proc.wait()
    for pid in tree[1:]:
        # The children are reaped by their parent (gone) or by init; wait until they are.
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            if Path(f"/proc/{pid}/stat").read_text(errors="replace").split(")")[-1].split()[0] == "Z":
                break
            time.sleep(0.01)
    return len(tree)


def files(path: Path) -> list[Path]:
    """The regular entries of a directory (none when it does not exist)."""
    return [p for p in path.iterdir() if not p.name.startswith(".")] if path.exists() else []


def wait_until(what: str, predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def queue_empty(state: Path) -> bool:
    """No committed message left (tmp/ may hold debris of killed receptions,
    which the queue removes after [queue] debris_age, as qmail does)."""
    return not files(state / "queue" / "mess")


def rss_kb(pid: int, key: str = "VmRSS") -> int:
    """A memory figure of one process from /proc/<pid>/status (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {key} for {pid}")


class Canary(threading.Thread):
    """A well-behaved client that keeps talking to the server throughout an
    abuse (an SMTP NOOP and a POP3 login every few tenths of a second) and
    records each round's latency and failures."""

    def __init__(self, server: ServerProcess, user: str = "carol@example.net",
                 source: str = "127.0.0.1") -> None:
        super().__init__(daemon=True)
        self.server = server
        self.user = user
        self.source = source
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.peak_rss_kb = 0
        self._halt = threading.Event()

    def run(self) -> None:
        import poplib

        assert self.server.proc is not None
        while not self._halt.is_set():
            started = time.monotonic()
            try:
                with smtplib.SMTP(*self.server.address("smtp"), timeout=20,
                                  source_address=(self.source, 0)) as smtp:
                    code, _ = smtp.noop()
                    assert code == 250, code
                pop = poplib.POP3(*self.server.address("pop3"), timeout=20)
                pop.user(self.user)
                pop.pass_(PASSWORD)
                pop.quit()
                self.latencies.append(time.monotonic() - started)
            except (OSError, smtplib.SMTPException, poplib.error_proto, AssertionError,
                    EOFError) as exc:
                self.failures.append(repr(exc))
            try:
                self.peak_rss_kb = max(self.peak_rss_kb, rss_kb(self.server.proc.pid))
            except (OSError, AssertionError):
                pass
            self._halt.wait(0.2)

    def stop(self) -> None:
        self._halt.set()
        self.join(60)

    def summary(self) -> str:
        if not self.latencies:
            return f"rounds=0 failures={len(self.failures)}"
        return (f"rounds={len(self.latencies)} failures={len(self.failures)} "
                f"median={statistics.median(self.latencies) * 1000:.0f}ms "
                f"max={max(self.latencies) * 1000:.0f}ms")


@contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A size-limited tmpfs at ``where`` (skips with the reason where the
    machine forbids mounting); always unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("the disk-full drill mounts a small tmpfs, which needs root")
    where.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here: "
                    f"{result.stderr.strip() or 'mount refused'}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)
