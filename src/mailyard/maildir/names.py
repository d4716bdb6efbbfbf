"""Maildir file names: making them unique, reading their parts (pure).

A delivered file is called ``<secs>.M<usec>P<pid>Q<n>.<host>,S=<size>``
(D. J. Bernstein's maildir spec for the unique part, Courier's Maildir++ for
the ``,S=`` size field). Once a reader has seen it, it moves to ``cur/`` and
gains the info suffix ``:2,<flags>``. Everything before the first ``:`` is
the *base name*: it never changes for the life of a message, so POP3 UIDLs
and uid lists key on it.

The names this module makes are printable ASCII only and at most
``MAX_BASE`` characters, so they are always one safe path component and
leave room for any info suffix within the 255-octet limit of a file name.
No I/O here: the clock, pid and counter are passed in.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

__all__ = [
    "MAX_BASE",
    "delivery_name",
    "delivery_stamp",
    "escape_host",
    "size_from_name",
    "split_info",
    "uidl_for",
    "with_info",
]

# 255 octets per name (ext4, XFS, ...), minus room for ":2," and every flag
# letter a reader may add later (Maildir++ DFPRST plus a-z keywords).
MAX_BASE: Final = 223

_INFO_SEP: Final = ":"
_INFO_V2: Final = "2,"
_SIZE_FIELD: Final = "S="
# Octal escapes like the maildir spec's \057 and \072; a printable-ASCII
# host is copied unchanged except for these. Maildir spec: "/" and ":" would
# break the path and the info separator. Maildir++: "," starts a field
# (",S="), so a comma in the host would let readers (ours, and others that
# stop at the first ",S=") misread the size. The backslash itself is escaped
# so that the escaping stays reversible.
_ESCAPED: Final = frozenset("/:,\\")

# RFC 1939 §7: a unique-id is 1 to 70 characters in the range 0x21 to 0x7E.
_UIDL_MAX: Final = 70

# "<secs>.M<usec>P<pid>" opens our names and Dovecot's alike; either gives
# the delivery time to the microsecond.
_STAMP: Final = re.compile(r"(\d{1,20})\.M(\d{1,6})P\d")
_DIGITS: Final = re.compile(r"\d{1,20}")


def escape_host(hostname: str) -> str:
    """The host part of a name: printable ASCII, separators escaped as ``\\ooo``."""
    out: list[str] = []
    for ch in hostname:
        if "!" <= ch <= "~" and ch not in _ESCAPED:
            out.append(ch)
        else:
            # Every other character becomes the octal escape of each of
            # its UTF-8 octets (surrogatepass: any str can be named).
            out.extend(f"\\{octet:03o}" for octet in ch.encode("utf-8", "surrogatepass"))
    return "".join(out)


def delivery_name(*, now: float, pid: int, counter: int, hostname: str, size: int) -> str:
    """A new unique name for a file of ``size`` octets delivered at ``now``.

    Unique because no two live processes share a pid, one process never
    reuses a counter value, and the host part keeps apart machines that
    share a Maildir (NFS), as the maildir spec requires.
    """
    if now < 0 or pid < 0 or counter < 0 or size < 0:
        raise ValueError("delivery_name needs non-negative time, pid, counter and size")
    secs, usec = divmod(int(now * 1_000_000), 1_000_000)
    head = f"{secs}.M{usec}P{pid}Q{counter}."
    tail = f",{_SIZE_FIELD}{size}"
    host = escape_host(hostname)
    room = MAX_BASE - len(head) - len(tail)
    if len(host) > room:
        # An absurdly long host name is cut rather than refused: the time,
        # pid and counter still make the name unique on this machine.
        host = host[: max(room, 0)]
        cut = host.rfind("\\", max(len(host) - 3, 0))
        if cut >= 0:
            host = host[:cut]  # never leave half an escape behind
    return head + host + tail


def split_info(name: str) -> tuple[str, str]:
    """Split ``base:2,FLAGS`` into ``(base, FLAGS)``; no info gives ``(name, "")``.

    Maildir spec: the info starts at the first ``:``. Info that is not the
    ``2,`` kind (experimental ``1,`` semantics) carries no flags we know.
    """
    base, sep, info = name.partition(_INFO_SEP)
    if not sep or not info.startswith(_INFO_V2):
        return base, ""
    return base, info[len(_INFO_V2):]


def with_info(base: str, flags: str) -> str:
    """The ``cur/`` name for ``base`` with ``flags``, sorted as the spec asks."""
    return f"{base}{_INFO_SEP}{_INFO_V2}{''.join(sorted(set(flags)))}"


def size_from_name(name: str) -> int | None:
    """The Maildir++ ``S=`` size in octets, or None if absent or malformed.

    The last ``S=`` field counts: ours is always last in the names we make,
    and fields other software appends (``,W=``) come after it but are not
    ``S=``.
    """
    base = split_info(name)[0]
    for field in reversed(base.split(",")[1:]):
        if field.startswith(_SIZE_FIELD):
            digits = field[len(_SIZE_FIELD):]
            return int(digits) if _DIGITS.fullmatch(digits) else None
    return None


def delivery_stamp(name: str) -> tuple[int, int] | None:
    """``(secs, usec)`` of delivery when the name is in the ``secs.M<usec>P…`` form."""
    match = _STAMP.match(name)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def uidl_for(base: str) -> str:
    """The POP3 unique-id of the message whose base name is ``base``.

    RFC 1939 §7 allows 1 to 70 characters from 0x21 to 0x7E and asks that an
    id never change: the base name itself when it qualifies, otherwise the
    SHA-256 of it in hex (64 characters), which depends on nothing else.
    """
    if 0 < len(base) <= _UIDL_MAX and all("!" <= ch <= "~" for ch in base):
        return base
    return hashlib.sha256(base.encode("utf-8", "surrogatepass")).hexdigest()
