"""Test helpers: drive an ImapServer with bytes and answer its events with a
scripted adapter (the part server/imapd.py will play for real)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.events import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    AppendData,
    AppendEnd,
    Command,
    Event,
    IdleDone,
)
from mailyard.proto.imap.responses import Code
from mailyard.proto.imap.server import ImapServer
from mailyard.proto.imap.settings import ImapFeatures, ImapLimits, ImapServerConfig

HOSTNAME = "imap.example.test"

Answer = Callable[[ImapServer, Event], None]


def make_core(*, greet: bool = True, **kwargs: object) -> ImapServer:
    """A core with the given limit / feature overrides."""
    limit_keys = {k: v for k, v in kwargs.items() if k in ImapLimits.__dataclass_fields__}
    feature_keys = {k: v for k, v in kwargs.items() if k in ImapFeatures.__dataclass_fields__}
    assert set(kwargs) == set(limit_keys) | set(feature_keys), kwargs
    config = ImapServerConfig(
        HOSTNAME, replace(ImapLimits(), **limit_keys), replace(ImapFeatures(), **feature_keys)
    )
    core = ImapServer(config)
    if greet:
        core.greeting()
        core.data_to_send()
    return core


def default_answer(core: ImapServer, event: Event) -> None:
    """OK to everything; LOGIN/AUTHENTICATE only for bob/secret; APPEND accepted."""
    if isinstance(event, Command):
        body = event.body
        if isinstance(body, c.Login | c.Authenticate):
            if (body.username, body.password) == ("bob", "secret"):
                core.finish(Status.OK)
            else:
                core.finish(Status.NO, Code.AUTHENTICATIONFAILED, "invalid credentials")
        elif isinstance(body, c.Append):
            core.accept_append()
        elif isinstance(body, c.Idle):
            pass
        else:
            core.finish(Status.OK)
    elif isinstance(event, AppendEnd | IdleDone):
        core.finish(Status.OK)


@dataclass
class Result:
    events: list[Event] = field(default_factory=list)
    output: bytes = b""
    closed: bool = False

    @property
    def lines(self) -> list[str]:
        return self.output.decode("utf-8", "replace").split("\r\n")[:-1]

    @property
    def commands(self) -> list[c.CommandBody]:
        return [e.body for e in self.events if isinstance(e, Command)]

    @property
    def appended(self) -> bytes:
        return b"".join(e.data for e in self.events if isinstance(e, AppendData))


def drain(core: ImapServer, answer: Answer, result: Result) -> None:
    while True:
        event = core.next_event()
        if event is NEED_DATA:
            return
        if event is CLOSED:
            result.closed = True
            return
        if event is AWAITING_REPLY:
            return
        result.events.append(event)
        answer(core, event)


def run(
    chunks: Iterable[bytes],
    *,
    core: ImapServer | None = None,
    answer: Answer = default_answer,
    eof: bool = False,
) -> Result:
    core = core if core is not None else make_core()
    result = Result()
    drain(core, answer, result)
    for chunk in chunks:
        if result.closed:
            break
        core.receive_data(chunk)
        drain(core, answer, result)
    if eof and not result.closed:
        core.receive_data(b"")
        drain(core, answer, result)
    result.output += core.data_to_send()
    return result


def lines(*commands: str | bytes) -> bytes:
    return b"".join((x.encode() if isinstance(x, str) else x) + b"\r\n" for x in commands)


LOGIN = lines("L LOGIN bob secret")
SELECT = LOGIN + lines("S SELECT INBOX")



def parse_one(command: bytes, *, state: str = "selected", **kwargs: object) -> c.CommandBody:
    """The typed command the core makes of one command line (after login
    and SELECT unless ``state`` says otherwise)."""
    prefix = {"none": b"", "auth": LOGIN, "selected": SELECT}[state]
    result = run([prefix + command], core=make_core(**kwargs))
    last = result.events[-1]
    assert isinstance(last, Command), result.lines
    return last.body


def tagged(result: Result, tag: str) -> str:
    """The tagged completion line for ``tag``."""
    found = [line for line in result.lines if line.startswith(tag + " ")]
    assert found, (tag, result.lines)
    return found[-1]
