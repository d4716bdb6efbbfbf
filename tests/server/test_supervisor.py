"""The supervisor's pieces: [server] settings, binding, the channel's lines, backoff.

The processes themselves are tested end to end (tests/e2e/test_supervise_e2e.py).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.config import ConfigError, ListenAddress, ServerConfig, load_config
from mailyard.server.app import ROLE_OF, Role, listen_addresses
from mailyard.server.child import beat_interval, decode, encode
from mailyard.server.supervisor import bind_address
from mailyard.server.workers import RESTART_MAX, restart_delay


def server_section(tmp_path: Path, body: str) -> ServerConfig:
    (tmp_path / "mailyard.toml").write_text(f"[server]\n{body}\n")
    return load_config(str(tmp_path)).server


def test_defaults_run_one_process_per_role_as_the_invoking_user(tmp_path: Path) -> None:
    assert server_section(tmp_path, "") == ServerConfig()
    assert ServerConfig() == ServerConfig(user="", mail_user="", imap_workers=1,
                                          pop3_workers=1, watchdog=60.0, stop_grace=10.0)


@pytest.mark.parametrize(("body", "expected"), [
    ('imap_workers = "auto"', {"imap_workers": os.cpu_count() or 1}),
    ("pop3_workers = 3", {"pop3_workers": 3}),
    ('watchdog = "90s"', {"watchdog": 90.0}),
    ('watchdog = "2m"', {"watchdog": 120.0}),
    ("stop_grace = 2.5", {"stop_grace": 2.5}),
    ('stop_grace = "30"', {"stop_grace": 30.0}),
    ('user = "mailyard"\nmail_user = "vmail"', {"user": "mailyard", "mail_user": "vmail"}),
])
def test_server_settings(tmp_path: Path, body: str, expected: dict[str, object]) -> None:
    section = server_section(tmp_path, body)
    assert {k: getattr(section, k) for k in expected} == expected


@pytest.mark.parametrize("body", [
    "imap_workers = 0", "imap_workers = 257", 'imap_workers = "many"', "imap_workers = true",
    "watchdog = 0", 'watchdog = "soon"', "stop_grace = -1", 'watchdog = "1h"',
    "user = 7", "workers = 2",
])
def test_bad_server_settings_name_the_key(tmp_path: Path, body: str) -> None:
    with pytest.raises(ConfigError, match="server"):
        server_section(tmp_path, body)


@given(st.one_of(st.text(max_size=12), st.integers(), st.floats(allow_nan=True),
                 st.booleans(), st.lists(st.integers(), max_size=2)))
def test_any_duration_value_is_parsed_or_refused(value: object) -> None:
    from mailyard.config import _parse_server

    try:
        section = _parse_server({"watchdog": value})
    except ConfigError:
        return
    assert 0 < section.watchdog <= 86400


def test_bind_address_listens_on_a_kernel_chosen_port() -> None:
    (sock,) = bind_address(ListenAddress("127.0.0.1", 0))
    try:
        host, port = sock.getsockname()
        assert host == "127.0.0.1" and port > 0
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert not sock.get_inheritable()  # handed on only through pass_fds
        with socket.create_connection((host, port), timeout=5):
            pass
    finally:
        sock.close()


def test_bind_address_fails_on_a_port_in_use() -> None:
    (first,) = bind_address(ListenAddress("127.0.0.1", 0))
    try:
        with pytest.raises(OSError):
            bind_address(ListenAddress("127.0.0.1", first.getsockname()[1]))
    finally:
        first.close()


def test_every_listener_has_a_role(tmp_path: Path) -> None:
    (tmp_path / "mailyard.toml").write_text(
        '[submission]\nlisten = ["127.0.0.1:0"]\nlisten_tls = ["127.0.0.1:0"]\n'
        '[qmtp]\nlisten = ["127.0.0.1:0"]\n'
        '[qmqp]\nlisten = ["127.0.0.1:0"]\nclients = ["127.0.0.1/32"]\n'
        '[pop3]\nlisten_tls = ["127.0.0.1:0"]\n[imap]\nlisten_tls = ["127.0.0.1:0"]\n')
    names = listen_addresses(load_config(str(tmp_path)))
    assert set(names) == set(ROLE_OF)
    assert {ROLE_OF[n] for n in ("imap", "imaps", "pop3", "pop3s")} == {Role.MAILBOX}


def test_restart_delay_doubles_up_to_a_minute() -> None:
    assert [restart_delay(n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert restart_delay(0) == 1 and restart_delay(1000) == RESTART_MAX


def test_heartbeats_come_several_times_per_watchdog_period() -> None:
    assert beat_interval(60.0) == 1.0
    assert beat_interval(2.0) == 0.5


def test_channel_lines_round_trip() -> None:
    message = {"t": "notify", "ids": ["a", "b"], "grace": 2.5}
    line = encode(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode(line) == message


@given(st.binary(max_size=200))
def test_decode_never_raises(data: bytes) -> None:
    value = decode(data)
    assert value is None or isinstance(value, dict)


@given(st.dictionaries(st.text(max_size=8),
                       st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                                    lambda inner: st.lists(inner, max_size=3), max_leaves=5),
                       max_size=5))
def test_decode_of_encode_is_identity(message: dict[str, object]) -> None:
    assert decode(encode(message)) == json.loads(json.dumps(message))


@given(st.one_of(st.none(), st.integers(), st.text(max_size=5),
                 st.dictionaries(st.text(max_size=70),
                                 st.one_of(st.integers(), st.booleans(), st.text(max_size=3),
                                           st.none()), max_size=300)))
def test_a_workers_figures_are_taken_as_numbers_only(value: object) -> None:
    from mailyard.server.workers import _counts

    counts = _counts(value)
    assert len(counts) <= 256
    assert all(len(k) <= 64 and type(v) is int for k, v in counts.items())
