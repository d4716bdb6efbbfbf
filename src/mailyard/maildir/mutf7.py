"""IMAP modified UTF-7 (RFC 3501 §5.1.3), as Courier and Dovecot write folder names.

Why a codec here and not ``mailyard.proto.imap.utf7``: that one is the
wire's, strict by design (only the canonical spelling, no printable ASCII
inside base64), and the disk needs two things it refuses. Maildir++ uses
``.`` as its level separator, so a ``.`` inside a level must be written in
base64 (``&AC4-``); and directory names other tools wrote (raw UTF-8,
broken ``&`` runs) must be read tolerantly, never rejected.

RFC 3501 §5.1.3: printable US-ASCII (0x20-0x7E) except ``&`` stands for
itself; ``&`` is ``&-``; any other run of characters is its UTF-16BE form in
base64 with ``,`` for ``/``, no padding, between ``&`` and ``-``.

``encode(text, force=".")`` also puts the characters of ``force`` into the
base64 form: Maildir++ uses ``.`` as its on-disk separator, so a ``.``
inside one level must not be written as itself. Tolerant decoders (this
one, Courier's, Dovecot's) read that form back: it is valid base64 of
UTF-16, only not the shortest spelling.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

__all__ = ["decode", "encode"]

_SHIFT: Final = "&"
_UNSHIFT: Final = "-"
_B64_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


def _direct(ch: str, force: str) -> bool:
    return " " <= ch <= "~" and ch != _SHIFT and ch not in force


def _shifted(run: str) -> str:
    # surrogatepass: a lone surrogate still round-trips through UTF-16.
    raw = run.encode("utf-16-be", "surrogatepass")
    text = base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",")
    return f"{_SHIFT}{text}{_UNSHIFT}"


def encode(text: str, *, force: str = "") -> str:
    """``text`` in modified UTF-7; characters in ``force`` are always base64."""
    out: list[str] = []
    run: list[str] = []
    for ch in text:
        if _direct(ch, force):
            if run:
                out.append(_shifted("".join(run)))
                run.clear()
            out.append(ch)
        elif ch == _SHIFT and ch not in force:
            if run:
                out.append(_shifted("".join(run)))
                run.clear()
            out.append(_SHIFT + _UNSHIFT)
        else:
            run.append(ch)
    if run:
        out.append(_shifted("".join(run)))
    return "".join(out)


def _unshift(body: str) -> str | None:
    """The text of one ``&body-`` run, or None if it is not valid."""
    if not body or any(ch not in _B64_CHARS for ch in body):
        return None
    padded = body.replace(",", "/") + "=" * (-len(body) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw or len(raw) % 2:
        return None
    try:
        return raw.decode("utf-16-be")
    except UnicodeDecodeError:
        return None


def decode(text: str, *, strict: bool = False) -> str:
    """Read modified UTF-7.

    Tolerant by default, for names other tools wrote: a malformed ``&…``
    sequence and any character outside printable ASCII (a raw UTF-8 name)
    stand for themselves. ``strict=True`` raises ValueError instead.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != _SHIFT:
            if strict and not " " <= ch <= "~":
                raise ValueError(f"character {ch!r} is not allowed in modified UTF-7")
            out.append(ch)
            i += 1
            continue
        end = text.find(_UNSHIFT, i + 1)
        if end == i + 1:
            out.append(_SHIFT)
            i = end + 1
            continue
        decoded = _unshift(text[i + 1:end]) if end > 0 else None
        if decoded is None:
            if strict:
                raise ValueError(f"malformed modified UTF-7 at offset {i}")
            out.append(ch)
            i += 1
            continue
        out.append(decoded)
        i = end + 1
    return "".join(out)
