"""Courier-IMAP's per-folder files, parsed (pure): UIDs, keywords, subscriptions.

``courierimapuiddb`` (imapscanclient.c, IMAPDBVERSION 1): a header line
``1 <uidvalidity> <nextuid>``, then ``<uid> <base name>`` per message (the
file name without its ``:2,`` info). Dovecot's ``dovecot-uidlist`` is the
same idea in version 3: ``3 V<uidvalidity> N<nextuid> [G<guid> …]`` and
``<uid> [<fields>] :<file name>`` lines; both are read. Courier ignores
lines it cannot parse; so do we, but we count them.

``courierimapkeywords/`` (Courier's README.imapkeywords): the file
``:list`` holds the keyword names, one per line, then an empty line, then
``<base name>:<index> <index> …`` lines (indexes into the names). Courier
records later changes in files named after the message, ``<base name>``
or ``.<n>.<base name>``, one keyword per line: the plain name wins, else
the highest ``n``; their keywords join the name list.

``courierimapsubscribed``: one subscribed folder per line, ``INBOX`` or
``INBOX.<folder>`` with ``.`` between levels (Courier's namespace).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "COURIER_KEYWORDS_DIR",
    "COURIER_SUBSCRIBED",
    "COURIER_UIDDB",
    "KEYWORD_LIST",
    "CourierError",
    "KeywordList",
    "UidDb",
    "apply_keyword_updates",
    "format_keyword_list",
    "format_uiddb",
    "parse_keyword_list",
    "parse_subscribed",
    "parse_uiddb",
]

COURIER_UIDDB: Final = "courierimapuiddb"
COURIER_KEYWORDS_DIR: Final = "courierimapkeywords"
COURIER_SUBSCRIBED: Final = "courierimapsubscribed"
KEYWORD_LIST: Final = ":list"
_MAX_UID: Final = 2**32 - 1


class CourierError(ValueError):
    """A file Courier itself would not accept (it would start a new UIDVALIDITY)."""


@dataclass(frozen=True, slots=True)
class UidDb:
    """A folder's uid list: ``entries`` are (uid, base name), uids ascending."""

    version: int
    uidvalidity: int
    nextuid: int
    entries: tuple[tuple[int, str], ...]
    skipped: int = 0  # lines that did not parse, or repeated a uid or a name


@dataclass(frozen=True, slots=True)
class KeywordList:
    """A folder's keywords: names, and base name -> the keyword names it carries."""

    names: tuple[str, ...]
    messages: Mapping[str, tuple[str, ...]]
    skipped: int = 0


def _header(line: str) -> tuple[int, int, int]:
    parts = line.split()
    if not parts or not parts[0].isdigit():
        raise CourierError("no uid list header")
    version = int(parts[0])
    try:
        if version == 1 and len(parts) == 3:
            return 1, int(parts[1]), int(parts[2])
        if version == 3:
            fields = {p[:1]: p[1:] for p in parts[1:] if p}
            return 3, int(fields["V"]), int(fields["N"])
    except (KeyError, ValueError):
        raise CourierError(f"bad uid list header {line!r}") from None
    raise CourierError(f"unsupported uid list version {parts[0]}")


def _entry(version: int, line: str) -> tuple[int, str] | None:
    uid_text, _, rest = line.partition(" ")
    if not uid_text.isascii() or not uid_text.isdigit():
        return None
    if version == 3:
        # Dovecot: optional fields, then ":" and the last known file name.
        _, colon, rest = rest.partition(":")
        if not colon:
            return None
    base = rest.strip().partition(":")[0] if version == 3 else rest.strip()
    uid = int(uid_text)
    if not base or not 0 < uid <= _MAX_UID or "/" in base:
        return None
    return uid, base


def parse_uiddb(data: bytes) -> UidDb:
    """Parse courierimapuiddb (or dovecot-uidlist); CourierError on a bad header."""
    text = data.decode("utf-8", "surrogateescape")
    lines = text.split("\n")
    version, uidvalidity, nextuid = _header(lines[0])
    if not 0 < uidvalidity <= _MAX_UID or not 0 < nextuid <= _MAX_UID + 1:
        raise CourierError("uid list header out of range")
    found: dict[int, str] = {}
    bases: set[str] = set()
    skipped = 0
    for line in lines[1:]:
        line = line.rstrip("\r")
        if not line:
            continue
        entry = _entry(version, line)
        if entry is None or entry[0] in found or entry[1] in bases:
            skipped += 1
            continue
        found[entry[0]] = entry[1]
        bases.add(entry[1])
    entries = tuple(sorted(found.items()))
    if entries and entries[-1][0] >= nextuid:
        # Never hand out a uid again: the next one is above every one listed.
        nextuid = min(entries[-1][0] + 1, _MAX_UID + 1)
    return UidDb(version, uidvalidity, nextuid, entries, skipped)


def format_uiddb(db: UidDb) -> bytes:
    """The version 1 file Courier writes for ``db``."""
    lines = [f"1 {db.uidvalidity} {db.nextuid}"]
    lines += [f"{uid} {base}" for uid, base in db.entries]
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


def parse_keyword_list(data: bytes) -> KeywordList:
    """Parse ``courierimapkeywords/:list``."""
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    names: list[str] = []
    pos = 0
    while pos < len(lines) and lines[pos].rstrip("\r"):
        names.append(lines[pos].rstrip("\r"))
        pos += 1
    messages: dict[str, tuple[str, ...]] = {}
    skipped = 0
    for line in lines[pos + 1:]:
        line = line.rstrip("\r")
        if not line:
            continue
        base, colon, numbers = line.rpartition(":")
        indexes = numbers.split()
        if (not colon or not base or not indexes
                or not all(i.isdigit() and int(i) < len(names) for i in indexes)):
            skipped += 1
            continue
        messages[base] = tuple(dict.fromkeys(names[int(i)] for i in indexes))
    return KeywordList(tuple(names), messages, skipped)


def format_keyword_list(keywords: KeywordList) -> bytes:
    """The ``:list`` file for ``keywords`` (messages must use only listed names)."""
    index = {name: i for i, name in enumerate(keywords.names)}
    lines = [*keywords.names, ""]
    for base, names in sorted(keywords.messages.items()):
        if names:
            lines.append(f"{base}:{' '.join(str(index[n]) for n in names)}")
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


def _update_target(file_name: str) -> tuple[str, int] | None:
    """(base name, generation) of an update file; generation -1 = the plain name wins."""
    if file_name == KEYWORD_LIST or file_name.startswith(":"):
        return None
    if file_name.startswith("."):
        number, dot, base = file_name[1:].partition(".")
        if not dot or not number.isdigit() or not base:
            return None
        return base, int(number)
    return file_name, -1


def apply_keyword_updates(keywords: KeywordList, updates: Mapping[str, bytes]) -> KeywordList:
    """``keywords`` with Courier's pending per-message files (name -> content) applied."""
    chosen: dict[str, tuple[int, str]] = {}
    for file_name in updates:
        target = _update_target(file_name)
        if target is None:
            continue
        base, generation = target
        best = chosen.get(base)
        if best is None or (best[0] != -1 and (generation == -1 or generation > best[0])):
            chosen[base] = (generation, file_name)
    names = list(keywords.names)
    messages = dict(keywords.messages)
    for base, (_, file_name) in chosen.items():
        text = updates[file_name].decode("utf-8", "surrogateescape")
        carried = tuple(dict.fromkeys(k.strip() for k in text.split("\n") if k.strip()))
        for keyword in carried:
            if keyword not in names:
                names.append(keyword)
        messages[base] = carried
    return KeywordList(tuple(names), messages, keywords.skipped)


def parse_subscribed(data: bytes) -> tuple[list[str], int]:
    """Subscribed folders as Maildir++ directory names (``""`` = INBOX), and lines skipped."""
    found: list[str] = []
    skipped = 0
    for line in data.decode("utf-8", "surrogateescape").split("\n"):
        line = line.strip()
        if not line:
            continue
        head, dot, rest = line.partition(".")
        if head.upper() != "INBOX" or (dot and not rest):
            skipped += 1
            continue
        dirname = f".{rest}" if dot else ""
        if dirname not in found:
            found.append(dirname)
    return found, skipped
