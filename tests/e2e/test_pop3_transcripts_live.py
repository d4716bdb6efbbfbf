"""The golden POP3 transcripts (tests/transcripts/pop3/*.txt) against the
live server over a loopback socket: the files the core tests replay, so the
core and the running server are held to one specification by example.

Each file gets a fresh state folder holding the world its ``#!`` lines
describe: the ``#! user`` mailboxes, and the ``#! message`` octets written
byte-exact into the Maildir's ``cur/``, in maildrop order, under names made
by ``mailyard.maildir.names`` (so ``{uidN}`` is the UIDL the server derives
from the base name).
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import ssl
import time
from pathlib import Path

import pytest

from mailyard.maildir.names import delivery_name, uidl_for, with_info
from mailyard.config import load_config
from mailyard.server.tls import ensure_self_signed
from tests.e2e.server import ServerProcess, tls_client_context
from tests.e2e.test_limits_e2e import add_users, write_state
from tests.proto.pop3.transcript import HOSTNAME, Transcript, load_transcript
from tests.proto.smtp.transcript import Step, TranscriptError, groups

POP3_DIR = Path(__file__).resolve().parents[1] / "transcripts" / "pop3"
DOMAIN = "example.test"  # bare "#! user" names log in through the default domain
_PLACEHOLDER = re.compile(r"\{uid(\d+)\}")


def prepare(state: Path, transcript: Transcript) -> list[str]:
    """The state folder for ``transcript``; the UIDLs of its messages, in order."""
    users = {f"{name}@{DOMAIN}": password for name, password in transcript.users.items()}
    write_state(state, hostname=HOSTNAME, users={},
                login={"default_domain": DOMAIN, "failure_delay": 0.05})
    boxes = add_users(state, users)
    if not transcript.messages:
        return []
    assert len(boxes) == 1, "#! message lines need exactly one #! user"
    cur = next(iter(boxes.values())) / "cur"
    uids = []
    start = time.time() - 3600
    for number, data in enumerate(transcript.messages, 1):
        # One second apart: the maildrop lists our names in delivery-time order.
        base = delivery_name(now=start + number, pid=os.getpid(), counter=number,
                             hostname=HOSTNAME, size=len(data))
        (cur / with_info(base, "")).write_bytes(data)
        uids.append(uidl_for(base))
    return uids


def expand(step: Step, uids: list[str]) -> Step:
    def value(match: re.Match[str]) -> str:
        uid = uids[int(match.group(1)) - 1]
        return re.escape(uid) if step.kind == "S~" else uid

    return dataclasses.replace(step, text=_PLACEHOLDER.sub(value, step.text))


STLS_GO = "+OK begin TLS negotiation"


def replay(address: tuple[str, int], path: Path, transcript: Transcript, uids: list[str],
           tls: ssl.SSLContext | None = None) -> None:
    with socket.create_connection(address, timeout=30) as plain:
        sock: socket.socket = plain
        reader = sock.makefile("rb")
        sent_quit = False
        for client, expected in groups(transcript.steps):
            data = b"".join(step.payload() for step in client)
            if data:
                sock.sendall(data)
                sent_quit = data.upper().endswith(b"QUIT\r\n")
            for step in expected:
                raw = reader.readline()
                if not raw.endswith(b"\r\n"):
                    raise TranscriptError(f"{path.name} line {step.lineno}: connection ended")
                line = raw[:-2].decode("utf-8", errors="replace")
                if not expand(step, uids).matches(line, HOSTNAME):
                    raise TranscriptError(
                        f"{path.name} line {step.lineno}: expected {step.text!r}, got {line!r}")
                if line == STLS_GO and tls is not None:
                    # RFC 2595 §4: the handshake starts right after this line;
                    # what the client pipelined behind STLS went in plaintext
                    # and must never run.
                    sock = tls.wrap_socket(plain, server_hostname=HOSTNAME)
                    reader = sock.makefile("rb")
        if sent_quit:
            # RFC 1939 §6: after the QUIT answer the server closes; nothing more.
            rest = reader.read()
            if rest:
                raise TranscriptError(f"{path.name}: unexpected lines after QUIT: {rest!r}")


@pytest.mark.parametrize("path", sorted(POP3_DIR.glob("*.txt")), ids=lambda p: p.stem)
def test_pop3_transcript_live(tmp_path: Path, path: Path) -> None:
    transcript = load_transcript(path)
    state = tmp_path / "state"
    uids = prepare(state, transcript)
    tls = None
    if "stls" in transcript.features:
        # A certificate turns STLS on (only here: the other transcripts'
        # CAPA lists are those of a listener without TLS).
        ensure_self_signed(load_config(str(state)))
        tls = tls_client_context(state)
    server = ServerProcess(state).start()
    try:
        replay(server.address("pop3"), path, transcript, uids, tls)
    finally:
        assert server.stop() == 0, server.log_tail()
