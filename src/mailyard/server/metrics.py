"""The Prometheus endpoint: ``GET /metrics`` on a loopback port (``[metrics] listen``).

Off unless configured. The figures are those every mailyard process writes
into ``<state>/run/metrics`` (``mailyard.observe``), summed at each scrape,
plus what is read at scrape time: the queue's size and the age of its
oldest message, and the server's start time. A scrape reads files, so it
runs in a thread, never on the event loop. The endpoint speaks just enough
HTTP/1.1 for a scraper (one request per connection, GET or HEAD, bounded
request head, timeouts); ``run/metrics.json`` names the bound address
(port 0 in tests becomes a real one).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mailyard import fsio
from mailyard.config import Config, ListenAddress, parse_listen
from mailyard.log import event
from mailyard.observe.recorder import metrics_dir, registry_for
from mailyard.queue.store import Queue, QueueCorrupt, QueueNotFound

__all__ = [
    "READY_NAME",
    "MetricsHandle",
    "QueueCollector",
    "QueueFigures",
    "queue_figures",
    "render_metrics",
    "start_metrics_server",
]

READY_NAME: Final = "metrics.json"
_HEAD_LIMIT: Final = 8192  # octets of request line and headers
_READ_TIMEOUT: Final = 10.0
_WRITE_TIMEOUT: Final = 30.0


@dataclass(frozen=True, slots=True)
class QueueFigures:
    messages: int  # committed messages waiting (queue/mess)
    oldest_age: float | None  # seconds since the oldest one arrived; None when empty


def queue_figures(queue_root: str, now: float) -> QueueFigures:
    """Count the queue and date its oldest message (reads one envelope)."""
    queue = Queue(queue_root)
    ids = queue.list_ids()  # oldest first
    for qid in ids:
        try:
            birth = queue.load(qid).envelope.birth
        except (QueueNotFound, QueueCorrupt, ValueError):
            continue  # delivered meanwhile, or unreadable: the next one is the oldest
        return QueueFigures(len(ids), max(0.0, now - birth))
    return QueueFigures(len(ids), None)


class QueueCollector(Collector):
    """Scrape-time gauges: queue depth, oldest message, server start."""

    def __init__(self, queue_root: str, started: float) -> None:
        self._queue_root = queue_root
        self._started = started

    def collect(self) -> Iterator[Metric]:
        figures = queue_figures(self._queue_root, time.time())
        yield GaugeMetricFamily("mailyard_queue_messages",
                                "Messages in the queue (not yet delivered to every recipient).",
                                value=figures.messages)
        yield GaugeMetricFamily("mailyard_queue_oldest_age_seconds",
                                "Age of the oldest queued message (0 when the queue is empty).",
                                value=figures.oldest_age or 0.0)
        yield GaugeMetricFamily("mailyard_start_time_seconds",
                                "When the server process started (Unix time).",
                                value=self._started)


def render_metrics(config: Config, started: float) -> bytes:
    """The text exposition of every process's metrics (blocking: files)."""
    registry = registry_for(metrics_dir(config.state_dir),
                            [QueueCollector(config.path("queue"), started)])
    return generate_latest(registry)


def _response(status: str, body: bytes, content_type: str, *, head: bool) -> bytes:
    lines = [
        f"HTTP/1.1 {status}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        "", "",
    ]
    return "\r\n".join(lines).encode("ascii") + (b"" if head else body)


class MetricsHandle:
    """A running endpoint: ``address`` it listens on, ``stop()`` to close it."""

    def __init__(self, config: Config, started: float) -> None:
        self._config = config
        self._started = started
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self.address: ListenAddress | None = None

    async def start(self, where: ListenAddress) -> None:
        self._server = await asyncio.start_server(self._handle, where.host, where.port,
                                                  reuse_address=True, limit=_HEAD_LIMIT)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = ListenAddress(host, port)
        payload = json.dumps({"pid": os.getpid(), "address": str(self.address)}).encode()
        await asyncio.to_thread(fsio.write_file_atomic, self._config.path("run"), READY_NAME,
                                [payload])
        event("listen", service="metrics", addresses=str(self.address))

    async def stop(self) -> None:
        """Stop listening and end scrapes in progress."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._config.path("run", READY_NAME))
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.wait(list(self._clients), timeout=2.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            async with asyncio.timeout(_READ_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            reply = await self._answer(head)
            writer.write(reply)
            async with asyncio.timeout(_WRITE_TIMEOUT):
                await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):
            pass  # a scraper that went away or sent no proper request
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()

    async def _answer(self, head: bytes) -> bytes:
        request = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        text = "text/plain; charset=utf-8"
        if len(request) != 3 or not request[2].startswith("HTTP/1."):
            return _response("400 Bad Request", b"bad request\n", text, head=False)
        method, target = request[0], request[1].split("?", 1)[0]
        if method not in {"GET", "HEAD"}:
            return _response("405 Method Not Allowed", b"GET or HEAD only\n", text, head=False)
        head_only = method == "HEAD"
        if target == "/metrics":
            body = await asyncio.to_thread(render_metrics, self._config, self._started)
            return _response("200 OK", body, CONTENT_TYPE_LATEST, head=head_only)
        if target == "/":
            return _response("200 OK", b"mailyard: metrics at /metrics\n", text, head=head_only)
        return _response("404 Not Found", b"not found; try /metrics\n", text, head=head_only)


async def start_metrics_server(
    config: Config, started: float | None = None
) -> MetricsHandle | None:
    """Start the endpoint when ``[metrics] listen`` is set (None otherwise).

    The configuration already refused a non-loopback address unless
    ``[metrics] allow_remote`` is true (config.MetricsConfig).
    """
    if not config.metrics.listen:
        return None
    handle = MetricsHandle(config, time.time() if started is None else started)
    await handle.start(parse_listen(config.metrics.listen))
    return handle
