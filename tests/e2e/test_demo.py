"""``mailyard demo``: the first thing a new user runs, end to end.

It creates a state folder, binds the fixed demo ports (127.0.0.1:2525 SMTP,
127.0.0.1:2110 POP3, 127.0.0.1:2143 IMAP, 127.0.0.1:2993 IMAPS …), prints where it listens and the demo password, and
stops on Ctrl-C. Skipped when another program holds either port.
"""

from __future__ import annotations

import imaplib
import os
import poplib
import queue
import re
import signal
import smtplib
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import strip_delivery_headers, wait_for_files

DEMO_PORTS = {"smtp": 2525, "pop3": 2110, "imap": 2143, "imaps": 2993}
ADDRESS = "demo@example.test"
_PASSWORD = re.compile(r"mailbox\s+demo@example\.test\s+password: (\S+)")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, str]]:
    busy = [f"127.0.0.1:{p}" for p in DEMO_PORTS.values() if not _port_free(p)]
    if busy:
        pytest.skip(f"demo port in use: {', '.join(busy)}")
    state = tmp_path / "var"
    with open(tmp_path / "demo.log", "wb") as log:
        # A session of its own, so that the SIGINT below reaches the server
        # and its delivery worker as a Ctrl-C in a terminal would.
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailyard", "--state", str(state), "demo"],
            stdout=subprocess.PIPE, stderr=log, start_new_session=True,
        )
    assert proc.stdout is not None
    lines: queue.Queue[bytes] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in iter(proc.stdout.readline, b"")],
                              daemon=True)
    reader.start()
    try:
        banner, password = [], None
        deadline = time.monotonic() + 30
        while password is None:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01)).decode()
            except queue.Empty:
                pytest.fail(f"no demo banner in 30 s: {banner!r}; log: "
                            f"{(tmp_path / 'demo.log').read_text(errors='replace')}")
            banner.append(line)
            if match := _PASSWORD.search(line):
                password = match.group(1)
        text = "".join(banner)
        assert "127.0.0.1:2525" in text and "127.0.0.1:2110" in text, text
        assert "127.0.0.1:2143" in text and "127.0.0.1:2993" in text, text
        yield proc, state, password
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_demo_serves_and_stops_on_sigint(demo: tuple[subprocess.Popen[bytes], Path, str]) -> None:
    proc, state, password = demo
    body = b"Subject: hello demo\r\n\r\nfrom the demo test\r\n"
    with smtplib.SMTP("127.0.0.1", DEMO_PORTS["smtp"], timeout=30) as client:
        assert client.sendmail("me@example.org", [ADDRESS], body) == {}
    wait_for_files(state / "mail" / "example.test" / "demo" / "new", 1)
    pop = poplib.POP3("127.0.0.1", DEMO_PORTS["pop3"], timeout=30)
    pop.user(ADDRESS)
    pop.pass_(password)
    assert pop.stat()[0] == 1
    _, lines, _ = pop.retr(1)
    assert strip_delivery_headers(b"\r\n".join(lines) + b"\r\n") == body
    pop.quit()
    # The banner's imaplib one-liner: IMAPS with the demo's own certificate.
    context = ssl.create_default_context(cafile=str(state / "tls" / "cert.pem"))
    imap = imaplib.IMAP4_SSL("127.0.0.1", DEMO_PORTS["imaps"], ssl_context=context, timeout=30)
    imap.login(ADDRESS, password)
    assert imap.select("INBOX") == ("OK", [b"1"])
    imap.logout()

    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole process group
    assert proc.wait(30) == 0

    assert (state / "mailyard.toml").is_file()
    assert (state / "directory.sqlite").is_file()
    secret = state / "demo-password"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert secret.read_text().strip() == password
