"""The mailboxes of a ``From:`` or ``Sender:`` field (RFC 5322 §3.4), strictly.

The submission sender check must see the same addresses a recipient's mail
reader will show, so this parser takes only what is unambiguous and raises
``MailboxListError`` on anything else: an ``@`` in a display name, a group
(RFC 6854), an empty list member, an unterminated quote or comment. The
standard library's ``email.utils.getaddresses`` is deliberately not used:
its tolerant guesses on malformed fields (CVE-2023-27043) are exactly what
a spoofer needs.

Accepted: ``addr-spec``, ``[display-name] <addr-spec>``, comments anywhere
(RFC 5322 §3.2.2, nested, skipped), quoted strings, domain literals, the
obsolete route in an angle address (RFC 5322 §4.4, ignored) and dots in a
display name (obs-phrase). UTF-8 is accepted everywhere (RFC 6532 §3.2).
Pure functions; the module imports no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from mailyard.message.address import (
    Address,
    AddressError,
    canonical_domain,
    validate_localpart,
)

__all__ = ["MailboxListError", "parse_mailbox_list"]

# RFC 5322 §3.2.3 atext (ASCII part).
_ATEXT: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)
_SPECIALS: Final = frozenset("<>:;@,.")
_WSP: Final = frozenset(" \t\r\n")


class MailboxListError(ValueError):
    """The field is not a plain, well-formed mailbox list."""


class _Kind(enum.Enum):
    ATOM = "atom"
    QUOTED = "quoted"
    LITERAL = "literal"
    SPECIAL = "special"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    text: str


def _is_atext(ch: str) -> bool:
    return ch in _ATEXT or (ord(ch) > 0x7F and ch.isprintable())


def _skip_comment(text: str, i: int) -> int:
    """``text[i]`` is "("; the index after the matching ")"."""
    depth = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise MailboxListError("unterminated comment")


def _quoted(text: str, i: int, close: str) -> tuple[str, int]:
    """The content of a quoted string or domain literal starting at ``text[i]``."""
    out: list[str] = []
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text):
                break
            out.append(text[i + 1])
            i += 2
            continue
        if ch == close:
            return "".join(out), i + 1
        if close == "]" and ch in "[\\":
            raise MailboxListError("invalid domain literal")
        out.append(ch)
        i += 1
    raise MailboxListError("unterminated quoted string or literal")


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in _WSP:
            i += 1
        elif ch == "(":
            i = _skip_comment(text, i)
        elif ch == '"':
            content, i = _quoted(text, i, '"')
            tokens.append(_Token(_Kind.QUOTED, content))
        elif ch == "[":
            content, i = _quoted(text, i, "]")
            tokens.append(_Token(_Kind.LITERAL, f"[{content.strip()}]"))
        elif ch in _SPECIALS:
            tokens.append(_Token(_Kind.SPECIAL, ch))
            i += 1
        elif _is_atext(ch):
            start = i
            while i < len(text) and _is_atext(text[i]):
                i += 1
            tokens.append(_Token(_Kind.ATOM, text[start:i]))
        else:
            raise MailboxListError(f"unexpected character {ch!r}")
    return tokens


def _is(token: _Token, special: str) -> bool:
    return token.kind is _Kind.SPECIAL and token.text == special


def _split_members(tokens: list[_Token]) -> list[list[_Token]]:
    """Split at the commas outside angle brackets (linear: fields can be long)."""
    members: list[list[_Token]] = [[]]
    inside = False
    for token in tokens:
        if _is(token, "<"):
            if inside:
                raise MailboxListError("nested angle brackets")
            inside = True
        elif _is(token, ">"):
            if not inside:
                raise MailboxListError("unbalanced angle brackets")
            inside = False
        elif not inside and (_is(token, ":") or _is(token, ";")):
            # RFC 6854 groups in From: need a Sender: and name nobody's
            # mailbox; refused rather than guessed at.
            raise MailboxListError("groups are not accepted here")
        elif _is(token, ",") and not inside:
            members.append([])
            continue
        members[-1].append(token)
    if inside:
        raise MailboxListError("unbalanced angle brackets")
    return members


def _addr_spec(tokens: list[_Token]) -> Address:
    """``local-part "@" domain`` (RFC 5322 §3.4.1, with obs-local-part)."""
    ats = [n for n, t in enumerate(tokens) if _is(t, "@")]
    if len(ats) != 1:
        raise MailboxListError("an address needs exactly one @")
    local_tokens, domain_tokens = tokens[: ats[0]], tokens[ats[0] + 1 :]
    words: list[str] = []
    for n, token in enumerate(local_tokens):
        expect_word = n % 2 == 0
        if expect_word and token.kind in (_Kind.ATOM, _Kind.QUOTED):
            words.append(token.text)
        elif not expect_word and _is(token, "."):
            continue
        else:
            raise MailboxListError("malformed local part")
    if not words or len(local_tokens) % 2 == 0:
        raise MailboxListError("malformed local part")
    try:
        local = validate_localpart(".".join(words), utf8=True)
        return Address(local, canonical_domain(_domain(domain_tokens)))
    except AddressError as exc:
        raise MailboxListError(str(exc)) from None


def _domain(tokens: list[_Token]) -> str:
    if len(tokens) == 1 and tokens[0].kind is _Kind.LITERAL:
        return tokens[0].text
    labels: list[str] = []
    for n, token in enumerate(tokens):
        if n % 2 == 0 and token.kind is _Kind.ATOM:
            labels.append(token.text)
        elif n % 2 == 1 and _is(token, "."):
            continue
        else:
            raise MailboxListError("malformed domain")
    if not labels or len(tokens) % 2 == 0:
        raise MailboxListError("malformed domain")
    return ".".join(labels)


def _mailbox(tokens: list[_Token]) -> Address:
    """``name-addr / addr-spec`` (RFC 5322 §3.4)."""
    if not tokens:
        raise MailboxListError("empty list member")
    opens = [n for n, t in enumerate(tokens) if _is(t, "<")]
    if not opens:
        return _addr_spec(tokens)
    start = opens[0]
    if not _is(tokens[-1], ">"):
        raise MailboxListError("text after the angle address")
    for token in tokens[:start]:
        # RFC 5322 §3.2.5 phrase, with obs-phrase's dots; an @ or a colon
        # here would make the display name look like an address or a group.
        if token.kind not in (_Kind.ATOM, _Kind.QUOTED) and not _is(token, "."):
            raise MailboxListError("invalid display name")
    inner = tokens[start + 1 : -1]
    if inner and _is(inner[0], "@"):
        # RFC 5322 §4.4 obs-route "@a,@b:" before the address: ignored.
        colons = [n for n, t in enumerate(inner) if _is(t, ":")]
        if not colons:
            raise MailboxListError("malformed route")
        inner = inner[colons[0] + 1 :]
    return _addr_spec(inner)


def parse_mailbox_list(value: str) -> tuple[Address, ...]:
    """The addresses of an RFC 5322 ``mailbox-list`` (one or more), in order."""
    tokens = _tokens(value)
    return tuple(_mailbox(member) for member in _split_members(tokens))
