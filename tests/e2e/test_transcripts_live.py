"""The golden SMTP transcripts (tests/transcripts/smtp/*.txt) against the live
server over a loopback socket: the same files the core tests replay, so the
core and the running server are held to one specification by example."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.e2e.server import ServerProcess
from tests.proto.smtp.transcript import TranscriptError, groups, load_transcript

SMTP_DIR = Path(__file__).resolve().parents[1] / "transcripts" / "smtp"
HOSTNAME = "mx.example.test"


def replay(address: tuple[str, int], path: Path) -> None:
    steps = load_transcript(path)
    with socket.create_connection(address, timeout=30) as sock:
        reader = sock.makefile("rb")
        for client, expected in groups(steps):
            data = b"".join(step.payload() for step in client)
            if data:
                sock.sendall(data)
            for step in expected:
                raw = reader.readline()
                if not raw.endswith(b"\r\n"):
                    raise TranscriptError(f"{path.name} line {step.lineno}: connection ended")
                line = raw[:-2].decode("utf-8")
                if not step.matches(line, HOSTNAME):
                    raise TranscriptError(
                        f"{path.name} line {step.lineno}: expected {step.text!r}, got {line!r}")


@pytest.mark.parametrize("path", sorted(SMTP_DIR.glob("*.txt")), ids=lambda p: p.stem)
def test_smtp_transcript_live(server: ServerProcess, path: Path) -> None:
    replay(server.address("smtp"), path)
