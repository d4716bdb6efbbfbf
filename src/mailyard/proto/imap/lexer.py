"""Reading the arguments of one assembled command (RFC 9051 §9 grammar).

The reader (``reader.py``) has already split the command into line texts
and the literals between them, checking every limit before a literal octet
was read. ``Cursor`` walks that sequence: text ``i`` is followed by literal
``i``, which is where a ``string`` may be a literal. Each method reads one
grammar element or raises ``CommandError`` (BAD) naming what was expected,
so the tagged BAD says precisely what is wrong.

Strings arrive as octets; ``text()`` turns them into ``str`` (UTF-8,
RFC 9051 §4.3 / RFC 6855 §3); mailbox names are modified UTF-7 unless the
session enabled UTF-8 (RFC 3501 §5.1.3, RFC 6855 §3).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Final

from mailyard.proto.imap.errors import CommandError, Status
from mailyard.proto.imap.sequence import SequenceSet
from mailyard.proto.imap.utf7 import decode_mailbox

__all__ = ["MONTHS", "SYSTEM_FLAGS", "Cursor", "decode_text", "is_atom"]

# RFC 9051 §9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards /
# quoted-specials / resp-specials.
_ATOM: Final = re.compile(rb"[^(){ \x00-\x1f\x7f%*\"\\\]\x80-\xff]+")
# ASTRING-CHAR is ATOM-CHAR plus "]"; 8-bit octets are taken too (clients
# send raw UTF-8 names; they are then checked as UTF-8 / modified UTF-7).
_ASTRING: Final = re.compile(rb"[^(){ \x00-\x1f\x7f%*\"\\]+")
_LIST_CHARS: Final = re.compile(rb"[^(){ \x00-\x1f\x7f\"\\]+")  # + % * ]
_NUMBER: Final = re.compile(rb"[0-9]+")
_SEQSET: Final = re.compile(rb"[0-9*:,$]+")
_DATE_CHARS: Final = re.compile(rb"[0-9A-Za-z-]+")
_MAX_NUMBER: Final = 0xFFFFFFFF  # RFC 9051 §9 number
_MAX_NUMBER64: Final = 0x7FFFFFFFFFFFFFFF  # RFC 9051 §9 number64 (RFC 7162 mod-sequence)

MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # fmt: skip
_MONTH_INDEX: Final = {m.upper(): i + 1 for i, m in enumerate(MONTHS)}
_DATE_TEXT: Final = re.compile(r"(\d{1,2})-([A-Za-z]{3})-(\d{4})\Z")
_DATE_TIME: Final = re.compile(
    r"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\Z"
)

# RFC 9051 §2.3.2: system flags are case-insensitive; we answer with these spellings.
SYSTEM_FLAGS: Final = {
    f.upper(): f for f in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "\\Recent")
}


def is_atom(text: str) -> bool:
    return _ATOM.fullmatch(text.encode("utf-8", "surrogatepass")) is not None


def decode_text(raw: bytes, what: str) -> str:
    """Client octets as text: UTF-8, or BAD (RFC 9051 §4.3: strings are UTF-8)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError(f"invalid UTF-8 in {what}") from None


class Cursor:
    """Position in ``texts[0] literal[0] texts[1] … texts[n]``."""

    def __init__(
        self, texts: Sequence[bytes], literals: Sequence[bytes], *, utf8: bool, start: int = 0
    ) -> None:
        if len(texts) != len(literals) + 1:
            raise ValueError("one more text than literals")
        self._texts = texts
        self._literals = literals
        self._index = 0
        self._pos = start
        self.utf8 = utf8  # UTF8=ACCEPT / IMAP4rev2: mailbox names are UTF-8

    # -- low level -------------------------------------------------------------------

    @property
    def _text(self) -> bytes:
        return self._texts[self._index]

    def peek(self) -> int | None:
        """The next octet of the current text (None at its end)."""
        text = self._text
        return text[self._pos] if self._pos < len(text) else None

    def peek_at(self, offset: int) -> int | None:
        """The octet ``offset`` places ahead in the current text."""
        pos = self._pos + offset
        text = self._text
        return text[pos] if pos < len(text) else None

    def peek_match(self, pattern: re.Pattern[bytes]) -> bytes | None:
        """What ``pattern`` matches at the position, without consuming it."""
        match = pattern.match(self._text, self._pos)
        return match.group() if match else None

    def at_literal(self) -> bool:
        return self._pos >= len(self._text) and self._index < len(self._literals)

    def at_end(self) -> bool:
        return self._pos >= len(self._text) and self._index == len(self._literals)

    def end(self) -> None:
        if not self.at_end():
            raise CommandError("unexpected extra arguments")

    def lookahead(self, word: bytes) -> bool:
        """True if the current text continues with ``word`` (case-insensitive)."""
        end = self._pos + len(word)
        return self._text[self._pos : end].upper() == word

    def take(self, word: bytes) -> bool:
        if self.lookahead(word):
            self._pos += len(word)
            return True
        return False

    def expect(self, word: bytes, what: str | None = None) -> None:
        if not self.take(word):
            raise CommandError(f"expected {what or word.decode('ascii')}")

    def sp(self) -> None:
        if self.peek() != 0x20:
            raise CommandError("expected SP" if not self.at_end() else "missing argument")
        self._pos += 1

    def more(self, what: str) -> bool:
        """Inside a parenthesised list: False at its ")", else the SP before
        the next element (BAD naming the list when the command ends first)."""
        if self.take(b")"):
            return False
        if self.at_end():
            raise CommandError(f"missing ) after {what}")
        self.sp()
        return True

    def maybe_sp(self) -> bool:
        if self.peek() == 0x20:
            self._pos += 1
            return True
        return False

    def _match(self, pattern: re.Pattern[bytes]) -> bytes | None:
        match = pattern.match(self._text, self._pos)
        if match is None:
            return None
        self._pos = match.end()
        return match.group()

    # -- tokens -----------------------------------------------------------------------

    def atom(self, what: str = "atom") -> str:
        raw = self._match(_ATOM)
        if raw is None:
            raise CommandError(f"expected {what}")
        return raw.decode("ascii")

    def number(self, what: str = "number", *, wide: bool = False, nonzero: bool = False) -> int:
        raw = self._match(_NUMBER)
        if raw is None or len(raw) > 20:
            raise CommandError(f"expected {what}")
        value = int(raw)
        if value > (_MAX_NUMBER64 if wide else _MAX_NUMBER) or (nonzero and value == 0):
            raise CommandError(f"{what} out of range")
        return value

    def sequence_set(self, *, saved: bool = False) -> SequenceSet:
        raw = self._match(_SEQSET)
        if raw is None:
            raise CommandError("expected sequence set")
        text = raw.decode("ascii")
        if text == "$" and not saved:
            raise CommandError("saved search results ($) are not available")
        try:
            return SequenceSet.parse(text)
        except ValueError:
            raise CommandError(f"invalid sequence set {text!r}") from None

    def literal(self) -> bytes:
        if not self.at_literal():
            raise CommandError("expected literal")
        data = self._literals[self._index]
        self._index += 1
        self._pos = 0
        return data

    def quoted(self) -> bytes:
        """RFC 9051 §9 quoted: ``\\`` escapes only ``"`` and ``\\``; no CR/LF."""
        text = self._text
        if self.peek() != 0x22:
            raise CommandError("expected quoted string")
        out = bytearray()
        pos = self._pos + 1
        while pos < len(text):
            ch = text[pos]
            if ch == 0x22:
                self._pos = pos + 1
                return bytes(out)
            if ch == 0x5C:
                pos += 1
                if pos >= len(text) or text[pos] not in b'"\\':
                    raise CommandError("invalid escape in quoted string")
                ch = text[pos]
            elif ch == 0 or ch == 0x0D or ch == 0x0A:
                raise CommandError("invalid character in quoted string")
            out.append(ch)
            pos += 1
        raise CommandError("unterminated quoted string")

    def string(self, what: str = "string") -> bytes:
        if self.at_literal():
            return self.literal()
        if self.peek() == 0x22:
            return self.quoted()
        raise CommandError(f"expected {what}")

    def astring(self, what: str = "string") -> bytes:
        if self.at_literal() or self.peek() == 0x22:
            return self.string(what)
        raw = self._match(_ASTRING)
        if raw is None:
            raise CommandError(f"expected {what}")
        return raw

    def nstring(self, what: str = "string") -> bytes | None:
        if self.take(b"NIL"):
            return None
        return self.string(what)

    def text(self, what: str = "string") -> str:
        """An astring decoded as UTF-8."""
        return decode_text(self.astring(what), what)

    # -- composite elements ---------------------------------------------------------

    def mailbox(self) -> str:
        """RFC 9051 §9 mailbox: INBOX in any case is INBOX (RFC 9051 §5.1)."""
        return self._name(self.astring("mailbox name"))

    def list_mailbox(self) -> str:
        """RFC 9051 §9 list-mailbox: a string, or list-chars with wildcards."""
        if self.at_literal() or self.peek() == 0x22:
            raw = self.string("mailbox pattern")
        else:
            raw = self._match(_LIST_CHARS) or b""
            if not raw:
                raise CommandError("expected mailbox pattern")
        return self._decode_name(raw, pattern=True)

    def reference(self) -> str:
        """A LIST/LSUB reference name: a mailbox name, not case-folded."""
        return self._decode_name(self.astring("reference name"), pattern=False)

    def remaining(self) -> bytes | None:
        """The rest of the last text, or None while a literal is still ahead."""
        if self._index != len(self._literals):
            return None
        return self._text[self._pos :]

    def _name(self, raw: bytes) -> str:
        name = self._decode_name(raw, pattern=False)
        return "INBOX" if name.upper() == "INBOX" else name

    def _decode_name(self, raw: bytes, *, pattern: bool) -> str:
        what = "mailbox pattern" if pattern else "mailbox name"
        text = decode_text(raw, what)
        if self.utf8:
            return text
        try:
            # RFC 3501 §5.1.3: without UTF8=ACCEPT names travel in modified UTF-7.
            return decode_mailbox(text)
        except ValueError as exc:
            raise CommandError(f"{what} is not modified UTF-7: {exc}", Status.NO) from None

    def flag(self, *, recent_ok: bool = False) -> str:
        """RFC 9051 §9 flag: a system flag, ``\\`` atom, or a keyword atom."""
        if self.take(b"\\"):
            if self.take(b"*"):
                raise CommandError("\\* is not a flag")
            name = "\\" + self.atom("flag")
            canonical = SYSTEM_FLAGS.get(name.upper(), name)
            if canonical == "\\Recent" and not recent_ok:
                # RFC 3501 §2.3.2: \Recent cannot be set or cleared by the client.
                raise CommandError("\\Recent cannot be stored")
            return canonical
        return self.atom("flag")

    def flag_list(self) -> tuple[str, ...]:
        self.expect(b"(", "flag list")
        flags: list[str] = []
        if not self.take(b")"):
            flags.append(self.flag())
            while self.more("flags"):
                flags.append(self.flag())
        return tuple(dict.fromkeys(flags))

    def search_date(self) -> date:
        """RFC 9051 §9 date: date-text, optionally quoted."""
        quoted = self.take(b'"')
        raw = self._match(_DATE_CHARS) or b""
        if quoted:
            self.expect(b'"', "closing quote")
        match = _DATE_TEXT.match(raw.decode("ascii"))
        month = _MONTH_INDEX.get(match.group(2).upper(), 0) if match else 0
        if match is None or not month:
            raise CommandError("invalid date")
        try:
            return date(int(match.group(3)), month, int(match.group(1)))
        except ValueError:
            raise CommandError("invalid date") from None

    def date_time(self) -> datetime:
        """RFC 9051 §9 date-time: ``"dd-Mon-yyyy hh:mm:ss +zzzz"`` (APPEND)."""
        raw = self.quoted().decode("ascii", "replace")
        match = _DATE_TIME.match(raw)
        month = _MONTH_INDEX.get(match.group(2).upper(), 0) if match else 0
        if match is None or not month:
            raise CommandError("invalid date-time")
        day, _, year, hh, mm, ss, sign, zh, zm = match.groups()
        offset = timedelta(hours=int(zh), minutes=int(zm))
        if offset >= timedelta(hours=24):
            raise CommandError("invalid date-time zone")
        try:
            zone = timezone(-offset if sign == "-" else offset)
            return datetime(int(year), month, int(day), int(hh), int(mm), int(ss), tzinfo=zone)
        except ValueError:
            raise CommandError("invalid date-time") from None

    def paren_list(self, what: str) -> list[str]:
        """``"(" [atom *(SP atom)] ")"``, upper-cased (option lists)."""
        self.expect(b"(", f"( before {what}")
        items: list[str] = []
        if self.take(b")"):
            return items
        items.append(self.atom(what).upper())
        while self.more(what):
            items.append(self.atom(what).upper())
        return items
