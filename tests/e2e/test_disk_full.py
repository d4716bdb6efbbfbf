"""Disk full: on a small tmpfs the server answers 4xx, keeps what it accepted,
and recovers when space returns."""

from __future__ import annotations

import os
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import ServerProcess, maildir, provision, wait_for_files, write_config


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here: {result.stderr.strip() or 'not permitted'}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_answers_4xx_and_recovers(small_fs: Path) -> None:
    state = small_fs / "state"
    write_config(state)
    provision(state)
    server = ServerProcess(state).start()
    filler = small_fs / "filler"
    try:
        free = os.statvfs(small_fs).f_bavail * os.statvfs(small_fs).f_frsize
        with open(filler, "wb") as handle:
            handle.write(b"\0" * max(0, free - 600 * 1024))
        host, port = server.address("smtp")
        body = b"Subject: fill\r\n\r\n" + (b"z" * 78 + b"\r\n") * 1300  # ~100 KB
        accepted = 0
        refused_code = None
        with smtplib.SMTP(host, port, timeout=30) as client:
            for _ in range(40):
                try:
                    client.sendmail("s@example.org", ["alice@example.test"], body)
                    accepted += 1
                except smtplib.SMTPDataError as exc:
                    refused_code = exc.smtp_code
                    break
        assert refused_code is not None and 400 <= refused_code < 500, refused_code
        assert list((maildir(state, "alice@example.test") / "new").glob("*")) is not None
        filler.unlink()
        subprocess.run([sys.executable, "-m", "mailyard", "--state", str(state),
                        "queue", "flush"], check=False, capture_output=True)
        files = wait_for_files(maildir(state, "alice@example.test") / "new", accepted, timeout=60)
        for path in files:
            assert path.read_bytes().endswith(b"z" * 78 + b"\r\n")
        with smtplib.SMTP(host, port, timeout=30) as client:
            client.sendmail("s@example.org", ["alice@example.test"], body)
        wait_for_files(maildir(state, "alice@example.test") / "new", accepted + 1, timeout=60)
        deadline = time.monotonic() + 30
        while any((state / "queue" / "mess").iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any((state / "queue" / "mess").iterdir())
    finally:
        server.stop()
