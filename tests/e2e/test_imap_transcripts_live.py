"""The golden IMAP transcripts (tests/transcripts/imap/*.txt) against the live
server over a loopback socket: the files the core tests replay against the
core and its fake store, so the running server is held to the same
specification by example.

Each file gets a fresh state folder holding the world its ``#!`` lines
describe: the ``#! user`` mailboxes (bare names log in through the default
domain), only the ``#! mailbox`` folders (with their special use) besides
INBOX, only INBOX subscribed, UIDVALIDITY 1000 for INBOX and 1001, 1002 …
for the folders in the order listed (the fake store's numbering), the
``#! message`` octets written byte-exact into ``cur/`` under delivery names
that carry their internal date, and a quota of 1024 KiB and 1,000 messages.
``#! features starttls=1`` gives the server a certificate and takes away
plaintext logins (LOGINDISABLED); the others allow them from loopback.
"""

from __future__ import annotations

import os
import socket
import ssl
from pathlib import Path

import pytest

from mailyard.config import load_config
from mailyard.maildir.journal import Header, Journal, new_generation
from mailyard.maildir.mailstore import Mailstore
from mailyard.maildir.names import delivery_name, with_info
from mailyard.maildir.quota import Quota, QuotaLimits
from mailyard.server.tls import ensure_self_signed
from tests.e2e.server import ServerProcess, tls_client_context
from tests.e2e.test_limits_e2e import add_users, write_state
from tests.proto.imap.helpers import HOSTNAME
from tests.proto.imap.transcript import Transcript, load_transcript
from tests.proto.smtp.transcript import TranscriptError, groups

IMAP_DIR = Path(__file__).resolve().parents[1] / "transcripts" / "imap"
DOMAIN = "example.test"
_LETTERS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T"}
STARTTLS_GO = "OK STARTTLS completed"


def _uidvalidity(path: Path, value: int) -> None:
    """A fresh uid list with the UIDVALIDITY the transcript expects."""
    Journal(str(path)).rewrite(Header(value, 1, 1, 0, new_generation()), [])


def prepare(state: Path, transcript: Transcript, *, tls: bool) -> None:
    users = {f"{name}@{DOMAIN}": password for name, password in transcript.users.items()}
    sections: dict[str, dict[str, object]] = {
        "login": {"default_domain": DOMAIN, "failure_delay": 0.05},
    }
    if not tls:
        sections["tls"] = {"loopback_plaintext_auth": True}
    write_state(state, hostname=HOSTNAME, users={}, **sections)
    if tls:
        ensure_self_signed(load_config(str(state)))
    boxes = add_users(state, users)
    assert len(boxes) == 1, "#! lines describe exactly one user"
    root = next(iter(boxes.values()))
    store = Mailstore(str(root))
    wanted = dict(transcript.mailboxes)
    for entry in store.list_folders():
        if entry.name != "INBOX" and entry.name not in wanted:
            store.delete(entry.name)
    for name in store.subscriptions():
        store.unsubscribe(name)
    store.subscribe("INBOX")  # the fake store's world: INBOX alone subscribed
    _uidvalidity(root, 1000)
    for number, (name, special) in enumerate(transcript.mailboxes, 1):
        if not store.exists(name):
            store.create(name)
        store.set_special_use(name, [special] if special else [])
        path = store.path_of(name)
        assert path is not None
        _uidvalidity(Path(path), 1000 + number)
    for counter, (box, flags, when, data) in enumerate(transcript.messages, 1):
        path = store.path_of(box)
        assert path is not None
        base = delivery_name(now=float(when), pid=os.getpid(), counter=counter,
                             hostname=HOSTNAME, size=len(data))
        letters = "".join(sorted(_LETTERS[f] for f in flags))
        (Path(path) / "cur" / with_info(base, letters)).write_bytes(data)
    Quota(str(root)).set_limits(QuotaLimits(1024 * 1024, 1000))


def replay(address: tuple[str, int], path: Path, transcript: Transcript,
           tls: ssl.SSLContext | None) -> None:
    with socket.create_connection(address, timeout=30) as plain:
        sock: socket.socket = plain
        reader = sock.makefile("rb")
        for client, expected in groups(transcript.steps):
            data = b"".join(step.payload() for step in client)
            if data:
                sock.sendall(data)
            for step in expected:
                raw = reader.readline()
                if not raw.endswith(b"\r\n") and not raw.endswith(b"\n"):
                    raise TranscriptError(f"{path.name} line {step.lineno}: connection ended")
                line = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
                if not step.matches(line, HOSTNAME):
                    raise TranscriptError(
                        f"{path.name} line {step.lineno}: expected {step.text!r}, got {line!r}")
                if line.endswith(STARTTLS_GO) and tls is not None:
                    # RFC 9051 §6.2.1: the handshake follows the tagged OK; what
                    # was pipelined behind STARTTLS went in plaintext, never runs.
                    sock = tls.wrap_socket(plain, server_hostname=HOSTNAME)
                    reader = sock.makefile("rb")
        rest = reader.read()
        if rest:
            raise TranscriptError(f"{path.name}: unexpected lines at the end: {rest!r}")


@pytest.mark.parametrize("path", sorted(IMAP_DIR.glob("*.txt")), ids=lambda p: p.stem)
def test_imap_transcript_live(tmp_path: Path, path: Path) -> None:
    transcript = load_transcript(path)
    tls = bool(transcript.features.get("starttls"))
    state = tmp_path / "state"
    prepare(state, transcript, tls=tls)
    server = ServerProcess(state).start()
    try:
        replay(server.address("imap"), path, transcript,
               tls_client_context(state) if tls else None)
    finally:
        assert server.stop() == 0, server.log_tail()
