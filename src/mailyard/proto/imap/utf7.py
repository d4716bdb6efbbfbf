"""Modified UTF-7 for IMAP mailbox names (RFC 3501 §5.1.3, RFC 9051 §5.1.3).

Printable US-ASCII other than "&" stands for itself; "&" is written "&-";
every other character is UTF-16BE in base64 with "," for "/", no padding,
between "&" and "-".  The decoder accepts only the canonical form, so that
``encode_mailbox(decode_mailbox(t)) == t`` for every ``t`` it accepts: one
name has exactly one spelling, which matters when the spelling becomes an
on-disk folder name.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

__all__ = ["decode_mailbox", "encode_mailbox"]

_SHIFT: Final = "&"
_UNSHIFT: Final = "-"
_B64_ALPHABET: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


def _direct(ch: str) -> bool:
    # RFC 3501 §5.1.3: octets 0x20-0x7e represent themselves ("&" is escaped).
    return " " <= ch <= "~"


def _b64_run(run: str) -> str:
    try:
        raw = run.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise ValueError(f"unpaired surrogate in mailbox name: {exc.reason}") from None
    # RFC 3501 §5.1.3: modified BASE64 uses "," instead of "/" and no "=" padding.
    return base64.b64encode(raw, altchars=b"+,").decode("ascii").rstrip("=")


def encode_mailbox(name: str) -> str:
    """Encode a Unicode mailbox name in modified UTF-7; ValueError on lone surrogates."""
    out: list[str] = []
    run_start = -1
    for index, ch in enumerate(name):
        if _direct(ch):
            if run_start >= 0:
                out.append(_SHIFT + _b64_run(name[run_start:index]) + _UNSHIFT)
                run_start = -1
            out.append("&-" if ch == _SHIFT else ch)
        elif run_start < 0:
            run_start = index
    if run_start >= 0:
        # RFC 3501 §5.1.3: every name MUST end in US-ASCII, so a run always gets its "-".
        out.append(_SHIFT + _b64_run(name[run_start:]) + _UNSHIFT)
    return "".join(out)


def _decode_run(segment: str) -> str:
    if not segment or any(ch not in _B64_ALPHABET for ch in segment):
        raise ValueError(f"invalid modified BASE64 in mailbox name: {segment!r}")
    if len(segment) % 4 == 1:
        raise ValueError(f"truncated modified BASE64 in mailbox name: {segment!r}")
    padded = segment + "=" * (-len(segment) % 4)
    try:
        raw = base64.b64decode(padded, altchars=b"+,", validate=True)
    except binascii.Error:
        raise ValueError(f"invalid modified BASE64 in mailbox name: {segment!r}") from None
    if len(raw) % 2:
        raise ValueError(f"odd number of UTF-16 octets in mailbox name: {segment!r}")
    # Non-zero padding bits would give a second spelling of the same name.
    if base64.b64encode(raw, altchars=b"+,").decode("ascii").rstrip("=") != segment:
        raise ValueError(f"non-canonical modified BASE64 in mailbox name: {segment!r}")
    try:
        text = raw.decode("utf-16-be")
    except UnicodeDecodeError:
        raise ValueError(f"invalid UTF-16 in mailbox name: {segment!r}") from None
    if any(_direct(ch) for ch in text):
        # RFC 3501 §5.1.3: BASE64 MUST NOT represent a printable US-ASCII character.
        raise ValueError(f"printable US-ASCII encoded in mailbox name: {segment!r}")
    return text


def decode_mailbox(text: str) -> str:
    """Decode a modified UTF-7 mailbox name; ValueError unless it is the canonical form."""
    out: list[str] = []
    index = 0
    after_run = False
    length = len(text)
    while index < length:
        ch = text[index]
        if not _direct(ch):
            raise ValueError(f"character {ch!r} must be encoded in a mailbox name")
        if ch != _SHIFT:
            out.append(ch)
            index += 1
            after_run = False
            continue
        end = text.find(_UNSHIFT, index + 1)
        if end < 0:
            raise ValueError("unterminated modified BASE64 in mailbox name")
        if end == index + 1:
            out.append(_SHIFT)
            after_run = False
        else:
            if after_run:
                # Two adjacent runs are one run spelled twice: not canonical.
                raise ValueError("adjacent modified BASE64 runs in mailbox name")
            out.append(_decode_run(text[index + 1 : end]))
            after_run = True
        index = end + 1
    return "".join(out)
