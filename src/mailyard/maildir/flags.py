"""Message flags: the ``:2,`` letters, IMAP flag names, and the keywords file (pure).

Maildir spec: the info ``:2,<letters>`` holds the flags, letters in ASCII
order. The system letters and their IMAP names (RFC 3501 §2.3.2):

====== ============== =====
letter IMAP           bit
====== ============== =====
D      ``\\Draft``     0
F      ``\\Flagged``   1
P      ``$Forwarded``  2  (maildir "passed"; RFC 5788's keyword for it)
R      ``\\Answered``  3
S      ``\\Seen``      4
T      ``\\Deleted``   5
====== ============== =====

Keywords take the letters ``a``-``z`` (bits 6-31), each mapped to a name by
the folder's keywords file, Dovecot's format: ``<index> <keyword>`` per
line, index 0 for ``a``. So one 32-bit integer holds all the flags of a
message, and the index stores them as an ``array('I')``. Other letters a
file name carries are not ours: they are kept when the file is renamed.
``\\Recent`` is not stored at all (RFC 3501 §2.3.2: it is per session).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from mailyard.maildir.errors import KeywordLimit, StoreError

__all__ = [
    "ANSWERED",
    "DELETED",
    "DRAFT",
    "FLAGGED",
    "FORWARDED",
    "MAX_KEYWORDS",
    "SEEN",
    "SYSTEM_MASK",
    "KeywordTable",
    "bits_from_info",
    "info_from_bits",
    "parse_keywords",
    "valid_keyword",
]

DRAFT: Final = 1 << 0
FLAGGED: Final = 1 << 1
FORWARDED: Final = 1 << 2
ANSWERED: Final = 1 << 3
SEEN: Final = 1 << 4
DELETED: Final = 1 << 5
SYSTEM_MASK: Final = 0x3F
MAX_KEYWORDS: Final = 26
_KEYWORD_SHIFT: Final = 6

_SYSTEM_LETTERS: Final = "DFPRST"
_LETTER_BIT: Final = {
    **{letter: 1 << i for i, letter in enumerate(_SYSTEM_LETTERS)},
    **{chr(ord("a") + i): 1 << (_KEYWORD_SHIFT + i) for i in range(MAX_KEYWORDS)},
}
_BIT_LETTER: Final = tuple(sorted(_LETTER_BIT, key=lambda letter: _LETTER_BIT[letter]))

# The names clients see, in the order FETCH FLAGS lists them.
_SYSTEM_NAMES: Final = (
    ("\\Seen", SEEN),
    ("\\Answered", ANSWERED),
    ("\\Flagged", FLAGGED),
    ("\\Deleted", DELETED),
    ("\\Draft", DRAFT),
)
_FORWARDED_NAME: Final = "$Forwarded"
_SYSTEM_BY_KEY: Final = {name.lower(): bit for name, bit in _SYSTEM_NAMES}
_RECENT: Final = "\\recent"

# RFC 3501 §9: flag-keyword = atom; ATOM-CHAR excludes "(){ %*\"\\]" and CTLs.
_ATOM: Final = re.compile(r"[!#$&'+-\[^-z|}~]+")
_MAX_KEYWORD_LEN: Final = 100


def bits_from_info(info: str) -> int:
    """The flag bits of the letters after ``:2,`` (unknown letters ignored)."""
    bits = 0
    for letter in info:
        bits |= _LETTER_BIT.get(letter, 0)
    return bits


def info_from_bits(bits: int, keep: str = "") -> str:
    """The letters for ``bits``, plus the letters of ``keep`` that are not ours, sorted."""
    letters = {letter for i, letter in enumerate(_BIT_LETTER) if bits >> i & 1}
    letters.update(ch for ch in keep if ch not in _LETTER_BIT)
    return "".join(sorted(letters))


def valid_keyword(name: str) -> bool:
    """An IMAP flag-keyword (an atom) that is not a system flag."""
    return (
        len(name) <= _MAX_KEYWORD_LEN
        and _ATOM.fullmatch(name) is not None
        and not name.startswith("\\")
    )


def parse_keywords(data: bytes) -> dict[int, str]:
    """Index -> keyword from a keywords file; bad, out-of-range and repeated lines dropped."""
    table: dict[int, str] = {}
    seen: set[str] = set()
    for line in data.decode("utf-8", "replace").split("\n"):
        number, _, name = line.rstrip("\r").partition(" ")
        if not number.isdigit() or not valid_keyword(name):
            continue
        index = int(number)
        if index >= MAX_KEYWORDS or index in table or name.lower() in seen:
            continue
        table[index] = name
        seen.add(name.lower())
    return table


@dataclass(frozen=True, slots=True)
class KeywordTable:
    """A folder's keyword letters: ``names[i]`` is the keyword of letter ``a + i``."""

    names: tuple[str | None, ...] = (None,) * MAX_KEYWORDS

    @classmethod
    def from_mapping(cls, table: dict[int, str]) -> KeywordTable:
        return cls(tuple(table.get(i) for i in range(MAX_KEYWORDS)))

    def encode(self) -> bytes:
        lines = [f"{i} {name}\n" for i, name in enumerate(self.names) if name is not None]
        return "".join(lines).encode("utf-8")

    def index(self, keyword: str) -> int | None:
        # RFC 3501 §2.3.2: flags are case-insensitive.
        key = keyword.lower()
        for i, name in enumerate(self.names):
            if name is not None and name.lower() == key:
                return i
        return None

    def with_keywords(self, keywords: Iterable[str]) -> KeywordTable:
        """This table with letters given to the keywords it lacks (KeywordLimit if full)."""
        names = list(self.names)
        table = self
        for keyword in keywords:
            if keyword.lower() == _FORWARDED_NAME.lower() or table.index(keyword) is not None:
                continue
            if not valid_keyword(keyword):
                raise StoreError(f"invalid keyword {keyword!r}")
            try:
                free = names.index(None)
            except ValueError:
                raise KeywordLimit("no more keywords can be created in this mailbox") from None
            names[free] = keyword
            table = KeywordTable(tuple(names))
        return table

    def bits(self, flag_names: Iterable[str]) -> int:
        """The bits of IMAP flag names; keywords without a letter are skipped.

        ``\\Recent`` is skipped (it cannot be stored); another unknown
        ``\\`` flag is a StoreError.
        """
        bits = 0
        for name in flag_names:
            key = name.lower()
            if key in _SYSTEM_BY_KEY:
                bits |= _SYSTEM_BY_KEY[key]
            elif key == _RECENT:
                continue
            elif name.startswith("\\"):
                raise StoreError(f"unknown system flag {name}")
            elif key == _FORWARDED_NAME.lower():
                bits |= FORWARDED
            else:
                index = self.index(name)
                if index is not None:
                    bits |= 1 << (_KEYWORD_SHIFT + index)
        return bits

    def flag_names(self, bits: int) -> tuple[str, ...]:
        """The IMAP names of ``bits``: system flags, then keywords with a name."""
        out = [name for name, bit in _SYSTEM_NAMES if bits & bit]
        if bits & FORWARDED:
            out.append(_FORWARDED_NAME)
        for i, name in enumerate(self.names):
            if name is not None and bits >> (_KEYWORD_SHIFT + i) & 1:
                out.append(name)
        return tuple(out)

    def defined(self) -> tuple[str, ...]:
        """Every flag name this folder knows, for the FLAGS response (RFC 3501 §7.2.6)."""
        keywords = [name for name in self.names if name is not None]
        return (*(name for name, _ in _SYSTEM_NAMES), _FORWARDED_NAME, *keywords)

    @property
    def full(self) -> bool:
        return None not in self.names
