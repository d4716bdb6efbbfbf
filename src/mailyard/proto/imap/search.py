"""SEARCH criteria (RFC 9051 §6.4.4, RFC 3501 §6.4.4, RFC 7162 MODSEQ,
RFC 5182 ``$``) as a tree of frozen values, and their parser; also the
ESEARCH return options (RFC 4731) and SORT criteria (RFC 5256).

The tree uses few node types so the adapter's evaluator stays small:
flag tests (system flags and keywords alike; NEW is RECENT AND UNSEEN),
text tests (BCC/CC/FROM/TO/SUBJECT/BODY/TEXT and HEADER), date, size,
sequence/UID set and MODSEQ tests, combined with ``And``/``Or``/``Not``.
Recursion is bounded (``max_depth``), so a client cannot nest its way to a
stack overflow.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date
from typing import Final, TypeAlias

from mailyard.proto.imap.errors import CommandError
from mailyard.proto.imap.lexer import Cursor, decode_text
from mailyard.proto.imap.sequence import SequenceSet

__all__ = [
    "And",
    "DateKey",
    "DateWhich",
    "FlagKey",
    "HeaderKey",
    "ModSeqKey",
    "Not",
    "Or",
    "ReturnOption",
    "SearchKey",
    "SequenceKey",
    "SizeKey",
    "SortCriterion",
    "SortKey",
    "TextKey",
    "TextWhere",
    "parse_return_options",
    "parse_search",
    "parse_sort_criteria",
]


@dataclass(frozen=True, slots=True)
class FlagKey:
    """A flag (``\\Seen`` …, ``\\Recent``, or a keyword) is set / not set."""

    flag: str
    present: bool = True


class TextWhere(enum.Enum):
    BCC = "BCC"
    CC = "CC"
    FROM = "FROM"
    TO = "TO"
    SUBJECT = "SUBJECT"
    BODY = "BODY"
    TEXT = "TEXT"  # header and body


@dataclass(frozen=True, slots=True)
class TextKey:
    """Case-insensitive substring (RFC 9051 §6.4.4) in a part of the message."""

    where: TextWhere
    value: str


@dataclass(frozen=True, slots=True)
class HeaderKey:
    """``HEADER field value``: an empty value matches any message having the field."""

    field: str  # upper-cased
    value: str


class DateWhich(enum.Enum):
    INTERNAL = "INTERNAL"  # BEFORE / ON / SINCE: the internal date
    SENT = "SENT"  # SENTBEFORE / SENTON / SENTSINCE: the Date: header


@dataclass(frozen=True, slots=True)
class DateKey:
    """Dates compare by day only, ignoring time and zone (RFC 9051 §6.4.4)."""

    which: DateWhich
    relation: str  # "BEFORE" | "ON" | "SINCE"
    day: date


@dataclass(frozen=True, slots=True)
class SizeKey:
    larger: bool  # LARGER n (size > n) or SMALLER n (size < n)
    size: int


@dataclass(frozen=True, slots=True)
class SequenceKey:
    """Message numbers (``uid`` False) or UIDs; ``numbers.saved`` is ``$``."""

    numbers: SequenceSet
    uid: bool = False


@dataclass(frozen=True, slots=True)
class ModSeqKey:
    """RFC 7162 §3.1.5: messages whose mod-sequence is >= ``modseq``
    (the optional entry name and type are accepted and recorded)."""

    modseq: int
    entry: str | None = None
    entry_type: str | None = None


@dataclass(frozen=True, slots=True)
class Not:
    key: SearchKey


@dataclass(frozen=True, slots=True)
class Or:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class And:
    """All of ``keys``; ``And(())`` is ALL."""

    keys: tuple[SearchKey, ...] = ()


SearchKey: TypeAlias = (
    FlagKey | TextKey | HeaderKey | DateKey | SizeKey | SequenceKey | ModSeqKey | Not | Or | And
)


class ReturnOption(enum.Enum):
    """RFC 4731 §3.1 (and RFC 5182 SAVE)."""

    MIN = "MIN"
    MAX = "MAX"
    ALL = "ALL"
    COUNT = "COUNT"
    SAVE = "SAVE"


class SortKey(enum.Enum):
    """RFC 5256 §3 sort keys."""

    ARRIVAL = "ARRIVAL"
    CC = "CC"
    DATE = "DATE"
    FROM = "FROM"
    SIZE = "SIZE"
    SUBJECT = "SUBJECT"
    TO = "TO"


@dataclass(frozen=True, slots=True)
class SortCriterion:
    key: SortKey
    reverse: bool = False


_FLAG_KEYS: Final = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "RECENT": ("\\Recent", True),
    "OLD": ("\\Recent", False),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_TEXT_KEYS: Final = {w.value: w for w in TextWhere}
_DATE_KEYS: Final = {
    "BEFORE": (DateWhich.INTERNAL, "BEFORE"),
    "ON": (DateWhich.INTERNAL, "ON"),
    "SINCE": (DateWhich.INTERNAL, "SINCE"),
    "SENTBEFORE": (DateWhich.SENT, "BEFORE"),
    "SENTON": (DateWhich.SENT, "ON"),
    "SENTSINCE": (DateWhich.SENT, "SINCE"),
}
_KEY_WORD: Final = re.compile(rb"[A-Za-z]+")
_ENTRY_TYPES: Final = frozenset({"PRIV", "SHARED", "ALL"})


class _SearchParser:
    def __init__(self, cur: Cursor, *, max_depth: int, saved: bool) -> None:
        self.cur = cur
        self.max_depth = max_depth
        self.saved = saved  # RFC 5182 "$" is offered
        self.uses_modseq = False  # RFC 7162 §3.1: a CONDSTORE enabling search

    def keys(self, depth: int) -> SearchKey:
        """1*(SP search-key) up to the end or ")" — the caller consumed the first SP."""
        keys = [self.key(depth)]
        while self.cur.maybe_sp():
            keys.append(self.key(depth))
        return keys[0] if len(keys) == 1 else And(tuple(keys))

    def key(self, depth: int) -> SearchKey:
        if depth > self.max_depth:
            raise CommandError("search criteria nested too deeply")
        cur = self.cur
        if cur.take(b"("):
            inner = [self.key(depth + 1)]
            while cur.more("search keys"):
                inner.append(self.key(depth + 1))
            return inner[0] if len(inner) == 1 else And(tuple(inner))
        octet = cur.peek()
        if octet is not None and (0x30 <= octet <= 0x39 or octet in b"*$"):
            return SequenceKey(cur.sequence_set(saved=self.saved))
        word = (cur.peek_match(_KEY_WORD) or b"").decode("ascii").upper()
        cur.take(word.encode())
        return self._word(word, depth)

    def _word(self, word: str, depth: int) -> SearchKey:
        cur = self.cur
        if word == "ALL":
            return And(())
        if word == "NEW":
            return And((FlagKey("\\Recent"), FlagKey("\\Seen", False)))
        if word in _FLAG_KEYS:
            flag, present = _FLAG_KEYS[word]
            return FlagKey(flag, present)
        if word in ("KEYWORD", "UNKEYWORD"):
            cur.sp()
            return FlagKey(cur.atom("keyword"), word == "KEYWORD")
        if word in _TEXT_KEYS:
            cur.sp()
            return TextKey(_TEXT_KEYS[word], cur.text("search string"))
        if word == "HEADER":
            cur.sp()
            name = decode_text(cur.astring("header field name"), "header field name").upper()
            cur.sp()
            return HeaderKey(name, cur.text("search string"))
        if word in _DATE_KEYS:
            which, relation = _DATE_KEYS[word]
            cur.sp()
            return DateKey(which, relation, cur.search_date())
        if word in ("LARGER", "SMALLER"):
            cur.sp()
            return SizeKey(word == "LARGER", cur.number("size", wide=True))
        if word == "UID":
            cur.sp()
            return SequenceKey(cur.sequence_set(saved=self.saved), uid=True)
        if word == "NOT":
            cur.sp()
            return Not(self.key(depth + 1))
        if word == "OR":
            cur.sp()
            left = self.key(depth + 1)
            cur.sp()
            return Or(left, self.key(depth + 1))
        if word == "MODSEQ":
            return self._modseq()
        raise CommandError(f"unknown search key {word}" if word else "expected search key")

    def _modseq(self) -> ModSeqKey:
        """RFC 7162 §3.1.5: MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer."""
        cur = self.cur
        cur.sp()
        self.uses_modseq = True
        entry = entry_type = None
        if cur.peek() == 0x22:
            entry = decode_text(cur.quoted(), "entry name")
            cur.sp()
            entry_type = cur.atom("entry type").upper()
            if entry_type not in _ENTRY_TYPES:
                raise CommandError("invalid MODSEQ entry type")
            cur.sp()
        return ModSeqKey(cur.number("mod-sequence", wide=True), entry, entry_type)


def parse_search(cur: Cursor, *, max_depth: int, saved: bool) -> tuple[SearchKey, bool]:
    """Search keys to the end of the command: the tree, and whether a
    MODSEQ key made it a CONDSTORE enabling command."""
    parser = _SearchParser(cur, max_depth=max_depth, saved=saved)
    tree = parser.keys(0)
    cur.end()
    return tree, parser.uses_modseq


def parse_return_options(cur: Cursor, *, save: bool) -> frozenset[ReturnOption]:
    """RFC 4731 §3.1 ``RETURN (…)``; an empty list means ALL."""
    options: set[ReturnOption] = set()
    for word in cur.paren_list("search return option"):
        try:
            option = ReturnOption(word)
        except ValueError:
            raise CommandError(f"unknown search return option {word}") from None
        if option is ReturnOption.SAVE and not save:
            raise CommandError("RETURN (SAVE) is not available")
        options.add(option)
    return frozenset(options or {ReturnOption.ALL})


def parse_sort_criteria(cur: Cursor) -> tuple[SortCriterion, ...]:
    """RFC 5256 §3: "(" ["REVERSE" SP] sort-key *(SP …) ")"."""
    words = cur.paren_list("sort criterion")
    out: list[SortCriterion] = []
    reverse = False
    for word in words:
        if word == "REVERSE" and not reverse:
            reverse = True
            continue
        try:
            out.append(SortCriterion(SortKey(word), reverse))
        except ValueError:
            raise CommandError(f"unknown sort criterion {word}") from None
        reverse = False
    if reverse or not out:
        raise CommandError("incomplete sort criteria")
    return tuple(out)
