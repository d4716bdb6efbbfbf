"""Rendering IMAP values: strings (quoted or literal), mailbox names,
flag lists, sections, ENVELOPE and BODYSTRUCTURE (RFC 9051 §4, §9).

``Values`` is the part of the one encoder that turns values into octets;
``encoder.Encoder`` adds whole response lines on top of it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

from mailyard.proto.imap.fetchspec import Section
from mailyard.proto.imap.lexer import MONTHS, is_atom
from mailyard.proto.imap.utf7 import encode_mailbox
from mailyard.proto.imap.values import (
    Address,
    BodyStructure,
    Disposition,
    Envelope,
    MultiPart,
    NestedValue,
    NString,
    Params,
    SinglePart,
    ThreadTree,
)

__all__ = [
    "Values",
    "check_atom",
    "check_text",
    "date_time",
    "number",
    "part",
    "seqset",
    "thread_list",
]

_MAX_QUOTED: Final = 1024
_TEXT_FORBIDDEN: Final = re.compile(r"[\x00\r\n]")
_FLAG_CACHE_SIZE: Final = 4096
_MAX_BODY_DEPTH: Final = 100
_MESSAGE_TYPES: Final = frozenset({(b"message", b"rfc822"), (b"message", b"global")})


def _lower(value: object) -> bytes | None:
    if isinstance(value, str):
        return value.lower().encode("utf-8", "replace")
    return value.lower() if isinstance(value, bytes) else None


def check_text(text: str) -> bytes:
    if _TEXT_FORBIDDEN.search(text):
        raise ValueError(f"CR, LF or NUL in response text {text!r}")
    return text.encode("utf-8")


def check_atom(word: str) -> bytes:
    """Flags, capabilities, attributes: an atom, optionally after "\\"."""
    if not is_atom(word[1:] if word.startswith("\\") else word) and word != "\\*":
        raise ValueError(f"not an atom: {word!r}")
    return word.encode("ascii")


class Values:
    """Value renderers; ``utf8`` follows the session (set by the core)."""

    def __init__(self) -> None:
        self.utf8 = False
        self._flag_lists: dict[tuple[str, ...], bytes] = {}

    def string(self, value: str | bytes | memoryview) -> bytes:
        if type(value) is bytes:
            raw = value
        else:
            raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        # find() and isascii() rather than the regexes for the common short
        # 7-bit string: a few times quicker (an ENVELOPE has ten or more).
        quotable = len(raw) <= _MAX_QUOTED and (
            raw.find(b"\r") < 0 and raw.find(b"\n") < 0 and raw.find(b"\x00") < 0)
        if quotable and (raw.isascii() or (self.utf8 and _valid_utf8(raw))):
            if raw.find(b"\\") >= 0:
                raw = raw.replace(b"\\", b"\\\\")
            if raw.find(b'"') >= 0:
                raw = raw.replace(b'"', b'\\"')
            return b'"' + raw + b'"'
        return b"{%d}\r\n" % len(raw) + raw

    def nstring(self, value: NString) -> bytes:
        return b"NIL" if value is None else self.string(value)

    def astring(self, value: str) -> bytes:
        return value.encode("ascii") if value and is_atom(value) else self.string(value)

    def mailbox(self, name: str) -> bytes:
        return self.string(name if self.utf8 else encode_mailbox(name))

    def flag_list(self, flags: tuple[str, ...]) -> bytes:
        cached = self._flag_lists.get(flags)
        if cached is None:
            cached = b"(" + b" ".join(check_atom(f) for f in flags) + b")"
            if len(self._flag_lists) >= _FLAG_CACHE_SIZE:
                self._flag_lists.clear()
            self._flag_lists[flags] = cached
        return cached

    def section(self, section: Section) -> bytes:
        spec = part(section.part)
        if section.text is not None:
            spec += (b"." if spec else b"") + section.text.value.encode("ascii")
        if section.fields:
            spec += b" (" + b" ".join(self.astring(f) for f in section.fields) + b")"
        return spec

    def envelope(self, env: Envelope) -> bytes:
        """RFC 9051 §9 envelope, fields in order."""
        fields = [self.nstring(env.date), self.nstring(env.subject)]
        for addresses in (env.from_, env.sender, env.reply_to, env.to, env.cc, env.bcc):
            fields.append(self._addresses(addresses))
        fields += [self.nstring(env.in_reply_to), self.nstring(env.message_id)]
        return b"(" + b" ".join(fields) + b")"

    def _addresses(self, addresses: tuple[Address, ...] | None) -> bytes:
        if not addresses:
            return b"NIL"
        return (
            b"("
            + b"".join(
                b"(" + b" ".join(self.nstring(v) for v in (a.name, a.adl, a.mailbox, a.host)) + b")"
                for a in addresses
            )
            + b")"
        )

    def body(self, body: BodyStructure, extensible: bool, depth: int = 0) -> bytes:
        """RFC 9051 §9 body; ``extensible`` adds the extension data (BODYSTRUCTURE)."""
        if depth > _MAX_BODY_DEPTH:
            raise ValueError("body structure nested too deeply")
        if isinstance(body, MultiPart):
            out = b"(" + b"".join(self.body(p, extensible, depth + 1) for p in body.parts)
            out += b" " + self.string(body.subtype)
            if extensible:
                out += b" " + self._params(body.params) + self._tail(body)
            return out + b")"
        return self._single(body, extensible, depth)

    def _single(self, part: SinglePart, extensible: bool, depth: int) -> bytes:
        fields = [
            self.string(part.type), self.string(part.subtype), self._params(part.params),
            self.nstring(part.id), self.nstring(part.description), self.string(part.encoding),
            b"%d" % number(part.size),
        ]  # fmt: skip
        if part.envelope is not None and part.body is not None:
            fields += [self.envelope(part.envelope), self.body(part.body, extensible, depth + 1),
                       b"%d" % number(part.lines or 0)]  # fmt: skip
        elif part.lines is not None:
            fields.append(b"%d" % number(part.lines))
        out = b"(" + b" ".join(fields)
        if extensible:
            out += b" " + self.nstring(part.md5) + self._tail(part)
        return out + b")"

    # -- the generic nested form (mailyard.message's ImapValue) ------------------------

    def nested(self, value: NestedValue, depth: int = 0) -> bytes:
        """A nested value as a plain parenthesised list, elements SP-separated."""
        if value is None:
            return b"NIL"
        if type(value) is bytes or isinstance(value, str | bytes):
            return self.string(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return b"%d" % number(value)
        if isinstance(value, tuple) and depth <= _MAX_BODY_DEPTH:
            return b"(" + b" ".join(self.nested(v, depth + 1) for v in value) + b")"
        raise ValueError(f"not an IMAP value: {value!r}")

    def envelope_value(self, value: Envelope | NestedValue) -> bytes:
        """RFC 9051 §9 envelope from the typed or the nested form."""
        if isinstance(value, Envelope):
            return self.envelope(value)
        if not isinstance(value, tuple) or len(value) != 10:
            raise ValueError("an envelope is ten fields")
        fields = [self.nested(value[0]), self.nested(value[1])]
        fields += [self._nested_addresses(a) for a in value[2:8]]
        fields += [self.nested(value[8]), self.nested(value[9])]
        return b"(" + b" ".join(fields) + b")"

    def _nested_addresses(self, addresses: NestedValue) -> bytes:
        """RFC 9051 §9 env-from …: "(" 1*address ")" (no SP between) or NIL."""
        if not addresses:
            return b"NIL"
        if not isinstance(addresses, tuple):
            raise ValueError("an address list is a tuple")
        return b"(" + b"".join(self._nested_address(a) for a in addresses) + b")"

    def _nested_address(self, address: NestedValue) -> bytes:
        """One address; four octet strings or NILs, the common case, are
        written without the general walk (``nested``)."""
        if type(address) is tuple and len(address) == 4 and all(
                v is None or type(v) is bytes for v in address):
            string = self.string
            return b"(" + b" ".join([b"NIL" if v is None else string(v)  # type: ignore[arg-type]
                                     for v in address]) + b")"
        return self.nested(address)

    def body_value(
        self, value: BodyStructure | NestedValue, extensible: bool, depth: int = 0
    ) -> bytes:
        """RFC 9051 §9 body from the typed or the nested form: a multipart's
        parts are written without SP between them, and a message/rfc822
        part's envelope and body follow their own grammar."""
        if isinstance(value, SinglePart | MultiPart):
            return self.body(value, extensible, depth)
        if depth > _MAX_BODY_DEPTH or not isinstance(value, tuple) or not value:
            raise ValueError("a body structure is a non-empty tuple")
        count = next((i for i, v in enumerate(value) if not isinstance(v, tuple)), len(value))
        if count:
            parts = b"".join(self.body_value(p, extensible, depth + 1) for p in value[:count])
            rest = b"".join(b" " + self.nested(v) for v in value[count:])
            return b"(" + parts + rest + b")"
        kind = (_lower(value[0]), _lower(value[1] if len(value) > 1 else None))
        if kind in _MESSAGE_TYPES and len(value) >= 10 and isinstance(value[7], tuple):
            fields = [self.nested(v) for v in value[:7]]
            inner = self.body_value(value[8], extensible, depth + 1)
            fields += [self.envelope_value(value[7]), inner]
            fields += [self.nested(v) for v in value[9:]]
            return b"(" + b" ".join(fields) + b")"
        return self.nested(value)

    def _tail(self, part: SinglePart | MultiPart) -> bytes:
        """SP body-fld-dsp SP body-fld-lang SP body-fld-loc."""
        return (
            b" "
            + self._disposition(part.disposition)
            + b" "
            + self._language(part.language)
            + b" "
            + self.nstring(part.location)
        )

    def _params(self, params: Params) -> bytes:
        if not params:
            return b"NIL"
        return b"(" + b" ".join(self.string(k) + b" " + self.string(v) for k, v in params) + b")"

    def _disposition(self, disposition: Disposition | None) -> bytes:
        if disposition is None:
            return b"NIL"
        return b"(" + self.string(disposition.type) + b" " + self._params(disposition.params) + b")"

    def _language(self, language: tuple[str, ...]) -> bytes:
        if not language:
            return b"NIL"
        if len(language) == 1:
            return self.string(language[0])
        return b"(" + b" ".join(self.string(lang) for lang in language) + b")"


def number(value: int) -> int:
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"not a number: {value!r}")
    return value


def seqset(numbers: object) -> bytes:
    text = str(numbers)
    if not text or text == "$":
        raise ValueError("an empty or unresolved sequence set cannot be sent")
    return text.encode("ascii")


def part(part: tuple[int, ...]) -> bytes:
    return ".".join(str(number(n)) for n in part).encode("ascii")


def _valid_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_DAYS: dict[int, bytes] = {}  # days since the epoch -> b"dd-Mon-yyyy "
# The time of day in two small tables (1,440 + 60 entries), not formatted
# per message: b"hh:mm:" by minute of the day, b"ss +0000" by second.
_CLOCK_MINUTES: Final = tuple(b"%02d:%02d:" % divmod(m, 60) for m in range(1440))
_CLOCK_SECONDS: Final = tuple(b"%02d +0000" % s for s in range(60))
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def date_time(when: datetime | int | float) -> bytes:
    """RFC 9051 §9 date-time: ``dd-Mon-yyyy hh:mm:ss +zzzz``, day space-padded.

    Seconds since the epoch (the store's form) take a fast path: the date
    part is cached per day, since FETCH 1:* renders one per message.
    """
    if not isinstance(when, datetime):
        days, seconds = divmod(int(when), 86400)
        day = _DAYS.get(days)
        if day is None:
            if len(_DAYS) >= 65536:
                _DAYS.clear()
            moment = _EPOCH + timedelta(days=days)
            day = b"%2d-%s-%04d " % (moment.day, MONTHS[moment.month - 1].encode(), moment.year)
            _DAYS[days] = day
        minutes, second = divmod(seconds, 60)
        return day + _CLOCK_MINUTES[minutes] + _CLOCK_SECONDS[second]
    offset = when.utcoffset()
    minutes = 0 if offset is None else int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return (
        f"{when.day:2d}-{MONTHS[when.month - 1]}-{when.year:04d} "
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} {sign}{hours:02d}{mins:02d}"
    ).encode("ascii")


def _chain(tree: ThreadTree) -> tuple[list[int], tuple[ThreadTree, ...]]:
    numbers = list(tree.numbers)
    children = tree.children
    while len(children) == 1:  # RFC 5256 §4: a lone child continues the chain
        numbers += children[0].numbers
        children = children[0].children
    return numbers, children


def thread_list(tree: ThreadTree) -> bytes:
    """RFC 5256 §4 thread-list, iteratively (deep threads cannot overflow)."""
    out = bytearray()
    stack: list[ThreadTree | None] = [tree]
    while stack:
        node = stack.pop()
        if node is None:
            out += b")"
            continue
        numbers, children = _chain(node)
        out += b"(" + " ".join(map(str, numbers)).encode("ascii")
        if numbers and children:
            out += b" "
        stack.append(None)
        stack.extend(reversed(children))
    return bytes(out)
