"""A real mailyard server in a subprocess, on loopback ports chosen by the kernel.

Readiness is explicit: the server writes run/ready.json once every listener
is bound; we wait for that file, never for a fixed time.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PASSWORD = "correct horse battery"
USERS = ("alice@example.test", "bob@example.test", "carol@example.net", "pm@example.test")
POSTMASTER = "pm@example.test"


HOSTNAME = "mx.example.test"


def write_config(
    state: Path, extra: str = "", *, tls: bool = False, sections: dict[str, str] | None = None
) -> None:
    """mailyard.toml for a test server on kernel-chosen loopback ports.

    ``tls``: generate a self-signed certificate for HOSTNAME in state/tls
    (the trust anchor of the tests: ``tls_client_context``) and listen on
    submission, SMTPS, POP3S and IMAPS too. ``sections`` adds raw TOML lines
    to a section (smtp, submission, tls, pop3, imap, login); ``extra`` is
    appended last.
    """
    state.mkdir(parents=True, exist_ok=True)
    more = dict(sections or {})
    tables = {
        "smtp": 'listen = ["127.0.0.1:0"]',
        "submission": "",
        "tls": "",
        "pop3": 'listen = ["127.0.0.1:0"]',
        "imap": 'listen = ["127.0.0.1:0"]',
        "login": 'default_domain = "example.test"\nfailure_delay = 0.05',
        "log": 'level = "debug"',
    }
    if tls:
        from mailyard.config import load_config
        from mailyard.server.tls import ensure_self_signed

        tables["submission"] = 'listen = ["127.0.0.1:0"]\nlisten_tls = ["127.0.0.1:0"]'
        tables["pop3"] += '\nlisten_tls = ["127.0.0.1:0"]'
        tables["imap"] += '\nlisten_tls = ["127.0.0.1:0"]'
        (state / "mailyard.toml").write_text(f'hostname = "{HOSTNAME}"\n')
        ensure_self_signed(load_config(str(state)))
    text = f'hostname = "{HOSTNAME}"\npostmaster = "{POSTMASTER}"\n'
    for name, body in tables.items():
        lines = "\n".join(x for x in (body, more.pop(name, "")) if x)
        if lines:
            text += f"[{name}]\n{lines}\n"
    if more:
        raise ValueError(f"unknown sections {sorted(more)}")
    (state / "mailyard.toml").write_text(text + extra)


def tls_client_context(state: Path) -> ssl.SSLContext:
    """A client context that trusts exactly the test server's certificate."""
    context = ssl.create_default_context(cafile=str(state / "tls" / "cert.pem"))
    return context


def provision(state: Path, users: tuple[str, ...] = USERS, password: str = PASSWORD) -> None:
    from mailyard.directory.admin import create_user
    from mailyard.directory.passwords import hash_password
    from mailyard.directory.store import Directory
    from mailyard.message.address import parse_address

    directory = Directory.open(str(state / "directory.sqlite"))
    try:
        hashed = hash_password(password)
        domains = {u.split("@")[1] for u in users}
        for domain in sorted(domains):
            directory.add_domain(domain)
        for user in users:
            create_user(directory, str(state / "mail"), parse_address(user), hashed)
    finally:
        directory.close()


@dataclass
class ServerProcess:
    state: Path
    proc: subprocess.Popen[bytes] | None = None
    listeners: dict[str, list[str]] = field(default_factory=dict)

    def start(self, timeout: float = 20.0) -> ServerProcess:
        ready = self.state / "run" / "ready.json"
        if ready.exists():
            ready.unlink()
        log = open(self.state / "server.log", "ab")
        env = dict(os.environ)
        env.pop("MAILYARD_CRASH_AT", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mailyard", "--state", str(self.state), "serve"],
            stdout=log, stderr=log, env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_tail()}")
            try:
                info = json.loads(ready.read_text())
            except (FileNotFoundError, ValueError):
                time.sleep(0.02)
                continue
            if info.get("pid") == self.proc.pid:
                self.listeners = info["listeners"]
                return self
            time.sleep(0.02)
        raise RuntimeError(f"server not ready in {timeout}s: {self.log_tail()}")

    def address(self, service: str) -> tuple[str, int]:
        host, _, port = self.listeners[service][0].rpartition(":")
        return host.strip("[]"), int(port)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = (self.state / "server.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def maildir(state: Path, address: str) -> Path:
    local, domain = address.split("@")
    return state / "mail" / domain / local


def wait_for_files(directory: Path, count: int, timeout: float = 30.0) -> list[Path]:
    """Wait until ``directory`` holds at least ``count`` files (delivery is asynchronous)."""
    deadline = time.monotonic() + timeout
    files: list[Path] = []
    while time.monotonic() < deadline:
        files = [p for p in directory.iterdir() if not p.name.startswith(".")] if directory.exists() else []
        if len(files) >= count:
            return files
        time.sleep(0.02)
    raise AssertionError(f"{directory}: {len(files)} files after {timeout}s, wanted {count}")


def strip_delivery_headers(data: bytes) -> bytes:
    """Drop the Return-Path, Delivered-To and Received lines mailyard prepends."""
    lines = data.split(b"\r\n")
    while lines and (
        lines[0].startswith((b"Return-Path:", b"Delivered-To:", b"Received:"))
        or (lines[0][:1] in (b" ", b"\t"))
    ):
        lines.pop(0)
    return b"\r\n".join(lines)


# -- IMAP ---------------------------------------------------------------------------

IMAP_USERS = tuple(f"i{n}@example.test" for n in range(1, 25))


def imap_state(state: Path, *, tls: bool = False, users: tuple[str, ...] = IMAP_USERS,
               sections: dict[str, str] | None = None) -> Path:
    """A state folder for IMAP tests: ``users`` (with PASSWORD) besides USERS,
    logins without TLS allowed from loopback (the imaplib clients of the
    tests), unless ``tls`` asks for the listeners and certificate of
    write_config(tls=True)."""
    more = dict(sections or {})
    if not tls:
        more["tls"] = "\n".join(x for x in ("loopback_plaintext_auth = true",
                                             more.get("tls", "")) if x)
    write_config(state, tls=tls, sections=more)
    provision(state, users=USERS + users)
    return state


def send_mail(server: ServerProcess, to: str, message: bytes,
              sender: str = "sender@example.org") -> None:
    import smtplib

    with smtplib.SMTP(*server.address("smtp"), timeout=30) as smtp:
        smtp.sendmail(sender, [to], message)


def process_rss_kb(pid: int) -> int:
    """Resident set size of one process, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")
