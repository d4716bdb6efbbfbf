"""`mailyard status` without a running server: queue, figures, disk use.

With a running server (processes, listeners, a delivery counted):
tests/e2e/test_observe_e2e.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from mailyard import fsio
from mailyard.cli.status_cmds import disk_use
from mailyard.log import event
from mailyard.observe import recorder
from mailyard.queue.store import Envelope, Queue
from tests.cli.conftest import Cli


def _commit(state: Path, birth: float) -> str:
    queue = Queue(str(state / "queue"), syncer=fsio.DirSyncer())
    queue.ensure_layout()
    writer = queue.begin(Envelope(sender="a@b.test", recipients=("c@remote.test",),
                                  birth=birth, smtputf8=False))
    writer.write(b"Subject: waiting\r\n\r\n" + b"x" * 5000 + b"\r\n")
    return writer.commit()


def test_status_of_a_stopped_server(cli: Cli) -> None:
    _commit(cli.state, time.time() - 7200)
    data = json.loads(cli.ok("status", "--json"))
    assert data["server"]["running"] is False
    assert data["server"]["listeners"] == {}
    assert data["queue"]["messages"] == 1
    assert 7100 < data["queue"]["oldest_age_seconds"] < 7300
    assert data["last_hour"] == {"accepted": 0, "ok": 0, "deferred": 0, "failed": 0}
    assert data["disk"]["queue"]["files"] >= 1
    assert data["disk"]["queue"]["bytes"] >= 5000
    assert data["disk"]["mail"]["complete"] is True
    text = cli.ok("status")
    assert "not running" in text
    assert "1 messages, oldest 2h" in text


def test_figures_left_by_the_last_run(cli: Cli) -> None:
    # What the processes of a server counted stays readable after it stopped.
    try:
        recorder.init_metrics(str(cli.state), "supervisor")
        event("smtp.accept", id="x", service="smtp")
        event("delivery", id="x", rcpt="ann@a.test", result="ok", latency=0.1)
        event("delivery", id="x", rcpt="zed@a.test", result="failed")
        event("imap.login", ip="127.0.0.1", result="failed")
    finally:
        recorder.reset_metrics()
    data = json.loads(cli.ok("status", "--json"))
    assert data["last_hour"] == {"accepted": 1, "ok": 1, "deferred": 0, "failed": 1}
    since = data["since_start"]
    assert (since["accepted"], since["delivered"], since["failed"]) == (1, 1, 1)
    assert since["auth_failures"] == 1
    assert "1 accepted, 1 delivered, 0 deferred, 1 failed" in cli.ok("status")


def test_disk_use_is_bounded(tmp_path: Path) -> None:
    for n in range(30):
        sub = tmp_path / f"d{n % 3}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{n}").write_bytes(b"y" * 100)
    full = disk_use(str(tmp_path))
    assert full.complete and full.files == 30 and full.bytes > 0
    cut = disk_use(str(tmp_path), budget=-1.0)
    assert not cut.complete and cut.files == 0
    assert disk_use(str(tmp_path / "missing")) == type(full)(0, 0, True)
