"""observe.recorder and observe.recent: events counted across processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.log import event, set_event_hook
from mailyard.observe import recorder
from mailyard.observe.recent import FIELDS, SLOTS, RecentWriter, read_recent


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    recorder.reset_metrics()


def _value(data: dict, name: str, **labels: str) -> float:
    return data.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def test_events_become_metrics(state: Path) -> None:
    directory = recorder.init_metrics(str(state), "supervisor")
    assert directory == recorder.metrics_dir(str(state))
    assert os.environ[recorder.ENV_DIR] == directory
    event("smtp.connect", ip="127.0.0.1", port=1)
    event("smtp.accept", id="q1", service="smtp")
    event("delivery", id="q1", rcpt="a@b.test", result="ok", latency=0.5)
    event("delivery", id="q1", rcpt="c@b.test", result="failed")
    data = recorder.snapshot(directory)
    assert _value(data, "mailyard_connections_total", service="smtp") == 1
    assert _value(data, "mailyard_connections_active", service="smtp") == 1
    assert _value(data, "mailyard_messages_accepted_total", service="smtp") == 1
    assert _value(data, "mailyard_deliveries_total", result="ok") == 1
    assert _value(data, "mailyard_deliveries_total", result="failed") == 1
    assert _value(data, "mailyard_delivery_latency_seconds_count") == 1
    assert _value(data, "mailyard_delivery_latency_seconds_bucket", le="0.5") == 1
    assert read_recent(directory, time.time()) == {"accepted": 1, "ok": 1, "deferred": 0,
                                                   "failed": 1}


def test_events_below_the_log_level_are_counted(state: Path) -> None:
    directory = recorder.init_metrics(str(state), "supervisor")
    assert directory is not None
    event("tls.established", level=5, ip="127.0.0.1", version="TLSv1.3")
    data = recorder.snapshot(directory)
    assert _value(data, "mailyard_tls_handshakes_total", result="ok") == 1


def test_children_add_and_the_supervisor_starts_afresh(state: Path) -> None:
    directory = recorder.init_metrics(str(state), "supervisor")
    assert directory is not None
    event("delivery", id="q", rcpt="a@b", result="ok")
    # A child process (as lspawn): its own files, summed with ours.
    code = (
        "import sys; from mailyard.observe.recorder import init_metrics; "
        "from mailyard.log import event; init_metrics(sys.argv[1], 'lspawn'); "
        "[event('delivery', id='q', rcpt='a@b', result='ok') for _ in range(3)]"
    )
    subprocess.run([sys.executable, "-c", code, str(state)], check=True, timeout=60)
    data = recorder.snapshot(directory)
    assert _value(data, "mailyard_deliveries_total", result="ok") == 4
    assert read_recent(directory, time.time())["ok"] == 4
    recorder.reset_metrics()
    # The next server start wipes every process's files.
    directory = recorder.init_metrics(str(state), "supervisor")
    assert directory is not None
    assert _value(recorder.snapshot(directory), "mailyard_deliveries_total", result="ok") == 0
    assert read_recent(directory, time.time())["ok"] == 0


def test_a_dead_child_leaves_no_open_connections(state: Path) -> None:
    directory = recorder.init_metrics(str(state), "supervisor")
    assert directory is not None
    code = (
        "import os, sys; from mailyard.observe.recorder import init_metrics; "
        "from mailyard.log import event; init_metrics(sys.argv[1], 'mailbox'); "
        "event('imap.connect', ip='127.0.0.1', port=1); print(os.getpid())"
    )
    out = subprocess.run([sys.executable, "-c", code, str(state)], check=True, timeout=60,
                         capture_output=True, text=True).stdout
    data = recorder.snapshot(directory)
    assert _value(data, "mailyard_connections_active", service="imap") == 1
    recorder.process_exited(str(state), int(out))
    data = recorder.snapshot(directory)
    assert _value(data, "mailyard_connections_active", service="imap") == 0
    assert _value(data, "mailyard_connections_total", service="imap") == 1


def test_reset_restores_the_environment(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(recorder.ENV_DIR, raising=False)
    recorder.init_metrics(str(state), "delivery")
    assert recorder.active_dir() == recorder.metrics_dir(str(state))
    recorder.reset_metrics()
    assert recorder.ENV_DIR not in os.environ
    assert recorder.active_dir() is None
    assert set_event_hook(None) is None  # the hook went too


def test_an_unwritable_folder_means_no_metrics(state: Path) -> None:
    (state / "run").mkdir()
    (state / "run" / "metrics").write_text("not a folder")
    assert recorder.init_metrics(str(state), "delivery") is None
    assert recorder.active_dir() is None
    event("delivery", id="q", rcpt="a@b", result="ok")  # still logs, counts nothing


def test_bad_role() -> None:
    with pytest.raises(ValueError, match="role"):
        recorder.init_metrics("/nonexistent", "../x")


def test_snapshot_without_folder(tmp_path: Path) -> None:
    assert recorder.snapshot(str(tmp_path / "none")) == {}
    assert read_recent(str(tmp_path / "none"), time.time()) == dict.fromkeys(FIELDS, 0)


# -- the one-hour ring -------------------------------------------------------------------


@given(st.lists(st.tuples(st.sampled_from(FIELDS), st.integers(0, 3 * SLOTS * 60)),
                max_size=40))
def test_ring_counts_exactly_the_last_hour(tmp_path_factory: pytest.TempPathFactory,
                                           adds: list[tuple[str, int]]) -> None:
    directory = str(tmp_path_factory.mktemp("ring"))
    writer = RecentWriter(directory, pid=1)
    base = 1_800_000_000 // 60 * 60
    clock = 0
    for what, step in sorted(adds, key=lambda a: a[1]):
        clock = step
        writer.add(what, base + clock)
    now = base + clock
    expected = dict.fromkeys(FIELDS, 0)
    for what, step in adds:
        # Minutes within the last 60 (the current one included) count.
        if (now // 60) - ((base + step) // 60) < SLOTS:
            expected[what] += 1
    assert read_recent(directory, now) == expected
    writer.close()


def test_ring_sums_processes(tmp_path: Path) -> None:
    now = time.time()
    for pid in (10, 11):
        writer = RecentWriter(str(tmp_path), pid=pid)
        writer.add("failed", now)
        writer.close()
    (tmp_path / "recent_12.bin").write_bytes(b"short")  # torn or foreign: ignored
    assert read_recent(str(tmp_path), now)["failed"] == 2
