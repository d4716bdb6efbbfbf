"""Base subject (RFC 5256 §2.1) and the string collation of SORT/THREAD.

Pure. ``base_subject(raw)`` runs the extraction procedure of RFC 5256 §2.1
step by step on a raw Subject: field value and also reports whether the
subject marks a reply or forward (§3, REFERENCES: a subj-refwd, a
"(fwd)" trailer or a "[fwd: …]" wrapper was removed), which THREAD needs.

``collation_key(text)`` maps a string to a key whose ordinary ``str``
ordering and equality are those of i;unicode-casemap (RFC 5051 §2: each
character to its titlecase form, then decomposed), the collation RFC 5256
§7 requires through I18NLEVEL=1. Python's comparison of the resulting
code points equals the RFC's comparison of their UTF-8 octets.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from mailyard.message.encoded import decode_words

__all__ = ["BaseSubject", "base_subject", "collation_key"]

# RFC 5256 §5. After step (1) the only white space left is SP.
# subj-blob = "[" *BLOBCHAR "]" *WSP ; BLOBCHAR is any CHAR8 but "[" and "]"
_BLOB: Final = r"\[[^\[\]\x00]*\] *"
# subj-leader = (*subj-blob subj-refwd) / WSP
# subj-refwd  = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
_LEADER: Final = re.compile(rf"(?:{_BLOB})*(?:re|fwd?) *(?:{_BLOB})?:| ", re.IGNORECASE | re.ASCII)
_LEADING_BLOB: Final = re.compile(_BLOB)
# subj-trailer = "(fwd)" / WSP
_TRAILER: Final = re.compile(r"(?:\(fwd\)| )\Z", re.IGNORECASE | re.ASCII)
_SPACES: Final = re.compile(r" {2,}")
_FWD_HEADER: Final = "[fwd:"  # subj-fwd-hdr
_FWD_TRAILER: Final = "]"  # subj-fwd-trl


@dataclass(frozen=True, slots=True)
class BaseSubject:
    text: str
    is_reply: bool


def _strip_trailers(text: str) -> tuple[str, bool]:
    """Step (2): remove subj-trailer text until none is left."""
    forwarded = False
    while True:
        match = _TRAILER.search(text)
        if match is None:
            return text, forwarded
        forwarded = forwarded or match.group(0) != " "
        text = text[: match.start()]


def _strip_leaders(text: str) -> tuple[str, bool]:
    """Steps (3) to (5): leaders, then one blob if text remains after it."""
    replied = False
    while True:
        changed = False
        while (match := _LEADER.match(text)) is not None:
            replied = replied or match.group(0) != " "
            text = text[match.end() :]
            changed = True
        blob = _LEADING_BLOB.match(text)
        if blob is not None and blob.end() < len(text):
            text = text[blob.end() :]
            changed = True
        if not changed:
            return text, replied


def base_subject(raw: bytes | None) -> BaseSubject:
    """RFC 5256 §2.1 base subject of a raw Subject: value (None: empty)."""
    # Step (1): decode encoded words; tabs and line breaks become spaces,
    # runs of spaces one space.
    text = decode_words(raw) if raw else ""
    text = _SPACES.sub(" ", text.replace("\t", " ").replace("\r", " ").replace("\n", " "))
    reply = False
    while True:
        text, forwarded = _strip_trailers(text)
        text, replied = _strip_leaders(text)
        reply = reply or forwarded or replied
        # Step (6): "[fwd: subject]" is unwrapped, then again from step (2).
        if text[: len(_FWD_HEADER)].lower() == _FWD_HEADER and text.endswith(_FWD_TRAILER):
            text = text[len(_FWD_HEADER) : -len(_FWD_TRAILER)]
            reply = True
            continue
        return BaseSubject(text, reply)


class _TitleTable(dict[int, str]):
    """``str.translate`` table to simple titlecase, filled on first use.

    RFC 5051 uses the simple (one code point) titlecase mapping; Python
    exposes the full one, so a mapping that expands keeps the character.
    Only the alphabets below U+3000 are remembered, so a hostile mailbox
    cannot grow the table without bound.
    """

    def __missing__(self, code: int) -> str:
        char = chr(code)
        mapped = char.title()
        result = mapped if len(mapped) == 1 else char
        if code < 0x3000:
            self[code] = result
        return result


_TITLE: Final = _TitleTable()


def collation_key(text: str) -> str:
    """i;unicode-casemap key of ``text`` (RFC 5051 §2)."""
    if text.isascii():
        return text.upper()  # ASCII titlecase is uppercase; nothing decomposes
    return unicodedata.normalize("NFKD", text.translate(_TITLE))
