"""Kill -9 under load (DESIGN §3): 20 clients send numbered messages and note
every 250; the whole server (its delivery children too) is SIGKILLed at
random moments and restarted. At the end: nothing acknowledged is missing,
duplicates are counted and printed, no partial file is a message anywhere
(Maildir new/ and cur/, queue mess/), and the queue drains.

Generalises tests/e2e/test_crash.py (1,000 messages, 4 clients, the main
process only).
"""

from __future__ import annotations

import random
import smtplib
import threading
import time
from pathlib import Path

from tests.drills.common import SCALE, files, kill_whole, queue_empty, wait_until
from tests.e2e.server import ServerProcess, maildir, provision, write_config

MARK = b"kill9-drill-message "
END = b" end\r\n"
RECIPIENT = "alice@example.test"


class Sender(threading.Thread):
    """One client: sends its numbers in order, retrying a message until it gets a 250."""

    def __init__(self, server: ServerProcess, numbers: list[int], acked: set[int],
                 lock: threading.Lock) -> None:
        super().__init__(daemon=True)
        self.server, self.numbers, self.acked, self.lock = server, numbers, acked, lock
        self.retries = 0

    def run(self) -> None:
        pending = list(self.numbers)
        client: smtplib.SMTP | None = None
        deadline = time.monotonic() + 600
        while pending and time.monotonic() < deadline:
            n = pending[0]
            try:
                if client is None:
                    client = smtplib.SMTP(*self.server.address("smtp"), timeout=15)
                body = (b"Subject: kill9 %d\r\n\r\n" % n + MARK + b"%d" % n
                        + b" " + b"p" * (n % 700) + END)
                client.sendmail("s@example.org", [RECIPIENT], body)
                with self.lock:
                    self.acked.add(n)
                pending.pop(0)
            except (OSError, smtplib.SMTPException):
                # The server died (or said 4xx) mid-transaction: no 250, so retry.
                self.retries += 1
                client = None
                time.sleep(0.05)
        if client is not None:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                pass


def delivered(box: Path) -> tuple[dict[int, int], list[str]]:
    """Message number -> copies in new/ and cur/; the names of partial files."""
    seen: dict[int, int] = {}
    partial: list[str] = []
    for sub in ("new", "cur"):
        for path in files(box / sub):
            data = path.read_bytes()
            start = data.find(MARK)
            if start < 0 or not data.endswith(END):
                partial.append(f"{sub}/{path.name}")
                continue
            n = int(data[start + len(MARK):].split(b" ")[0])
            seen[n] = seen.get(n, 0) + 1
    return seen, partial


def test_kill9_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_config(state)
    provision(state)
    server = ServerProcess(state).start()
    acked: set[int] = set()
    lock = threading.Lock()
    numbers = list(range(SCALE.messages))
    senders = [Sender(server, numbers[i::SCALE.clients], acked, lock)
               for i in range(SCALE.clients)]
    started = time.monotonic()
    for sender in senders:
        sender.start()
    # Kill while the load runs: at random points of the acknowledged count,
    # spread over the run, so every kill lands among busy sessions.
    rng = random.Random(7)
    marks = sorted(rng.uniform(0.05, 0.9) * SCALE.messages for _ in range(SCALE.kills))
    kills, killed_processes = 0, 0
    try:
        for mark in marks:
            wait_until("the load to progress", lambda m=mark: len(acked) >= m
                       or not any(s.is_alive() for s in senders), timeout=300)
            time.sleep(rng.uniform(0.0, 0.2))
            killed_processes += kill_whole(server)
            kills += 1
            server.start()
        for sender in senders:
            sender.join(600)
        box = maildir(state, RECIPIENT)
        wait_until("the queue to drain", lambda: queue_empty(state), timeout=300)
        drain_seconds = time.monotonic() - started
    finally:
        server.stop()
    seen, partial = delivered(box)
    missing = sorted(acked - set(seen))
    duplicates = sum(c - 1 for c in seen.values())
    leftovers = {sub: len(files(state / "queue" / sub)) for sub in ("tmp", "mess", "state")}
    box_tmp = len(files(box / "tmp"))
    print(f"\nkill-9 drill ({SCALE.name}): clients={SCALE.clients} messages={SCALE.messages} "
          f"kills={kills} (processes killed={killed_processes}) acknowledged={len(acked)} "
          f"delivered={len(seen)} missing={len(missing)} duplicates={duplicates} "
          f"partial={len(partial)} client_retries={sum(s.retries for s in senders)} "
          f"queue_left={leftovers} maildir_tmp_debris={box_tmp} seconds={drain_seconds:.1f}")
    assert len(acked) == SCALE.messages, f"only {len(acked)} acknowledged"
    assert kills == SCALE.kills
    assert missing == [], f"acknowledged but missing: {missing[:20]}"
    assert partial == [], f"partial files: {partial[:20]}"
    assert leftovers["mess"] == 0 and leftovers["state"] == 0, leftovers
