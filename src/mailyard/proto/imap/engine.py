"""The reading half of the IMAP core: session state, the input modes
(commands and literals, SASL responses, IDLE, the APPEND message) and the
dispatch of complete commands. ``server.ImapServer`` adds the adapter's
API on top; see its module doc for the theory of operation. The one public
method here, ``take_violations``, is part of that API: the kinds of client
abuse answered so far (``buffer.Violation``), each once per connection.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from collections.abc import Callable
from typing import Final

from mailyard.proto.buffer import TOO_LONG, LineBuffer, Violation, Violations
from mailyard.proto.imap import commands as c
from mailyard.proto.imap.append import AppendStream, Consumed
from mailyard.proto.imap.builtin import Session
from mailyard.proto.imap.encoder import Encoder, Output
from mailyard.proto.imap.errors import CommandError, ImapUsageError, Status
from mailyard.proto.imap.events import (
    AppendData,
    AppendEnd,
    Command,
    CommandAborted,
    ConnectionClosed,
    Event,
    IdleDone,
)
from mailyard.proto.imap.parser import (
    AppendPrefix,
    AuthenticateStart,
    ParseContext,
    Parsed,
    append_prefix,
    handlers,
    parse_command,
)
from mailyard.proto.imap.reader import (
    Announced,
    BadHead,
    CommandReader,
    Complete,
    LineTooLong,
    Marker,
    Pending,
    Progress,
    split_marker,
)
from mailyard.proto.imap.responses import (
    Code,
    Condition,
    ResponseCode,
)
from mailyard.proto.imap.rules import (
    append_command,
    check_literal,
    expunge_allowed,
    verb_refusal,
)
from mailyard.proto.imap.settings import ImapServerConfig
from mailyard.proto.imap.states import State
from mailyard.proto.sasl import (
    Challenge,
    Credentials,
    SaslError,
    SaslExchange,
    SaslProblem,
)

__all__ = ["Engine", "Mode", "default_text"]

# For telling a refused command nested too deep: quoted strings may hold
# parentheses that are no nesting; only the parentheses themselves count.
_QUOTED: Final = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_PAREN: Final = re.compile(rb"[^()]+")


class Mode(enum.Enum):
    COMMAND = "COMMAND"  # reading commands (and their literals)
    SASL = "SASL"  # reading an AUTHENTICATE response line (RFC 9051 §6.2.2)
    APPEND = "APPEND"  # the APPEND message (append.py has the details)
    IDLE = "IDLE"  # waiting for DONE (RFC 2177)
    TLS_PENDING = "TLS_PENDING"  # STARTTLS answered OK, waiting for start_tls()
    CLOSED = "CLOSED"


class Engine:
    """Session state and input processing; no public API of its own."""

    def __init__(self, config: ImapServerConfig) -> None:
        self.config = config
        self._limits = config.limits
        self._features = config.features
        self._buf = LineBuffer()
        self._reader = CommandReader(self._buf, config.limits.max_line_length,
                                     config.limits.max_discard)  # fmt: skip
        self._out = Output()
        self._enc = Encoder()
        self._events: deque[Event] = deque()
        self._awaiting = False  # the adapter must answer before the core reads on
        self._pending: Command | None = None  # the command in progress
        self._verb = ""  # its verb, for the default completion text
        self._mode = Mode.COMMAND
        self._session = Session(config, self._enc)
        self._state = State.NOT_AUTHENTICATED
        self._append: AppendStream | None = None
        self._sasl: tuple[str, SaslExchange] | None = None
        self._eof = False
        self._greeted = False
        self._commands = 0
        self._bad_count = 0
        self._read_only = False  # the selected mailbox was opened read-only
        self._violations = Violations()

    def take_violations(self) -> tuple[Violation, ...]:
        """Kinds of abuse answered since the last call; each kind comes out
        once per connection (the adapter logs them)."""
        return self._violations.take()

    @property
    def _qresync(self) -> bool:
        return "QRESYNC" in self._session.enabled

    # -- output and closing ----------------------------------------------------------

    def _tagged(self, tag: str, status: Status, code: ResponseCode | None, text: str) -> None:
        mark = self._out.mark()
        try:
            self._enc.tagged(tag, status, code, text, self._out)
        except ValueError as exc:
            self._out.rollback(mark)
            raise ImapUsageError(str(exc)) from None

    def _close(self) -> None:
        self._mode = Mode.CLOSED
        self._state = State.LOGOUT
        self._pending = None
        self._awaiting = False
        self._append = None
        self._sasl = None
        self._events.clear()
        self._buf.clear()
        self._reader.reset()

    def _close_with(self, text: str, code: ResponseCode | None = None) -> None:
        self._enc.bye(text, code, self._out)
        self._close()

    def _bad(self, tag: str | None, text: str, code: ResponseCode | None = None) -> None:
        """A core-chosen BAD; too many of them end the session."""
        self._bad_count += 1
        if self._bad_count > self._limits.max_bad_commands:
            self._violations.record(Violation.TOO_MANY_ERRORS)
            self._close_with("Too many invalid commands")
            return
        if tag is None:
            self._enc.untagged(Condition(Status.BAD, text, code), self._out)  # RFC 9051 §7.1.3
        else:
            self._enc.tagged(tag, Status.BAD, code, text, self._out)

    def _refuse(self, tag: str | None, error: CommandError, marker: Marker | None) -> None:
        """One response for a refused command, then skip what it still sends."""
        if error.status is Status.BAD or tag is None:
            self._bad(tag, error.text, error.code)
        else:
            self._enc.tagged(tag, error.status, error.code, error.text, self._out)
        if self._mode is Mode.CLOSED:
            return
        self._reader.discard(marker)
        if self._reader.gave_up:
            self._give_up_literal()

    def _give_up_literal(self) -> None:
        """A refused non-synchronising literal too large to skip: BYE."""
        self._violations.record(Violation.LITERAL_TOO_BIG)
        self._close_with("Literal too large to skip", Code.TOOBIG)

    def _line_too_long(self) -> None:
        # The dropped line may have announced a literal: no way back in step.
        self._violations.record(Violation.LINE_TOO_LONG)
        self._close_with("Command line too long", Code.TOOBIG)

    def _note_refusal(self, pending: Pending, error: CommandError) -> None:
        """Record the abuse a refused command shows, if it shows one."""
        if error.code is Code.TOOBIG:
            # RFC 7889 §4: NO [TOOBIG] is APPEND's answer to a message over the limit.
            message = pending.verb == "APPEND" and error.status is Status.NO
            self._violations.record(
                Violation.MESSAGE_TOO_BIG if message else Violation.LITERAL_TOO_BIG
            )
        elif pending.verb not in handlers(self._features):
            self._violations.record(Violation.UNKNOWN_COMMAND)
        elif error.status is Status.BAD and _too_deep(pending.texts, self._limits.max_depth):
            self._violations.record(Violation.NESTING_TOO_DEEP)

    def _end_of_input(self) -> None:
        pending = self._pending
        self._close()
        if pending is not None:
            self._events.append(CommandAborted(pending.tag, "connection closed"))
        self._events.append(ConnectionClosed())

    # -- reading ------------------------------------------------------------------------

    def _step(self) -> bool:
        """Process some input in the current mode; False if more is needed."""
        if self._step_mode():
            return True
        if not self._buf.runaway:
            return False
        # Far past the line limit and still no line end: answer now and
        # close instead of reading the flood in silence.
        self._line_too_long()
        return True

    def _step_mode(self) -> bool:
        mode = self._mode
        if mode is Mode.APPEND:
            return self._step_append()
        if mode is Mode.SASL:
            return self._step_sasl()
        if mode is Mode.IDLE:
            return self._step_idle()
        if self._reader.gave_up:
            self._give_up_literal()
            return True
        result = self._reader.step()
        if result is None or result is Progress.PROGRESS:
            return result is not None
        if isinstance(result, LineTooLong):
            self._line_too_long()
        elif isinstance(result, BadHead):
            self._violations.record(Violation.UNKNOWN_COMMAND)
            if self._count_command():
                self._refuse(result.tag, CommandError(result.reason), result.marker)
        elif isinstance(result, Announced):
            self._announced(result.pending, result.marker)
        elif isinstance(result, Complete) and self._count_command():
            self._complete(result.pending)
        return True

    def _count_command(self) -> bool:
        self._commands += 1
        if self._commands > self._limits.max_commands:
            self._violations.record(Violation.TOO_MANY_COMMANDS)
            self._close_with("Too many commands")
            return False
        return True

    def _context(self) -> ParseContext:
        enabled = self._session.enabled
        return ParseContext(
            self._features, self._limits.max_depth, self._session.utf8, "IMAP4rev2" in enabled,
            self._qresync, self._limits.max_id_fields, "UTF8=ACCEPT" in enabled,
        )  # fmt: skip

    # -- literals -------------------------------------------------------------------------

    def _announced(self, pending: Pending, marker: Marker) -> None:
        """A literal is announced: decide before any of its octets is read."""
        try:
            refusal = verb_refusal(pending.verb, self._state, self._features)
            if refusal is not None:
                raise refusal
            if pending.verb == "APPEND":
                prefix = append_prefix(pending, self._context())
                if prefix is not None:
                    self._start_append(pending, marker, prefix)
                    return
            check_literal(pending, marker, self._limits.max_literal_size, self._limits,
                          self._features)  # fmt: skip
        except CommandError as exc:
            self._note_refusal(pending, exc)
            if self._count_command():
                self._refuse(pending.tag, exc, marker)
            return
        if marker.sync:
            self._enc.continuation("Ready for literal data", self._out)
        self._reader.read_literal(marker)

    # -- completed commands ---------------------------------------------------------------

    def _complete(self, pending: Pending) -> None:
        try:
            refusal = verb_refusal(pending.verb, self._state, self._features)
            if refusal is not None:
                raise refusal
            parsed = parse_command(pending, self._context())
            self._dispatch(pending.tag, parsed, pending.verb)
        except CommandError as exc:
            self._note_refusal(pending, exc)
            self._refuse(pending.tag, exc, None)

    def _dispatch(self, tag: str, parsed: Parsed, verb: str) -> None:
        body = parsed.body
        session = self._session
        if isinstance(body, AuthenticateStart):
            self._authenticate(tag, body)
        elif isinstance(body, c.Capability | c.Namespace | c.Id | c.Enable):
            session.answer(tag, body, self._state, self._out)
        elif isinstance(body, c.Logout):
            session.logout(tag, self._out)  # RFC 9051 §6.1.3: BYE, then OK
            self._close()
        elif isinstance(body, c.Login):
            session.check_login_allowed()
            self._issue(tag, body, parsed.condstore, verb)
        elif isinstance(body, c.StartTls):
            if session.tls_active:
                raise CommandError("TLS is already active")
            self._issue(tag, body, parsed.condstore, verb)
        elif isinstance(body, c.Idle):
            self._enc.continuation("idling", self._out)  # RFC 2177 §3
            self._issue(tag, body, parsed.condstore, verb)
            self._mode = Mode.IDLE
        else:
            if isinstance(body, c.Select) and self._state is State.SELECTED:
                session.announce_closed(self._out)  # RFC 7162 §3.2.11, RFC 9051 §7.1
            self._issue(tag, body, parsed.condstore, verb)

    def _issue(self, tag: str, body: c.CommandBody, condstore: bool, verb: str) -> None:
        newly = condstore and not self._session.condstore
        if condstore:
            self._session.condstore = True
        announce = newly and self._state is State.SELECTED and not isinstance(body, c.Select)
        event = Command(tag, body, expunge_allowed(body), announce)
        self._pending = event
        self._verb = verb
        self._events.append(event)

    # -- AUTHENTICATE (RFC 9051 §6.2.2, RFC 4959 SASL-IR) ------------------------------

    def _authenticate(self, tag: str, start: AuthenticateStart) -> None:
        self._session.check_authenticate(start.mechanism)
        exchange = SaslExchange(start.mechanism)
        self._sasl_result(tag, exchange, lambda: exchange.start(start.initial))

    def _step_sasl(self) -> bool:
        line = self._buf.next_line(self._limits.max_auth_line)
        if line is None:
            return False
        assert self._sasl is not None
        tag, exchange = self._sasl
        self._sasl = None
        self._mode = Mode.COMMAND
        if line is TOO_LONG:
            self._violations.record(Violation.LINE_TOO_LONG)
            self._bad(tag, "SASL response too long")
        else:
            self._sasl_result(tag, exchange, lambda: exchange.respond(line))
        return True

    def _sasl_result(
        self, tag: str, exchange: SaslExchange, run: Callable[[], Challenge | Credentials]
    ) -> None:
        try:
            result = run()
        except SaslError as exc:
            if exc.problem is SaslProblem.CANCELLED:
                # RFC 9051 §6.2.2: "*" cancels; the server answers BAD.
                self._enc.tagged(tag, Status.BAD, None, "AUTHENTICATE cancelled", self._out)
            else:
                self._bad(tag, f"AUTHENTICATE failed: {exc.problem.value}")
            return
        if isinstance(result, Challenge):
            self._enc.continuation(result.encoded, self._out)
            self._sasl = (tag, exchange)
            self._mode = Mode.SASL
            return
        body = c.Authenticate(result.mechanism, result.authcid, result.password, result.authzid)
        self._issue(tag, body, False, "AUTHENTICATE")

    # -- IDLE (RFC 2177) ------------------------------------------------------------------

    def _step_idle(self) -> bool:
        line = self._buf.next_line(self._limits.max_line_length)
        if line is None:
            return False
        pending = self._pending
        assert pending is not None
        self._mode = Mode.COMMAND
        if line is not TOO_LONG and line.strip().upper() == b"DONE":
            self._events.append(IdleDone(pending.tag))
            return True
        self._pending = None
        self._events.append(CommandAborted(pending.tag, "expected DONE"))
        if line is TOO_LONG:
            self._line_too_long()
            return True
        self._bad(pending.tag, "expected DONE")
        _, marker = split_marker(line)
        if self._mode is not Mode.CLOSED and marker is not None:
            self._reader.discard(marker)
        return True

    # -- APPEND (RFC 9051 §6.3.12) ---------------------------------------------------------

    def _start_append(self, pending: Pending, marker: Marker, prefix: AppendPrefix) -> None:
        body = append_command(pending, marker, prefix, limits=self._limits,
                              features=self._features, utf8=self._session.utf8)  # fmt: skip
        if not self._count_command():
            return
        self._reader.release()
        self._append = AppendStream(self._buf, marker, prefix.utf8, self._limits)
        self._mode = Mode.APPEND
        self._issue(pending.tag, body, False, "APPEND")

    def _step_append(self) -> bool:
        stream = self._append
        pending = self._pending
        assert stream is not None and pending is not None
        step = stream.step()
        if step is None:
            return False
        if isinstance(step, bytes):
            self._events.append(AppendData(step))
            return True
        if step is Consumed.CONSUMED:
            return True
        self._mode = Mode.COMMAND
        self._append = None
        if step.too_long:
            self._line_too_long()
        elif step.refusal is not None:
            self._pending = None
            self._out.write(step.refusal)
            self._reader.discard(step.marker)
        elif step.error is not None:
            self._pending = None
            self._events.append(CommandAborted(pending.tag, step.error))
            self._bad(pending.tag, step.error)
            if self._mode is not Mode.CLOSED:
                self._reader.discard(step.marker)
        else:
            self._events.append(AppendEnd())
        return True

    def _finish_append(
        self, pending: Command, status: Status, code: ResponseCode | None, text: str
    ) -> None:
        stream = self._append
        assert stream is not None
        text = text or default_text(self._verb, status)
        if status is Status.OK:
            raise ImapUsageError("accept_append() takes the message; OK comes after AppendEnd")
        if stream.waiting:
            if not self._awaiting:
                raise ImapUsageError("finish() before the event was taken")
            # Refused before any octet: a non-sync literal is skipped unread.
            self._awaiting = False
            self._pending = None
            self._append = None
            self._mode = Mode.COMMAND
            self._tagged(pending.tag, status, code, text)
            if not stream.marker.sync:
                self._reader.skip_octets(stream.marker.size)
            return
        # Refused mid-stream: drop the rest, answer once the command has ended.
        rendered = Output()
        try:
            self._enc.tagged(pending.tag, status, code, text, rendered)
        except ValueError as exc:
            raise ImapUsageError(str(exc)) from None
        stream.refuse(rendered.take())
        self._events = deque(e for e in self._events if not isinstance(e, AppendData))


def default_text(verb: str, status: Status) -> str:
    """The completion text when the adapter gave none."""
    return f"{verb} completed" if status is Status.OK else f"{verb} failed"


def _too_deep(texts: list[bytes], max_depth: int) -> bool:
    """Whether a command's lines nest parentheses deeper than ``max_depth``
    (the limit the parsers enforce, settings.ImapLimits.max_depth)."""
    parens = b"".join(_NOT_PAREN.sub(b"", _QUOTED.sub(b"", text)) for text in texts)
    if parens.count(b"(") <= max_depth:
        return False
    depth = 0
    for octet in parens:
        depth += 1 if octet == 0x28 else -1
        if depth > max_depth:
            return True
    return False
