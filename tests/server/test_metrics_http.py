"""server.metrics: the loopback Prometheus endpoint, with a real HTTP client."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailyard import fsio
from mailyard.config import ConfigError, MetricsConfig, load_config
from mailyard.log import event
from mailyard.observe import recorder
from mailyard.queue.store import Envelope, Queue
from mailyard.server.metrics import READY_NAME, queue_figures, start_metrics_server


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "mailyard.toml").write_text('[metrics]\nlisten = "127.0.0.1:0"\n')
    recorder.init_metrics(str(tmp_path), "supervisor")
    yield tmp_path
    recorder.reset_metrics()


def _get(address: str, path: str, method: str = "GET") -> tuple[int, str, bytes]:
    host, _, port = address.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


def _samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _commit(state: Path, birth: float) -> str:
    queue = Queue(str(state / "queue"), syncer=fsio.DirSyncer())
    queue.ensure_layout()
    writer = queue.begin(Envelope(sender="a@b.test", recipients=("c@d.test",), birth=birth,
                                  smtputf8=False))
    writer.write(b"Subject: x\r\n\r\nbody\r\n")
    return writer.commit()


async def _serve(state: Path, requests: list[tuple[str, str]]) -> list[tuple[int, str, bytes]]:
    config = load_config(str(state))
    handle = await start_metrics_server(config, started=1000.0)
    assert handle is not None and handle.address is not None
    ready = json.loads((state / "run" / READY_NAME).read_text())
    assert ready["address"] == str(handle.address)
    try:
        return [await asyncio.to_thread(_get, str(handle.address), path, method)
                for method, path in requests]
    finally:
        await handle.stop()
        assert not (state / "run" / READY_NAME).exists()


def test_scrape_sums_events_and_reads_the_queue(state: Path) -> None:
    _commit(state, birth=time.time() - 100)
    event("smtp.connect", ip="127.0.0.1", port=1)
    event("delivery", id="x", rcpt="a@b.test", result="deferred")
    ((status, kind, body),) = asyncio.run(_serve(state, [("GET", "/metrics")]))
    assert status == 200 and kind.startswith("text/plain")
    samples = _samples(body)
    assert samples[("mailyard_connections_total", (("service", "smtp"),))] == 1
    assert samples[("mailyard_deliveries_total", (("result", "deferred"),))] == 1
    assert samples[("mailyard_queue_messages", ())] == 1
    assert samples[("mailyard_queue_oldest_age_seconds", ())] >= 100
    assert samples[("mailyard_start_time_seconds", ())] == 1000.0


def test_other_requests(state: Path) -> None:
    answers = asyncio.run(_serve(state, [("GET", "/"), ("GET", "/nope"), ("POST", "/metrics"),
                                         ("HEAD", "/metrics")]))
    assert [a[0] for a in answers] == [200, 404, 405, 200]
    assert answers[3][2] == b""


def test_garbage_and_silence_are_dropped(state: Path) -> None:
    async def run() -> bytes:
        handle = await start_metrics_server(load_config(str(state)))
        assert handle is not None and handle.address is not None
        try:
            reader, writer = await asyncio.open_connection(handle.address.host,
                                                           handle.address.port)
            writer.write(b"\x00\x01garbage\r\n\r\n")
            answer = await reader.read()
            writer.close()
            return answer
        finally:
            await handle.stop()

    assert asyncio.run(run()).startswith(b"HTTP/1.1 400")


def test_off_by_default(tmp_path: Path) -> None:
    assert asyncio.run(start_metrics_server(load_config(str(tmp_path)))) is None


def test_loopback_only_unless_allowed() -> None:
    assert MetricsConfig(listen="[::1]:9154").listen == "[::1]:9154"
    assert MetricsConfig(listen="localhost:9154").listen
    with pytest.raises(ConfigError, match="loopback"):
        MetricsConfig(listen="0.0.0.0:9154")
    with pytest.raises(ConfigError, match="loopback"):
        MetricsConfig(listen=":9154")
    assert MetricsConfig(listen="192.0.2.1:9154", allow_remote=True).allow_remote
    with pytest.raises(ConfigError):
        MetricsConfig(listen="nonsense")


def test_queue_figures(tmp_path: Path) -> None:
    assert queue_figures(str(tmp_path / "queue"), time.time()).messages == 0
    now = time.time()
    _commit(tmp_path, birth=now - 50)
    _commit(tmp_path, birth=now - 10)
    figures = queue_figures(str(tmp_path / "queue"), now)
    assert figures.messages == 2
    assert figures.oldest_age == pytest.approx(50, abs=1)
