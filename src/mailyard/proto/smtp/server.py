"""SmtpServer: the sans-I/O SMTP server core (RFC 5321 and extensions).

Theory of operation. The adapter feeds bytes with ``receive_data`` and pulls
with ``next_event``. The core reads one command line at a time from its own
buffer (so pipelined commands, RFC 2920, are processed strictly in order).
A command that needs policy becomes an event; until the adapter answers it
with ``send(reply)`` the core reads nothing more and ``next_event`` returns
``AWAITING_REPLY``, so replies leave in command order. Everything else —
syntax (500/501/555), sequence (503/554), limits (452/552/421), NOOP, RSET,
VRFY, HELP, QUIT — the core answers itself. Replies accumulate in an output
buffer that ``data_to_send`` empties.

The session state (``states.State``) follows the table in ``states.py``;
the reading mode (``_Mode``) says what the next input line is: a command, an
AUTH response, or nothing at all while a STARTTLS handshake is pending. While
the transaction's ``Transfer`` is active, input is message content instead
(DATA, or BDAT chunk octets); see ``transfer.py`` and ``dataread.py``.

Errors. ``SmtpUsageError`` means the adapter misused the API (``send``
without a pending event, ``start_tls`` without a STARTTLS). Anything else
escaping from this module is a bug, whatever the client sends.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from typing import Final, TypeAlias

from mailyard.proto.buffer import TOO_LONG, LineBuffer, TooLong, Violation, Violations
from mailyard.proto.smtp.auth import AuthExchange, SaslError, open_exchange
from mailyard.proto.smtp.envelope import parse_mail, parse_rcpt, postmaster_address
from mailyard.proto.smtp.events import (
    AWAITING_REPLY,
    CLOSED,
    NEED_DATA,
    NEEDS_REPLY,
    Authenticate,
    ConnectionClosed,
    DataEnd,
    DataStart,
    Event,
    Hello,
    MailFrom,
    RcptTo,
    Reset,
    Sentinel,
    StartTls,
)
from mailyard.proto.smtp.grammar import GrammarError, parse_bdat, parse_hello, split_command
from mailyard.proto.smtp.replies import (
    R214_HELP,
    R250_OK,
    R252_CANNOT_VRFY,
    R421_CHUNK_TOO_BIG,
    R421_LINE_TOO_LONG,
    R421_TOO_MANY_BAD_COMMANDS,
    R421_TOO_MANY_COMMANDS,
    R452_TOO_MANY_RECIPIENTS,
    R500_LINE_TOO_LONG,
    R500_UNKNOWN_COMMAND,
    R501_INVALID_UTF8,
    R501_NO_ARGUMENTS_ALLOWED,
    R501_SYNTAX_VRFY,
    R502_NOT_IMPLEMENTED,
    R503_ALREADY_AUTHENTICATED,
    R503_BINARYMIME_NEEDS_BDAT,
    R503_TLS_ALREADY_ACTIVE,
    R530_AUTH_REQUIRED,
    R530_STARTTLS_FIRST,
    R538_ENCRYPTION_REQUIRED,
    VIOLATIONS,
    Reply,
    render,
)
from mailyard.proto.smtp.settings import SmtpServerConfig, ehlo_keywords
from mailyard.proto.smtp.states import (
    KNOWN_VERBS,
    ON_SUCCESS,
    TRANSACTION_STATES,
    Phase,
    State,
    check_sequence,
)
from mailyard.proto.smtp.transfer import Outcome, Transfer

__all__ = ["SmtpServer", "SmtpUsageError"]

# Replies that count against max_bad_commands: syntax and sequence errors.
_BAD_CODES: Final = frozenset({500, 501, 503, 504, 555})

# RFC 3030 §2: a refused chunk's octets are read and dropped before the
# reply. Up to this size that is cheap (a chunk a client may well send);
# beyond it the reply goes out at once and the connection ends instead.
_MAX_SKIP: Final = 1 << 20

_AuthStep: TypeAlias = Callable[[], Reply | Authenticate]


class SmtpUsageError(RuntimeError):
    """The adapter called the core at the wrong moment (a bug in the adapter)."""


class _Mode(enum.Enum):
    COMMAND = "COMMAND"
    AUTH = "AUTH"  # reading an AUTH response line (RFC 4954 §4)
    TLS_PENDING = "TLS_PENDING"  # STARTTLS accepted, waiting for start_tls()
    CLOSED = "CLOSED"


class SmtpServer:
    """One SMTP server session, without I/O. See the module doc."""

    def __init__(self, config: SmtpServerConfig, *, tls_active: bool = False) -> None:
        """``tls_active``: the connection is already encrypted (an implicit-TLS
        listener, RFC 8314), so STARTTLS is not offered and AUTH may be."""
        self.config = config
        self._limits = config.limits
        self._features = config.features
        self._buf = LineBuffer()
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._awaiting: Event | None = None
        self._state = State.INITIAL
        self._mode = _Mode.COMMAND
        self._greeted = False
        self._eof = False
        self._commands = 0
        self._bad = 0
        self._authenticated = False
        self._tls_active = tls_active
        self._auth: AuthExchange | None = None
        self._postmaster = postmaster_address(config.hostname)
        self._violations = Violations()
        self._reset_transaction()

    def _reset_transaction(self) -> None:
        self._smtputf8 = False
        self._binarymime = False
        self._recipients = 0
        # Message content (DATA/BDAT) is read by the transfer while it is active.
        self._transfer = Transfer(self._limits.max_message_size, self._limits.max_line_length)
        self._pending_mail: tuple[bool, bool] = (False, False)

    # -- public API --------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        if self._transfer.active and self._mode is _Mode.COMMAND:
            return Phase.DATA
        return Phase.COMMAND

    @property
    def state(self) -> State:
        return State.CLOSED if self._mode is _Mode.CLOSED else self._state

    def greeting(self) -> None:
        """Queue the 220 greeting (RFC 5321 §4.3.1; no enhanced code, RFC 2034)."""
        if self._greeted:
            raise SmtpUsageError("greeting() called twice")
        self._greeted = True
        self._emit(Reply(220, None, f"{self.config.hostname} ESMTP mailyard"))

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
                if isinstance(event, NEEDS_REPLY):
                    self._awaiting = event
                return event
            if self._awaiting is not None or self._mode is _Mode.TLS_PENDING:
                return AWAITING_REPLY
            if self._mode is _Mode.CLOSED:
                return CLOSED
            if not self._step():
                if not self._eof:
                    return NEED_DATA
                self._close()
                self._events.append(ConnectionClosed())

    def send(self, reply: Reply) -> None:
        """Answer the event last returned by ``next_event``."""
        event, self._awaiting = self._awaiting, None
        if event is None:
            raise SmtpUsageError("send() without an event awaiting a reply")
        if reply.code == 421:
            # RFC 5321 §3.8: 421 means the server is closing the channel.
            self._close_with(reply)
            return
        if isinstance(event, Hello):
            self._answer_hello(event, reply)
        elif isinstance(event, MailFrom):
            self._answer_mail(reply)
        elif isinstance(event, RcptTo):
            self._emit(reply)
            if reply.positive:
                self._recipients += 1
                self._state = ON_SUCCESS["RCPT"]
        elif isinstance(event, DataStart):
            self._answer_data_start(event, reply)
        elif isinstance(event, DataEnd):
            self._emit(reply)
            self._end_transaction()
        elif isinstance(event, Authenticate):
            self._emit(reply)
            # RFC 4954 §6: 235 means authenticated.
            self._authenticated = 200 <= reply.code < 300
        elif isinstance(event, StartTls):
            self._emit(reply)
            if reply.positive:
                self._mode = _Mode.TLS_PENDING

    def start_tls(self) -> None:
        """The TLS handshake is done: forget everything said in plaintext.

        RFC 3207 §4.2: discard knowledge from before TLS, and the client
        must EHLO again. Buffered plaintext after the STARTTLS line is
        dropped here: running it as if encrypted is the STARTTLS command
        injection bug (CVE-2011-0411 and kin).
        """
        if self._mode is not _Mode.TLS_PENDING:
            raise SmtpUsageError("start_tls() without an accepted STARTTLS")
        self._buf.clear()
        self._mode = _Mode.COMMAND
        self._state = State.INITIAL
        self._tls_active = True
        self._authenticated = False
        self._reset_transaction()

    # -- output and closing ------------------------------------------------------

    def _emit(self, reply: Reply, extra: tuple[str, ...] = ()) -> None:
        kind = VIOLATIONS.get(reply)
        if kind is not None:
            self._violations.record(kind)
        self._out += render(reply, extra)

    def _count_bad(self, reply: Reply) -> bool:
        """Count a syntax/sequence error; False if that closed the session."""
        if reply.code in _BAD_CODES:
            self._bad += 1
            if self._bad > self._limits.max_bad_commands:
                self._close_with(R421_TOO_MANY_BAD_COMMANDS)
                return False
        return True

    def _error(self, reply: Reply) -> None:
        """Send a core-chosen error reply."""
        if self._count_bad(reply):
            self._emit(reply)

    def _close(self) -> None:
        if self._state in TRANSACTION_STATES:
            self._events.append(Reset())
        self._mode = _Mode.CLOSED
        self._buf.clear()

    def _close_with(self, reply: Reply) -> None:
        self._emit(reply)
        self._close()

    def _end_transaction(self) -> None:
        self._reset_transaction()
        self._mode = _Mode.COMMAND
        if self._state in TRANSACTION_STATES:
            self._state = State.GREETED

    # -- reading -------------------------------------------------------------------

    def _step(self) -> bool:
        """Process some input in the current mode; False if more is needed."""
        mode = self._mode
        if self._transfer.active:
            return self._step_content()
        line = self._buf.next_line(self._limits.max_command_line)
        if line is None:
            if not self._buf.runaway:
                return False
            # A line far past RFC 5321 §4.5.3.1.4's limit that does not end:
            # answer it now and close rather than read a flood in silence.
            self._emit(R500_LINE_TOO_LONG)
            self._close_with(R421_LINE_TOO_LONG)
            return True
        if mode is _Mode.AUTH:
            self._auth_line(line)
        elif line is TOO_LONG:
            self._count_command()
            if self._mode is not _Mode.CLOSED:
                # RFC 5321 §4.5.3.1.4: command line too long.
                self._error(R500_LINE_TOO_LONG)
        else:
            self._command(line)
        return True

    def _count_command(self) -> None:
        self._commands += 1
        if self._commands > self._limits.max_commands:
            self._close_with(R421_TOO_MANY_COMMANDS)

    def _command(self, line: bytes) -> None:
        self._count_command()
        if self._mode is _Mode.CLOSED:
            return
        cmd = split_command(line)
        if cmd is None or cmd.verb not in KNOWN_VERBS:
            self._error(R500_UNKNOWN_COMMAND)  # RFC 5321 §4.2.4
            return
        try:
            arg = cmd.arg.decode("utf-8")
        except UnicodeDecodeError:
            self._error(R501_INVALID_UTF8)
            return
        if cmd.verb == "BDAT":  # sequence checked after the size is known
            self._cmd_bdat(arg)
            return
        refusal = check_sequence(self._state, cmd.verb)
        if refusal is not None:
            self._error(refusal)
            return
        try:
            _HANDLERS[cmd.verb](self, arg)
        except GrammarError as exc:
            self._error(exc.reply)

    # -- simple commands -------------------------------------------------------

    def _cmd_ehlo(self, arg: str) -> None:
        self._hello(arg, extended=True)

    def _cmd_helo(self, arg: str) -> None:
        self._hello(arg, extended=False)

    def _hello(self, arg: str, *, extended: bool) -> None:
        name = parse_hello(arg)
        # RFC 5321 §4.1.4: EHLO/HELO in a transaction resets it, like RSET.
        if self._state in TRANSACTION_STATES:
            self._events.append(Reset())
            self._state = State.GREETED
            self._reset_transaction()
        self._events.append(Hello(name, extended))

    def _answer_hello(self, event: Hello, reply: Reply) -> None:
        if not reply.positive:
            self._emit(reply)
            return
        self._state = ON_SUCCESS["EHLO"]
        if event.extended:
            # RFC 5321 §4.1.1.1: EHLO keywords follow the greeting line;
            # RFC 2034 §4: no enhanced codes on the EHLO reply.
            keywords = ehlo_keywords(
                self.config, tls_active=self._tls_active, authenticated=self._authenticated
            )
            self._emit(Reply(reply.code, None, reply.lines), keywords)
        else:
            self._emit(reply)

    def _cmd_rset(self, arg: str) -> None:
        if arg.strip(" "):
            raise GrammarError(R501_NO_ARGUMENTS_ALLOWED)
        # RFC 5321 §4.1.1.5: RSET aborts the transaction, keeps the EHLO.
        self._events.append(Reset())
        if self._state in TRANSACTION_STATES:
            self._state = State.GREETED
        self._reset_transaction()
        self._emit(R250_OK)

    def _cmd_vrfy(self, arg: str) -> None:
        if not arg.strip(" "):
            raise GrammarError(R501_SYNTAX_VRFY)
        self._emit(R252_CANNOT_VRFY)

    def _cmd_quit(self, arg: str) -> None:
        # RFC 5321 §4.1.1.10: reply 221, then close; later input is ignored.
        self._close_with(Reply(221, "2.0.0", f"{self.config.hostname} closing connection"))

    # -- the mail transaction ------------------------------------------------------

    def _cmd_mail(self, arg: str) -> None:
        if self._features.auth_required and not self._authenticated:
            if self._features.auth_requires_tls and not self._tls_active:
                self._error(R530_STARTTLS_FIRST)  # RFC 3207 §4
            else:
                self._error(R530_AUTH_REQUIRED)
            return
        mail = parse_mail(arg, self._limits, self._features)
        self._pending_mail = (mail.smtputf8, mail.binarymime)
        self._events.append(MailFrom(mail.sender, mail.params))

    def _answer_mail(self, reply: Reply) -> None:
        self._emit(reply)
        if reply.positive:
            self._reset_transaction_keep_mail()
            self._state = ON_SUCCESS["MAIL"]

    def _reset_transaction_keep_mail(self) -> None:
        smtputf8, binary = self._pending_mail
        self._reset_transaction()
        self._smtputf8, self._binarymime = smtputf8, binary

    def _cmd_rcpt(self, arg: str) -> None:
        recipient, params = parse_rcpt(arg, utf8=self._smtputf8, postmaster=self._postmaster)
        if self._recipients >= self._limits.max_recipients:
            self._emit(R452_TOO_MANY_RECIPIENTS)  # RFC 5321 §4.5.3.1.10
            return
        self._events.append(RcptTo(recipient, params))

    def _cmd_data(self, arg: str) -> None:
        if arg.strip(" "):
            raise GrammarError(R501_NO_ARGUMENTS_ALLOWED)
        if self._binarymime:
            raise GrammarError(R503_BINARYMIME_NEEDS_BDAT)
        self._events.append(DataStart(bdat=False))

    def _answer_data_start(self, event: DataStart, reply: Reply) -> None:
        transfer = self._transfer
        if event.bdat:
            if reply.positive:
                self._state = State.BDAT
                transfer.start_chunk()
            else:
                # RFC 3030 §2: the refused chunk's octets are still read.
                self._end_transaction()
                transfer.refuse_chunk(reply)
                self._transfer = transfer
            return
        self._emit(reply)
        if reply.positive:
            transfer.start_data()
        else:
            self._end_transaction()

    def _step_content(self) -> bool:
        progress = self._transfer.step(self._buf)
        if progress is None:
            return False
        self._events.extend(progress.events)
        outcome = progress.outcome
        if outcome is Outcome.COMPLETE:
            self._events.append(DataEnd())
        elif outcome is not Outcome.READING:
            assert progress.reply is not None
            self._emit(progress.reply)
            if outcome is Outcome.FAILED:
                self._end_transaction()
        return True

    # -- BDAT (RFC 3030) --------------------------------------------------------------

    def _cmd_bdat(self, arg: str) -> None:
        try:
            size, last = parse_bdat(arg)
        except GrammarError as exc:
            # Without a size the chunk cannot be skipped; the client is out of step.
            self._error(exc.reply)
            return
        refusal = check_sequence(self._state, "BDAT")
        if not self._features.chunking:
            refusal = R502_NOT_IMPLEMENTED
        if refusal is not None:
            if self._count_bad(refusal) and size <= _MAX_SKIP:
                self._transfer.discard(size, refusal)
            elif self._mode is not _Mode.CLOSED:
                self._close_unskippable(refusal)
            return
        first = self._state is not State.BDAT
        too_big = self._transfer.announce_chunk(size, last)
        if too_big is not None and size > _MAX_SKIP:
            self._close_unskippable(too_big)
        elif first and too_big is not None:
            self._end_transaction()
            self._transfer.discard(size, too_big)
        elif first:
            self._events.append(DataStart(bdat=True))
        else:
            self._transfer.start_chunk()

    def _close_unskippable(self, reply: Reply) -> None:
        """RFC 3030 §2 would read a refused chunk's octets before the reply;
        for ``BDAT 10737418240`` that is no cheap skip, so the reply (552,
        RFC 1870 §6.1) goes out at once and the connection ends with 421
        (RFC 5321 §3.8). The transaction had failed already: nothing is lost."""
        self._emit(reply)
        self._close_with(R421_CHUNK_TOO_BIG)

    # -- AUTH (RFC 4954) and STARTTLS (RFC 3207) ------------------------------------

    def _cmd_auth(self, arg: str) -> None:
        if not self._features.auth_mechanisms:
            self._emit(R502_NOT_IMPLEMENTED)
            return
        if self._authenticated:
            raise GrammarError(R503_ALREADY_AUTHENTICATED)  # RFC 4954 §4
        if self._features.auth_requires_tls and not self._tls_active:
            self._emit(R538_ENCRYPTION_REQUIRED)
            return
        try:
            exchange, initial = open_exchange(arg, self._features.auth_mechanisms)
        except SaslError as exc:
            raise GrammarError(exc.reply) from None
        self._auth_result(exchange, lambda: exchange.start(initial))

    def _auth_line(self, line: bytes | TooLong) -> None:
        exchange = self._auth
        assert exchange is not None
        self._auth = None
        self._mode = _Mode.COMMAND
        if line is TOO_LONG:
            self._error(R500_LINE_TOO_LONG)
        else:
            self._auth_result(exchange, lambda: exchange.respond(line))

    def _auth_result(self, exchange: AuthExchange, run: _AuthStep) -> None:
        try:
            result = run()
        except SaslError as exc:
            self._error(exc.reply)
            return
        if isinstance(result, Reply):
            self._emit(result)  # a 334 challenge: the next line is the response
            self._auth = exchange
            self._mode = _Mode.AUTH
        else:
            self._events.append(result)

    def _cmd_starttls(self, arg: str) -> None:
        if not self._features.starttls:
            self._emit(R502_NOT_IMPLEMENTED)
            return
        if self._tls_active:
            raise GrammarError(R503_TLS_ALREADY_ACTIVE)
        if arg.strip(" "):
            raise GrammarError(R501_NO_ARGUMENTS_ALLOWED)  # RFC 3207 §4
        self._events.append(StartTls())


_HANDLERS: Final[dict[str, Callable[[SmtpServer, str], None]]] = {
    "EHLO": SmtpServer._cmd_ehlo,
    "HELO": SmtpServer._cmd_helo,
    "MAIL": SmtpServer._cmd_mail,
    "RCPT": SmtpServer._cmd_rcpt,
    "DATA": SmtpServer._cmd_data,
    "RSET": SmtpServer._cmd_rset,
    # RFC 5321 §4.1.1.9: NOOP's argument is ignored.
    "NOOP": lambda core, arg: core._emit(R250_OK),
    "VRFY": SmtpServer._cmd_vrfy,
    # RFC 5321 §3.5.2: EXPN may be disabled (502).
    "EXPN": lambda core, arg: core._emit(R502_NOT_IMPLEMENTED),
    "HELP": lambda core, arg: core._emit(R214_HELP),
    "QUIT": SmtpServer._cmd_quit,
    "AUTH": SmtpServer._cmd_auth,
    "STARTTLS": SmtpServer._cmd_starttls,
}
