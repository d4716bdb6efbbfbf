"""Observability end to end: a real server, a real delivery, then
`mailyard status --json` and the Prometheus endpoint must both report it,
and the log file (``[log] file``) must hold the lines of every process."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.server import (
    ServerProcess,
    maildir,
    provision,
    send_mail,
    wait_for_files,
    write_config,
)

DEADLINE = 30.0
MESSAGE = b"From: sender@example.org\r\nSubject: counted\r\n\r\nhello\r\n"


def _status(state: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "mailyard", "--state", str(state), "status", "--json"],
        check=True, capture_output=True, timeout=60,
    ).stdout
    data: dict[str, Any] = json.loads(out)
    return data


def _wait_status(state: Path, ready: Any) -> dict[str, Any]:
    """Poll until ``ready(status)``: the delivery event follows the file by a moment."""
    deadline = time.monotonic() + DEADLINE
    while True:
        data = _status(state)
        if ready(data) or time.monotonic() > deadline:
            return data
        time.sleep(0.05)


def _scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    host, _, port = address.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        assert response.status == 200
        body = response.read().decode()
    finally:
        conn.close()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def test_status_and_metrics_report_a_delivery(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_config(state, sections={"log": 'file = "mailyard.log"'},
                 extra='[metrics]\nlisten = "127.0.0.1:0"\n')
    provision(state)
    server = ServerProcess(state).start()
    try:
        send_mail(server, "alice@example.test", MESSAGE)
        wait_for_files(maildir(state, "alice@example.test") / "new", 1)
        data = _wait_status(state, lambda d: d["last_hour"]["ok"] >= 1)

        info = data["server"]
        assert info["running"] is True and info["uptime"] >= 0
        assert info["listeners"]["smtp"] == [":".join(map(str, server.address("smtp")))]
        assert isinstance(info["delivery"]["pid"], int)
        assert info["delivery"]["restarts"] == 0
        assert data["last_hour"]["accepted"] >= 1
        assert data["last_hour"]["ok"] >= 1 and data["last_hour"]["failed"] == 0
        assert data["since_start"]["delivered"] >= 1
        assert data["since_start"]["connections"] >= 1
        assert data["disk"]["mail"]["files"] >= 1

        address = info["metrics_endpoint"]
        assert address.startswith("127.0.0.1:")
        samples = _scrape(address)
        assert samples[("mailyard_deliveries_total", (("result", "ok"),))] >= 1
        assert samples[("mailyard_messages_accepted_total", (("service", "smtp"),))] >= 1
        assert samples[("mailyard_connections_total", (("service", "smtp"),))] >= 1
        assert samples[("mailyard_delivery_latency_seconds_count", ())] >= 1
        assert samples[("mailyard_delivery_worker_starts_total", ())] == 1
        assert ("mailyard_queue_messages", ()) in samples
    finally:
        server.stop()
    lines = (state / "mailyard.log").read_text().splitlines()
    assert any(" smtp.accept " in line for line in lines)  # the server's line
    assert any(" delivery " in line and "result=ok" in line for line in lines)  # lspawn's
    assert not (state / "run" / "metrics.json").exists()
    # Stopped: the figures of the run stay readable.
    assert _status(state)["since_start"]["delivered"] >= 1
