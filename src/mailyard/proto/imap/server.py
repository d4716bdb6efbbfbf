"""ImapServer: the sans-I/O IMAP4rev1/IMAP4rev2 server core (RFC 3501,
RFC 9051 and the extensions listed in settings.py).

Theory of operation (the SMTP and POP3 cores' shape, h11's pull model).
The adapter feeds bytes with ``receive_data`` and pulls with
``next_event``. The core reads one command at a time from its own buffer:
lines and literals are assembled by ``reader.py`` with every limit checked
before a literal octet is read (continuation requests "+ …" are sent only
then), parsed into typed commands by ``parser.py``, and checked against the
state table (``states.py``). What the core can answer alone —
CAPABILITY, LOGOUT, ID, NAMESPACE, ENABLE and every error — is answered
here (``builtin.py``); the other commands become a
``Command`` event and the core reads nothing more until the adapter called
``finish`` (pipelined commands run strictly in order, RFC 9051 §5.5), so
responses leave in command order. The adapter may ``send`` untagged
responses while a command is pending — including all through IDLE.

APPEND streams (``append.py``): the core stops at the message literal,
emits ``Command(tag, Append(…))`` and waits for ``accept_append()`` or a
refusing ``finish``; accepted octets come out as ``AppendData`` events and
end with ``AppendEnd``. AUTHENTICATE runs the SASL exchange here
(``proto/sasl.py``) and hands the adapter only the credentials.

Errors. ``ImapUsageError`` means the adapter misused the API; invalid
values it passes raise it before anything is written. Anything else
escaping from this module is a bug, whatever the client sends.
"""

from __future__ import annotations

from mailyard.proto.imap import commands as c
from mailyard.proto.imap.engine import Engine, Mode, default_text
from mailyard.proto.imap.errors import ImapUsageError, Status
from mailyard.proto.imap.events import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    AppendEnd,
    Command,
    Event,
    IdleDone,
    Sentinel,
)
from mailyard.proto.imap.responses import (
    CapabilityCode,
    Code,
    Condition,
    Expunge,
    ResponseCode,
    Untagged,
    Vanished,
)
from mailyard.proto.imap.rules import check_untagged
from mailyard.proto.imap.states import ON_FAILURE, ON_OK, State

__all__ = ["ImapServer"]


class ImapServer(Engine):
    """One IMAP server session, without I/O. See the module doc and
    docs/design/imap-core.md."""

    # -- public API: properties ---------------------------------------------------

    @property
    def state(self) -> State:
        return State.LOGOUT if self._mode is Mode.CLOSED else self._state

    @property
    def read_only(self) -> bool:
        """The selected mailbox was opened read-only (EXAMINE, or [READ-ONLY])."""
        return self._read_only and self._state is State.SELECTED

    @property
    def tls_active(self) -> bool:
        return self._session.tls_active

    @property
    def enabled(self) -> frozenset[str]:
        """Extensions ENABLEd by the client (RFC 5161), canonical names."""
        return frozenset(self._session.enabled)

    @property
    def utf8(self) -> bool:
        """Mailbox names and strings are UTF-8 (UTF8=ACCEPT or IMAP4rev2)."""
        return self._session.utf8

    @property
    def imap4rev2(self) -> bool:
        """IMAP4rev2 semantics (no RECENT, ESEARCH for SEARCH …)."""
        return "IMAP4rev2" in self._session.enabled

    @property
    def condstore(self) -> bool:
        """RFC 7162 §3.1: CONDSTORE is on for this session (MODSEQ in FETCH)."""
        return self._session.condstore

    @property
    def qresync(self) -> bool:
        """RFC 7162 §3.2.3: QRESYNC enabled (VANISHED instead of EXPUNGE)."""
        return "QRESYNC" in self._session.enabled

    @property
    def client_id(self) -> tuple[tuple[str, str | None], ...] | None:
        """What the client said in ID (RFC 2971), for logs."""
        return self._session.client_id

    @property
    def pending(self) -> Command | None:
        """The command in progress, if any."""
        return self._pending

    @property
    def timeout(self) -> float:
        """Seconds of silence after which the adapter should ``bye()``
        (RFC 9051 §5.4: at least 30 minutes once authenticated)."""
        if self._state is State.NOT_AUTHENTICATED:
            return self._limits.timeout_unauthenticated
        if self._mode is Mode.IDLE:
            return self._limits.timeout_idle
        return self._limits.timeout_authenticated

    def capabilities(self) -> tuple[str, ...]:
        return self._session.capabilities(self._state)

    # -- public API: input and output --------------------------------------------

    def greeting(self) -> None:
        """Queue ``* OK [CAPABILITY …] host IMAP server ready`` (RFC 9051 §7.1.1)."""
        if self._greeted:
            raise ImapUsageError("greeting() called twice")
        self._greeted = True
        code = CapabilityCode(self.capabilities())
        self._enc.untagged(Condition(Status.OK, f"{self.config.hostname} IMAP server ready",
                                     code), self._out)  # fmt: skip

    def receive_data(self, data: bytes) -> None:
        """Bytes from the client; ``b""`` means EOF. Ignored once closed."""
        if self._mode is Mode.CLOSED or self._eof:
            return
        if not data:
            self._eof = True
            return
        self._buf.append(bytes(data))

    def data_to_send(self) -> bytes:
        return self._out.take()

    def data_to_send_parts(self) -> list[bytes | memoryview]:
        """The same octets as separate parts (large payloads uncopied), for
        a vectored write (``transport.writelines``)."""
        return self._out.take_parts()

    def next_event(self) -> Event | Sentinel:
        """The next event, or NEED_DATA / AWAITING_REPLY / CLOSED."""
        while True:
            if self._events:
                event = self._events.popleft()
                if isinstance(event, AppendEnd | IdleDone) or (
                    isinstance(event, Command) and not isinstance(event.body, c.Idle)
                ):
                    self._awaiting = True
                return event
            if self._awaiting or self._mode is Mode.TLS_PENDING:
                return AWAITING_REPLY
            if self._mode is Mode.CLOSED:
                return CLOSED
            if not self._step():
                if not self._eof:
                    return NEED_DATA
                self._end_of_input()

    # -- public API: answers --------------------------------------------------------

    def send(self, *responses: Untagged) -> None:
        """Untagged responses for the command in progress (IDLE included).
        If one of them cannot be sent, none is (ImapUsageError)."""
        pending = self._pending
        if pending is None or self._mode is Mode.CLOSED:
            raise ImapUsageError("send() without a command in progress")
        mark = self._out.mark()
        untagged = self._enc.untagged
        try:
            for response in responses:
                if isinstance(response, Expunge | Vanished):
                    check_untagged(pending, response, self.qresync)
                untagged(response, self._out, pending.tag)
        except (ImapUsageError, ValueError, TypeError) as exc:
            # All or nothing: a bad response leaves no half-written output.
            self._out.rollback(mark)
            raise ImapUsageError(str(exc)) from None

    def finish(self, status: Status, code: ResponseCode | None = None, text: str = "") -> None:
        """Complete the command in progress with a tagged OK / NO / BAD."""
        pending = self._pending
        if pending is None or self._mode is Mode.CLOSED:
            raise ImapUsageError("finish() without a command in progress")
        if status not in (Status.OK, Status.NO, Status.BAD):
            raise ImapUsageError("a command completes with OK, NO or BAD")
        if self._mode is Mode.IDLE:
            raise ImapUsageError("IDLE ends with the client's DONE (wait for IdleDone)")
        if self._mode is Mode.APPEND:
            self._finish_append(pending, status, code, text)
            return
        if not self._awaiting:
            raise ImapUsageError("finish() before the event was taken")
        body = pending.body
        new_state = (ON_OK if status is Status.OK else ON_FAILURE).get(type(body))
        if new_state is not None:
            self._state = new_state
        if isinstance(body, c.Select) and status is Status.OK:
            self._read_only = body.read_only or code is Code.READ_ONLY
        if isinstance(body, c.Login | c.Authenticate) and status is Status.OK and code is None:
            code = CapabilityCode(self.capabilities())  # RFC 9051 §6.2.3
        self._tagged(pending.tag, status, code, text or default_text(self._verb, status))
        self._pending = None
        self._awaiting = False
        if isinstance(body, c.StartTls) and status is Status.OK:
            self._mode = Mode.TLS_PENDING

    def accept_append(self) -> None:
        """Take the APPEND message: "+" for a synchronising literal, then the
        octets as ``AppendData`` events, then ``AppendEnd``."""
        stream = self._append
        if stream is None or not stream.waiting or not self._awaiting:
            raise ImapUsageError("accept_append() without an APPEND waiting")
        self._awaiting = False
        if stream.marker.sync:
            self._enc.continuation("Ready for append literal", self._out)
        stream.accept()

    def start_tls(self) -> None:
        """The TLS handshake after STARTTLS is done (RFC 9051 §6.2.1): the
        plaintext buffered after the command is dropped — running it as if
        it came over TLS is the STARTTLS injection bug (CVE-2011-0411 kin)."""
        if self._mode is not Mode.TLS_PENDING:
            raise ImapUsageError("start_tls() without an accepted STARTTLS")
        self._buf.clear()
        self._reader.reset()
        self._mode = Mode.COMMAND
        self._session.tls_active = True

    def bye(self, text: str, code: ResponseCode | None = None) -> None:
        """Server-initiated end (shutdown, autologout): ``* BYE``, then closed.
        Whatever was in progress is dropped (the adapter knows)."""
        if self._mode is Mode.CLOSED:
            return
        mark = self._out.mark()
        try:
            self._enc.bye(text, code, self._out)
        except ValueError as exc:
            self._out.rollback(mark)
            raise ImapUsageError(str(exc)) from None
        self._close()
