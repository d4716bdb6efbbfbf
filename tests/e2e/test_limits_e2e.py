"""Limits (DESIGN §7) against the real server process over loopback.

Each module-scoped server gets a small configuration where the limit under
test is reached in a handful of commands. Connections per address use
several loopback client addresses (127.0.0.1, .2, .3: all of 127.0.0.0/8 is
loopback on Linux). Only the timeout tests wait for time to pass, and their
configured timeouts are a fraction of a second.

The helpers at the top (write_state, Client, ...) are also used by
test_robustness_e2e.py and test_pop3_transcripts_live.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailyard.cli.control_client import control
from tests.e2e.server import (
    PASSWORD,
    ServerProcess,
    maildir,
    provision,
    strip_delivery_headers,
    wait_for_files,
)

HOSTNAME = "mx.example.test"
SMTP_REFUSED = b"421 4.7.0 too many connections; try again later\r\n"
POP3_REFUSED = b"-ERR [SYS/TEMP] too many connections; try again later\r\n"
MAX_SIZE = 5000
POP3_LINE = 64


# -- helpers ------------------------------------------------------------------------


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def write_state(state: Path, *, hostname: str = HOSTNAME, users: dict[str, str] | None = None,
                **sections: dict[str, object]) -> Path:
    """A whole mailyard.toml (write_config appends, which cannot change a
    section's keys), and the mailboxes: tests.e2e.server.USERS with its
    PASSWORD, or ``users`` (address -> password)."""
    merged: dict[str, dict[str, object]] = {
        "smtp": {"listen": ["127.0.0.1:0"]},
        "pop3": {"listen": ["127.0.0.1:0"]},
        "imap": {"listen": ["127.0.0.1:0"]},
        "login": {"default_domain": "example.test", "failure_delay": 0.05},
        "log": {"level": "debug"},
    }
    for name, keys in sections.items():
        merged.setdefault(name, {}).update(keys)
    lines = [f"hostname = {_toml(hostname)}"]
    for name, keys in merged.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml(value)}" for key, value in keys.items()]
    state.mkdir(parents=True, exist_ok=True)
    (state / "mailyard.toml").write_text("\n".join(lines) + "\n")
    if users is None:
        provision(state)
    else:
        add_users(state, users)
    return state


def add_users(state: Path, users: dict[str, str]) -> dict[str, Path]:
    """Create the mailboxes as tests.e2e.server.provision does; their Maildirs."""
    from mailyard.directory.admin import create_user
    from mailyard.directory.passwords import hash_password
    from mailyard.directory.store import Directory
    from mailyard.message.address import parse_address

    directory = Directory.open(str(state / "directory.sqlite"))
    try:
        for domain in sorted({address.rpartition("@")[2] for address in users}):
            directory.add_domain(domain)
        boxes = {}
        for address, password in users.items():
            mailbox = create_user(directory, str(state / "mail"), parse_address(address),
                                  hash_password(password))
            boxes[address] = state / "mail" / mailbox.maildir
        return boxes
    finally:
        directory.close()


class Client:
    """A raw line client; ``source`` picks the loopback address it connects from."""

    def __init__(self, address: tuple[str, int], source: str = "127.0.0.1",
                 timeout: float = 10.0, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:
            # Before connect(): the window the server sees follows from it.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.bind((source, 0))
        self.sock.connect(address)
        self.reader = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.reader.readline()

    def reply(self) -> bytes:
        """One SMTP reply: the last line of a multi-line one."""
        while True:
            line = self.reader.readline()
            if line[3:4] != b"-":
                return line

    def multiline(self) -> list[bytes]:
        """A POP3 multi-line response after its status line, up to the "."."""
        lines = []
        while (line := self.reader.readline()) not in (b".\r\n", b""):
            lines.append(line)
        return lines

    def rest(self) -> bytes:
        """Everything up to the server's close (a reset after it counts as the close)."""
        chunks = []
        try:
            while chunk := self.reader.read1(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def smtp_client(server: ServerProcess, source: str = "127.0.0.1") -> Client:
    client = Client(server.address("smtp"), source)
    assert client.line().startswith(b"220 ")
    return client


def pop3_client(server: ServerProcess, source: str = "127.0.0.1") -> Client:
    client = Client(server.address("pop3"), source)
    assert client.line().startswith(b"+OK ")
    return client


def smtp_quit(client: Client) -> None:
    """QUIT and wait for the server's close, so its connection slot is free again."""
    client.send(b"QUIT\r\n")
    assert client.reply().startswith(b"221 ")
    assert client.rest() == b""
    client.close()


def pop3_quit(client: Client) -> None:
    client.send(b"QUIT\r\n")
    assert client.line().startswith(b"+OK")
    assert client.rest() == b""
    client.close()


def refused(address: tuple[str, int], source: str) -> bytes:
    """What a connection the server refuses gets before the close."""
    client = Client(address, source)
    try:
        return client.rest()
    finally:
        client.close()


def files(path: Path) -> list[Path]:
    return [p for p in path.iterdir() if not p.name.startswith(".")] if path.exists() else []


def start(state: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(state).start()
    try:
        yield server
    finally:
        assert server.stop() == 0, server.log_tail()


# -- servers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    state = write_state(
        tmp_path_factory.mktemp("limits") / "state",
        smtp={"max_connections": 4, "max_connections_per_ip": 2, "max_commands": 10,
              "max_bad_commands": 3, "max_recipients": 3, "max_message_size": MAX_SIZE,
              "max_line_length": 1000},
        pop3={"max_connections": 4, "max_connections_per_ip": 2, "max_commands": 8,
              "max_bad_commands": 3, "max_line_length": POP3_LINE},
    )
    yield from start(state)


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    state = write_state(
        tmp_path_factory.mktemp("timeouts") / "state",
        # max_commands: the client that never reads needs many replies in flight.
        smtp={"timeout_command": 0.5, "timeout_data_block": 1.0, "max_commands": 1_000_000},
        pop3={"timeout_idle": 0.5},
    )
    yield from start(state)


# -- connections in total and per address ------------------------------------------------


def test_smtp_max_connections(limited: ServerProcess) -> None:
    address = limited.address("smtp")
    held = [smtp_client(limited, src) for src in ("127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2")]
    # The fifth, from an address with no connection yet: the total limit.
    assert refused(address, "127.0.0.3") == SMTP_REFUSED
    smtp_quit(held.pop())
    held.append(smtp_client(limited, "127.0.0.3"))
    held[-1].send(b"NOOP\r\n")
    assert held[-1].reply().startswith(b"250 ")
    for client in held:
        smtp_quit(client)


def test_smtp_max_connections_per_ip(limited: ServerProcess) -> None:
    address = limited.address("smtp")
    first = [smtp_client(limited), smtp_client(limited)]
    assert refused(address, "127.0.0.1") == SMTP_REFUSED
    other = smtp_client(limited, "127.0.0.2")  # the limit is per client address
    smtp_quit(first.pop())
    first.append(smtp_client(limited))
    for client in [*first, other]:
        smtp_quit(client)


def test_pop3_max_connections(limited: ServerProcess) -> None:
    address = limited.address("pop3")
    held = [pop3_client(limited, src) for src in ("127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2")]
    assert refused(address, "127.0.0.3") == POP3_REFUSED
    pop3_quit(held.pop())
    held.append(pop3_client(limited, "127.0.0.3"))
    for client in held:
        pop3_quit(client)


def test_pop3_max_connections_per_ip(limited: ServerProcess) -> None:
    address = limited.address("pop3")
    first = [pop3_client(limited), pop3_client(limited)]
    assert refused(address, "127.0.0.1") == POP3_REFUSED
    other = pop3_client(limited, "127.0.0.2")
    pop3_quit(first.pop())
    first.append(pop3_client(limited))
    for client in [*first, other]:
        pop3_quit(client)


# -- timeouts ------------------------------------------------------------------------------


def test_smtp_timeout_command(impatient: ServerProcess) -> None:
    client = smtp_client(impatient)
    client.send(b"EHLO idle.example\r\n")
    assert client.reply().startswith(b"250 ")
    started = time.monotonic()
    assert client.line() == b"421 4.4.2 " + HOSTNAME.encode() + b" timeout\r\n"
    assert client.rest() == b""
    assert time.monotonic() - started >= 0.3  # not at once: after the timeout
    client.close()


def test_smtp_timeout_data_block_leaves_nothing(impatient: ServerProcess) -> None:
    state = impatient.state
    box = maildir(state, "alice@example.test") / "new"
    before = len(files(box))
    client = smtp_client(impatient)
    client.send(b"EHLO slow.example\r\nMAIL FROM:<slow@example.org>\r\n"
                b"RCPT TO:<alice@example.test>\r\nDATA\r\n")
    assert [client.reply()[:3] for _ in range(4)] == [b"250", b"250", b"250", b"354"]
    # More than the spool keeps in memory (256 KiB), so a queue file exists in tmp/.
    client.send(b"Subject: half\r\n\r\n" + (b"h" * 98 + b"\r\n") * 3000)
    deadline = time.monotonic() + 5
    while not files(state / "queue" / "tmp") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert files(state / "queue" / "tmp"), "the partial message never reached queue/tmp"
    assert client.line() == b"421 4.4.2 " + HOSTNAME.encode() + b" timeout\r\n"
    assert client.rest() == b""
    client.close()
    # The 421 is written after the transaction was dropped: nothing may remain.
    assert files(state / "queue" / "tmp") == []
    assert files(state / "queue" / "mess") == []
    assert len(files(box)) == before


def test_pop3_timeout_idle_releases_the_maildrop(impatient: ServerProcess) -> None:
    client = pop3_client(impatient)
    client.send(b"USER bob@example.test\r\nPASS " + PASSWORD.encode() + b"\r\n")
    assert client.line().startswith(b"+OK")
    assert client.line().startswith(b"+OK maildrop has")
    assert client.line() == b"-ERR autologout: idle too long\r\n"
    assert client.rest() == b""
    client.close()
    # The lock went with the session: a new login is not [IN-USE].
    again = pop3_client(impatient)
    again.send(b"USER bob@example.test\r\nPASS " + PASSWORD.encode() + b"\r\n")
    assert again.line().startswith(b"+OK")
    assert again.line().startswith(b"+OK maildrop has")
    pop3_quit(again)


def connections(server: ServerProcess) -> dict[str, int]:
    """Open sessions per service, from the control socket's status."""
    counts: dict[str, int] = control(str(server.state / "run" / "control.sock"), "status")[
        "connections"]
    return counts


def session_gone(server: ServerProcess, service: str, within: float) -> bool:
    """Whether the server ends its ``service`` session within ``within`` seconds."""
    deadline = time.monotonic() + within
    while connections(server)[service]:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def not_reading(address: tuple[str, int]) -> Client:
    """A client with a tiny receive window, which reads the greeting (so the
    session surely exists) and then none of its replies."""
    client = Client(address, rcvbuf=4096)
    assert client.line()[:3] in (b"220", b"+OK")
    return client


def test_pop3_timeout_idle_applies_to_a_client_that_stops_reading(
        impatient: ServerProcess) -> None:
    box = maildir(impatient.state, "carol@example.net")
    big = b"Subject: big\r\n\r\n" + (b"r" * 98 + b"\r\n") * 100_000  # 10 MB
    smtp = smtp_client(impatient)
    smtp.send(b"EHLO big.example\r\nMAIL FROM:<big@example.org>\r\n"
              b"RCPT TO:<carol@example.net>\r\nDATA\r\n" + big + b".\r\n")
    assert [smtp.reply()[:3] for _ in range(5)] == [b"250", b"250", b"250", b"354", b"250"]
    smtp_quit(smtp)
    wait_for_files(box / "new", 1)
    client = not_reading(impatient.address("pop3"))
    try:
        client.send(b"USER carol@example.net\r\nPASS " + PASSWORD.encode() + b"\r\nRETR 1\r\n")
        # timeout_idle is 0.5 s: a few seconds are plenty to give up on this client.
        assert session_gone(impatient, "pop3", within=3.0)
    finally:
        client.close()  # the reset ends the session whatever the outcome
    again = pop3_client(impatient)
    again.send(b"USER carol@example.net\r\nPASS " + PASSWORD.encode() + b"\r\n")
    assert again.line().startswith(b"+OK")
    assert again.line().startswith(b"+OK maildrop has")  # not [IN-USE]
    pop3_quit(again)


def test_smtp_timeout_command_applies_to_a_client_that_never_reads(
        impatient: ServerProcess) -> None:
    client = not_reading(impatient.address("smtp"))
    # About 10 MB of 214 replies: far more than the socket buffers hold.
    pusher = threading.Thread(target=_push, args=(client, b"HELP\r\n" * 100_000), daemon=True)
    pusher.start()
    try:
        assert session_gone(impatient, "smtp", within=3.0)
    finally:
        client.close()
        pusher.join(10)


def _push(client: Client, data: bytes) -> None:
    try:
        client.send(data)
    except OSError:
        pass  # the server gave up on us (or we closed): either ends the push


# -- commands per connection -----------------------------------------------------------------


def test_smtp_max_commands(limited: ServerProcess) -> None:
    at_limit = smtp_client(limited)
    at_limit.send(b"EHLO count.example\r\n" + b"NOOP\r\n" * 8)
    assert [at_limit.reply()[:3] for _ in range(9)] == [b"250"] * 9
    smtp_quit(at_limit)  # the 10th command is still served

    over = smtp_client(limited)
    over.send(b"EHLO count.example\r\n" + b"NOOP\r\n" * 10)
    assert [over.reply()[:3] for _ in range(10)] == [b"250"] * 10
    assert over.line() == b"421 4.7.0 too many commands, closing connection\r\n"
    assert over.rest() == b""
    over.close()


def test_smtp_max_bad_commands(limited: ServerProcess) -> None:
    client = smtp_client(limited)
    client.send(b"BOGUS 1\r\nBOGUS 2\r\nBOGUS 3\r\nNOOP\r\n")
    assert [client.reply()[:9] for _ in range(4)] == [b"500 5.5.1"] * 3 + [b"250 2.0.0"]
    client.send(b"BOGUS 4\r\n")
    assert client.line() == b"421 4.7.0 too many errors, closing connection\r\n"
    assert client.rest() == b""
    client.close()


def test_pop3_max_commands(limited: ServerProcess) -> None:
    login = b"USER alice@example.test\r\nPASS " + PASSWORD.encode() + b"\r\n"
    at_limit = pop3_client(limited)
    at_limit.send(login + b"NOOP\r\n" * 5)
    assert [at_limit.line()[:3] for _ in range(7)] == [b"+OK"] * 7
    pop3_quit(at_limit)  # the 8th command is still served

    over = pop3_client(limited)
    over.send(login + b"NOOP\r\n" * 7)
    assert [over.line()[:3] for _ in range(8)] == [b"+OK"] * 8
    assert over.line() == b"-ERR too many commands, closing connection\r\n"
    assert over.rest() == b""
    over.close()


def test_pop3_max_bad_commands(limited: ServerProcess) -> None:
    client = pop3_client(limited)
    client.send(b"BOGUS\r\nBOGUS\r\nBOGUS\r\nCAPA\r\n")
    assert [client.line() for _ in range(3)] == [b"-ERR unknown command\r\n"] * 3
    assert client.line().startswith(b"+OK")
    assert b"UIDL\r\n" in client.multiline()
    client.send(b"BOGUS\r\n")
    assert client.line() == b"-ERR too many errors, closing connection\r\n"
    assert client.rest() == b""
    client.close()


# -- recipients, size, line length ------------------------------------------------------------


def test_smtp_max_recipients(limited: ServerProcess) -> None:
    rcpts = ["alice@example.test", "bob@example.test", "carol@example.net"]
    boxes = {r: maildir(limited.state, r) / "new" for r in rcpts}
    before = {r: len(files(b)) for r, b in boxes.items()}
    client = smtp_client(limited)
    client.send(b"EHLO many.example\r\nMAIL FROM:<many@example.org>\r\n"
                + b"".join(b"RCPT TO:<%s>\r\n" % r.encode() for r in rcpts))
    assert [client.reply()[:3] for _ in range(5)] == [b"250"] * 5  # three is the limit
    client.send(b"RCPT TO:<alice@example.test>\r\n")
    assert client.reply().startswith(b"452 4.5.3 ")
    body = b"Subject: three\r\n\r\nto three\r\n"
    client.send(b"DATA\r\n" + body + b".\r\n")
    assert client.reply().startswith(b"354")
    assert client.reply().startswith(b"250 2.0.0")
    smtp_quit(client)
    for rcpt, box in boxes.items():
        newest = max(wait_for_files(box, before[rcpt] + 1), key=lambda p: p.stat().st_mtime_ns)
        assert strip_delivery_headers(newest.read_bytes()) == body


def exact_content(size: int) -> bytes:
    """Message content of exactly ``size`` octets (after unstuffing), CRLF lines."""
    head = b"Subject: exact size\r\n\r\n"
    full, rest = divmod(size - len(head), 100)
    if 0 < rest < 2:
        full, rest = full - 1, rest + 100
    tail = b"z" * (rest - 2) + b"\r\n" if rest else b""
    content = head + (b"y" * 98 + b"\r\n") * full + tail
    assert len(content) == size
    return content


def _transaction(client: Client, rcpt: str = "bob@example.test") -> None:
    client.send(b"MAIL FROM:<size@example.org>\r\nRCPT TO:<%s>\r\n" % rcpt.encode())
    assert [client.reply()[:3] for _ in range(2)] == [b"250", b"250"]


def test_smtp_max_message_size(limited: ServerProcess) -> None:
    box = maildir(limited.state, "bob@example.test") / "new"
    before = len(files(box))
    exact = exact_content(MAX_SIZE)
    over = exact_content(MAX_SIZE + 1)
    client = smtp_client(limited)
    client.send(b"EHLO size.example\r\n")
    ehlo = []
    while (line := client.line())[3:4] == b"-":
        ehlo.append(line)
    assert b"250-SIZE %d\r\n" % MAX_SIZE in ehlo
    _transaction(client)
    client.send(b"DATA\r\n" + exact + b".\r\n")
    assert client.reply().startswith(b"354")
    assert client.reply().startswith(b"250 2.0.0")
    _transaction(client)
    client.send(b"DATA\r\n" + over + b".\r\n")
    assert client.reply().startswith(b"354")
    assert client.reply().startswith(b"552 5.3.4")
    smtp_quit(client)
    # BDAT (RFC 3030): the same limit, checked on the announced size. A
    # second connection: max_commands is 10 on this listener.
    client = smtp_client(limited)
    client.send(b"EHLO size.example\r\n")
    assert client.reply().startswith(b"250 ")
    _transaction(client)
    client.send(b"BDAT %d LAST\r\n" % MAX_SIZE + exact)
    assert client.reply().startswith(b"250 2.0.0")
    _transaction(client)
    client.send(b"BDAT %d LAST\r\n" % (MAX_SIZE + 1) + over)
    assert client.reply().startswith(b"552 5.3.4")
    smtp_quit(client)
    delivered = wait_for_files(box, before + 2)
    assert len(delivered) == before + 2
    newest = sorted(delivered, key=lambda p: p.stat().st_mtime_ns)[-2:]
    assert [strip_delivery_headers(p.read_bytes()) for p in newest] == [exact, exact]


def test_smtp_max_line_length(limited: ServerProcess) -> None:
    box = maildir(limited.state, "carol@example.net") / "new"
    before = len(files(box))
    ok = b"Subject: long line\r\n\r\n" + b"a" * 998 + b"\r\n"  # 1000 octets with CRLF
    too_long = b"Subject: long line\r\n\r\n" + b"b" * 999 + b"\r\n"
    client = smtp_client(limited)
    client.send(b"EHLO lines.example\r\n")
    assert client.reply().startswith(b"250 ")
    _transaction(client, "carol@example.net")
    client.send(b"DATA\r\n" + too_long + b".\r\n")
    assert client.reply().startswith(b"354")
    assert client.reply().startswith(b"554 5.6.0")
    _transaction(client, "carol@example.net")  # the session goes on
    client.send(b"DATA\r\n" + ok + b".\r\n")
    assert client.reply().startswith(b"354")
    assert client.reply().startswith(b"250 2.0.0")
    smtp_quit(client)
    delivered = wait_for_files(box, before + 1)
    assert len(delivered) == before + 1
    newest = max(delivered, key=lambda p: p.stat().st_mtime_ns)
    assert strip_delivery_headers(newest.read_bytes()) == ok


def test_pop3_max_line_length(limited: ServerProcess) -> None:
    client = pop3_client(limited)
    at_limit = b"USER " + b"u" * (POP3_LINE - 7) + b"\r\n"
    assert len(at_limit) == POP3_LINE
    client.send(at_limit)
    assert client.line() == b"+OK send PASS\r\n"
    client.send(b"USER " + b"u" * (POP3_LINE - 6) + b"\r\n")
    assert client.line() == b"-ERR line too long\r\n"
    # A line far over the limit is dropped as it arrives; the session goes on.
    client.send(b"X" * 100_000 + b"\r\nCAPA\r\n")
    assert client.line() == b"-ERR line too long\r\n"
    assert client.line().startswith(b"+OK")
    assert b"USER\r\n" in client.multiline()
    pop3_quit(client)
