"""Folder names: the API form, the Maildir++ directory form, and the root's small files (pure).

At the API a folder name is a UTF-8 ``str`` with ``/`` between hierarchy
levels (DESIGN §4); ``INBOX`` (any case, RFC 3501 §5.1) is the Maildir root.
On disk (Maildir++, the Courier and Dovecot layout) folder ``A/B`` is the
directory ``.A.B`` of the root: each level in IMAP modified UTF-7, with a
``.`` inside a level encoded too, since ``.`` separates levels on disk.

Every name is checked before it comes near a path: anything that could
climb out of the Maildir or break its layout raises ``FolderNameError``
with the reason the client is told. Reading directory names other tools
wrote is tolerant (``name_from_dirname`` returns None for what is not a
folder), so a strange directory is skipped, never fatal.

The root also holds ``subscriptions`` (RFC 3501 §6.3.6: one name per line)
and ``mailyard-specialuse`` (RFC 6154 attributes: ``\\Sent Sent``); their
parsers here drop what they cannot read.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Final

from mailyard.maildir import mutf7
from mailyard.maildir.errors import FolderNameError

__all__ = [
    "DELIMITER",
    "INBOX",
    "MAX_DEPTH",
    "MAX_LEVEL",
    "SPECIAL_USE",
    "ancestors",
    "canonical",
    "dirname_for",
    "format_special_use",
    "format_subscriptions",
    "is_inbox",
    "is_trash",
    "levels",
    "name_from_dirname",
    "parse_special_use",
    "parse_subscriptions",
    "special_use_attribute",
]

DELIMITER: Final = "/"
INBOX: Final = "INBOX"
# Limits: a level a person would type, a depth no client needs; the whole
# directory name must also fit the filesystem's 255 octets.
MAX_LEVEL: Final = 200
MAX_DEPTH: Final = 32
_MAX_DIRNAME: Final = 255
_DISK_SEPARATOR: Final = "."
# RFC 3501 §6.3.8: "*" and "%" are LIST wildcards; a name holding them
# could never be listed on its own.
_WILDCARDS: Final = frozenset("*%")

# RFC 6154 §2: the special-use attributes.
SPECIAL_USE: Final = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
_SPECIAL_BY_KEY: Final = {attr.lower(): attr for attr in SPECIAL_USE}
_TRASH: Final = "Trash"


def _check_level(level: str) -> None:
    if not level:
        raise FolderNameError("empty hierarchy level in mailbox name")
    if level in {".", ".."}:
        raise FolderNameError("'.' and '..' are not allowed as hierarchy levels")
    if len(level) > MAX_LEVEL:
        raise FolderNameError("hierarchy level too long")
    for ch in level:
        kind = unicodedata.category(ch)
        if kind == "Cc":
            raise FolderNameError("control character in mailbox name")
        if kind == "Cs":
            raise FolderNameError("invalid character in mailbox name")
        if ch in _WILDCARDS:
            raise FolderNameError("'*' and '%' are not allowed in mailbox names")


def levels(name: str) -> tuple[str, ...]:
    """The checked hierarchy levels of ``name``; ``INBOX`` first is uppercased."""
    if not name:
        raise FolderNameError("empty mailbox name")
    if name.startswith(DELIMITER):
        raise FolderNameError("mailbox name starts with the hierarchy delimiter")
    parts = tuple(name.split(DELIMITER))
    if len(parts) > MAX_DEPTH:
        raise FolderNameError("too many hierarchy levels")
    for part in parts:
        _check_level(part)
    if parts[0].upper() == INBOX:
        # RFC 3501 §5.1: INBOX is case-insensitive, and so is the INBOX
        # level of its inferiors' names.
        parts = (INBOX, *parts[1:])
    if sum(len(_encode_level(p)) + 1 for p in parts) > _MAX_DIRNAME:
        raise FolderNameError("mailbox name too long")
    return parts


def canonical(name: str) -> str:
    """``name`` checked, with an INBOX level uppercased."""
    return DELIMITER.join(levels(name))


def is_inbox(name: str) -> bool:
    return name.upper() == INBOX


def is_trash(name: str) -> bool:
    """Trash and its inferiors, which Courier's quota does not count."""
    return name == _TRASH or name.startswith(_TRASH + DELIMITER)


def ancestors(name: str) -> list[str]:
    """The names above ``name``, outermost first (``A/B/C`` -> ``A``, ``A/B``)."""
    parts = name.split(DELIMITER)
    return [DELIMITER.join(parts[:i]) for i in range(1, len(parts))]


def _encode_level(level: str) -> str:
    return mutf7.encode(level, force=_DISK_SEPARATOR)


def dirname_for(name: str) -> str:
    """The root's entry for ``name``: ``.A.B``; the empty string for INBOX itself."""
    parts = levels(name)
    if parts == (INBOX,):
        return ""
    return _DISK_SEPARATOR + _DISK_SEPARATOR.join(_encode_level(p) for p in parts)


def name_from_dirname(dirname: str) -> str | None:
    """The folder name of a root entry, or None if it is not one (tolerant)."""
    if len(dirname) < 2 or not dirname.startswith(_DISK_SEPARATOR):
        return None
    parts = [mutf7.decode(p) for p in dirname[1:].split(_DISK_SEPARATOR)]
    # A decoded "/" would make one level look like two: not a name we made.
    if any(not part or DELIMITER in part for part in parts):
        return None
    try:
        checked = levels(DELIMITER.join(parts))
    except FolderNameError:
        return None
    if checked == (INBOX,):
        return None
    return DELIMITER.join(checked)


def special_use_attribute(attr: str) -> str:
    """The RFC 6154 spelling of ``attr`` (case-insensitive), or FolderNameError."""
    found = _SPECIAL_BY_KEY.get(attr.lower())
    if found is None:
        raise FolderNameError(f"unknown special-use attribute {attr!r}")
    return found


def _decode_lines(data: bytes) -> list[str]:
    """The lines that are UTF-8 (a line that is not cannot be a name we wrote)."""
    lines: list[str] = []
    for raw in data.split(b"\n"):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            continue
    return lines


def _valid(name: str) -> str | None:
    try:
        return canonical(name)
    except FolderNameError:
        return None


def parse_subscriptions(data: bytes) -> list[str]:
    """Subscribed names in file order, without duplicates; bad lines are dropped."""
    seen: dict[str, None] = {}
    for line in _decode_lines(data):
        name = _valid(line.rstrip("\r"))
        if name is not None:
            seen.setdefault(name, None)
    return list(seen)


def format_subscriptions(names: Iterable[str]) -> bytes:
    return "".join(f"{canonical(n)}\n" for n in dict.fromkeys(names)).encode("utf-8")


def parse_special_use(data: bytes) -> dict[str, tuple[str, ...]]:
    """Folder name -> its special-use attributes (``<attr> <name>`` per line)."""
    found: dict[str, set[str]] = {}
    for line in _decode_lines(data):
        attr, _, rest = line.rstrip("\r").partition(" ")
        name = _valid(rest)
        attribute = _SPECIAL_BY_KEY.get(attr.lower())
        if name is not None and attribute is not None:
            found.setdefault(name, set()).add(attribute)
    return {name: tuple(sorted(attrs)) for name, attrs in found.items()}


def format_special_use(table: Mapping[str, Iterable[str]]) -> bytes:
    lines = [
        f"{special_use_attribute(attr)} {canonical(name)}\n"
        for name in sorted(table)
        for attr in sorted(set(table[name]))
    ]
    return "".join(lines).encode("utf-8")
