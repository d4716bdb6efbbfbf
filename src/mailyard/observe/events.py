"""Which log event moves which metric: a table, and a pure function over it.

Nearly everything worth counting is already logged once through
``log.event(name, **fields)``; ``updates(name, fields)`` says what that event
does to the metrics, so no call site counts anything twice. Label values
come only from fixed sets (service names, results): a client can choose
what it sends, but never add a time series.

Names follow Prometheus' conventions (``_total`` for counters, base units,
``mailyard_`` prefix); docs/operations.md lists them.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "DELIVERY_RESULTS",
    "LATENCY_BUCKETS",
    "METRICS",
    "SERVICES",
    "MetricKind",
    "MetricSpec",
    "Op",
    "Update",
    "updates",
]


class MetricKind(enum.Enum):
    COUNTER = "counter"
    GAUGE = "gauge"  # summed over live processes
    HISTOGRAM = "histogram"


class Op(enum.Enum):
    INC = "inc"
    DEC = "dec"
    OBSERVE = "observe"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str  # without the _total suffix prometheus_client adds to counters
    kind: MetricKind
    help: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Update:
    metric: str
    labels: tuple[str, ...]  # values, in the spec's label order
    op: Op
    value: float = 1.0


SERVICES: Final = frozenset(
    {"smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps", "qmtp", "qmqp"}
)
DELIVERY_RESULTS: Final = ("ok", "deferred", "failed")
# Seconds from a message's arrival to a recipient's delivery: local mail
# takes milliseconds, retried mail hours, the queue lifetime is 7 days.
LATENCY_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0, 604800.0,
)
_COMMAND: Final = re.compile(r"[A-Za-z]{1,16}", re.ASCII)
# Commands the protocols define (RFC 5321, 1939, 2449, 9051 and extensions);
# anything else is counted as "other", so a client cannot grow the label set.
_KNOWN_COMMANDS: Final = frozenset({
    "EHLO", "HELO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT", "VRFY", "EXPN",
    "HELP", "STARTTLS", "AUTH", "USER", "PASS", "APOP", "STAT", "LIST", "RETR", "DELE", "TOP",
    "UIDL", "CAPA", "STLS", "LOGIN", "LOGOUT", "CAPABILITY", "AUTHENTICATE", "SELECT",
    "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LSUB", "NAMESPACE",
    "STATUS", "APPEND", "IDLE", "CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH",
    "STORE", "COPY", "MOVE", "UID", "ENABLE", "ID", "GETQUOTA", "GETQUOTAROOT", "SORT",
    "THREAD",
})
# Besides "<service>.error" (a session's unexpected exception, counted with
# the service's other events):
_ERROR_EVENTS: Final = frozenset({
    "queue.error", "queue.corrupt", "delivery.pass_error", "delivery.child_lost",
    "smtp.storage_error", "qmtp.storage_error", "qmqp.storage_error", "imap.store_error",
    "imap.append_failed", "pop3.maildrop_error", "pop3.read_error", "pop3.delete_error",
    "imap.maildir_error",
})

METRICS: Final = (
    MetricSpec("mailyard_connections", MetricKind.COUNTER,
               "Connections accepted, per service.", ("service",)),
    MetricSpec("mailyard_connections_refused", MetricKind.COUNTER,
               "Connections refused over a connection limit, per service.", ("service",)),
    MetricSpec("mailyard_connections_active", MetricKind.GAUGE,
               "Connections open now, per service.", ("service",)),
    MetricSpec("mailyard_commands", MetricKind.COUNTER,
               "Protocol commands received, per service and command.", ("service", "command")),
    MetricSpec("mailyard_messages_accepted", MetricKind.COUNTER,
               "Messages committed to the queue, per receiving service.", ("service",)),
    MetricSpec("mailyard_deliveries", MetricKind.COUNTER,
               "Delivery attempts per recipient: ok, deferred (retried) or failed (bounced).",
               ("result",)),
    MetricSpec("mailyard_delivery_latency_seconds", MetricKind.HISTOGRAM,
               "Seconds from a message's arrival in the queue to a recipient's delivery."),
    MetricSpec("mailyard_messages_completed", MetricKind.COUNTER,
               "Messages removed from the queue with every recipient done."),
    MetricSpec("mailyard_notices_queued", MetricKind.COUNTER,
               "Delivery notices queued: bounce, delay warning, or discarded.", ("kind",)),
    MetricSpec("mailyard_logins", MetricKind.COUNTER,
               "Login attempts per service and result (ok, failed, throttled, in-use).",
               ("service", "result")),
    MetricSpec("mailyard_auth_failures", MetricKind.COUNTER,
               "Failed or throttled logins, per service.", ("service",)),
    MetricSpec("mailyard_relay_denied", MetricKind.COUNTER,
               "Recipients refused because relaying was not allowed, per service.",
               ("service",)),
    MetricSpec("mailyard_tls_handshakes", MetricKind.COUNTER,
               "TLS handshakes on our listeners, ok or failed.", ("result",)),
    MetricSpec("mailyard_remote_sessions", MetricKind.COUNTER,
               "SMTP sessions to remote hosts: ok, failed or connect_failed.", ("result",)),
    MetricSpec("mailyard_delivery_worker_starts", MetricKind.COUNTER,
               "Starts of the delivery worker (the first one and every restart)."),
    MetricSpec("mailyard_errors", MetricKind.COUNTER,
               "Unexpected errors and storage failures, per event name.", ("event",)),
)


def _service_of(name: str) -> tuple[str, str] | None:
    service, sep, what = name.partition(".")
    if not sep or service not in SERVICES:
        return None
    return service, what


def _one(choice: str, allowed: frozenset[str] | tuple[str, ...], other: str = "other") -> str:
    return choice if choice in allowed else other


def _latency(fields: Mapping[str, object]) -> Update | None:
    value = fields.get("latency")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 0 <= value < 10 * 604800:  # a clock jump is not a latency
        return None
    return Update("mailyard_delivery_latency_seconds", (), Op.OBSERVE, float(value))


def _delivery(fields: Mapping[str, object]) -> tuple[Update, ...]:
    result = _one(str(fields.get("result", "")), DELIVERY_RESULTS)
    found: list[Update] = [Update("mailyard_deliveries", (result,), Op.INC)]
    if result == "ok":
        latency = _latency(fields)
        if latency is not None:
            found.append(latency)
    return tuple(found)


def _login(service: str, fields: Mapping[str, object]) -> tuple[Update, ...]:
    result = _one(str(fields.get("result", "")), ("ok", "failed", "throttled", "in-use"))
    found = [Update("mailyard_logins", (service, result), Op.INC)]
    if result in {"failed", "throttled"}:
        found.append(Update("mailyard_auth_failures", (service,), Op.INC))
    return tuple(found)


def _command(service: str, fields: Mapping[str, object]) -> Update:
    raw = str(fields.get("command", ""))
    verb = raw.upper() if _COMMAND.fullmatch(raw) else ""
    return Update("mailyard_commands", (service, _one(verb, _KNOWN_COMMANDS)), Op.INC)


def _service_event(service: str, what: str, fields: Mapping[str, object]) -> tuple[Update, ...]:
    if what == "connect":
        return (Update("mailyard_connections", (service,), Op.INC),
                Update("mailyard_connections_active", (service,), Op.INC))
    if what == "close":
        return (Update("mailyard_connections_active", (service,), Op.DEC),)
    if what == "refused" and fields.get("reason") == "connection limit":
        return (Update("mailyard_connections_refused", (service,), Op.INC),)
    if what == "accept":
        # smtp.accept names the listener (smtp, submission, smtps) itself.
        named = str(fields.get("service", service))
        return (Update("mailyard_messages_accepted", (_one(named, SERVICES, service),), Op.INC),)
    if what in {"login", "auth"}:
        named = str(fields.get("service", service))
        return _login(_one(named, SERVICES, service), fields)
    if what == "command":
        return (_command(service, fields),)
    if what == "relay_denied":
        return (Update("mailyard_relay_denied", (service,), Op.INC),)
    if what == "error":
        return (Update("mailyard_errors", (f"{service}.error",), Op.INC),)
    return ()


_SIMPLE: Final[Mapping[str, Update]] = {
    "queue.done": Update("mailyard_messages_completed", (), Op.INC),
    "bounce.queued": Update("mailyard_notices_queued", ("bounce",), Op.INC),
    "delay.queued": Update("mailyard_notices_queued", ("delay",), Op.INC),
    "bounce.discarded": Update("mailyard_notices_queued", ("discarded",), Op.INC),
    "tls.established": Update("mailyard_tls_handshakes", ("ok",), Op.INC),
    "tls.handshake_failed": Update("mailyard_tls_handshakes", ("failed",), Op.INC),
    "delivery.started": Update("mailyard_delivery_worker_starts", (), Op.INC),
    "remote.connect_failed": Update("mailyard_remote_sessions", ("connect_failed",), Op.INC),
}


# dispatch/remote.py: "done" (the host answered every recipient) or "host failed".
_REMOTE_RESULTS: Final = {"done": "ok", "host failed": "failed"}


def updates(name: str, fields: Mapping[str, object]) -> tuple[Update, ...]:
    """What the event ``name`` with ``fields`` does to the metrics (often nothing)."""
    if name == "delivery":
        return _delivery(fields)
    if name == "remote.session":
        result = _REMOTE_RESULTS.get(str(fields.get("result", "")), "other")
        return (Update("mailyard_remote_sessions", (result,), Op.INC),)
    found: tuple[Update, ...] = ()
    simple = _SIMPLE.get(name)
    if simple is not None:
        found = (simple,)
    else:
        split = _service_of(name)
        if split is not None:
            found = _service_event(*split, fields)
    if name in _ERROR_EVENTS:
        found = (*found, Update("mailyard_errors", (name,), Op.INC))
    return found
