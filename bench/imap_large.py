"""IMAP on a large folder: a real server, imaplib, 100,000 messages of ~4 KB.

Builds the folder straight into the Maildir (``cur/``, delivery names) and
its uid list through the store API, then times, against a running
``mailyard serve``:

* LOGIN + SELECT; FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE), with
  imaplib and with a raw socket that only counts lines (what the server
  costs, without imaplib's parsing); FETCH of 500 whole messages; UID
  SEARCH SUBJECT for a rare word; STORE +FLAGS \\Seen 1:*; EXPUNGE of 1,000;
* cold: the folder's index and blob cache removed (the uid list kept), a
  fresh server; warm: the same again with a restarted server, the index and
  the cache on disk, the folder unchanged for a second; hot: SELECT again
  while the server has the folder open (right after the changes, and once
  they have settled).

Aims (issue 3, this 2-core machine): warm SELECT < 100 ms, FETCH 1:* flags
< 1 s. Figures are printed, never asserted.

    .venv/bin/python bench/imap_large.py [--messages 100000] [--size 4096] [--dir PATH]
"""

from __future__ import annotations

import argparse
import imaplib
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from mailyard.maildir.deliver import ensure_maildir  # noqa: E402
from mailyard.maildir.folder import Folder  # noqa: E402
from mailyard.maildir.names import delivery_name, with_info  # noqa: E402
from tests.e2e.server import PASSWORD, ServerProcess, provision, write_config  # noqa: E402

T = TypeVar("T")
USER = "big@example.test"
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")


def timed(label: str, action: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = action()
    print(f"  {label:<60} {1000 * (time.perf_counter() - start):9.1f} ms", flush=True)
    return result


def build(box: Path, count: int, size: int) -> None:
    """``count`` messages in cur/ (every 1,000th has "needle" in its Subject)."""
    ensure_maildir(str(box))
    cur = box / "cur"
    start = 1_700_000_000.0
    for i in range(count):
        word = "needle" if i % 1000 == 500 else WORDS[i % len(WORDS)]
        head = (f"From: Sender {i} <s{i}@example.org>\r\nTo: {USER}\r\n"
                f"Subject: message {i} about {word}\r\nMessage-ID: <{i}@bench>\r\n"
                f"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\n").encode()
        body = head + b"x" * max(size - len(head) - 2, 0) + b"\r\n"
        name = delivery_name(now=start + i * 0.01, pid=4242, counter=i + 1,
                             hostname="bench.example", size=len(body))
        (cur / with_info(name, "")).write_bytes(body)
    folder = Folder.open(str(box))
    folder.sync()  # the uid list: uids for every message, in delivery order
    folder.close()


def settle(box: Path | None = None) -> None:
    """Directory stamps are trusted once a second old (maildir/scan.py); with
    ``box``, also save the index with settled stamps, as an idle server would."""
    time.sleep(1.1)
    if box is not None:
        folder = Folder.open(str(box))
        folder.sync()
        folder.close()


def raw_fetch_all(address: tuple[str, int]) -> int:
    """FETCH 1:* over a bare socket: lines counted, nothing parsed."""
    with socket.create_connection(address, timeout=120) as sock:
        reader = sock.makefile("rb", buffering=1 << 20)
        reader.readline()
        sock.sendall(f"a LOGIN {USER} \"{PASSWORD}\"\r\nb SELECT INBOX\r\n".encode())
        while not reader.readline().startswith(b"b "):
            pass
        start = time.perf_counter()
        sock.sendall(b"c FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE)\r\n")
        lines = 0
        while not reader.readline().startswith(b"c "):
            lines += 1
        elapsed = time.perf_counter() - start
        sock.sendall(b"d LOGOUT\r\n")
    print(f"  {'FETCH 1:* flags, raw socket (server side)':<60} {1000 * elapsed:9.1f} ms"
          f"   {lines} lines", flush=True)
    return lines


def session(server: ServerProcess, label: str, *, expunge_from: int) -> None:
    address = server.address("imap")
    print(label, flush=True)

    def connect() -> imaplib.IMAP4:
        client = imaplib.IMAP4(*address, timeout=300)
        client.login(USER, PASSWORD)
        return client

    # LOGIN alone is mostly the argon2id check of the password (about 0.1 s).
    client = timed("LOGIN", connect)
    timed("SELECT INBOX", lambda: client.select("INBOX"))
    _, data = timed("FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE), imaplib",
                    lambda: client.fetch("1:*", "(FLAGS UID RFC822.SIZE INTERNALDATE)"))
    print(f"  {'':<60} {len(data)} responses", flush=True)
    raw_fetch_all(address)
    _, data = timed("FETCH 1:500 BODY.PEEK[] (500 whole messages)",
                    lambda: client.fetch("1:500", "(BODY.PEEK[])"))
    _, data = timed("UID SEARCH SUBJECT needle",
                    lambda: client.uid("SEARCH", "SUBJECT", "needle"))
    print(f"  {'':<60} {len(data[0].split())} found", flush=True)
    timed("STORE +FLAGS.SILENT \\Seen 1:*",
          lambda: client.store("1:*", "+FLAGS.SILENT", "(\\Seen)"))
    client.store(f"{expunge_from}:{expunge_from + 999}", "+FLAGS.SILENT", "(\\Deleted)")
    _, data = timed("EXPUNGE of 1,000", client.expunge)
    print(f"  {'':<60} {len(data)} expunged", flush=True)
    timed("STORE -FLAGS.SILENT \\Seen 1:* (undo, for the next round)",
          lambda: client.store("1:*", "-FLAGS.SILENT", "(\\Seen)"))
    client.logout()
    client = connect()
    timed("hot: SELECT right after the changes (lists cur/ once more)",
          lambda: client.select("INBOX"))
    settle()
    timed("hot: the first SELECT a second later (one last listing)",
          lambda: client.select("INBOX"))
    timed("hot: SELECT, the folder open in the server and settled",
          lambda: client.select("INBOX"))
    client.logout()


def run(base: Path, count: int, size: int) -> None:
    state = base / "state"
    write_config(state, sections={"tls": "loopback_plaintext_auth = true"})
    provision(state, users=(USER,))
    box = state / "mail" / "example.test" / "big"
    print(f"building {count} messages of ~{size} octets", flush=True)
    timed("build: files in cur/, uid list through the store API",
          lambda: build(box, count, size))
    for name in ("mailyard-index", "mailyard-cache"):
        (box / name).unlink(missing_ok=True)
    server = ServerProcess(state).start()
    try:
        session(server, "cold: index and blob cache absent, uid list kept",
                expunge_from=1)
    finally:
        server.stop()
    settle(box)
    server = ServerProcess(state).start()
    try:
        session(server, "warm: a new server process, index and cache on disk",
                expunge_from=1001)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--dir", default=None, help="where to build (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the state folder afterwards")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="imap-large-", dir=args.dir))
    try:
        run(base, args.messages, args.size)
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
        os.sync()


if __name__ == "__main__":
    main()
