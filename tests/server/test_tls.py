"""server.tls: the server context, its reload, and the self-signed certificate."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from mailyard.config import ConfigError, load_config
from mailyard.server.tls import (
    TlsError,
    TlsManager,
    build_context,
    certificate_info,
    ensure_self_signed,
    generate_self_signed,
)


def make_cert(directory: Path, hostname: str = "mx.example.test") -> tuple[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = str(directory / "cert.pem"), str(directory / "key.pem")
    generate_self_signed(hostname, cert, key)
    return cert, key


def load(path: str) -> x509.Certificate:
    with open(path, "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read())


def test_self_signed_certificate(tmp_path: Path) -> None:
    now = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    cert_path, key_path = str(tmp_path / "c.pem"), str(tmp_path / "sub" / "k.pem")
    generate_self_signed("MX.Example.Test", cert_path, key_path, now=now)
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cert_path).st_mode) & 0o022 == 0  # 0644 less the umask
    cert = load(cert_path)
    assert cert.issuer == cert.subject
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mx.example.test", "localhost"]
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.not_valid_after_utc - now == datetime.timedelta(days=825)
    # It works as its own trust anchor with host name checking.
    client = ssl.create_default_context(cafile=cert_path)
    assert client.check_hostname
    build_context(cert_path, key_path)  # and the key matches


def test_each_certificate_is_new(tmp_path: Path) -> None:
    first, second = load(make_cert(tmp_path / "a")[0]), load(make_cert(tmp_path / "b")[0])
    assert first.serial_number != second.serial_number


def test_server_context_policy(tmp_path: Path) -> None:
    context = build_context(*make_cert(tmp_path))
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.options & ssl.OP_NO_RENEGOTIATION
    ciphers = context.get_ciphers()
    assert ciphers and all(c["aead"] for c in ciphers)
    assert all(c["kea"] in ("kx-ecdhe", "kx-any") for c in ciphers)  # forward secret
    assert build_context(*make_cert(tmp_path), min_version="1.3").minimum_version is (
        ssl.TLSVersion.TLSv1_3)


def test_unusable_files(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    with pytest.raises(TlsError, match="no such file"):
        build_context(str(tmp_path / "missing.pem"), key)
    _, other_key = make_cert(tmp_path / "o")
    with pytest.raises(TlsError):
        build_context(cert, other_key)  # a key that is not the certificate's
    (tmp_path / "junk.pem").write_text("-----BEGIN CERTIFICATE-----\njunk\n")
    with pytest.raises(TlsError):
        build_context(str(tmp_path / "junk.pem"), key)
    with pytest.raises(TlsError):
        certificate_info(str(tmp_path / "junk.pem"))


def test_reload_takes_new_files_and_refuses_broken_ones(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    manager = TlsManager(cert, key, "1.2", 30.0)
    first_context, first_serial = manager.context, manager.info.serial
    generate_self_signed("mx.example.test", cert, key)
    assert manager.reload()
    assert manager.context is not first_context
    assert manager.info.serial == load(cert).serial_number != first_serial
    current = manager.context
    with open(cert, "w") as handle:
        handle.write("not a certificate")
    assert not manager.reload()
    assert manager.context is current  # the working one stays
    os.unlink(key)
    assert not manager.reload()
    assert manager.context is current


def _state(tmp_path: Path, text: str = "") -> Path:
    state = tmp_path / "state"
    state.mkdir()
    (state / "mailyard.toml").write_text('hostname = "mx.example.test"\n' + text)
    return state


def test_from_config_and_ensure_self_signed(tmp_path: Path) -> None:
    state = _state(tmp_path)
    config = load_config(str(state))
    assert TlsManager.from_config(config) is None  # no files: TLS is off
    assert ensure_self_signed(config)
    assert not ensure_self_signed(config)  # never overwrites
    manager = TlsManager.from_config(config)
    assert manager is not None and manager.info.subject == "CN=mx.example.test"
    os.unlink(state / "tls" / "key.pem")
    with pytest.raises(TlsError, match=r"key\.pem"):
        TlsManager.from_config(config)  # one file without the other is an error
    assert not ensure_self_signed(config)  # and is left for the operator


def test_absolute_paths(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    config = load_config(str(_state(tmp_path, f'[tls]\ncert = "{cert}"\nkey = "{key}"\n')))
    manager = TlsManager.from_config(config)
    assert manager is not None and manager.cert_path == cert


@pytest.mark.parametrize("text", [
    '[tls]\nmin_version = "1.1"',
    '[tls]\ncert = ""',
    "[tls]\nhandshake_timeout = 0",
    "[tls]\nloopback_plaintext_auth = 1",
    '[submission]\nsender_check = "loose"',
    '[submission]\nlisten = ["nohost"]',
    '[pop3]\nlisten_tls = ["nohost"]',
    "[submission]\nmax_header_size = 0",
    "[login]\nmax_account_failures = 0",
    "[smtp]\nauth = \"yes\"",
])
def test_bad_tls_and_submission_config(tmp_path: Path, text: str) -> None:
    state = _state(tmp_path, text)
    with pytest.raises(ConfigError):
        load_config(str(state))


def test_tls_and_submission_defaults(tmp_path: Path) -> None:
    config = load_config(str(tmp_path))
    assert (config.tls.cert, config.tls.key, config.tls.min_version) == (
        "tls/cert.pem", "tls/key.pem", "1.2")
    assert not config.tls.loopback_plaintext_auth
    assert config.submission.listen == config.submission.listen_tls == ()
    assert config.submission.sender_check == "strict"
    assert config.pop3.listen_tls == ()
    assert not config.smtp.auth
