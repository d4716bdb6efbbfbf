"""Routes (qmail's smtproutes) and the remote-delivery settings builder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.config import Config
from mailyard.dispatch.routes import (
    Route,
    RouteTable,
    SettingsError,
    TlsPolicy,
    parse_hostport,
    parse_routes,
)
from mailyard.dispatch.settings import (
    DELIVERY_KEYS,
    QUEUE_KEYS,
    RemoteMode,
    RemoteSettings,
    Timeouts,
    build_settings,
    settings_from_config,
)


def test_lookup_order_is_qmail_remotes() -> None:
    table = parse_routes({
        "example.com": "exact.test:2525",
        ".example.com": "sub.test",
        "": "[192.0.2.1]:587",
        "direct.example.com": "",  # MX for this one, despite the default route
    })
    assert table.lookup("example.com") == Route("exact.test", 2525)
    assert table.lookup("a.b.example.com") == Route("sub.test", 25)
    assert table.lookup("EXAMPLE.COM") == Route("exact.test", 2525)
    assert table.lookup("elsewhere.org") == Route("[192.0.2.1]", 587)
    direct = table.lookup("direct.example.com")
    assert direct is not None and direct.uses_mx
    assert RouteTable().lookup("example.com") is None


def test_a_route_table_with_auth_and_tls(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2\n")
    table = parse_routes({"": {"host": "smtp.example.net", "port": 587, "user": "me",
                               "password_file": str(secret)}})
    route = table.lookup("x.test")
    assert route == Route("smtp.example.net", 587, TlsPolicy.REQUIRED, "me", "hunter2")
    assert "hunter2" not in repr(route)  # never in logs
    implicit = parse_routes({"": {"host": "smtp.example.net:465", "tls": "implicit"}})
    assert implicit.routes[""].tls is TlsPolicy.IMPLICIT
    assert implicit.routes[""].port == 465


@pytest.mark.parametrize(("value", "message"), [
    ({"host": "a.test", "tls": "maybe"}, "tls must be"),
    ({"host": "a.test", "user": "me"}, "go together"),
    ({"host": "a.test", "port": 70000}, "port"),
    ({"host": "a.test", "colour": "red"}, "unknown key"),
    ({"host": "-bad-.test"}, "bad host"),
    ({"user": "me", "password_file": "/nonexistent/pw"}, "cannot read"),
    ("a.test:0", "bad port"),
    ("[1.2.3]:25", "address literal"),
    ("[::1", "unclosed"),
    (25, "host:port"),
])
def test_bad_routes_name_the_key(value: object, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse_routes({"example.com": value})


def test_route_keys_must_be_domains() -> None:
    with pytest.raises(SettingsError):
        parse_routes({"exa mple.com": "a.test"})
    with pytest.raises(SettingsError):
        parse_routes(["not", "a", "table"])


hosts = st.from_regex(r"[a-z][a-z0-9]{0,10}(\.[a-z][a-z0-9]{0,10}){1,3}", fullmatch=True)


@given(hosts, st.integers(1, 65535))
def test_host_port_round_trip(host: str, port: int) -> None:
    assert parse_hostport(f"{host}:{port}", "t") == (host, port)
    assert parse_hostport(f"[127.0.0.{port % 256}]:{port}", "t") == (
        f"[127.0.0.{port % 256}]", port)


@given(st.text(max_size=40))
def test_host_port_never_raises_anything_but_settings_error(text: str) -> None:
    try:
        parse_hostport(text, "t")
    except SettingsError:
        pass


def test_defaults() -> None:
    settings = build_settings({})
    assert settings == RemoteSettings()
    assert settings.mode is RemoteMode.HOLD  # remote delivery stays held by default
    assert (settings.concurrency, settings.per_destination, settings.retry_skip) == (20, 5, 20)
    assert settings.delay_warning == 0.0
    # RFC 5321 §4.5.3.2 minimums.
    assert settings.timeouts == Timeouts(30.0, 300.0, 120.0, 180.0, 600.0)
    assert settings.helo_name("mx.example.test") == "mx.example.test"


def test_every_key() -> None:
    settings = build_settings({
        "remote": "deliver", "remote_concurrency": 7, "per_destination": 2,
        "helo": "out.example.test", "smtp_port": 2525, "resolver": ["127.0.0.1:5353", "::1"],
        "dns_timeout": 3, "connect_timeout": 4, "command_timeout": 5, "data_timeout": 6,
        "data_block_timeout": 7, "data_end_timeout": 8, "chunking": True,
        "routes": {"": "smart.test"},
    }, {"retry_skip_remote": 30, "delay_warning": 14400})
    assert settings.mode is RemoteMode.DELIVER
    assert settings.resolver == (("127.0.0.1", 5353), ("::1", 53))
    assert settings.timeouts == Timeouts(4.0, 5.0, 6.0, 7.0, 8.0)
    assert (settings.retry_skip, settings.delay_warning) == (30, 14400.0)
    assert settings.helo_name("ignored") == "out.example.test"
    assert settings.routes.lookup("x.test") == Route("smart.test")


@pytest.mark.parametrize(("delivery", "queue"), [
    ({"remote": "send"}, {}),
    ({"remote_concurrency": 0}, {}),
    ({"per_destination": True}, {}),
    ({"connect_timeout": 0}, {}),
    ({"command_timeout": float("nan")}, {}),
    ({"smtp_port": 70000}, {}),
    ({"resolver": "127.0.0.1"}, {}),
    ({"helo": "two words"}, {}),
    ({"chunking": "yes"}, {}),
    ({"remote_concurency": 3}, {}),
    ({}, {"retry_skip_remote": 0}),
    ({}, {"delay_warning": -1}),
    ({}, {"lifetime": 3}),
])
def test_bad_settings_are_refused(delivery: dict[str, object], queue: dict[str, object]) -> None:
    with pytest.raises(SettingsError):
        build_settings(delivery, queue)


values = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(),
                   st.text(max_size=12), st.lists(st.text(max_size=12), max_size=3),
                   st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=3))


@given(st.dictionaries(st.sampled_from(sorted(DELIVERY_KEYS)), values, max_size=6),
       st.dictionaries(st.sampled_from(sorted(QUEUE_KEYS)), values, max_size=2))
def test_the_builder_never_raises_anything_but_settings_error(
    delivery: dict[str, object], queue: dict[str, object]
) -> None:
    try:
        build_settings(delivery, queue)
    except SettingsError:
        pass


def test_settings_from_a_loaded_configuration() -> None:
    config = Config(state_dir="/nonexistent")
    assert settings_from_config(config) == RemoteSettings()

    # Once config.py has the keys, same names, they flow through unchanged.
    @dataclasses.dataclass(frozen=True)
    class Delivery:
        remote: str = "deliver"
        local_concurrency: int = 4
        resolver: tuple[str, ...] = ("127.0.0.1:53",)

    @dataclasses.dataclass(frozen=True)
    class QueueSection:
        lifetime: int = 3
        delay_warning: float = 60.0

    wired = dataclasses.replace(config, delivery=Delivery(), queue=QueueSection())  # type: ignore[arg-type]
    settings = settings_from_config(wired)
    assert settings.mode is RemoteMode.DELIVER and settings.delay_warning == 60.0
    assert settings.resolver == (("127.0.0.1", 53),)
