"""TLS for every listener: the server context, its reload, a self-signed start.

One certificate and key serve all services (issue 4: "one TLS
configuration"). ``build_context`` makes the server ``ssl.SSLContext``:
TLS 1.2 at least, forward-secret AEAD cipher suites only, no compression
(CRIME), no renegotiation (client-initiated renegotiation is a cheap
denial of service and the root of CVE-2009-3555).

``TlsManager`` holds the context in use. Every handshake asks it for the
current one, so a reload (SIGHUP) reaches new connections at once while
established sessions keep the context they shook hands with. A reload
whose files do not load (a half-copied certificate, a key that does not
match) is refused and logged; the previous context stays.

``generate_self_signed`` gives ``mailyard init`` and ``mailyard demo`` a
working certificate for the host name (and loopback), so TLS works from the
first start.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import logging
import os
import ssl
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mailyard import fsio
from mailyard.config import Config
from mailyard.log import event
from mailyard.message.address import AddressError, canonical_domain

__all__ = [
    "CIPHERS",
    "CertificateInfo",
    "TlsError",
    "TlsManager",
    "build_context",
    "certificate_info",
    "ensure_self_signed",
    "generate_self_signed",
]

# TLS 1.2 suites with ECDHE key exchange and an AEAD cipher (RFC 7525 §4.2,
# BCP 195); TLS 1.3 suites are all AEAD and forward secret already.
CIPHERS: Final = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"
_VERSIONS: Final = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
# Apple's limit for TLS server certificates; longer ones are refused there.
SELF_SIGNED_DAYS: Final = 825


class TlsError(Exception):
    """The certificate or key cannot be used; the message names the file."""


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    subject: str
    serial: int
    not_after: datetime.datetime


def build_context(cert_path: str, key_path: str, min_version: str = "1.2") -> ssl.SSLContext:
    """The server context for this certificate and key; TlsError if unusable."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[min_version]
    context.options |= (
        ssl.OP_NO_COMPRESSION
        | ssl.OP_NO_RENEGOTIATION
        | ssl.OP_CIPHER_SERVER_PREFERENCE
        | ssl.OP_SINGLE_ECDH_USE
    )
    context.set_ciphers(CIPHERS)
    try:
        context.load_cert_chain(cert_path, key_path)
    except FileNotFoundError as exc:
        raise TlsError(f"{exc.filename}: no such file") from exc
    except ssl.SSLError as exc:
        raise TlsError(f"{cert_path} / {key_path}: {exc.reason or exc}") from exc
    except OSError as exc:
        raise TlsError(f"{exc.filename or cert_path}: {exc.strerror or exc}") from exc
    return context


def certificate_info(cert_path: str) -> CertificateInfo:
    """Subject, serial and expiry of the first certificate in a PEM file."""
    try:
        with open(cert_path, "rb") as handle:
            cert = x509.load_pem_x509_certificate(handle.read())
    except (OSError, ValueError) as exc:
        raise TlsError(f"{cert_path}: {exc}") from exc
    return CertificateInfo(cert.subject.rfc4514_string(), cert.serial_number,
                           cert.not_valid_after_utc)


class TlsManager:
    """The context new handshakes use, replaced by ``reload()`` (SIGHUP)."""

    def __init__(self, cert_path: str, key_path: str, min_version: str,
                 handshake_timeout: float) -> None:
        self.cert_path = cert_path
        self.key_path = key_path
        self.min_version = min_version
        self.handshake_timeout = handshake_timeout
        self._context = build_context(cert_path, key_path, min_version)
        self.info = certificate_info(cert_path)

    @classmethod
    def from_config(cls, config: Config) -> TlsManager | None:
        """None when neither file exists (TLS is off); TlsError when only
        one does, or they do not load: a broken setup must not silently
        serve without TLS."""
        tls = config.tls
        cert, key = config.tls_path(tls.cert), config.tls_path(tls.key)
        present = [os.path.exists(cert), os.path.exists(key)]
        if not any(present):
            return None
        if not all(present):
            missing = cert if not present[0] else key
            raise TlsError(f"{missing}: no such file (the other TLS file exists)")
        return cls(cert, key, tls.min_version, tls.handshake_timeout)

    @property
    def context(self) -> ssl.SSLContext:
        return self._context

    def reload(self) -> bool:
        """Load the files again; on failure keep the current context."""
        try:
            context = build_context(self.cert_path, self.key_path, self.min_version)
            info = certificate_info(self.cert_path)
        except TlsError as exc:
            event("tls.reload_failed", level=logging.ERROR, error=str(exc),
                  kept_serial=f"{self.info.serial:x}")
            return False
        self._context, self.info = context, info
        event("tls.reloaded", subject=info.subject, serial=f"{info.serial:x}",
              not_after=info.not_after.isoformat())
        return True


# The default configuration listens on loopback, so the self-signed
# certificate also names it: clients there can verify it as they would any.
_LOOPBACK_NAMES: Final = (
    x509.DNSName("localhost"),
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    x509.IPAddress(ipaddress.ip_address("::1")),
)


def _subject_names(hostname: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(hostname.strip("[]"))))
    except ValueError:
        with contextlib.suppress(AddressError):
            names.append(x509.DNSName(canonical_domain(hostname)))
    return names + [n for n in _LOOPBACK_NAMES if n not in names]


def generate_self_signed(hostname: str, cert_path: str, key_path: str,
                         now: datetime.datetime | None = None) -> None:
    """Write a new ECDSA P-256 key (mode 0600) and a self-signed certificate
    for ``hostname`` (mode 0644), each atomically, the key first."""
    start = now or datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64] or "localhost")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # An hour of slack for clients whose clock is a little behind.
        .not_valid_before(start - datetime.timedelta(hours=1))
        .not_valid_after(start + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
    )
    # RFC 6125 §6.4.4: clients match the SAN, not the CN.
    builder = builder.add_extension(x509.SubjectAlternativeName(_subject_names(hostname)),
                                    critical=False)
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    for path, data, mode in ((key_path, key_pem, 0o600),
                             (cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)):
        directory = os.path.dirname(os.path.abspath(path))
        fsio.ensure_dir(directory)
        fsio.write_file_atomic(directory, os.path.basename(path), [data], mode=mode)


def ensure_self_signed(config: Config) -> bool:
    """Generate the configured certificate and key when neither exists;
    True if it did. Existing files, even only one of them, are never touched."""
    cert, key = config.tls_path(config.tls.cert), config.tls_path(config.tls.key)
    if os.path.exists(cert) or os.path.exists(key):
        return False
    generate_self_signed(config.hostname, cert, key)
    return True
