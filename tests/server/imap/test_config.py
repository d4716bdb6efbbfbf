"""The ``[imap]`` section: defaults, types, the RFC 9051 §5.4 floor, and the
certificate an IMAPS listener needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailyard.config import ConfigError, ImapConfig, load_config
from mailyard.server.app import load_tls
from mailyard.server.tls import TlsError


def _config(tmp_path: Path, text: str) -> Path:
    (tmp_path / "mailyard.toml").write_text('hostname = "mx.example.test"\n' + text)
    return tmp_path


def test_defaults(tmp_path: Path) -> None:
    imap = load_config(str(_config(tmp_path, ""))).imap
    assert imap == ImapConfig()
    assert imap.listen == ("127.0.0.1:2143",) and imap.listen_tls == ()
    assert imap.timeout_authenticated >= 1800


def test_keys_are_read(tmp_path: Path) -> None:
    imap = load_config(str(_config(tmp_path, """
[imap]
listen = ["127.0.0.1:0"]
max_connections_per_ip = 50
timeout_unauthenticated = 5
max_append_size = 1000
"""))).imap
    assert imap.listen == ("127.0.0.1:0",)
    assert imap.max_connections_per_ip == 50 and imap.max_append_size == 1000
    assert imap.timeout_unauthenticated == 5.0


@pytest.mark.parametrize("text, message", [
    ("timeout_authenticated = 600", "at least 1800"),
    ("timeout_idle = 60", "at least 1800"),
    ("max_line_length = 1000", "at least 8192"),
    ("max_command_size = 9000\nmax_line_length = 10000", "max_command_size"),
    ("max_connections = 0", "greater than 0"),
    ("listen = [\"nowhere\"]", "host:port"),
    ("bogus = 1", r"unknown key imap\.bogus"),
])
def test_bad_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(str(_config(tmp_path, "[imap]\n" + text + "\n")))


def test_imaps_needs_a_certificate(tmp_path: Path) -> None:
    config = load_config(str(_config(tmp_path, '[imap]\nlisten_tls = ["127.0.0.1:0"]\n')))
    with pytest.raises(TlsError, match=r"imap\.listen_tls"):
        load_tls(config)
