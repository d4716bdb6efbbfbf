"""Test helpers: drive an SmtpServer with bytes, answer events with a policy."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from mailyard.proto.smtp import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    Authenticate,
    DataAborted,
    DataChunk,
    DataEnd,
    DataStart,
    Event,
    Features,
    Hello,
    MailFrom,
    RcptTo,
    Reply,
    SmtpLimits,
    SmtpServer,
    SmtpServerConfig,
    StartTls,
)

HOSTNAME = "mx.example.test"

Policy = Callable[[Event], "Reply | None"]


def make_core(*, greet: bool = True, **kwargs: object) -> SmtpServer:
    """A core with test-friendly limits; kwargs override limits or features."""
    limits = SmtpLimits(
        max_message_size=10_000,
        max_recipients=5,
        max_line_length=100,
        max_command_line=100,
        max_commands=100,
        max_bad_commands=5,
    )
    features = Features(auth_mechanisms=("PLAIN", "LOGIN"), starttls=True)
    limit_keys = {k: v for k, v in kwargs.items() if k in SmtpLimits.__dataclass_fields__}
    feature_keys = {k: v for k, v in kwargs.items() if k in Features.__dataclass_fields__}
    assert set(kwargs) == set(limit_keys) | set(feature_keys), kwargs
    config = SmtpServerConfig(
        HOSTNAME, replace(limits, **limit_keys), replace(features, **feature_keys)
    )
    core = SmtpServer(config)
    if greet:
        core.greeting()
        core.data_to_send()
    return core


def accept_policy(event: Event) -> Reply | None:
    """Accept everything in example.test; 550 5.1.1 for nobody@, relay denied elsewhere."""
    if isinstance(event, Hello):
        return Reply(250, None, HOSTNAME)
    if isinstance(event, MailFrom):
        return Reply(250, "2.1.0", "sender ok")
    if isinstance(event, RcptTo):
        if event.recipient.domain != "example.test":
            return Reply(554, "5.7.1", "relay access denied")
        if event.recipient.local.lower().startswith("nobody"):
            return Reply(550, "5.1.1", "no such user here")
        return Reply(250, "2.1.5", "recipient ok")
    if isinstance(event, DataStart):
        return Reply(250, "2.0.0", "ok") if event.bdat else Reply(354, None, "go ahead")
    if isinstance(event, DataEnd):
        return Reply(250, "2.0.0", "ok queued")
    if isinstance(event, Authenticate):
        if event.username == "bob" and event.password == "secret":
            return Reply(235, "2.7.0", "authentication successful")
        return Reply(535, "5.7.8", "authentication credentials invalid")
    if isinstance(event, StartTls):
        return Reply(220, "2.0.0", "ready to start TLS")
    return None


@dataclass
class Result:
    events: list[Event] = field(default_factory=list)
    output: bytes = b""
    closed: bool = False

    @property
    def lines(self) -> list[str]:
        return self.output.decode("utf-8").split("\r\n")[:-1]

    @property
    def codes(self) -> list[str]:
        """Three-digit code of the last line of every reply."""
        return [line[:3] for line in self.lines if line[3:4] != "-"]

    @property
    def content(self) -> bytes:
        return b"".join(e.data for e in self.events if isinstance(e, DataChunk))

    def normalized(self) -> list[object]:
        """Events with consecutive DataChunks merged (their split may vary),
        and content dropped before a DataAborted (how much of it went out
        before the problem showed depends on the split too)."""
        out: list[object] = []
        for event in self.events:
            if isinstance(event, DataAborted) and out and isinstance(out[-1], DataChunk):
                out.pop()
            if isinstance(event, DataChunk) and out and isinstance(out[-1], DataChunk):
                out[-1] = DataChunk(out[-1].data + event.data)
            else:
                out.append(event)
        return out


def drain(core: SmtpServer, policy: Policy, result: Result) -> None:
    while True:
        event = core.next_event()
        if event is NEED_DATA:
            return
        if event is CLOSED:
            result.closed = True
            return
        assert event is not AWAITING_REPLY, "policy left an event unanswered"
        result.events.append(event)
        reply = policy(event)
        if reply is not None:
            core.send(reply)
        if isinstance(event, StartTls) and reply is not None and reply.positive:
            result.output += core.data_to_send()
            core.start_tls()


def run(
    chunks: Iterable[bytes], *, core: SmtpServer | None = None, policy: Policy = accept_policy
) -> Result:
    core = core if core is not None else make_core()
    result = Result()
    drain(core, policy, result)
    for chunk in chunks:
        if result.closed:
            break
        core.receive_data(chunk)
        drain(core, policy, result)
    result.output += core.data_to_send()
    return result

