"""SmtpClient: the sans-I/O SMTP client core (qmail-remote's conversation).

Theory of operation, the server core's shape with the roles reversed. The
adapter feeds what the server sent with ``receive_data`` (``b""`` at EOF),
calls one method per step (``ehlo``, ``starttls``, ``auth``,
``mail_transaction``, ``send_body``/``end_body``, ``rset``, ``quit``),
writes ``data_to_send()`` and pulls ``next_event()`` until the event that
ends the step. Each command the core wrote waits in a queue for its reply;
replies are matched to commands strictly in order, which is all RFC 2920
asks of a pipelining client. ``waiting`` names the reply awaited so the
adapter can apply RFC 5321 §4.5.3.2's timeout for it.

Failures of the connection are replies too. When the server closes the
connection, sends something that is no reply, or the adapter gives up
(``abort``: a timeout, a socket error), every command still waiting is
answered with one made-up ``451 4.4.2`` (``synthetic``), as RFC 5321 §3.8
tells a client to treat a lost connection, and the core closes. A 421 from
the server answers the command it came for and every later one (§3.8: the
server is closing). So the adapter meets one path, replies, whatever fails.

``SmtpClientUsageError`` means the adapter called a method at the wrong
moment. Nothing the server sends makes this module raise.
"""

from __future__ import annotations

import enum
from base64 import b64encode
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from mailyard.proto.dotstuff import DotStuffer
from mailyard.proto.sasl import MECHANISMS
from mailyard.proto.sentinels import CLOSED, NEED_DATA, Sentinel
from mailyard.proto.smtp.client_events import (
    AuthReply,
    ClientEvent,
    DataReply,
    EnvelopeDone,
    Extensions,
    Greeting,
    HelloReply,
    MailReply,
    MessageReply,
    QuitReply,
    RcptReply,
    ResetReply,
    ServerClosing,
    StartTlsReply,
    Waiting,
    parse_extensions,
)
from mailyard.proto.smtp.client_reply import ReplyReader, ReplySyntaxError, ServerReply
from mailyard.proto.smtp.client_settings import ClientConfig, MailOptions

__all__ = [
    "ClientConfig",
    "ClientState",
    "MailOptions",
    "SmtpClient",
    "SmtpClientUsageError",
    "lost_reply",
]

_FORBIDDEN: Final = frozenset("\r\n\0")
_CANCEL: Final = b"*"  # RFC 4954 §4: the client cancels an exchange
_NO_OPTIONS: Final = MailOptions()


class SmtpClientUsageError(RuntimeError):
    """The adapter called the core at the wrong moment (a bug in the adapter)."""


class ClientState(enum.Enum):
    GREETING = "GREETING"  # waiting for the server's opening reply
    CONNECTED = "CONNECTED"  # greeted (or TLS just started): EHLO next
    READY = "READY"  # hello done, no transaction
    TRANSACTION = "TRANSACTION"  # envelope or final reply outstanding
    BODY = "BODY"  # the adapter sends the content
    TLS = "TLS"  # STARTTLS accepted: handshake, then tls_started()
    CLOSED = "CLOSED"


class _Kind(enum.Enum):
    """What a pending reply answers."""

    GREETING = "GREETING"
    EHLO = "EHLO"
    HELO = "HELO"
    STARTTLS = "STARTTLS"
    AUTH = "AUTH"
    RSET = "RSET"
    QUIT = "QUIT"
    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA = "DATA"
    DOT = "DOT"
    DOT_SILENT = "DOT_SILENT"  # a dot sent after a 354 with no recipient
    BDAT = "BDAT"
    BDAT_LAST = "BDAT_LAST"


_WAITING: Final = {
    _Kind.GREETING: Waiting.GREETING,
    _Kind.MAIL: Waiting.MAIL,
    _Kind.RCPT: Waiting.RCPT,
    _Kind.DATA: Waiting.DATA,
    _Kind.DOT: Waiting.MESSAGE,
    _Kind.DOT_SILENT: Waiting.MESSAGE,
    _Kind.BDAT: Waiting.MESSAGE,
    _Kind.BDAT_LAST: Waiting.MESSAGE,
}


@dataclass(slots=True)
class _Txn:
    recipients: tuple[str, ...]
    pipelined: bool
    chunked: bool
    mail_ok: bool = False
    accepted: list[int] = field(default_factory=list)
    stuffer: DotStuffer = field(default_factory=DotStuffer)
    chunk_failure: ServerReply | None = None


def lost_reply(reason: str) -> ServerReply:
    """The reply that stands for a failed connection (RFC 5321 §3.8: as a 451)."""
    return ServerReply(451, (f"4.4.2 {reason}",), synthetic=True)


def _check_address(address: str) -> str:
    if _FORBIDDEN.intersection(address):
        raise SmtpClientUsageError("CR, LF or NUL in an address")
    return address


class SmtpClient:
    """One SMTP client session, without I/O. See the module doc."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self._reader = ReplyReader(config.max_reply_line, config.max_reply_lines)
        self._out = bytearray()
        self._events: deque[ClientEvent] = deque()
        self._pending: deque[tuple[_Kind, int]] = deque([(_Kind.GREETING, -1)])
        self._state = ClientState.GREETING
        self._eof = False
        self._closing = False
        self._tls_active = False
        self._extensions = Extensions()
        self._txn: _Txn | None = None
        self._auth_steps: deque[bytes] = deque()

    # -- public API --------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def extensions(self) -> Extensions:
        """What the last successful EHLO offered (empty after HELO or TLS start)."""
        return self._extensions

    @property
    def tls_active(self) -> bool:
        return self._tls_active

    @property
    def buffered(self) -> int:
        """Octets received and not yet read as a reply (after STARTTLS's 220,
        anything here was sent in plaintext and must not count, RFC 3207 §5)."""
        return len(self._reader)

    @property
    def waiting(self) -> Waiting | None:
        """The reply the core waits for next, None when it waits for the adapter."""
        if not self._pending or self._state is ClientState.CLOSED:
            return None
        kind = self._pending[0][0]
        return _WAITING.get(kind, Waiting.COMMAND)

    def receive_data(self, data: bytes) -> None:
        """Bytes from the server; ``b""`` means EOF. Ignored once closed."""
        if self._state is ClientState.CLOSED or self._eof:
            return
        if not data:
            self._eof = True
            return
        self._reader.feed(bytes(data))

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> ClientEvent | Sentinel:
        """The next event, NEED_DATA (write, then feed more), or CLOSED."""
        while True:
            if self._events:
                return self._events.popleft()
            if self._state is ClientState.CLOSED:
                return CLOSED
            if self._state is ClientState.TLS:
                return NEED_DATA  # the handshake comes first; nothing is read
            try:
                reply = self._reader.next_reply()
            except ReplySyntaxError as exc:
                self.abort(f"protocol error: {exc}")
                continue
            if reply is None:
                if self._eof:
                    self.abort("connection closed by the server")
                    continue
                return NEED_DATA
            self._on_reply(reply)

    def abort(self, reason: str) -> None:
        """The connection failed (timeout, socket error): every command still
        waiting gets the made-up 451, then the session is closed."""
        if self._state is ClientState.CLOSED:
            return
        reply = lost_reply(reason)
        if self._state is ClientState.BODY:
            self._events.append(MessageReply(reply))
        self._fail_pending(reply)
        self._close()

    def ehlo(self) -> None:
        """EHLO; HELO follows by itself if the server refuses EHLO (RFC 5321 §3.2)."""
        self._require(ClientState.CONNECTED, ClientState.READY)
        self._command(f"EHLO {self.config.helo}", _Kind.EHLO)

    def starttls(self) -> None:
        """STARTTLS (RFC 3207); only after an EHLO that offered it."""
        self._require(ClientState.READY)
        if self._tls_active or not self._extensions.starttls:
            raise SmtpClientUsageError("STARTTLS is not offered here")
        self._command("STARTTLS", _Kind.STARTTLS)

    def tls_started(self) -> None:
        """The handshake is done. RFC 3207 §4.2: forget all the server said
        in plaintext (a reply injected before the handshake must not count),
        then EHLO again."""
        self._require(ClientState.TLS)
        self._reader.clear()
        self._extensions = Extensions()
        self._tls_active = True
        self._state = ClientState.CONNECTED

    def auth(self, mechanism: str, username: str, password: str, authzid: str = "") -> None:
        """AUTH PLAIN (with its initial response, RFC 4954 §4) or LOGIN."""
        self._require(ClientState.READY)
        mechanism = mechanism.upper()
        if mechanism not in MECHANISMS:
            raise SmtpClientUsageError(f"unsupported mechanism {mechanism!r}")
        self._auth_steps.clear()
        if mechanism == "PLAIN":
            message = f"{authzid}\0{username}\0{password}".encode()
            self._command(f"AUTH PLAIN {b64encode(message).decode('ascii')}", _Kind.AUTH)
        else:
            self._auth_steps.extend(
                [b64encode(username.encode()), b64encode(password.encode())]
            )
            self._command("AUTH LOGIN", _Kind.AUTH)

    def mail_transaction(
        self, sender: str, recipients: Sequence[str], options: MailOptions = _NO_OPTIONS
    ) -> None:
        """MAIL, one RCPT per recipient, then DATA (or BDAT chunks later).

        With PIPELINING all of them leave in one write (RFC 2920 §3.1: DATA
        is last in its group); otherwise each waits for the previous reply.
        """
        self._require(ClientState.READY)
        if not recipients:
            raise SmtpClientUsageError("a transaction needs a recipient")
        ext = self._extensions
        addresses = [_check_address(sender), *(_check_address(r) for r in recipients)]
        utf8 = options.smtputf8 and ext.smtputf8
        if not utf8 and not all(a.isascii() for a in addresses):
            # RFC 6531 §3.2: a non-ASCII address needs the SMTPUTF8 extension.
            raise SmtpClientUsageError("non-ASCII address without SMTPUTF8")
        txn = _Txn(tuple(recipients), ext.pipelining,
                   self.config.chunking and ext.chunking and ext.pipelining)
        self._txn = txn
        self._state = ClientState.TRANSACTION
        self._command(f"MAIL FROM:<{sender}>{self._mail_params(options)}", _Kind.MAIL)
        if txn.pipelined:
            for index in range(len(recipients)):
                self._rcpt(index)
            if not txn.chunked:
                self._command("DATA", _Kind.DATA)

    def send_body(self, data: bytes) -> None:
        """Message content (CRLF lines, as queued); stuffed or chunked here."""
        txn = self._body_txn()
        if not data:
            return
        if txn.chunked:
            # RFC 3030 §2: BDAT <size> then exactly that many octets.
            self._out += f"BDAT {len(data)}\r\n".encode("ascii") + data
            self._pending.append((_Kind.BDAT, -1))
        else:
            self._out += txn.stuffer.feed(data)

    def end_body(self) -> None:
        """End of content: the final dot (RFC 5321 §4.5.2) or BDAT 0 LAST."""
        txn = self._body_txn()
        if txn.chunked:
            self._out += b"BDAT 0 LAST\r\n"
            self._pending.append((_Kind.BDAT_LAST, -1))
        else:
            self._out += txn.stuffer.finish()
            self._pending.append((_Kind.DOT, -1))
        self._state = ClientState.TRANSACTION

    def rset(self) -> None:
        self._require(ClientState.CONNECTED, ClientState.READY)
        self._command("RSET", _Kind.RSET)

    def quit(self) -> None:
        """QUIT; a no-op once the session is closed."""
        if self._state is ClientState.CLOSED:
            return
        self._require(ClientState.CONNECTED, ClientState.READY)
        self._command("QUIT", _Kind.QUIT)

    # -- commands ------------------------------------------------------------------

    def _require(self, *states: ClientState) -> None:
        if self._state not in states or self._pending:
            raise SmtpClientUsageError(f"not allowed in state {self._state.value}")

    def _command(self, line: str, kind: _Kind, index: int = -1) -> None:
        self._out += line.encode("utf-8") + b"\r\n"
        self._pending.append((kind, index))

    def _raw(self, data: bytes, kind: _Kind) -> None:
        self._out += data + b"\r\n"
        self._pending.append((kind, -1))

    def _rcpt(self, index: int) -> None:
        assert self._txn is not None
        self._command(f"RCPT TO:<{self._txn.recipients[index]}>", _Kind.RCPT, index)

    def _mail_params(self, options: MailOptions) -> str:
        ext = self._extensions
        params = []
        if options.size is not None and ext.size is not None:
            params.append(f" SIZE={options.size}")  # RFC 1870 §3
        if options.eightbit and ext.eightbitmime:
            params.append(" BODY=8BITMIME")  # RFC 6152 §2
        if options.smtputf8 and ext.smtputf8:
            params.append(" SMTPUTF8")  # RFC 6531 §3.4
        return "".join(params)

    def _body_txn(self) -> _Txn:
        if self._state is not ClientState.BODY or self._txn is None:
            raise SmtpClientUsageError("no message content is expected now")
        return self._txn

    # -- replies -----------------------------------------------------------------

    def _on_reply(self, reply: ServerReply) -> None:
        if not self._pending:
            # RFC 5321 §3.8: a server may announce its going away at any time;
            # any other unsolicited reply means it lost track: we leave too.
            self._events.append(ServerClosing(reply))
            self._close()
            return
        kind, index = self._pending.popleft()
        self._handle(kind, index, reply)
        if reply.code == 421:
            self._fail_pending(reply)
            self._close()

    def _fail_pending(self, reply: ServerReply) -> None:
        self._closing = True
        while self._pending:
            kind, index = self._pending.popleft()
            self._handle(kind, index, reply)

    def _close(self) -> None:
        self._closing = True
        self._pending.clear()
        self._reader.clear()
        self._txn = None
        self._state = ClientState.CLOSED

    def _handle(self, kind: _Kind, index: int, reply: ServerReply) -> None:
        if kind is _Kind.GREETING:
            self._events.append(Greeting(reply))
            self._state = ClientState.CONNECTED
        elif kind in (_Kind.EHLO, _Kind.HELO):
            self._on_hello(kind, reply)
        elif kind is _Kind.STARTTLS:
            self._events.append(StartTlsReply(reply))
            if reply.positive and not self._closing:
                self._state = ClientState.TLS
        elif kind is _Kind.AUTH:
            self._on_auth(reply)
        elif kind is _Kind.RSET:
            self._events.append(ResetReply(reply))
        elif kind is _Kind.QUIT:
            self._events.append(QuitReply(reply))
            self._close()
        else:
            self._on_transaction(kind, index, reply)

    def _on_hello(self, kind: _Kind, reply: ServerReply) -> None:
        if kind is _Kind.EHLO and reply.permanent and not self._closing:
            # RFC 5321 §3.2: a server that does not know EHLO gets HELO.
            self._command(f"HELO {self.config.helo}", _Kind.HELO)
            return
        extended = kind is _Kind.EHLO and reply.positive
        self._extensions = parse_extensions(reply) if extended else Extensions()
        if reply.positive:
            self._state = ClientState.READY
        self._events.append(HelloReply(reply, extended, self._extensions))

    def _on_auth(self, reply: ServerReply) -> None:
        if reply.code == 334 and not self._closing:
            # RFC 4954 §4: a challenge; LOGIN answers user, then password.
            step = self._auth_steps.popleft() if self._auth_steps else _CANCEL
            self._raw(step, _Kind.AUTH)
            return
        self._auth_steps.clear()
        self._events.append(AuthReply(reply))

    def _on_transaction(self, kind: _Kind, index: int, reply: ServerReply) -> None:
        txn = self._txn
        if txn is None:
            return  # the transaction was closed under this reply
        if kind is _Kind.MAIL:
            self._events.append(MailReply(reply))
            txn.mail_ok = reply.positive
            if not txn.pipelined:
                self._after_mail(txn)
        elif kind is _Kind.RCPT:
            self._events.append(RcptReply(index, reply))
            if reply.positive and txn.mail_ok:
                txn.accepted.append(index)
            if index == len(txn.recipients) - 1:
                self._after_last_rcpt(txn)
            elif not txn.pipelined and not self._closing:
                self._rcpt(index + 1)
        elif kind is _Kind.DATA:
            self._on_data(txn, reply)
        elif kind is _Kind.DOT_SILENT:
            self._envelope_done(txn, body=False)
        elif kind is _Kind.BDAT:
            if not reply.positive and txn.chunk_failure is None:
                txn.chunk_failure = reply
        else:  # DOT, BDAT_LAST
            # RFC 3030 §2: after a failed chunk the message is lost; report that failure.
            final = txn.chunk_failure or reply
            self._txn = None
            self._state = ClientState.READY
            self._events.append(MessageReply(final))

    def _after_mail(self, txn: _Txn) -> None:
        if txn.mail_ok and not self._closing:
            self._rcpt(0)
        else:
            self._envelope_done(txn, body=False)

    def _after_last_rcpt(self, txn: _Txn) -> None:
        if txn.chunked:
            self._envelope_done(txn, body=bool(txn.accepted) and not self._closing)
        elif not txn.pipelined:
            if txn.accepted and not self._closing:
                self._command("DATA", _Kind.DATA)
            else:
                self._envelope_done(txn, body=False)

    def _on_data(self, txn: _Txn, reply: ServerReply) -> None:
        self._events.append(DataReply(reply))
        if reply.code != 354 or self._closing:
            self._envelope_done(txn, body=False)
        elif txn.accepted:
            self._envelope_done(txn, body=True)
        else:
            # RFC 2920 §3.1: DATA accepted although no RCPT was: end the
            # (empty) content at once; the server refuses it.
            self._raw(b".", _Kind.DOT_SILENT)

    def _envelope_done(self, txn: _Txn, *, body: bool) -> None:
        self._events.append(EnvelopeDone(tuple(txn.accepted), body))
        if body:
            self._state = ClientState.BODY
        else:
            self._txn = None
            if not self._closing:
                self._state = ClientState.READY
