"""SMTP command-line grammar: pure functions from text to parts.

Covers RFC 5321 §4.1.1 (command syntax), §4.1.2 (paths and ESMTP
parameters), RFC 3030 §2 (BDAT) and RFC 1870 (SIZE). Address semantics
live in ``mailyard.message.address``; this module only cuts the line.

Every function either returns or raises ``GrammarError`` carrying the reply
to send; nothing else may escape (the "garbage never raises" property).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from mailyard.proto.smtp.replies import Reply

__all__ = [
    "Command",
    "GrammarError",
    "parse_bdat",
    "parse_hello",
    "parse_params",
    "split_command",
    "split_mail",
    "split_path",
    "split_rcpt",
]

R501_SYNTAX_MAIL: Final = Reply(501, "5.5.4", "syntax: MAIL FROM:<address> [parameters]")
R501_SYNTAX_RCPT: Final = Reply(501, "5.5.4", "syntax: RCPT TO:<address> [parameters]")
R501_SYNTAX_PARAM: Final = Reply(501, "5.5.4", "malformed ESMTP parameter")
R501_DUPLICATE_PARAM: Final = Reply(501, "5.5.4", "duplicate ESMTP parameter")
R501_SYNTAX_BDAT: Final = Reply(501, "5.5.4", "syntax: BDAT size [LAST]")

# RFC 5321 §4.1.2: esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-");
# esmtp-value = 1*(%d33-60 / %d62-126), widened by RFC 6531 §3.3 to UTF-8.
_KEYWORD_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_VALUE_RE: Final = re.compile(r"[\x21-\x3c\x3e-\x7e\u0080-\U0010ffff]+")
_VERB_RE: Final = re.compile(rb"[A-Za-z]{1,16}")
# RFC 3030 §2: bdat-cmd = "BDAT" SP chunk-size [SP end-marker]; chunk-size = 1*DIGIT.
# Twenty digits bound the int conversion (and exceed any real chunk).
_BDAT_RE: Final = re.compile(r"([0-9]{1,20})(?: +(LAST))? *", re.IGNORECASE)


class GrammarError(Exception):
    """The command line is malformed; ``reply`` says why."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.lines[0])
        self.reply = reply


@dataclass(frozen=True, slots=True)
class Command:
    """A command line cut into its verb (upper case) and raw argument bytes."""

    verb: str
    arg: bytes


def split_command(line: bytes) -> Command | None:
    """Cut ``VERB [SP argument]`` (line end already removed).

    Returns None when the line does not start with a verb followed by SP or
    end of line (RFC 5321 §4.1.1: verbs are alphabetic, case-insensitive).
    """
    match = _VERB_RE.match(line)
    if match is None:
        return None
    end = match.end()
    if end < len(line) and line[end : end + 1] != b" ":
        return None
    verb = match.group().decode("ascii").upper()
    return Command(verb, line[end + 1 :])


def parse_hello(arg: str) -> str:
    """EHLO/HELO argument: one token (RFC 5321 §4.1.1.1).

    We do not insist on a valid domain (many clients send junk; RFC 5321
    §4.1.4 says not to refuse for that) but want exactly one printable token.
    """
    name = arg.strip(" ")
    if not name or not name.isprintable() or " " in name:
        raise GrammarError(Reply(501, "5.5.4", "syntax: EHLO domain"))
    return name


def split_path(text: str) -> tuple[str, str]:
    """Cut a leading ``<...>`` path from ``text``; return (path, rest).

    A quoted local part may hold ``>`` or spaces (RFC 5321 §4.1.2
    Quoted-string), so the closing bracket is searched outside quotes.
    """
    if not text.startswith("<"):
        raise ValueError("path must start with <")
    quoted = False
    i = 1
    while i < len(text):
        ch = text[i]
        if quoted and ch == "\\":
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == ">" and not quoted:
            return text[: i + 1], text[i + 1 :]
        i += 1
    raise ValueError("unterminated path")


def _split_prefixed(arg: str, prefix: str, reply: Reply) -> tuple[str, str]:
    if arg[: len(prefix)].upper() != prefix:
        raise GrammarError(reply)
    # Lenient: tolerate spaces after the colon (broken but common clients).
    rest = arg[len(prefix) :].lstrip(" ")
    try:
        path, tail = split_path(rest)
    except ValueError:
        raise GrammarError(reply) from None
    if tail and not tail.startswith(" "):
        raise GrammarError(reply)
    return path, tail.strip(" ")


def split_mail(arg: str) -> tuple[str, str]:
    """``FROM:<path> [SP params]`` → (path, params text). RFC 5321 §4.1.1.2."""
    return _split_prefixed(arg, "FROM:", R501_SYNTAX_MAIL)


def split_rcpt(arg: str) -> tuple[str, str]:
    """``TO:<path> [SP params]`` → (path, params text). RFC 5321 §4.1.1.3."""
    return _split_prefixed(arg, "TO:", R501_SYNTAX_RCPT)


def parse_params(text: str) -> dict[str, str | None]:
    """ESMTP parameters ``kw[=value] ...`` → {KEYWORD: value or None}.

    RFC 5321 §4.1.2; keywords are case-insensitive so they are upper-cased.
    A keyword given twice is refused rather than guessed at.
    """
    params: dict[str, str | None] = {}
    for word in text.split(" "):
        if not word:
            continue
        keyword, eq, value = word.partition("=")
        if not _KEYWORD_RE.fullmatch(keyword):
            raise GrammarError(R501_SYNTAX_PARAM)
        if eq and not _VALUE_RE.fullmatch(value):
            raise GrammarError(R501_SYNTAX_PARAM)
        key = keyword.upper()
        if key in params:
            raise GrammarError(R501_DUPLICATE_PARAM)
        params[key] = value if eq else None
    return params


def parse_bdat(arg: str) -> tuple[int, bool]:
    """``chunk-size [SP LAST]`` → (size, last). RFC 3030 §2."""
    match = _BDAT_RE.fullmatch(arg)
    if match is None:
        raise GrammarError(R501_SYNTAX_BDAT)
    return int(match.group(1)), match.group(2) is not None
