"""IMAP ENVELOPE (RFC 3501 §7.4.2, RFC 9051 §7.5.2) from a header block.

Pure; no I/O. Values:

* ``Envelope``: ``date``, ``subject``, ``in_reply_to``, ``message_id`` are
  the raw field values (unfolded, stripped, RFC 2047 words left encoded, as
  IMAP sends them), ``None`` when the field is absent and ``b""`` when it is
  empty. ``from_``, ``sender``, ``reply_to``, ``to``, ``cc``, ``bcc`` are
  tuples of ``EnvelopeAddress``; an empty tuple is NIL. Sender and
  Reply-To default to From when absent or empty (§7.4.2).
* ``EnvelopeAddress(name, adl, mailbox, host)``, each ``bytes | None``:
  the display name with quoting removed (encoded words kept), the source
  route (``@a,@b``), the local part with quoting removed, the domain.
  RFC 5322 group syntax: a group start is ``(None, None, group name,
  None)``, its end ``(None, None, None, None)``. A mailbox written without
  a domain gets ``host=b""`` so that it can never read as a group marker.
* ``ImapValue``: the generic nested value ``imap_envelope`` returns for the
  IMAP core's encoder: ``None`` is NIL, ``int`` a number, ``bytes`` a
  string, ``tuple`` a parenthesised list.

The address parser is tolerant (it reads what mailers really write:
unquoted dots and 8-bit octets in names, comments as names, missing
domains, unterminated quotes and angle brackets, stray separators) and
never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Final, TypeAlias

from mailyard.message.mime import Header, parse_header

__all__ = [
    "GROUP_END",
    "Envelope",
    "EnvelopeAddress",
    "ImapValue",
    "build_envelope",
    "envelope_of",
    "imap_envelope",
    "parse_addresses",
]

ImapValue: TypeAlias = "int | bytes | tuple[ImapValue, ...] | None"


@dataclass(frozen=True, slots=True)
class EnvelopeAddress:
    name: bytes | None
    adl: bytes | None
    mailbox: bytes | None
    host: bytes | None

    @property
    def is_group_start(self) -> bool:
        return self.host is None and self.mailbox is not None

    @property
    def is_group_end(self) -> bool:
        return self.host is None and self.mailbox is None


GROUP_END: Final = EnvelopeAddress(None, None, None, None)

Addresses = tuple[EnvelopeAddress, ...]


@dataclass(frozen=True, slots=True)
class Envelope:
    date: bytes | None
    subject: bytes | None
    from_: Addresses
    sender: Addresses
    reply_to: Addresses
    to: Addresses
    cc: Addresses
    bcc: Addresses
    in_reply_to: bytes | None
    message_id: bytes | None


class _Kind(Enum):
    ATOM = "atom"
    QUOTED = "quoted"
    LITERAL = "literal"  # [domain literal], kept with its brackets
    COMMENT = "comment"
    SPECIAL = "special"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    text: bytes
    spaced: bool  # white space came before it


# RFC 5322 §3.2.3 specials, less the quote, comment and literal openers
# handled by the tokenizer itself.
# RFC 5322 §3.2: the lexical tokens of an address list. A quoted string
# or domain literal that is never closed runs to the end; comments nest,
# so they are read by ``_comment``.
_LEXER: Final = re.compile(
    rb"""(?P<space>[ \t\r\n]+)
    |"(?P<quoted>(?:[^"\\]|\\.)*)"?
    |\[(?P<literal>(?:[^\]\\]|\\.)*)\]?
    |(?P<special>[<>:;@,.])
    |(?P<atom>[^<>:;@,."()\[\]\ \t\r\n\\]+)
    |(?P<comment>\()
    |(?P<stray>.)""",
    re.VERBOSE | re.DOTALL,
)
_QUOTED_PAIR: Final = re.compile(rb"\\(.)", re.DOTALL)


def _unquote(text: bytes) -> bytes:
    return _QUOTED_PAIR.sub(rb"\1", text) if b"\\" in text else text


def _comment(value: bytes, position: int) -> tuple[bytes, int]:
    """Read a comment from after its "("; nested comments are part of it."""
    out = bytearray()
    depth = 1
    while position < len(value):
        octet = value[position]
        position += 1
        if octet == 0x5C and position < len(value):  # "\" quoted-pair
            out.append(value[position])
            position += 1
            continue
        if octet == 0x28:
            depth += 1
        elif octet == 0x29:
            depth -= 1
            if depth == 0:
                break
        out.append(octet)
    return bytes(out), position


def _tokens(value: bytes) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    spaced = False
    while position < len(value):
        match = _LEXER.match(value, position)
        assert match is not None  # "stray" matches any octet
        kind = match.lastgroup
        position = match.end()
        if kind == "space":
            spaced = True
            continue
        if kind == "quoted":
            tokens.append(_Token(_Kind.QUOTED, _unquote(match.group("quoted")), spaced))
        elif kind == "literal":
            text = b"[" + _unquote(match.group("literal")) + b"]"
            tokens.append(_Token(_Kind.LITERAL, text, spaced))
        elif kind == "special":
            tokens.append(_Token(_Kind.SPECIAL, match.group(), spaced))
        elif kind == "comment":
            text, position = _comment(value, position)
            tokens.append(_Token(_Kind.COMMENT, text, spaced))
        else:  # an atom, or a stray "\", ")" or "]" read as one
            tokens.append(_Token(_Kind.ATOM, match.group(), spaced))
        spaced = False
    return tokens


def _join(tokens: list[_Token]) -> bytes:
    """Words as written: one space where the original had white space."""
    out = bytearray()
    for token in tokens:
        if out and token.spaced:
            out += b" "
        out += token.text
    return bytes(out)


def _is(token: _Token, special: bytes) -> bool:
    return token.kind is _Kind.SPECIAL and token.text == special


class _Parser:
    """One pass over the tokens of an address-list (RFC 5322 §3.4)."""

    __slots__ = ("comment", "in_group", "out", "pending", "tokens")

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.out: list[EnvelopeAddress] = []
        self.pending: list[_Token] = []
        self.comment: bytes | None = None
        self.in_group = False

    def _mailbox(self, name: bytes | None, adl: bytes | None, spec: list[_Token]) -> None:
        local, host = _local_and_host(spec)
        if name is None and self.comment:
            # "user@host (Full Name)": the comment is the only name there is.
            name = self.comment.strip() or None
        self.out.append(EnvelopeAddress(name, adl, local, host))

    def _flush(self) -> None:
        words = [t for t in self.pending if t.kind is not _Kind.COMMENT]
        if words:
            self._mailbox(None, None, words)
        self.pending = []
        self.comment = None

    def _angle(self, index: int) -> int:
        """Read ``<[route:]addr-spec>`` after its "<"; return the index after it."""
        words = [t for t in self.pending if t.kind is not _Kind.COMMENT]
        name = _join(words) or None
        inner: list[_Token] = []
        index += 1
        while index < len(self.tokens) and not _is(self.tokens[index], b">"):
            if self.tokens[index].kind is not _Kind.COMMENT:
                inner.append(self.tokens[index])
            index += 1
        adl: bytes | None = None
        if inner and _is(inner[0], b"@"):
            colon = next((i for i, t in enumerate(inner) if _is(t, b":")), len(inner))
            adl = b"".join(token.text for token in inner[:colon])
            inner = inner[colon + 1 :]
        if inner or name is not None:
            self._mailbox(name, adl, inner)
        self.pending = []
        self.comment = None
        # Anything after ">" up to the next separator is noise.
        index += 1
        while index < len(self.tokens) and not (
            _is(self.tokens[index], b",") or _is(self.tokens[index], b";")
        ):
            index += 1
        return index

    def run(self) -> Addresses:
        index = 0
        while index < len(self.tokens):
            token = self.tokens[index]
            if _is(token, b"<"):
                index = self._angle(index)
                continue
            if _is(token, b","):
                self._flush()
            elif _is(token, b";"):
                self._flush()
                if self.in_group:
                    self.out.append(GROUP_END)
                    self.in_group = False
            elif _is(token, b":") and not self.in_group:
                words = [t for t in self.pending if t.kind is not _Kind.COMMENT]
                self.out.append(EnvelopeAddress(None, None, _join(words), None))
                self.in_group = True
                self.pending = []
                self.comment = None
            elif token.kind is _Kind.COMMENT:
                if self.comment is None:
                    self.comment = token.text
            elif not _is(token, b":"):
                self.pending.append(token)
            index += 1
        self._flush()
        if self.in_group:  # RFC 5322 §3.4 wants ";", mailers forget it
            self.out.append(GROUP_END)
        return tuple(self.out)


def _local_and_host(spec: list[_Token]) -> tuple[bytes, bytes]:
    at = max((i for i, token in enumerate(spec) if _is(token, b"@")), default=-1)
    if at < 0:  # no domain: keep the words as they were written
        return _join(spec), b""
    local_tokens = spec[:at]
    host = b"".join(token.text for token in spec[at + 1 :] if not _is(token, b"@"))
    # RFC 5322 §4.4 (obs-local-part): white space around the dots is not
    # part of the local part; a quoted local part keeps its own spaces.
    local = b"".join(
        token.text if token.kind is _Kind.QUOTED else token.text.strip() for token in local_tokens
    )
    return local, host


# The common shapes, ``local@domain``, ``<local@domain>``, ``Words <…>`` and
# ``"Quoted" <…>``, read by one expression; anything else (comments,
# groups, routes, dots in names, quoted pairs) takes the full parser, which
# gives the same result for these shapes.
_WORD: Final = rb'[^\s<>()",;:@\[\]\\.]+'
_PART: Final = rb'[^ \t\r\n<>()",;:@\[\]\\]+'
_SIMPLE_ADDRESS: Final = re.compile(
    rb"[ \t\r\n]*(?:"
    rb'(?:"(?P<quoted>[^"\\]*)"|(?P<words>' + _WORD + rb"(?:[ \t\r\n]+" + _WORD + rb")*))?"
    rb"[ \t\r\n]*<(?P<local>" + _PART + rb")@(?P<host>" + _PART + rb")>"
    rb"|(?P<bare_local>" + _PART + rb")@(?P<bare_host>" + _PART + rb"))"
    rb"[ \t\r\n]*(?:,|\Z)"
)
_WHITE_RUN: Final = re.compile(rb"[ \t\r\n]+")


def _simple_addresses(value: bytes) -> Addresses | None:
    """The fast path; None when ``value`` is not made of simple shapes."""
    out: list[EnvelopeAddress] = []
    position = 0
    while position < len(value):
        match = _SIMPLE_ADDRESS.match(value, position)
        if match is None:
            return None
        position = match.end()
        local, host, quoted, words = match.group("local", "host", "quoted", "words")
        if local is None:
            out.append(EnvelopeAddress(None, None, match["bare_local"], match["bare_host"]))
            continue
        name = quoted if quoted is not None else words and _WHITE_RUN.sub(b" ", words)
        out.append(EnvelopeAddress(name or None, None, local, host))
    return tuple(out) or None


def parse_addresses(value: bytes | None) -> Addresses:
    """The ENVELOPE address list of one header field value."""
    if value is None:
        return ()
    simple = _simple_addresses(value)
    return simple if simple is not None else _Parser(_tokens(value)).run()


def build_envelope(header: Header) -> Envelope:
    """ENVELOPE of a parsed header block; the first field of each name counts."""
    from_ = parse_addresses(header.get(b"from"))
    return Envelope(
        date=header.get(b"date"),
        subject=header.get(b"subject"),
        from_=from_,
        sender=parse_addresses(header.get(b"sender")) or from_,
        reply_to=parse_addresses(header.get(b"reply-to")) or from_,
        to=parse_addresses(header.get(b"to")),
        cc=parse_addresses(header.get(b"cc")),
        bcc=parse_addresses(header.get(b"bcc")),
        in_reply_to=header.get(b"in-reply-to"),
        message_id=header.get(b"message-id"),
    )


def envelope_of(data: bytes) -> Envelope:
    """ENVELOPE of a message (only its header block is read)."""
    return build_envelope(parse_header(data))


def _imap_addresses(addresses: Addresses) -> ImapValue:
    if not addresses:
        return None
    return tuple((a.name, a.adl, a.mailbox, a.host) for a in addresses)


def imap_envelope(envelope: Envelope) -> ImapValue:
    """The envelope in RFC 3501 order, as a generic ``ImapValue``."""
    return (
        envelope.date,
        envelope.subject,
        _imap_addresses(envelope.from_),
        _imap_addresses(envelope.sender),
        _imap_addresses(envelope.reply_to),
        _imap_addresses(envelope.to),
        _imap_addresses(envelope.cc),
        _imap_addresses(envelope.bcc),
        envelope.in_reply_to,
        envelope.message_id,
    )
