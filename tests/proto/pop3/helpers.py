"""Test helpers: drive a Pop3Server with bytes, answer its events with a tiny
fake adapter (the part server/pop3d.py plays for real)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from mailyard.proto.pop3 import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    Commit,
    DropEntry,
    Event,
    Login,
    Pop3Features,
    Pop3Limits,
    Pop3Server,
    Pop3ServerConfig,
    Retrieve,
    StartTls,
)

HOSTNAME = "pop.example.test"

# The test maildrop: three messages, the second with dot-started lines.
MESSAGES: tuple[bytes, ...] = (
    b"Subject: one\r\n\r\nfirst body\r\n",
    b"Subject: two\r\n\r\n.dotted\r\n..two dots\r\nplain\r\n",
    b"Subject: three\r\nX-Tag: 3\r\n\r\nline 1\r\nline 2\r\nline 3\r\n",
)
UIDS: tuple[str, ...] = ("a1", "b2", "c3")
SIZES: tuple[int, ...] = tuple(len(m) for m in MESSAGES)
TOTAL = sum(SIZES)


def make_core(*, greet: bool = True, **kwargs: object) -> Pop3Server:
    """A core with test-friendly limits; kwargs override limits or features."""
    limits = Pop3Limits(
        max_line_length=100, max_auth_line=300, max_commands=200, max_bad_commands=5
    )
    features = Pop3Features(stls=True, sasl_mechanisms=("PLAIN", "LOGIN"))
    limit_keys = {k: v for k, v in kwargs.items() if k in Pop3Limits.__dataclass_fields__}
    feature_keys = {k: v for k, v in kwargs.items() if k in Pop3Features.__dataclass_fields__}
    assert set(kwargs) == set(limit_keys) | set(feature_keys), kwargs
    config = Pop3ServerConfig(
        HOSTNAME, replace(limits, **limit_keys), replace(features, **feature_keys)
    )
    core = Pop3Server(config)
    if greet:
        core.greeting()
        core.data_to_send()
    return core


@dataclass
class Adapter:
    """Answers events like pop3d.py: users bob/secret (any mechanism);
    "locked" is in use elsewhere, "broken" has an unreadable maildrop;
    messages in ``vanished`` fail to open, those in ``torn`` fail mid-read."""

    messages: Sequence[bytes] = MESSAGES
    uids: Sequence[str] = UIDS
    sizes: Sequence[int] | None = None  # sizes announced (default: the real ones)
    chunk: int = 5
    users: dict[str, str] = field(default_factory=lambda: {"bob": "secret", "locked": "secret"})
    vanished: frozenset[int] = frozenset()
    torn: frozenset[int] = frozenset()
    commit_ok: bool = True
    commits: list[tuple[int, ...]] = field(default_factory=list)
    stop_early: bool = False  # honour retrieve_wants_more
    fed: int = 0  # octets handed to retrieve_chunk

    def drop(self) -> list[DropEntry]:
        sizes = self.sizes if self.sizes is not None else [len(m) for m in self.messages]
        return [DropEntry(size, uid) for size, uid in zip(sizes, self.uids, strict=True)]

    def answer(self, core: Pop3Server, event: Event) -> None:
        if isinstance(event, Login):
            self._login(core, event)
        elif isinstance(event, Retrieve):
            self._retrieve(core, event)
        elif isinstance(event, Commit):
            self.commits.append(event.deleted)
            if self.commit_ok:
                core.commit_done(True, "bye")
            else:
                core.commit_done(False, "some messages were not deleted")
        elif isinstance(event, StartTls):
            core.start_tls()  # no real TLS in a core test: the handshake "happens" here

    def _login(self, core: Pop3Server, event: Login) -> None:
        if event.username == "broken":
            core.login_failed("mailbox unavailable; try again later", code="SYS/TEMP")
        elif self.users.get(event.username) != event.password:
            core.login_failed("authentication failed")
        elif event.username == "locked":
            core.login_in_use()
        else:
            core.login_ok(self.drop())

    def _retrieve(self, core: Pop3Server, event: Retrieve) -> None:
        if event.index in self.vanished:
            core.retrieve_failed("message is no longer available")
            return
        data = self.messages[event.index]
        core.retrieve_begin(self.drop()[event.index].size)
        for start in range(0, len(data), self.chunk):
            if event.index in self.torn and start > 0:
                core.retrieve_failed("read error")
                return
            if self.stop_early and not core.retrieve_wants_more:
                break
            core.retrieve_chunk(data[start : start + self.chunk])
            self.fed += len(data[start : start + self.chunk])
        core.retrieve_end()


@dataclass
class Result:
    events: list[Event] = field(default_factory=list)
    output: bytes = b""
    closed: bool = False

    @property
    def lines(self) -> list[str]:
        return self.output.decode("utf-8").split("\r\n")[:-1]

    @property
    def status(self) -> list[str]:
        """Only the status lines (+OK / -ERR / + challenge)."""
        return [ln for ln in self.lines if ln.startswith(("+OK", "-ERR", "+ "))]


def drain(core: Pop3Server, adapter: Adapter, result: Result) -> None:
    while True:
        event = core.next_event()
        if event is NEED_DATA:
            return
        if event is CLOSED:
            result.closed = True
            return
        assert event is not AWAITING_REPLY, "the adapter left an event unanswered"
        result.events.append(event)
        adapter.answer(core, event)


def run(
    chunks: Iterable[bytes], *, core: Pop3Server | None = None, adapter: Adapter | None = None
) -> Result:
    core = core if core is not None else make_core()
    adapter = adapter if adapter is not None else Adapter()
    result = Result()
    drain(core, adapter, result)
    for chunk in chunks:
        if result.closed:
            break
        core.receive_data(chunk)
        drain(core, adapter, result)
    result.output += core.data_to_send()
    return result


def lines(*commands: str) -> bytes:
    """Command lines joined with CRLF."""
    return b"".join(c.encode("utf-8") + b"\r\n" for c in commands)


LOGIN = lines("USER bob", "PASS secret")

