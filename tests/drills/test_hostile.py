"""Hostile clients against the live servers (DESIGN §7): silent connections,
huge announced literals and messages, endless lines, deeply nested IMAP
lists, thousands of pipelined commands and seeded random bytes. Throughout,
a well-behaved client (tests.drills.common.Canary) keeps being served with
bounded latency, the server's memory stays bounded (the peak of the whole
process tree, supervisor and workers, is printed), no session ends in an
internal error, and each abuse is logged once per connection as
``<service>.abuse ip=… kind=…``.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.drills.common import SCALE, Canary, descendants, rss_kb, wait_until
from tests.e2e.server import PASSWORD, ServerProcess
from tests.e2e.test_limits_e2e import Client, write_state
from tests.e2e.test_robustness_e2e import log_events

SERVICES = ("smtp", "pop3", "imap")
MAX_LATENCY = 5.0  # seconds one canary round may take while the server is abused
MAX_GROWTH_KB = 200 * 1024  # how much the server's peak RSS may grow in one abuse
KINDS = frozenset({"line_too_long", "too_many_commands", "too_many_errors", "unknown_command",
                   "literal_too_big", "nesting_too_deep", "message_too_big"})
LOGIN = f"a LOGIN alice@example.test \"{PASSWORD}\"\r\n".encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    state = write_state(tmp_path_factory.mktemp("hostile") / "state",
                        tls={"loopback_plaintext_auth": True},
                        imap={"timeout_unauthenticated": 5.0})
    proc = ServerProcess(state).start()
    warm_up(proc)
    yield proc
    assert proc.stop() == 0, proc.log_tail()


def warm_up(server: ServerProcess) -> None:
    """Bring the server to its resting size before any abuse is measured.

    The first login costs the mailbox worker argon2id's 64 MiB (argon2-cffi's
    default memory cost, touched once per verification, at most ``auth_pool``
    threads at a time), and the delivery children grow for a few seconds after
    start. Neither is an abuse's doing: both go into the baseline.
    """
    canary = Canary(server)
    canary.start()
    wait_until("a canary round", lambda: bool(canary.latencies or canary.failures), 30.0)
    canary.stop()
    assert canary.failures == [], canary.failures
    sizes = [tree_hwm_kb(server)]

    def settled() -> bool:
        sizes.append(tree_hwm_kb(server))
        return len(sizes) > 10 and sizes[-1] == sizes[-11]  # unchanged for ~0.5 s

    wait_until("the server's memory to settle", settled, 30.0)


def tree_hwm_kb(server: ServerProcess) -> int:
    """The peak RSS (VmHWM) of every process of the server, added up: the
    supervisor serves nothing itself, its workers do (server/supervisor.py)."""
    assert server.proc is not None
    total = 0
    for pid in descendants(server.proc.pid):
        try:
            total += rss_kb(pid, "VmHWM")
        except (OSError, AssertionError):
            pass  # gone meanwhile (a delivery child)
    return total


def abuse_events(lines: list[str]) -> Counter[tuple[str, str]]:
    """(event, kind) of every ``<service>.abuse`` line, counted."""
    found: Counter[tuple[str, str]] = Counter()
    for line in lines:
        parts = line.split(" ")
        if len(parts) > 2 and parts[2].endswith(".abuse"):
            fields = dict(p.split("=", 1) for p in parts[3:] if "=" in p)
            assert fields.get("kind") in KINDS and fields.get("ip"), line
            found[(parts[2], fields["kind"])] += 1
    return found


def log_size(server: ServerProcess) -> int:
    return len((server.state / "server.log").read_text(errors="replace").splitlines())


def new_log(server: ServerProcess, since: int) -> list[str]:
    return (server.state / "server.log").read_text(errors="replace").splitlines()[since:]


def abuse(server: ServerProcess, name: str, attack: Callable[[], str]) -> list[str]:
    """Run ``attack`` while a canary is served; print and check the figures."""
    assert server.proc is not None
    before_hwm = tree_hwm_kb(server)
    mark = log_size(server)
    canary = Canary(server)
    canary.start()
    started = time.monotonic()
    try:
        outcome = attack()
    finally:
        time.sleep(0.5)  # at least a couple of canary rounds after the attack too
        canary.stop()
    seconds = time.monotonic() - started
    after_hwm = tree_hwm_kb(server)
    lines = new_log(server, mark)
    events: dict[str, int] = {}
    for line in lines:
        parts = line.split(" ", 3)
        if len(parts) > 2 and not parts[2].endswith((".connect", ".close", ".login", ".quit",
                                                      ".logout", ".accept")):
            events[parts[2]] = events.get(parts[2], 0) + 1
    print(f"\nhostile drill {name}: {outcome}; {seconds:.1f}s; server peak RSS (all "
          f"processes) {after_hwm // 1024} MB (+{(after_hwm - before_hwm) // 1024} MB); canary "
          f"{canary.summary()}; log events {events}")
    assert server.proc.poll() is None, "the server died"
    assert canary.failures == [], canary.failures[:3]
    assert canary.latencies and max(canary.latencies) < MAX_LATENCY
    assert after_hwm - before_hwm < MAX_GROWTH_KB
    assert not any(".error " in line or "Traceback" in line for line in lines), [
        line for line in lines if ".error " in line][:3]
    return lines


def greeted(server: ServerProcess, service: str, source: str = "127.0.0.1",
            timeout: float = 30.0) -> Client:
    client = Client(server.address(service), source, timeout=timeout)
    assert client.line()[:3] in (b"220", b"+OK", b"* O"), service
    return client


def push_and_read(client: Client, data: bytes, chunk: int = 1 << 16,
                  eof: bool = False, timeout: float | None = None) -> tuple[int, bytes]:
    """Send ``data`` from a thread while reading until the server closes (or
    stops answering): how much went out, and what came back. ``eof``: then
    end the sending side, as a client that has said all it will."""
    sent = [0]

    def push() -> None:
        try:
            for at in range(0, len(data), chunk):
                client.sock.sendall(data[at:at + chunk])
                sent[0] += chunk
            if eof:
                client.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server closed on us: expected for most abuses

    pusher = threading.Thread(target=push, daemon=True)
    pusher.start()
    if timeout is not None:
        client.sock.settimeout(timeout)
    received = b""
    try:
        while chunk_in := client.reader.read1(65536):
            received += chunk_in
    except (TimeoutError, ConnectionResetError):
        pass
    pusher.join(60)
    client.close()
    return min(sent[0], len(data)), received


def test_slowloris(server: ServerProcess) -> None:
    """Many connections that say nothing, from two attacking addresses."""
    def attack() -> str:
        held: list[socket.socket] = []
        refused = 0
        for n in range(SCALE.slowloris):
            sock = socket.socket()
            sock.bind((f"127.0.0.{10 + n % 2}", 0))
            try:
                sock.connect(server.address(SERVICES[n % 3]))
                held.append(sock)
            except OSError:
                refused += 1
                sock.close()
        time.sleep(1.5)  # held open (silent) while the canary keeps working
        for sock in held:
            sock.close()
        return f"{SCALE.slowloris} silent connections ({refused} refused at connect)"

    lines = abuse(server, "slowloris", attack)
    limited = sum("connection limit" in line for line in lines)
    print(f"hostile drill slowloris: {limited} connections refused by the per-address limit "
          f"(one log line each)")
    assert limited > 0


def test_huge_announced_literal_and_message(server: ServerProcess) -> None:
    def attack() -> str:
        imap = greeted(server, "imap")
        imap.send(LOGIN)
        while not imap.line().startswith(b"a "):
            pass
        imap.send(b"b APPEND INBOX {10737418240}\r\n")
        sync_answer = imap.line()
        imap.send(b"c NOOP\r\n")
        while not (noop := imap.line()).startswith(b"c "):
            pass
        sent, plus_answer = push_and_read(
            imap, b"d APPEND INBOX {10737418240+}\r\n" + b"x" * (SCALE.no_newline_mb << 20))
        smtp = greeted(server, "smtp")
        smtp.send(b"EHLO big.example\r\nMAIL FROM:<big@example.org> SIZE=10737418240\r\n")
        smtp.reply()
        size_answer = smtp.reply()
        sent_bdat, bdat_answer = push_and_read(
            smtp, b"MAIL FROM:<big@example.org>\r\nRCPT TO:<alice@example.test>\r\n"
            b"BDAT 10737418240 LAST\r\n" + b"y" * (SCALE.no_newline_mb << 20), timeout=3.0)
        assert sync_answer.startswith(b"b NO") or sync_answer.startswith(b"b BAD"), sync_answer
        assert noop.startswith(b"c OK"), noop
        assert size_answer.startswith(b"552"), size_answer
        # RFC 3030 §2 would have the 10 GB read before the reply: refused at once, closed.
        assert b"552 5.3.4" in bdat_answer and b"421 4.7.0" in bdat_answer, bdat_answer
        return (f"IMAP {{10 GB}} -> {sync_answer.strip()!r}; {{10 GB+}} -> "
                f"{plus_answer[-120:].strip()!r} after {sent >> 20} MB sent; SMTP SIZE -> "
                f"{size_answer.strip()!r}; BDAT 10 GB -> {bdat_answer[-120:].strip()!r} "
                f"after {sent_bdat >> 20} MB sent")

    lines = abuse(server, "10 GB literal/message", attack)
    # One IMAP connection ({10 GB}, then {10 GB+}, also too big to skip) and
    # one SMTP connection (SIZE=, then BDAT): each kind once per connection.
    assert abuse_events(lines) == Counter({("imap.abuse", "message_too_big"): 1,
                                           ("imap.abuse", "literal_too_big"): 1,
                                           ("smtp.abuse", "message_too_big"): 1})


def test_no_newline(server: ServerProcess) -> None:
    def attack() -> str:
        outcomes = []
        ends = {"smtp": b"\r\nQUIT\r\n", "pop3": b"\r\nQUIT\r\n", "imap": b"\r\nz LOGOUT\r\n"}
        for service in SERVICES:
            client = greeted(server, service)
            # The line ends after the flood, so the server's answer to it shows.
            sent, answer = push_and_read(
                client, b"A" * (SCALE.no_newline_mb << 20) + ends[service], timeout=10.0)
            outcomes.append(f"{service}: {answer[:120].strip()!r} after {sent >> 20} MB sent")
            # Answered and closed long before the line (or the QUIT after it) ends.
            assert answer.startswith(expected[service]), (service, answer[:200])
            assert b"221" not in answer and b"signing off" not in answer, (service, answer)
        return f"{SCALE.no_newline_mb} MB without a newline: " + "; ".join(outcomes)

    expected = {"smtp": b"500 5.5.2 line too long\r\n421 4.7.0 ", "pop3": b"-ERR line too long",
                "imap": b"* BYE [TOOBIG]"}
    lines = abuse(server, "no newline", attack)
    assert abuse_events(lines) == Counter({(f"{service}.abuse", "line_too_long"): 1
                                           for service in SERVICES})


def test_deeply_nested_imap_lists(server: ServerProcess) -> None:
    def attack() -> str:
        imap = greeted(server, "imap")
        imap.send(LOGIN + b"s SELECT INBOX\r\n")
        while not imap.line().startswith(b"s "):
            pass
        answers = []
        for tag, command in ((b"f", b"FETCH 1 "), (b"g", b"SEARCH "), (b"h", b"ID ")):
            depth = 20_000
            imap.send(tag + b" " + command + b"(" * depth + b"ALL" + b")" * depth + b"\r\n")
            while not (line := imap.line()).startswith(tag + b" ") and line:
                pass
            answers.append(line.strip()[:60])
        imap.send(b"z NOOP\r\n")
        while not (line := imap.line()).startswith(b"z ") and line:
            pass
        assert line.startswith(b"z OK"), line
        imap.close()
        return f"20,000-deep lists -> {answers}; session still usable"

    lines = abuse(server, "nested lists", attack)
    # Three commands nested too deep on one connection: logged once.
    assert abuse_events(lines) == Counter({("imap.abuse", "nesting_too_deep"): 1})


def _count_pipelined(client: Client, data: bytes, done: bytes) -> tuple[int, bytes]:
    replies = [0]
    last = [b""]

    def read() -> None:
        while line := client.line():
            replies[0] += 1
            last[0] = line
            if line.startswith(done):
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    client.send(data)
    reader.join(120)
    client.close()
    return replies[0], last[0]


def test_pipelined_commands(server: ServerProcess) -> None:
    n = SCALE.pipelined

    def attack() -> str:
        smtp = _count_pipelined(greeted(server, "smtp"), b"NOOP\r\n" * n + b"QUIT\r\n", b"221")
        pop = _count_pipelined(
            greeted(server, "pop3"),
            f"USER bob@example.test\r\nPASS {PASSWORD}\r\n".encode() + b"NOOP\r\n" * n
            + b"QUIT\r\n", b"+OK bye")
        imap = _count_pipelined(
            greeted(server, "imap"),
            LOGIN + b"".join(b"t%d NOOP\r\n" % i for i in range(n)) + b"q LOGOUT\r\n", b"q ")
        return (f"{n} pipelined commands: SMTP {smtp[0]} replies (last {smtp[1].strip()!r}), "
                f"POP3 {pop[0]} (last {pop[1].strip()!r}), IMAP {imap[0]} lines "
                f"(last {imap[1].strip()!r})")

    lines = abuse(server, "pipelining", attack)
    # SMTP's limit is 10,000 commands per connection: the QUIT is one too many.
    assert abuse_events(lines) == Counter({("smtp.abuse", "too_many_commands"): 1})


def _fuzz_payload(rng: random.Random, seeds: list[bytes]) -> bytes:
    parts = []
    for _ in range(rng.randint(1, 12)):
        if rng.random() < 0.5:
            parts.append(rng.choice(seeds))
        else:
            parts.append(rng.randbytes(rng.randint(1, 300)))
    return b"".join(parts)


def test_random_bytes(server: ServerProcess) -> None:
    from fuzz.corpus import client_lines

    seeds = {service: client_lines(service) for service in SERVICES}
    rng = random.Random(2026)

    def attack() -> str:
        answered = 0
        for n in range(SCALE.fuzz_connections):
            service = SERVICES[n % 3]
            payload = _fuzz_payload(rng, seeds[service])
            # One address per connection, so the log shows each connection's lines.
            source = f"127.0.{1 + n // 250}.{n % 250 + 1}"
            sources[source] = service
            client = greeted(server, service, source=source, timeout=5.0)
            _, answer = push_and_read(client, payload, eof=True)
            answered += bool(answer)
        return f"{SCALE.fuzz_connections} connections of seeded random bytes ({answered} answered)"

    sources: dict[str, str] = {}
    lines = abuse(server, "random bytes", attack)
    per_connection: Counter[tuple[str, str]] = Counter()
    for line in lines:
        parts = line.split(" ")
        if len(parts) > 3 and parts[2].endswith(".abuse"):
            fields = dict(p.split("=", 1) for p in parts[3:] if "=" in p)
            if fields["ip"] in sources:
                per_connection[(fields["ip"], fields["kind"])] += 1
    print(f"hostile drill random bytes: abuse logged {dict(Counter(abuse_events(lines)))}")
    assert per_connection, "random bytes were never logged as abuse"
    assert max(per_connection.values()) == 1  # each kind once per connection
    assert not log_events(server.state, "smtp.error") + log_events(server.state, "imap.error")


def test_server_survived_every_abuse(server: ServerProcess, tmp_path: Path) -> None:
    assert server.proc is not None and server.proc.poll() is None
    assert "Traceback" not in (server.state / "server.log").read_text(errors="replace")
