"""Crash safety: SIGKILL the server at random moments while clients send.

Every message that got a 250 must end up in its Maildir (at least once);
duplicates are counted and printed; no partial file may appear in new/.
"""

from __future__ import annotations

import random
import smtplib
import threading
import time
from pathlib import Path

from tests.e2e.server import ServerProcess, maildir, wait_for_files

TOTAL = 1000
CLIENTS = 4
KILLS = 5
MARK = b"crash-test-message "


class Sender(threading.Thread):
    def __init__(self, server: ServerProcess, numbers: list[int], acked: set[int], lock: threading.Lock) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.numbers = numbers
        self.acked = acked
        self.lock = lock
        self.errors = 0

    def run(self) -> None:
        pending = list(self.numbers)
        client: smtplib.SMTP | None = None
        deadline = time.monotonic() + 240
        while pending and time.monotonic() < deadline:
            n = pending[0]
            try:
                if client is None:
                    host, port = self.server.address("smtp")
                    client = smtplib.SMTP(host, port, timeout=10)
                body = b"Subject: crash %d\r\n\r\n" % n + MARK + b"%d end\r\n" % n
                client.sendmail("s@example.org", ["alice@example.test"], body)
                with self.lock:
                    self.acked.add(n)
                pending.pop(0)
            except (OSError, smtplib.SMTPException):
                self.errors += 1
                client = None
                time.sleep(0.05)


def _numbers_in(box: Path) -> tuple[dict[int, int], list[str]]:
    seen: dict[int, int] = {}
    partial: list[str] = []
    for path in (box / "new").iterdir():
        data = path.read_bytes()
        start = data.find(MARK)
        if start < 0 or not data.endswith(b" end\r\n"):
            partial.append(path.name)
            continue
        n = int(data[start + len(MARK):].split(b" ")[0])
        seen[n] = seen.get(n, 0) + 1
    return seen, partial


def test_sigkill_loses_no_acknowledged_message(fresh_state: Path) -> None:
    server = ServerProcess(fresh_state).start()
    acked: set[int] = set()
    lock = threading.Lock()
    numbers = list(range(TOTAL))
    senders = [Sender(server, numbers[i::CLIENTS], acked, lock) for i in range(CLIENTS)]
    for s in senders:
        s.start()
    rng = random.Random(1234)
    kills = 0
    while kills < KILLS and any(s.is_alive() for s in senders):
        time.sleep(rng.uniform(0.1, 0.4))
        server.kill()
        kills += 1
        server.start()
    for s in senders:
        s.join(300)
    assert len(acked) == TOTAL, f"only {len(acked)} acknowledged"
    box = maildir(fresh_state, "alice@example.test")
    try:
        wait_for_files(box / "new", TOTAL, timeout=120)
        deadline = time.monotonic() + 60
        while any((fresh_state / "queue" / "mess").iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.stop()
    seen, partial = _numbers_in(box)
    missing = sorted(acked - set(seen))
    duplicates = sum(c - 1 for c in seen.values())
    print(f"\ncrash test: kills={kills} acknowledged={len(acked)} delivered={len(seen)} "
          f"duplicates={duplicates} partial={len(partial)} client_retries={sum(s.errors for s in senders)}")
    assert missing == []
    assert partial == []
    assert kills >= 3, "the senders finished before the server was killed several times"
