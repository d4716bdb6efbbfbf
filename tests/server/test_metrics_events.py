"""observe.events: which log event moves which metric (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailyard.observe.events import (
    DELIVERY_RESULTS,
    METRICS,
    SERVICES,
    MetricKind,
    Op,
    Update,
    updates,
)

SPECS = {spec.name: spec for spec in METRICS}

names = st.one_of(
    st.sampled_from(["delivery", "remote.session", "queue.done", "bounce.queued",
                     "tls.established", "tls.handshake_failed", "imap.error"]),
    st.builds(lambda s, w: f"{s}.{w}", st.sampled_from(sorted(SERVICES)),
              st.sampled_from(["connect", "close", "refused", "accept", "login", "auth",
                               "command", "relay_denied", "error", "other"])),
    st.text(max_size=30),
)
values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                   st.text(max_size=40), st.binary(max_size=10))
fields = st.dictionaries(st.sampled_from(["result", "service", "command", "latency", "reason",
                                          "ip", "user"]) | st.text(max_size=8),
                         values, max_size=6)


@given(names, fields)
def test_never_crashes_and_stays_in_the_table(name: str, data: dict[str, object]) -> None:
    for update in updates(name, data):
        spec = SPECS[update.metric]
        assert len(update.labels) == len(spec.labels)
        if spec.kind is MetricKind.HISTOGRAM:
            assert update.op is Op.OBSERVE and update.value >= 0
        if "service" in spec.labels:
            assert update.labels[spec.labels.index("service")] in SERVICES
        if spec.name == "mailyard_deliveries":
            assert update.labels[0] in (*DELIVERY_RESULTS, "other")


@given(st.text(max_size=40))
def test_a_client_cannot_add_label_values(command: str) -> None:
    # Label values come from fixed sets, whatever the client typed.
    (update,) = updates("smtp.command", {"command": command})
    assert update.labels[1] == "other" or update.labels[1].isupper()
    assert len(update.labels[1]) <= 16


def test_connections_open_and_close() -> None:
    assert updates("imaps.connect", {"ip": "127.0.0.1", "port": 4}) == (
        Update("mailyard_connections", ("imaps",), Op.INC),
        Update("mailyard_connections_active", ("imaps",), Op.INC),
    )
    assert updates("imaps.close", {"reason": "closed"}) == (
        Update("mailyard_connections_active", ("imaps",), Op.DEC),
    )
    assert updates("smtp.refused", {"reason": "connection limit"}) == (
        Update("mailyard_connections_refused", ("smtp",), Op.INC),
    )


def test_delivery_with_latency() -> None:
    assert updates("delivery", {"result": "ok", "latency": 0.25}) == (
        Update("mailyard_deliveries", ("ok",), Op.INC),
        Update("mailyard_delivery_latency_seconds", (), Op.OBSERVE, 0.25),
    )
    # Without a latency field (or a nonsense one) only the count moves.
    assert updates("delivery", {"result": "ok"}) == (Update("mailyard_deliveries", ("ok",),
                                                            Op.INC),)
    assert len(updates("delivery", {"result": "ok", "latency": -5})) == 1
    assert len(updates("delivery", {"result": "ok", "latency": True})) == 1
    assert updates("delivery", {"result": "failed", "latency": 1.0}) == (
        Update("mailyard_deliveries", ("failed",), Op.INC),)


def test_accept_counts_the_listener_named_in_the_event() -> None:
    assert updates("smtp.accept", {"service": "submission"}) == (
        Update("mailyard_messages_accepted", ("submission",), Op.INC),)
    assert updates("qmtp.accept", {"id": "x"}) == (
        Update("mailyard_messages_accepted", ("qmtp",), Op.INC),)


def test_failed_and_throttled_logins_are_auth_failures() -> None:
    assert updates("pop3.login", {"result": "failed"}) == (
        Update("mailyard_logins", ("pop3", "failed"), Op.INC),
        Update("mailyard_auth_failures", ("pop3",), Op.INC),
    )
    assert updates("smtp.auth", {"service": "smtps", "result": "throttled"})[1] == Update(
        "mailyard_auth_failures", ("smtps",), Op.INC)
    assert updates("imap.login", {"result": "ok"}) == (
        Update("mailyard_logins", ("imap", "ok"), Op.INC),)


def test_tls_remote_notices_and_errors() -> None:
    assert updates("tls.established", {})[0].labels == ("ok",)
    assert updates("tls.handshake_failed", {})[0].labels == ("failed",)
    assert updates("remote.session", {"result": "host failed"})[0].labels == ("failed",)
    assert updates("remote.session", {"result": "done"})[0].labels == ("ok",)
    assert updates("bounce.queued", {})[0].labels == ("bounce",)
    assert updates("imap.error", {}) == (Update("mailyard_errors", ("imap.error",), Op.INC),)
    assert updates("smtp.error", {}) == (Update("mailyard_errors", ("smtp.error",), Op.INC),)
    assert updates("listen", {"service": "smtp"}) == ()
