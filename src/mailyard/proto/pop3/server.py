"""Pop3Server: the sans-I/O POP3 server core (RFC 1939, 2449, 2595, 3206, 5034).

Theory of operation (the SMTP core's shape, h11's pull model). The adapter
feeds bytes with ``receive_data`` and pulls with ``next_event``. The core
reads one command line at a time from its own buffer, so pipelined commands
(RFC 2449 §6.6) are processed strictly in order. A command that needs the
outside world becomes an event: ``Login`` (check the credentials, open and
lock the maildrop), ``Retrieve`` (stream a message), ``Commit`` (QUIT: apply
the deletions), ``StartTls`` (do the handshake). Until the adapter answers
it through the matching methods, the core reads nothing more and
``next_event`` returns ``AWAITING_REPLY``, so responses leave in command
order. Everything else the core answers itself: STAT, LIST, UIDL, DELE,
RSET, NOOP, CAPA, USER, QUIT before login, message-number checks, syntax
and state errors, line and command limits. Responses accumulate in an
output buffer that ``data_to_send`` empties.

The session state (``states.State``) follows the table in ``states.py``;
the reading mode (``_Mode``) says what the next input line is: a command,
or a response to a SASL challenge (RFC 5034 §4).

Errors. ``Pop3UsageError`` means the adapter misused the API (answering
when nothing awaits that answer, streaming before ``retrieve_begin`` …);
invalid values it passes (response text with CR/LF, a bad unique-id) raise
``ValueError`` before anything changes. Anything else escaping from this
module is a bug, whatever the client sends.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final, Literal, TypeVar

from mailyard.proto.buffer import TOO_LONG, LineBuffer, TooLong, Violation, Violations
from mailyard.proto.dotstuff import DotStuffer
from mailyard.proto.pop3.commands import (
    CommandError,
    parse_command,
    parse_count,
    parse_message_number,
)
from mailyard.proto.pop3.drop import DropEntry, Maildrop
from mailyard.proto.pop3.events import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    NEEDS_ANSWER,
    Commit,
    ConnectionClosed,
    Event,
    Login,
    Retrieve,
    Sentinel,
    StartTls,
)
from mailyard.proto.pop3.replies import (
    ERR_ALREADY_DELETED,
    ERR_IN_USE,
    ERR_LINE_TOO_LONG,
    ERR_MESSAGE_DELETED,
    ERR_NO_SUCH_MESSAGE,
    ERR_NO_USER,
    ERR_NOT_AVAILABLE,
    ERR_TLS_ACTIVE,
    ERR_TOO_MANY_COMMANDS,
    ERR_TOO_MANY_ERRORS,
    ERR_UNKNOWN_MECHANISM,
    ERR_WRONG_STATE,
    OK,
    OK_CAPA,
    OK_MECHANISMS,
    OK_SEND_PASS,
    OK_STLS,
    OK_TOP,
    OK_UIDL,
    SASL_ERRORS,
    VIOLATIONS,
    Response,
    messages_summary,
    render,
    render_challenge,
    render_multiline,
)
from mailyard.proto.pop3.settings import Pop3ServerConfig, capabilities
from mailyard.proto.pop3.states import ON_LOGIN, ON_QUIT, State, allowed
from mailyard.proto.sasl import Challenge, Credentials, SaslError, SaslExchange, SaslProblem

__all__ = ["Pop3Server", "Pop3UsageError"]

_E = TypeVar("_E", Login, Retrieve, Commit, StartTls)

# Asking for a message that is not there (or deleted) is an ordinary answer,
# not a client out of step: these do not count against max_bad_commands.
_NOT_COUNTED: Final = frozenset({ERR_NO_SUCH_MESSAGE, ERR_MESSAGE_DELETED, ERR_ALREADY_DELETED})


class Pop3UsageError(RuntimeError):
    """The adapter called the core at the wrong moment (a bug in the adapter)."""


class _Mode(enum.Enum):
    COMMAND = "COMMAND"
    SASL = "SASL"  # reading the response to a "+ " challenge (RFC 5034 §4)
    CLOSED = "CLOSED"


class Pop3Server:
    """One POP3 server session, without I/O. See the module doc."""

    def __init__(self, config: Pop3ServerConfig) -> None:
        self.config = config
        self._limits = config.limits
        self._features = config.features
        self._buf = LineBuffer()
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._awaiting: Event | None = None
        self._state = State.AUTHORIZATION
        self._mode = _Mode.COMMAND
        self._greeted = False
        self._eof = False
        self._commands = 0
        self._bad = 0
        self._tls_active = False
        self._user: str | None = None  # from USER, for the PASS right after it
        self._sasl: SaslExchange | None = None
        self._drop: Maildrop | None = None
        self._stuffer: DotStuffer | None = None  # set between retrieve_begin and _end
        self._violations = Violations()

    # -- public API: reading ------------------------------------------------------

    @property
    def state(self) -> State:
        return State.CLOSED if self._mode is _Mode.CLOSED else self._state

    @property
    def tls_active(self) -> bool:
        return self._tls_active

    def greeting(self) -> None:
        """Queue the greeting (RFC 1939 §4; no APOP timestamp: APOP is not offered)."""
        if self._greeted:
            raise Pop3UsageError("greeting() called twice")
        self._greeted = True
        self._emit(Response(True, f"{self.config.hostname} POP3 server ready"))

    def receive_data(self, data: bytes) -> None:
        """Bytes from the client; ``b""`` means EOF. Ignored once closed."""
        if self._mode is _Mode.CLOSED or self._eof:
            return
        if not data:
            self._eof = True
            return
        self._buf.append(bytes(data))

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def take_violations(self) -> tuple[Violation, ...]:
        """Kinds of abuse answered since the last call; each kind comes out
        once per connection (the adapter logs them)."""
        return self._violations.take()

    def next_event(self) -> Event | Sentinel:
        """The next event, or NEED_DATA / AWAITING_REPLY / CLOSED."""
        while True:
            if self._events:
                event = self._events.popleft()
                if isinstance(event, NEEDS_ANSWER):
                    self._awaiting = event
                return event
            if self._awaiting is not None:
                return AWAITING_REPLY
            if self._mode is _Mode.CLOSED:
                return CLOSED
            if not self._step():
                if not self._eof:
                    return NEED_DATA
                # RFC 1939 §6: without QUIT there is no UPDATE state, so
                # nothing is deleted; the adapter just lets go of the drop.
                self._close()
                self._events.append(ConnectionClosed())

    # -- public API: answers ------------------------------------------------------

    def _answering(self, kind: type[_E]) -> _E:
        event = self._awaiting
        if not isinstance(event, kind):
            raise Pop3UsageError(f"no {kind.__name__} event awaits this answer")
        return event

    def login_ok(self, drop: Sequence[DropEntry]) -> None:
        """The login succeeded and ``drop`` is the locked maildrop, in order:
        message n is ``drop[n - 1]`` for the whole session (RFC 1939 §5)."""
        self._answering(Login)
        maildrop = Maildrop(drop)  # may raise ValueError: nothing changed yet
        self._awaiting = None
        self._drop = maildrop
        self._state = ON_LOGIN[self._state]
        self._emit(Response(True, "maildrop has " + messages_summary(*maildrop.totals())))

    def login_failed(self, text: str, code: str | None = "AUTH") -> None:
        """The login failed; the client may try again (RFC 1939 §7). ``code``
        is the RFC 3206 response code: AUTH (credentials), SYS/TEMP, SYS/PERM."""
        self._answering(Login)
        response = Response(False, text, code)
        self._awaiting = None
        self._emit(response)

    def login_in_use(self) -> None:
        """The credentials were right but the maildrop is locked by another
        session (RFC 2449 §8.1.1 IN-USE; RFC 1939 §8 exclusive access)."""
        self._answering(Login)
        self._awaiting = None
        self._emit(ERR_IN_USE)

    @property
    def retrieve_wants_more(self) -> bool:
        """True while streamed content is still used; False once TOP's lines
        are out (the adapter may stop reading the file) or outside RETR/TOP."""
        return self._stuffer is not None and not self._stuffer.done

    def retrieve_begin(self, size: int) -> None:
        """Start the multi-line response; ``size`` is the message's octets."""
        event = self._answering(Retrieve)
        if self._stuffer is not None:
            raise Pop3UsageError("retrieve_begin() called twice")
        if size < 0:
            raise ValueError("size must be >= 0")
        # RFC 1939 §7: RETR answers "+OK" with the size (the common form,
        # used by clients to show progress); TOP's content is cut, so no size.
        first = OK_TOP if event.top_lines is not None else Response(True, f"{size} octets")
        self._emit(first)
        self._stuffer = DotStuffer(event.top_lines)

    def retrieve_chunk(self, data: bytes) -> None:
        """Message content, raw (CRLF lines as stored); the core dot-stuffs it."""
        self._answering(Retrieve)
        if self._stuffer is None:
            raise Pop3UsageError("retrieve_chunk() before retrieve_begin()")
        self._out += self._stuffer.feed(data)

    def retrieve_end(self) -> None:
        """The whole message was sent: end the multi-line response."""
        self._answering(Retrieve)
        if self._stuffer is None:
            raise Pop3UsageError("retrieve_end() before retrieve_begin()")
        self._out += self._stuffer.finish()
        self._stuffer = None
        self._awaiting = None

    def retrieve_failed(self, text: str) -> None:
        """The message cannot be read. Before ``retrieve_begin`` this is an
        -ERR and the session goes on. After it the multi-line response cannot
        be taken back: the core closes the session without the terminating
        ".", so the client never takes a truncated message for a whole one."""
        self._answering(Retrieve)
        if self._stuffer is not None:
            self._stuffer = None
            self._awaiting = None
            self._close()
            return
        response = Response(False, text)
        self._awaiting = None
        self._emit(response)

    def commit_done(self, ok: bool, text: str) -> None:
        """The UPDATE state is over (RFC 1939 §6): "+OK" if every marked
        message was removed, else "-ERR"; then the session ends."""
        self._answering(Commit)
        response = Response(ok, text)
        self._awaiting = None
        self._close_with(response)

    def start_tls(self) -> None:
        """The TLS handshake after STLS is done: forget the plaintext.

        RFC 2595 §4: the server discards what it learnt from the client
        before TLS (a USER argument) and stays in AUTHORIZATION. Buffered
        plaintext after the STLS line is dropped: running it as if it came
        over TLS is the STARTTLS command injection bug (CVE-2011-0411 kin).
        """
        self._answering(StartTls)
        self._awaiting = None
        self._buf.clear()
        self._tls_active = True
        self._user = None
        self._state = State.AUTHORIZATION

    # -- output and closing ------------------------------------------------------

    def _emit(self, response: Response) -> None:
        kind = VIOLATIONS.get(response)
        if kind is not None:
            self._violations.record(kind)
        self._out += render(response)

    def _error(self, response: Response) -> None:
        """A core-chosen -ERR that counts against max_bad_commands."""
        self._bad += 1
        if self._bad > self._limits.max_bad_commands:
            self._close_with(ERR_TOO_MANY_ERRORS)
            return
        self._emit(response)

    def _close(self) -> None:
        self._mode = _Mode.CLOSED
        self._sasl = None
        self._buf.clear()

    def _close_with(self, response: Response) -> None:
        self._emit(response)
        self._close()

    # -- reading -------------------------------------------------------------------

    def _step(self) -> bool:
        """Process one input line in the current mode; False if more is needed."""
        sasl = self._mode is _Mode.SASL
        line = self._buf.next_line(
            self._limits.max_auth_line if sasl else self._limits.max_line_length
        )
        if line is None:
            if not self._buf.runaway:
                return False
            # Far past RFC 2449 §4's limit and still no line end: no client in
            # step sends that; answer now and close instead of reading on.
            self._close_with(ERR_LINE_TOO_LONG)
            return True
        if sasl:
            self._sasl_line(line)
            return True
        self._commands += 1
        if self._commands > self._limits.max_commands:
            self._close_with(ERR_TOO_MANY_COMMANDS)
            return True
        # RFC 1939 §7: PASS is valid only right after USER; any other line
        # (even a bad one) forgets the name.
        user, self._user = self._user, None
        if line is TOO_LONG:
            self._error(ERR_LINE_TOO_LONG)
        else:
            self._command(line, user)
        return True

    def _command(self, line: bytes, user: str | None) -> None:
        try:
            cmd = parse_command(line)
            if not allowed(self._state, cmd.verb):
                raise CommandError(ERR_WRONG_STATE)
            if cmd.verb == "PASS":
                self._cmd_pass(cmd.args[0], user)
            else:
                _HANDLERS[cmd.verb](self, cmd.args)
        except CommandError as exc:
            self._command_error(exc.response)

    def _command_error(self, response: Response) -> None:
        if response in _NOT_COUNTED:
            self._emit(response)
        else:
            self._error(response)

    def _maildrop(self) -> Maildrop:
        drop = self._drop
        assert drop is not None, "TRANSACTION state without a maildrop"
        return drop

    # -- AUTHORIZATION: USER/PASS (RFC 1939 §7), AUTH (RFC 5034), STLS (RFC 2595)

    def _cmd_user(self, args: tuple[str, ...]) -> None:
        if not self._features.user_pass:
            raise CommandError(ERR_NOT_AVAILABLE)
        # The same answer whoever the user is: no hint which names exist.
        self._user = args[0]
        self._emit(OK_SEND_PASS)

    def _cmd_pass(self, password: str, user: str | None) -> None:
        if not self._features.user_pass:
            raise CommandError(ERR_NOT_AVAILABLE)
        if user is None:
            raise CommandError(ERR_NO_USER)
        self._events.append(Login(user, password, "USER"))

    def _cmd_auth(self, args: tuple[str, ...]) -> None:
        mechanisms = self._features.sasl_mechanisms
        if not args:
            # RFC 5034 §4 requires a mechanism; clients of RFC 1734's era
            # probe with a bare AUTH and read the list of mechanisms.
            self._out += render_multiline(OK_MECHANISMS, mechanisms)
            return
        mechanism = args[0].upper()
        if mechanism not in mechanisms:
            raise CommandError(ERR_UNKNOWN_MECHANISM)
        exchange = SaslExchange(mechanism)
        initial = args[1] if len(args) > 1 else None
        self._sasl_step(exchange, lambda: exchange.start(initial))

    def _sasl_line(self, line: bytes | TooLong) -> None:
        exchange = self._sasl
        assert exchange is not None
        self._sasl = None
        self._mode = _Mode.COMMAND
        if line is TOO_LONG:
            self._error(ERR_LINE_TOO_LONG)
        else:
            self._sasl_step(exchange, lambda: exchange.respond(line))

    def _sasl_step(
        self, exchange: SaslExchange, run: Callable[[], Challenge | Credentials]
    ) -> None:
        try:
            result = run()
        except SaslError as exc:
            response = SASL_ERRORS[exc.problem]
            if exc.problem is SaslProblem.CANCELLED:
                self._emit(response)  # RFC 5034 §4: "*" gets -ERR; the client's right
            else:
                self._error(response)
            return
        if isinstance(result, Challenge):
            self._out += render_challenge(result.encoded)
            self._sasl = exchange
            self._mode = _Mode.SASL
            return
        kind: Literal["PLAIN", "LOGIN"] = "LOGIN" if result.mechanism == "LOGIN" else "PLAIN"
        self._events.append(Login(result.authcid, result.password, kind, result.authzid))

    def _cmd_stls(self, args: tuple[str, ...]) -> None:
        if not self._features.stls:
            raise CommandError(ERR_NOT_AVAILABLE)
        if self._tls_active:
            raise CommandError(ERR_TLS_ACTIVE)  # RFC 2595 §4
        self._emit(OK_STLS)
        self._events.append(StartTls())

    # -- both states ---------------------------------------------------------------

    def _cmd_capa(self, args: tuple[str, ...]) -> None:
        caps = capabilities(
            self._features,
            authorized=self._state is State.TRANSACTION,
            tls_active=self._tls_active,
        )
        self._out += render_multiline(OK_CAPA, caps)  # RFC 2449 §5

    def _cmd_quit(self, args: tuple[str, ...]) -> None:
        next_state = ON_QUIT[self._state]
        if next_state is State.UPDATE:
            # RFC 1939 §6: QUIT in TRANSACTION enters UPDATE: the marked
            # messages are removed, then the answer is +OK or -ERR.
            self._state = next_state
            self._events.append(Commit(self._maildrop().deleted))
            return
        # RFC 1939 §4: QUIT before login just ends the session.
        self._close_with(Response(True, f"{self.config.hostname} POP3 server signing off"))

    # -- TRANSACTION (RFC 1939 §5, §7) -------------------------------------------

    def _cmd_stat(self, args: tuple[str, ...]) -> None:
        count, octets = self._maildrop().totals()
        self._emit(Response(True, f"{count} {octets}"))

    def _cmd_list(self, args: tuple[str, ...]) -> None:
        drop = self._maildrop()
        if args:
            number = parse_message_number(args[0])
            self._emit(Response(True, f"{number} {drop.entry(number).size}"))
            return
        first = Response(True, messages_summary(*drop.totals()))
        self._out += render_multiline(first, drop.scan_listing())

    def _cmd_uidl(self, args: tuple[str, ...]) -> None:
        drop = self._maildrop()
        if args:
            number = parse_message_number(args[0])
            self._emit(Response(True, f"{number} {drop.entry(number).uid}"))
            return
        self._out += render_multiline(OK_UIDL, drop.uid_listing())

    def _cmd_retr(self, args: tuple[str, ...]) -> None:
        index = self._maildrop().index(parse_message_number(args[0]))
        self._events.append(Retrieve(index, None))

    def _cmd_top(self, args: tuple[str, ...]) -> None:
        index = self._maildrop().index(parse_message_number(args[0]))
        self._events.append(Retrieve(index, parse_count(args[1])))

    def _cmd_dele(self, args: tuple[str, ...]) -> None:
        number = parse_message_number(args[0])
        self._maildrop().delete(number)
        self._emit(Response(True, f"message {number} deleted"))

    def _cmd_rset(self, args: tuple[str, ...]) -> None:
        drop = self._maildrop()
        drop.reset()
        self._emit(Response(True, "maildrop has " + messages_summary(*drop.totals())))

    def _cmd_noop(self, args: tuple[str, ...]) -> None:
        self._emit(OK)


_HANDLERS: Final[dict[str, Callable[[Pop3Server, tuple[str, ...]], None]]] = {
    "USER": Pop3Server._cmd_user,
    "AUTH": Pop3Server._cmd_auth,
    "STLS": Pop3Server._cmd_stls,
    "CAPA": Pop3Server._cmd_capa,
    "QUIT": Pop3Server._cmd_quit,
    "STAT": Pop3Server._cmd_stat,
    "LIST": Pop3Server._cmd_list,
    "UIDL": Pop3Server._cmd_uidl,
    "RETR": Pop3Server._cmd_retr,
    "TOP": Pop3Server._cmd_top,
    "DELE": Pop3Server._cmd_dele,
    "RSET": Pop3Server._cmd_rset,
    "NOOP": Pop3Server._cmd_noop,
}
