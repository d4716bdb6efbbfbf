"""POP3 RETR/TOP through the real server: one disk call per message, read-ahead
for in-order clients, large messages streamed, and messages that vanish (issue 7)."""

from __future__ import annotations

import poplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import PASSWORD, ServerProcess, maildir, provision, write_config

USER = "alice@example.test"


def _text(i: int, size: int) -> bytes:
    # Lines that start with "." check the dot-stuffing of every path.
    head = b"Subject: message %d\r\n\r\n.starts with a dot\r\n" % i
    line = b"%05d some text for the body of this message, long enough\r\n" % i
    return head + line * max(0, (size - len(head)) // len(line)) + b"..\r\nend\r\n"


def _place(box: Path, texts: list[bytes]) -> None:
    for i, text in enumerate(texts):
        name = f"{1_700_000_000 + i}.M{i}P1Q{i}.test.example,S={len(text)}"
        (box / "new" / name).write_bytes(text)


def _body(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\r\n" for line in lines)  # poplib undid the stuffing


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    state = tmp_path_factory.mktemp("state")
    write_config(state)
    provision(state, users=(USER,))
    proc = ServerProcess(state).start()
    yield proc
    proc.stop()


def _login(server: ServerProcess) -> poplib.POP3:
    pop = poplib.POP3(*server.address("pop3"), timeout=30)
    pop.user(USER)
    pop.pass_(PASSWORD)
    return pop


def test_in_order_small_and_large_messages(server: ServerProcess) -> None:
    sizes = [300, 4000, 90_000, 500, 200_000, *([3000] * 40), 70_000, 100]
    texts = [_text(i, size) for i, size in enumerate(sizes)]
    box = maildir(server.state, USER)
    _place(box, texts)
    pop = _login(server)
    assert pop.stat()[0] == len(texts)
    for n, text in enumerate(texts, start=1):
        assert _body(pop.retr(n)[1]) == text
    for n, text in enumerate(texts, start=1):  # TOP in order too
        head = text.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        assert _body(pop.top(n, 1)[1]) == head + text.split(b"\r\n")[2] + b"\r\n"
    for n in range(1, len(texts) + 1):
        pop.dele(n)
    pop.quit()
    assert list((box / "cur").iterdir()) == []


def test_vanished_and_out_of_order(server: ServerProcess) -> None:
    texts = [_text(i, 2000) for i in range(10)]
    box = maildir(server.state, USER)
    _place(box, texts)
    pop = _login(server)
    assert _body(pop.retr(1)[1]) == texts[0]
    # Another reader (an IMAP expunge) removes message 6 before it is read ahead.
    (gone,) = [p for p in (box / "cur").iterdir() if p.name.startswith("1700000005.")]
    gone.unlink()
    assert _body(pop.retr(2)[1]) == texts[1]  # in order: the rest is read ahead
    with pytest.raises(poplib.error_proto):
        pop.retr(6)
    assert _body(pop.retr(9)[1]) == texts[8]
    assert _body(pop.retr(3)[1]) == texts[2]
    assert _body(pop.retr(10)[1]) == texts[9]
    pop.dele(1)
    pop.rset()
    assert _body(pop.retr(1)[1]) == texts[0]
    pop.quit()
    assert len(list((box / "cur").iterdir())) == 9
