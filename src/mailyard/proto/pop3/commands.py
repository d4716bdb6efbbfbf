"""POP3 command-line grammar (RFC 1939 §3, RFC 2449 §3): pure functions.

A command is a case-insensitive keyword of three or four letters, then
arguments separated by spaces. We are lenient about repeated spaces, except
for PASS, whose argument is the rest of the line after the first space so
passwords may hold spaces (RFC 1939 §7 PASS discussion: the server may
treat spaces in the argument as part of the password).
Errors raise ``CommandError`` carrying the response to send.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from mailyard.proto.pop3.replies import (
    ERR_INVALID_NUMBER,
    ERR_SYNTAX,
    ERR_UNKNOWN_COMMAND,
    Response,
)

__all__ = [
    "ARITY",
    "Command",
    "CommandError",
    "parse_command",
    "parse_count",
    "parse_message_number",
]

_VERB_RE: Final = re.compile(rb"[A-Za-z]{3,4}")
# C0 controls other than TAB, and DEL, never belong in a command line.
_CONTROL_RE: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_DIGITS_RE: Final = re.compile(r"[0-9]{1,20}")
# Message numbers and TOP line counts are clamped here: nothing real is bigger.
_MAX_NUMBER: Final = 2**31 - 1

# verb -> (min, max) arguments; RFC 1939 §5-§7, RFC 2449 §5, RFC 5034 §4,
# RFC 2595 §4. Verbs not here are unknown.
ARITY: Final[dict[str, tuple[int, int]]] = {
    "USER": (1, 1),
    "PASS": (1, 1),
    "AUTH": (0, 2),
    "STLS": (0, 0),
    "CAPA": (0, 0),
    "QUIT": (0, 0),
    "STAT": (0, 0),
    "LIST": (0, 1),
    "UIDL": (0, 1),
    "RETR": (1, 1),
    "TOP": (2, 2),
    "DELE": (1, 1),
    "RSET": (0, 0),
    "NOOP": (0, 0),
}


class CommandError(Exception):
    """The line is not a valid command; ``response`` goes to the client."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.text)
        self.response = response


@dataclass(frozen=True, slots=True)
class Command:
    verb: str  # upper case
    args: tuple[str, ...]


def parse_command(line: bytes) -> Command:
    """One command line (no line end) → ``Command``; raises ``CommandError``."""
    verb_bytes, _, rest = line.partition(b" ")
    if not _VERB_RE.fullmatch(verb_bytes):
        raise CommandError(ERR_UNKNOWN_COMMAND)
    verb = verb_bytes.decode("ascii").upper()
    arity = ARITY.get(verb)
    if arity is None:
        raise CommandError(ERR_UNKNOWN_COMMAND)
    if _CONTROL_RE.search(rest):
        raise CommandError(ERR_SYNTAX)
    try:
        text = rest.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError(ERR_SYNTAX) from None
    if verb == "PASS":
        args: tuple[str, ...] = (text,) if text else ()
    else:
        # Split on SP only (RFC 2449 §3): str.split() would also cut at
        # Unicode spaces inside a UTF-8 user name.
        args = tuple(part for part in text.split(" ") if part)
    low, high = arity
    if not low <= len(args) <= high:
        raise CommandError(ERR_SYNTAX)
    return Command(verb, args)


def parse_count(text: str) -> int:
    """A non-negative decimal number, clamped; raises ``CommandError``."""
    if not _DIGITS_RE.fullmatch(text):
        raise CommandError(ERR_SYNTAX)
    return min(int(text), _MAX_NUMBER)


def parse_message_number(text: str) -> int:
    """A 1-based message number as sent (RFC 1939 §3: "msg" is a decimal
    number); range checks are the maildrop's. Raises ``CommandError``."""
    if not _DIGITS_RE.fullmatch(text):
        raise CommandError(ERR_INVALID_NUMBER)
    return min(int(text), _MAX_NUMBER)
