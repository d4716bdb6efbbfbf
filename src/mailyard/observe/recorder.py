"""Metrics in every process, summed across processes (prometheus_client's
multiprocess mode).

mailyard runs a server, a delivery worker and single-threaded lspawn
children. Each calls ``setup_process(config, role)`` (or ``init_metrics``)
first thing: the metric objects of ``events.METRICS`` are created backed by
per-process memory-mapped files in ``<state>/run/metrics``, and
``log.set_event_hook`` makes every ``log.event`` update them. The server's
call (role ``server``) empties that folder first, so the figures start at
zero with each server start; the children, started after it, add theirs.
Whoever reads the folder (the HTTP endpoint, ``mailyard status``) sums the
files of every process, dead ones included, so counts survive a restart of
the worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from mailyard import fsio, log
from mailyard.config import Config
from mailyard.observe.events import LATENCY_BUCKETS, METRICS, MetricKind, Op, updates
from mailyard.observe.recent import RecentWriter

__all__ = [
    "ENV_DIR",
    "WIPING_ROLES",
    "active_dir",
    "init_metrics",
    "metrics_dir",
    "process_exited",
    "registry_for",
    "reset_metrics",
    "setup_process",
    "snapshot",
]

ENV_DIR: Final = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client reads it in every process
WIPING_ROLES: Final = frozenset({"server", "supervisor"})
_ROLE: Final = re.compile(r"[a-z]{1,16}", re.ASCII)
_ACCEPT_EVENTS: Final = frozenset({"smtp.accept", "qmtp.accept", "qmqp.accept"})
_OURS: Final = (".db", ".bin")


def metrics_dir(state_dir: str) -> str:
    """``<state>/run/metrics``: the per-process metric files."""
    return os.path.join(state_dir, "run", "metrics")


class _Recorder:
    """The metric objects of one process and the hook that feeds them."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.counters: dict[str, Counter] = {}
        self.gauges: dict[str, Gauge] = {}
        self.histograms: dict[str, Histogram] = {}
        for spec in METRICS:
            if spec.kind is MetricKind.COUNTER:
                self.counters[spec.name] = Counter(spec.name, spec.help, spec.labels,
                                                   registry=None)
            elif spec.kind is MetricKind.GAUGE:
                self.gauges[spec.name] = Gauge(spec.name, spec.help, spec.labels, registry=None,
                                               multiprocess_mode="livesum")
            else:
                self.histograms[spec.name] = Histogram(spec.name, spec.help, spec.labels,
                                                       registry=None, buckets=LATENCY_BUCKETS)
        self.recent = RecentWriter(directory)

    def __call__(self, name: str, fields: Mapping[str, object]) -> None:
        for update in updates(name, fields):
            if update.op is Op.OBSERVE:
                histogram = self.histograms[update.metric]
                (histogram.labels(*update.labels) if update.labels else histogram).observe(
                    update.value)
            elif update.op is Op.DEC:
                gauge = self.gauges[update.metric]
                (gauge.labels(*update.labels) if update.labels else gauge).dec(update.value)
            elif update.metric in self.gauges:
                gauge = self.gauges[update.metric]
                (gauge.labels(*update.labels) if update.labels else gauge).inc(update.value)
            else:
                counter = self.counters[update.metric]
                (counter.labels(*update.labels) if update.labels else counter).inc(update.value)
        if name == "delivery":
            result = fields.get("result")
            if result in {"ok", "deferred", "failed"}:
                self.recent.add(str(result), time.time())
        elif name in _ACCEPT_EVENTS:
            self.recent.add("accepted", time.time())

    def close(self) -> None:
        self.recent.close()


_active: _Recorder | None = None
_saved_env: str | None = None


def _wipe(directory: str) -> None:
    """Remove the metric files of an earlier server run (only ours)."""
    for entry in os.scandir(directory):
        if entry.name.endswith(_OURS) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue


def init_metrics(state_dir: str, role: str) -> str | None:
    """Count this process's events into ``<state>/run/metrics``; returns that folder.

    ``role`` names the process: ``supervisor`` (or ``server``) starts the
    figures afresh, any other (``smtp``, ``mailbox``, ``delivery``,
    ``lspawn``) adds to them. Call it before the process logs anything
    worth counting, and in the supervisor before any worker starts. A
    process that cannot write the folder (another user owns it) goes on
    without metrics: None, and a warning in the log.
    """
    global _active, _saved_env
    if _ROLE.fullmatch(role) is None:
        raise ValueError(f"bad process role {role!r}")
    directory = metrics_dir(state_dir)
    try:
        fsio.ensure_dir(directory)
        if role in WIPING_ROLES:
            _wipe(directory)
        if _active is None:
            _saved_env = os.environ.get(ENV_DIR)
        else:
            _close_active()
        # Children inherit the variable; prometheus_client picks the value
        # class when imported, so set it here for metrics created from now on.
        os.environ[ENV_DIR] = directory
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        _active = _Recorder(directory)
    except OSError as exc:
        values.ValueClass = values.MutexValue
        log.event("metrics.unavailable", level=logging.WARNING, role=role, error=str(exc))
        return None
    log.set_event_hook(_active)
    return directory


def process_exited(state_dir: str, pid: int) -> None:
    """A child process is gone: drop its share of the live gauges (open
    connections); its counters stay in the totals."""
    with contextlib.suppress(FileNotFoundError):
        mark_process_dead(pid, metrics_dir(state_dir))  # type: ignore[no-untyped-call]


def _close_active() -> None:
    global _active
    if _active is not None:
        log.set_event_hook(None)
        _active.close()
        values.ValueClass.close_all_files()
        _active = None


def reset_metrics() -> None:
    """Stop counting in this process (tests, and a process about to exit)."""
    global _saved_env
    if _active is None:
        return
    _close_active()
    if _saved_env is None:
        os.environ.pop(ENV_DIR, None)
    else:
        os.environ[ENV_DIR] = _saved_env
    _saved_env = None
    values.ValueClass = values.MutexValue


def active_dir() -> str | None:
    """The folder this process counts into, if any."""
    return _active.directory if _active is not None else None


def setup_process(config: Config, role: str) -> None:
    """Logs as ``[log]`` says, and metrics: the first call of every mailyard process."""
    settings = config.log
    log.configure(
        settings.level,
        settings.format,
        file=config.path(settings.file) if settings.file else None,
        max_bytes=settings.max_bytes,
        keep=settings.keep,
    )
    init_metrics(config.state_dir, role)


def registry_for(directory: str, extra: Iterable[Collector] = ()) -> CollectorRegistry:
    """A registry that sums every process's files in ``directory``, plus ``extra``."""
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    for collector in extra:
        registry.register(collector)
    return registry


def snapshot(directory: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample in ``directory`` summed over processes: name → labels → value.

    An empty dict when the folder does not exist (no server ran here).
    """
    if not os.path.isdir(directory):
        return {}
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    collector = MultiProcessCollector(None, path=directory)  # type: ignore[no-untyped-call]
    for family in collector.collect():  # type: ignore[no-untyped-call]
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            found.setdefault(sample.name, {})[labels] = sample.value
    return found
