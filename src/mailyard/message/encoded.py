"""Encodings found inside stored messages, decoded leniently.

Pure functions over ``bytes``; nothing here raises on bad input, because
every byte comes from whoever sent the mail.

* ``decode_words`` turns a raw header value into text: RFC 2047 encoded
  words are decoded, raw 8-bit text (RFC 6532 UTF-8, or legacy 8-bit) is
  decoded as UTF-8 with a windows-1252 fallback.
* ``decode_charset`` decodes body text in a declared MIME charset, with the
  same fallback when the charset is unknown or is plain US-ASCII.
* ``decode_transfer`` undoes a Content-Transfer-Encoding (RFC 2045 §6):
  identity for 7bit/8bit/binary, base64 and quoted-printable decoded
  leniently, ``None`` for an encoding we do not know (the adapter answers
  ``NO [UNKNOWN-CTE]``, RFC 3516 §4.3).
* ``merge_params`` joins RFC 2231 parameter continuations into one
  parameter per name, in the form IMAP servers report them in
  BODYSTRUCTURE: ``name`` for plain values, ``name*`` with
  ``charset'lang'%XX…`` when any piece was encoded. ``param_text`` gives
  the decoded text of one parameter (for SEARCH and display).

Parameter names are lowercase bytes; values are bytes as written (quoting
removed).
"""

from __future__ import annotations

import binascii
import codecs
import functools
import re
from collections.abc import Sequence
from typing import Final

__all__ = [
    "IDENTITY_ENCODINGS",
    "Params",
    "decode_charset",
    "decode_transfer",
    "decode_words",
    "merge_params",
    "param_text",
]

Params = tuple[tuple[bytes, bytes], ...]

# RFC 2045 §6.1 / RFC 3516: encodings that need no decoding.
IDENTITY_ENCODINGS: Final = frozenset({b"", b"7bit", b"8bit", b"binary"})

# RFC 2047 §2: "=?" charset "?" encoding "?" encoded-text "?="; encoded-text
# holds no "?" and no white space. RFC 2231 §5 allows "charset*language".
_ENCODED_WORD: Final = re.compile(rb"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_WSP_ONLY: Final = re.compile(rb"[ \t\r\n]*\Z")
_MAX_CHARSET: Final = 64

_B64_ALPHABET: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_DELETE: Final = bytes(b for b in range(256) if b not in _B64_ALPHABET)

# Charsets that are labels for a superset in practice (WHATWG encoding
# standard; RFC 1557 names): decoding with the superset loses nothing.
_ALIASES: Final = {
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "iso_8859-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "tis-620": "cp874",
    "iso-8859-9": "cp1254",
}
# Python codecs that are not charsets a mail can be written in: escapes,
# IDNA, codecs that always fail.
_REFUSED_CODECS: Final = frozenset(
    {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined", "mbcs", "oem"}
)
# US-ASCII is what MIME assumes when nothing is declared (RFC 2045 §5.2),
# and mailers that write 8-bit text without a charset label it so; the
# guess (UTF-8, else windows-1252) decodes ASCII identically.
_GUESSED: Final = frozenset({"us-ascii", "ascii", "us_ascii", "ansi_x3.4-1968", "unknown-8bit"})

# RFC 2231 §7: attribute-char, the characters an extended value keeps as is.
_ATTRIBUTE_CHARS: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~"
)
_CONTINUATION: Final = re.compile(rb"\A([^*]+)\*(?:([0-9]{1,4})\*?)?\Z")
_MAX_SECTIONS: Final = 1000
_PERCENT: Final = re.compile(rb"%([0-9A-Fa-f]{2})")


# -- charsets --------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _codec(charset: str) -> str | None:
    """The Python codec for a MIME charset name; None to guess."""
    name = charset.strip().strip("\"'").lower()
    if not name or name in _GUESSED or len(name) > _MAX_CHARSET:
        return None
    name = _ALIASES.get(name, name)
    try:
        canonical = codecs.lookup(name).name
        # A bytes-to-bytes codec (base64, zlib…) refuses bytes.decode with
        # LookupError; "undefined" always raises UnicodeError.
        b"a".decode(name, errors="replace")
    except (LookupError, ValueError):
        return None
    return None if canonical.replace("_", "-") in _REFUSED_CODECS else name


def _guess(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def decode_charset(data: bytes, charset: str | None) -> str:
    """Text of ``data`` in ``charset``; invalid sequences become U+FFFD.

    An unknown, missing or US-ASCII charset means "guess": UTF-8 when the
    bytes are valid UTF-8, else windows-1252.
    """
    codec = _codec(charset) if charset else None
    if codec is None:
        return _guess(data)
    try:
        return data.decode(codec, errors="replace")
    except (LookupError, ValueError):
        return _guess(data)


# -- transfer encodings ------------------------------------------------------------


def _base64(data: bytes) -> bytes:
    """Lenient RFC 2045 §6.8 decoding: characters outside the alphabet are
    ignored (§6.8 says so for line breaks and allows it for the rest), and
    missing padding is supplied."""
    clean = data.translate(None, _B64_DELETE)
    extra = len(clean) % 4
    if extra == 1:  # a lone sextet carries no complete octet
        clean = clean[:-1]
    elif extra:
        clean += b"=" * (4 - extra)
    try:
        return binascii.a2b_base64(clean)
    except binascii.Error:  # pragma: no cover - the input is clean by construction
        return b""


def decode_transfer(body: bytes, encoding: bytes) -> bytes | None:
    """``body`` with its Content-Transfer-Encoding removed; None when the
    encoding is unknown (RFC 3516 §4.3: the caller answers UNKNOWN-CTE)."""
    name = encoding.strip().lower()
    if name in IDENTITY_ENCODINGS:
        return body
    if name == b"base64":
        return _base64(body)
    if name == b"quoted-printable":
        # RFC 2045 §6.7: "=XX" octets, "=" CRLF soft line breaks; a malformed
        # "=" sequence is kept as is (rule 6.7 (1) recommends that).
        return binascii.a2b_qp(body)
    return None


# -- RFC 2047 encoded words ---------------------------------------------------------


def _word_octets(encoding: bytes, text: bytes) -> bytes:
    if encoding in (b"b", b"B"):
        return _base64(text)
    # RFC 2047 §4.2: "_" is SPACE, "=XX" an octet.
    return binascii.a2b_qp(text, header=True)


def decode_words(raw: bytes) -> str:
    """A header value as text (RFC 2047 §6.1), never raising.

    White space between two encoded words is dropped (§6.2); adjacent words
    in the same charset are joined before decoding, so a multi-octet
    character split across two words survives. Words are also decoded where
    RFC 2047 says they should not appear (inside quoted strings, glued to
    other text), because that is how mailers write them in practice.
    """
    if b"=?" not in raw:
        return _guess(raw)
    out: list[str] = []
    pending = bytearray()
    pending_charset = ""
    position = 0
    after_word = False
    for match in _ENCODED_WORD.finditer(raw):
        gap = raw[position : match.start()]
        if gap and not (after_word and _WSP_ONLY.match(gap)):
            if pending:
                out.append(decode_charset(bytes(pending), pending_charset))
                pending.clear()
            out.append(_guess(gap))
        charset = match.group(1).split(b"*", 1)[0].decode("ascii", errors="replace")
        if pending and charset.lower() != pending_charset.lower():
            out.append(decode_charset(bytes(pending), pending_charset))
            pending.clear()
        pending += _word_octets(match.group(2), match.group(3))
        pending_charset = charset
        after_word = True
        position = match.end()
    if pending:
        out.append(decode_charset(bytes(pending), pending_charset))
    out.append(_guess(raw[position:]))
    return "".join(out)


# -- RFC 2231 parameters ---------------------------------------------------------


def _percent(value: bytes) -> bytes:
    """RFC 2231 §4: percent-encode what is not an attribute-char."""
    return b"".join(
        bytes((octet,)) if octet in _ATTRIBUTE_CHARS else b"%%%02X" % octet for octet in value
    )


def _join_sections(sections: list[tuple[int, bool, bytes]]) -> tuple[bool, bytes]:
    """Join the pieces of one parameter (RFC 2231 §3); True when extended."""
    sections.sort(key=lambda item: item[0])
    seen: set[int] = set()
    pieces: list[tuple[bool, bytes]] = []
    for index, extended, value in sections:
        if index not in seen:
            seen.add(index)
            pieces.append((extended, value))
    if not any(extended for extended, _ in pieces):
        return False, b"".join(value for _, value in pieces)
    first_extended, first = pieces[0]
    if not first_extended:
        head = b"''" + _percent(first)
    elif first.count(b"'") >= 2:
        head = first
    else:  # RFC 2231 §4: charset'language' are required on the first piece
        head = b"''" + first
    tail = [value if extended else _percent(value) for extended, value in pieces[1:]]
    return True, head + b"".join(tail)


def merge_params(raw: Sequence[tuple[bytes, bytes]]) -> Params:
    """Merge RFC 2231 continuations; keep first occurrences, in order.

    ``raw`` is ``(lowercase name, unquoted value)`` pairs as written.
    ``title*0*=us-ascii'en'This%20is; title*1=" fun"`` becomes
    ``(b"title*", b"us-ascii'en'This%20is%20fun")``; ``a*0=x; a*1=y`` becomes
    ``(b"a", b"xy")``.
    """
    order: list[bytes] = []
    plain: dict[bytes, bytes] = {}
    sections: dict[bytes, list[tuple[int, bool, bytes]]] = {}
    for name, value in raw:
        match = _CONTINUATION.match(name)
        if match is None:
            if name not in plain and name not in sections:
                order.append(name)
            plain.setdefault(name, value)
            continue
        base, index = match.group(1), match.group(2)
        pieces = sections.setdefault(base, [])
        if not pieces and base not in plain:
            order.append(base)
        if len(pieces) < _MAX_SECTIONS:
            extended = index is None or name.endswith(b"*")
            pieces.append((int(index) if index is not None else 0, extended, value))
    merged: list[tuple[bytes, bytes]] = []
    used: set[bytes] = set()
    for base in order:
        candidates: list[tuple[bytes, bytes]] = []
        if base in plain:
            candidates.append((base, plain[base]))
        if base in sections:
            extended, value = _join_sections(sections[base])
            candidates.append((base + b"*" if extended else base, value))
        for name, value in candidates:
            if name not in used:
                used.add(name)
                merged.append((name, value))
    return tuple(merged)


def _extended_text(value: bytes) -> str:
    """Decode ``charset'language'%XX…`` (RFC 2231 §4)."""
    charset, _, rest = value.partition(b"'")
    _, _, encoded = rest.partition(b"'")
    octets = _PERCENT.sub(lambda match: bytes((int(match.group(1), 16),)), encoded)
    return decode_charset(octets, charset.decode("ascii", errors="replace") or None)


def param_text(params: Params, name: bytes) -> str | None:
    """The decoded text of parameter ``name`` (lowercase), or None.

    The RFC 2231 form wins over the plain one (RFC 2231 §4.1 lets a sender
    give both, the plain one for old readers); a plain value is decoded as
    RFC 2047 text, which many mailers use in parameters although RFC 2047
    §5 forbids it.
    """
    extended = name + b"*"
    plain: bytes | None = None
    for key, value in params:
        if key == extended:
            return _extended_text(value)
        if key == name and plain is None:
            plain = value
    return None if plain is None else decode_words(plain)
