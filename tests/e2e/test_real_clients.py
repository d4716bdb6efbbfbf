"""Real mail programs from Debian against the live server: swaks (SMTP),
fetchmail (POP3) and aiosmtplib (asyncio SMTP). `.ci/run` installs swaks and
fetchmail; on a machine without them these tests are skipped with the reason."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.server import PASSWORD, ServerProcess, maildir, strip_delivery_headers, wait_for_files


def _need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} is not installed (apt-get install {program})")
    return path


def test_swaks_delivers(server: ServerProcess) -> None:
    swaks = _need("swaks")
    host, port = server.address("smtp")
    box = maildir(server.state, "bob@example.test") / "new"
    before = len(list(box.iterdir()))
    result = subprocess.run(
        [swaks, "--server", host, "--port", str(port), "--from", "swaks@example.org",
         "--to", "bob@example.test", "--header", "Subject: from swaks", "--body", "hello from swaks",
         "--pipeline"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    files = wait_for_files(box, before + 1)
    assert any(b"hello from swaks" in p.read_bytes() for p in files)


def test_swaks_unknown_user_refused(server: ServerProcess) -> None:
    swaks = _need("swaks")
    host, port = server.address("smtp")
    result = subprocess.run(
        [swaks, "--server", host, "--port", str(port), "--from", "swaks@example.org",
         "--to", "nobody@example.test"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "550 5.1.1" in result.stdout


def test_aiosmtplib_sends(server: ServerProcess) -> None:
    import aiosmtplib

    host, port = server.address("smtp")
    body = "Subject: aiosmtplib\r\n\r\nsent by aiosmtplib\r\n"
    box = maildir(server.state, "carol@example.net") / "new"
    before = len(list(box.iterdir()))

    async def send() -> None:
        errors, _ = await aiosmtplib.send(
            body, sender="a@example.org", recipients=["carol@example.net"],
            hostname=host, port=port, start_tls=False, use_tls=False,
        )
        assert errors == {}

    asyncio.run(send())
    files = wait_for_files(box, before + 1)
    assert any(strip_delivery_headers(p.read_bytes()) == body.encode() for p in files)


def test_fetchmail_retrieves_and_deletes(server: ServerProcess, tmp_path: Path) -> None:
    fetchmail = _need("fetchmail")
    import smtplib

    host, port = server.address("smtp")
    with smtplib.SMTP(host, port, timeout=30) as client:
        for i in range(3):
            client.sendmail("f@example.org", ["carol@example.net"],
                            f"Subject: fetch {i}\r\n\r\nfetchmail body {i}\r\n".encode())
    box = maildir(server.state, "carol@example.net")
    wait_for_files(box / "new", 3)
    out = tmp_path / "out"
    out.mkdir()
    pop_host, pop_port = server.address("pop3")
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        f'poll {pop_host} service {pop_port} protocol POP3 auth password\n'
        f'  user "carol@example.net" there with password "{PASSWORD}"\n'
        f'  fetchall nokeep\n'
        f'  mda "/bin/sh -c \'cat > {out}/msg.$$\'"\n'
    )
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
    result = subprocess.run(
        [fetchmail, "-f", str(rc), "--nosyslog", "--sslproto", "", "-v"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    got = [p.read_bytes() for p in out.iterdir()]
    assert sum(b"fetchmail body" in g for g in got) >= 3
    # nokeep: every retrieved message was deleted on the server at QUIT.
    remaining = [p for p in (box / "cur").iterdir()] + [p for p in (box / "new").iterdir()]
    assert not any(b"fetchmail body" in p.read_bytes() for p in remaining)
