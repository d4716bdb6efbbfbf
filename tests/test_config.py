from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.cli.init_state import init_state
from mailyard.config import ConfigError, load_config, parse_listen


def test_defaults_without_file(tmp_path: Path) -> None:
    config = load_config(str(tmp_path))
    assert config.smtp.max_message_size == 50 * 1024 * 1024
    assert config.delivery.remote == "hold"


def test_template_is_valid(tmp_path: Path) -> None:
    assert init_state(str(tmp_path / "s"), "mx.example.test", "example.test")
    config = load_config(str(tmp_path / "s"))
    assert config.hostname == "mx.example.test"
    assert config.login.default_domain == "example.test"
    assert not init_state(str(tmp_path / "s"), None)


@pytest.mark.parametrize(
    "text",
    ["bogus = 1", "[smtp]\nmax_recipients = -1", "[smtp]\nlisten = 5", "[delivery]\nremote = \"maybe\"",
     "[smtp]\nnope = 1", "[log]\nformat = \"xml\"", "hostname = 3", "[smtp", "[smtp]\nlisten = [\"nohost\"]"],
)
def test_bad_config_is_refused(tmp_path: Path, text: str) -> None:
    (tmp_path / "mailyard.toml").write_text(text)
    with pytest.raises(ConfigError):
        load_config(str(tmp_path))


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:25").port == 25
    assert parse_listen("[::1]:2525").host == "::1"
    assert parse_listen(":25").host == "0.0.0.0"


@pytest.mark.parametrize(
    "text",
    [
        '[delivery]\nremote = "send"',
        '[qmqp]\nlisten = ["127.0.0.1:0"]',  # a QMQP listener nobody may use
        '[qmqp]\nclients = ["300.1.2.3/8"]',
        "[delivery]\nremote_concurrency = 0",
        "[delivery]\nlocal_concurrency = 0",
        "[smtp]\nmax_connections = 0",
        "[smtp]\ntimeout_command = 0",
        "[pop3]\nmax_line_length = 8",
        '[smtp]\nrelay_networks = ["10.0.0.0/33"]',
        '[smtp]\nrelay_networks = ["not a network"]',
    ],
)
def test_values_out_of_range_are_refused(tmp_path: Path, text: str) -> None:
    (tmp_path / "mailyard.toml").write_text(text)
    with pytest.raises(ConfigError):
        load_config(str(tmp_path))


@given(st.text(max_size=40))
def test_parse_listen_never_crashes(text: str) -> None:
    try:
        address = parse_listen(text)
    except ConfigError:
        return
    assert 0 <= address.port <= 65535
    assert parse_listen(str(address)) == address


@given(st.sampled_from(["127.0.0.1", "::1", "0.0.0.0", "192.0.2.7"]), st.integers(0, 65535))
def test_parse_listen_round_trip(host: str, port: int) -> None:
    text = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    assert parse_listen(text) == parse_listen(str(parse_listen(text)))
    assert parse_listen(text).port == port


def test_routes_take_strings_and_tables(tmp_path: Path) -> None:
    (tmp_path / "mailyard.toml").write_text(
        '[delivery]\nremote = "deliver"\n[delivery.routes]\n"" = "smart.example:587"\n'
        '"p.example" = { host = "mx.p.example", tls = "required" }\n'
    )
    config = load_config(str(tmp_path))
    assert config.delivery.routes[""] == "smart.example:587"
    assert config.delivery.routes["p.example"]["tls"] == "required"
