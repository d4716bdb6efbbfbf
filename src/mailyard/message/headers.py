"""Message header fields: the trace and delivery fields we add, and the one parser.

Pure functions over ``str`` and ``bytes``; no I/O, the time is passed in.

* ``received_header``, ``return_path_header`` and ``delivered_to_header``
  build the fields mailyard prepends (RFC 5321 §4.4, qmail's loop marker).
  Anything a client chose (HELO name, addresses) is cleaned first, so that no
  CR, LF or control character, and no comment or quote delimiter, can reach
  the output: a field we write is always exactly one field.
* ``read_header_block`` and ``iter_fields`` read the header section of a
  stored message. ``iter_fields`` is the only header parser of the package;
  it is tolerant by design (a malformed line is skipped, never raised on),
  because it runs on whatever a client sent.
* ``fold_field``, ``format_date`` and ``clean_text`` are shared with
  ``mailyard.message.dsn``.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator, Sequence
from typing import Final

from mailyard.message.address import AddressError, canonical_domain, parse_address

__all__ = [
    "FOLD_WIDTH",
    "MAX_LINE",
    "PROTOCOLS",
    "clean_text",
    "delivered_to_header",
    "fold_field",
    "format_date",
    "has_delivered_to",
    "iter_fields",
    "read_header_block",
    "received_header",
    "return_path_header",
]

# RFC 5321 §4.4 "WITH" values: the IANA Mail Transmission Types registry,
# RFC 3848 (ESMTPA/ESMTPS/ESMTPSA, LMTP*) and RFC 6531 §3.7.3 (UTF8*); QMTP
# and QMQP are not registered, but qmail-qmtpd and qmail-qmqpd write them so.
PROTOCOLS: Final = frozenset(
    {
        "SMTP", "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA",
        "LMTP", "LMTPS", "LMTPA", "LMTPSA",
        "UTF8SMTP", "UTF8SMTPS", "UTF8SMTPA", "UTF8SMTPSA",
        "UTF8LMTP", "UTF8LMTPS", "UTF8LMTPA", "UTF8LMTPSA",
        "QMTP", "QMQP",
    }
)  # fmt: skip

FOLD_WIDTH: Final = 78  # RFC 5322 §2.1.1: lines SHOULD be at most 78 characters
MAX_LINE: Final = 998  # RFC 5322 §2.1.1: lines MUST be at most 998 octets
_MAX_WORD: Final = 900  # a word longer than this is split so a line stays under MAX_LINE
_MAX_TOKEN: Final = 255  # HELO / DNS names: RFC 5321 §4.5.3.1.2 domain length
_MAX_PATH: Final = 256  # RFC 5321 §4.5.3.1.3
_CRLF: Final = "\r\n"

# Characters that would end or open a comment, quoted string, angle address
# or the date separator of a Received field (RFC 5322 §3.2.2, §3.6.7), so a
# client-chosen token must not contain them.
_TOKEN_SPECIALS: Final = frozenset('()<>;"\\,')
_ATEXT_ID: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._+=/"
)
_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip
_DELIVERED_TO: Final = b"delivered-to"
_WSP: Final = b" \t"


# -- shared helpers -----------------------------------------------------------


def format_date(timestamp: float) -> str:
    """RFC 5322 §3.3 date-time in UTC, e.g. ``Tue, 1 Dec 2026 17:00:00 +0000``.

    Built by hand rather than with ``strftime`` because day and month names
    must be English whatever the process locale is; ``+0000`` (not ``-0000``)
    because we do know the zone: UTC.
    """
    t = time.gmtime(int(timestamp // 1))
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


def clean_text(text: str, limit: int = 1000) -> str:
    """``text`` on one line: every non-printable character (CR, LF, TAB,
    controls, Unicode line separators and format characters) becomes ``?``,
    then the result is cut to ``limit`` characters."""
    return "".join(ch if ch.isprintable() else "?" for ch in text[:limit])


def _split_word(word: str) -> list[str]:
    """Cut a word into pieces of at most _MAX_WORD octets (at characters)."""
    if len(word.encode("utf-8")) <= _MAX_WORD:
        return [word]
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for ch in word:
        width = len(ch.encode("utf-8"))
        if size + width > _MAX_WORD:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(ch)
        size += width
    pieces.append("".join(current))
    return pieces


def _fold(name: str, clauses: Sequence[Sequence[str]], indent: str) -> bytes:
    """Render ``name: clause clause …`` folded (RFC 5322 §2.2.3).

    Each clause after the first starts a new continuation line; inside a
    clause, words are packed greedily up to FOLD_WIDTH. A word is never cut
    (only _split_word's over-long ones are), so a folding point is always an
    existing space, which is where RFC 5322 allows FWS.
    """
    lines: list[str] = []
    line = f"{name}:"
    words = 0  # words on the current line; never fold before the first one
    for number, clause in enumerate(clauses):
        if number > 0 and words:
            lines.append(line)
            line, words = indent, 0
        for raw in clause:
            for word in _split_word(raw):
                width = len(line.encode("utf-8")) + 1 + len(word.encode("utf-8"))
                if words and width > FOLD_WIDTH:
                    lines.append(line)
                    line, words = indent, 0
                line = f"{line} {word}" if words or not lines else f"{line}{word}"
                words += 1
    lines.append(line)
    return (_CRLF.join(lines) + _CRLF).encode("utf-8")


def fold_field(name: str, value: str) -> bytes:
    """One header field, CRLF-terminated, folded at spaces to stay within 78
    characters where the words allow and always within 998 octets.

    The value is cleaned (``clean_text``) and runs of white space collapse
    to one space: folding may replace any of them with CRLF + SP, which
    unfolds back to the same single space.
    """
    flat = value.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    return _fold(name, [clean_text(flat, limit=len(flat)).split()], " ")


# -- trace and delivery fields ---------------------------------------------------


def _token(text: str, fallback: str) -> str:
    """A client-chosen name made into one safe word (HELO, PTR name)."""
    cleaned = "".join(
        "?" if (not ch.isprintable() or ch.isspace() or ch in _TOKEN_SPECIALS) else ch
        for ch in text[:_MAX_TOKEN]
    )
    return cleaned or fallback


def _id_token(text: str) -> str:
    return "".join(ch if ch in _ATEXT_ID else "?" for ch in text[:_MAX_TOKEN])


def _host_token(name: str) -> str:
    """Our own host name (config), in A-label form when it is a valid domain."""
    try:
        return canonical_domain(name)
    except AddressError:
        return _token(name, "localhost")


def _ip_literal(client_ip: str) -> str | None:
    """RFC 5321 §4.1.3 address literal: ``[192.0.2.1]`` or ``[IPv6:2001:db8::1]``."""
    text = client_ip.strip().removeprefix("[").removesuffix("]")
    if text[:5].lower() == "ipv6:":
        text = text[5:]
    text = text.split("%", 1)[0]  # an IPv6 zone id names our interface, not the client
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
            return f"[{ip.ipv4_mapped}]"
        return f"[IPv6:{ip.compressed}]"
    return f"[{ip}]"


def _tcp_info(client_name: str | None, literal: str | None) -> list[str]:
    """RFC 5321 §4.4 TCP-info comment: ``(name [ip])``, ``([ip])`` or ``(unknown)``."""
    name = _token(client_name, "unknown") if client_name else None
    if name and literal:
        return [f"({name}", f"{literal})"]
    return [f"({name or literal or 'unknown'})"]


def received_header(
    *,
    from_helo: str,
    client_ip: str,
    client_name: str | None,
    by_host: str,
    protocol: str,
    queue_id: str,
    recipient: str | None,
    timestamp: float,
) -> bytes:
    """The RFC 5321 §4.4 ``Received:`` trace field, folded, CRLF-terminated.

    ``from_helo``, ``client_name`` and ``recipient`` come from the client (or
    its DNS) and are cleaned; ``protocol`` must be one of PROTOCOLS
    (ValueError otherwise: it is a constant of the calling adapter).
    """
    proto = protocol.upper()
    if proto not in PROTOCOLS:
        raise ValueError(f"unknown Received protocol {protocol!r}")
    date = format_date(timestamp)
    from_clause = ["from", _token(from_helo.strip(), "unknown"),
                   *_tcp_info(client_name, _ip_literal(client_ip))]
    by_clause = ["by", _host_token(by_host), "(mailyard)", "with", proto]
    qid = _id_token(queue_id)
    if qid:
        by_clause += ["id", qid]
    clauses = [from_clause, by_clause]
    if recipient:
        # RFC 5321 §4.4: "FOR" names one recipient; §7.2: only when there is one.
        clauses.append(["for", f"<{clean_text(recipient, _MAX_PATH)}>;", date])
    else:
        by_clause[-1] += ";"
        by_clause.append(date)
    return _fold("Received", clauses, "\t")


def return_path_header(sender: str) -> bytes:
    """RFC 5321 §4.4: the final delivery adds ``Return-Path: <reverse-path>``;
    the null reverse-path of a bounce is written ``<>``."""
    return f"Return-Path: <{clean_text(sender, _MAX_PATH)}>\r\n".encode()


def delivered_to_header(recipient: str) -> bytes:
    """qmail's ``Delivered-To:`` loop marker for one local delivery."""
    return f"Delivered-To: {clean_text(recipient, _MAX_PATH)}\r\n".encode()


# -- reading headers ---------------------------------------------------------------


def read_header_block(data: bytes) -> bytes:
    """The header section of a CRLF message, up to and including the empty line.

    RFC 5322 §2.1: the header section ends at the first empty line. A message
    starting with CRLF has no header fields (``b"\\r\\n"``); without any empty
    line (a truncated peek, or bare-LF input, which is not rewritten here)
    all of ``data`` is returned.
    """
    if data.startswith(b"\r\n"):
        return b"\r\n"
    end = data.find(b"\r\n\r\n")
    return data if end < 0 else data[: end + 4]


def _field_name(line: bytes) -> tuple[bytes, bytes] | None:
    """Split ``name: value``; None when the line is not a field."""
    colon = line.find(b":")
    if colon <= 0:
        return None
    # RFC 5322 §4.5.3 (obsolete syntax): white space may precede the colon.
    name = line[:colon].rstrip(_WSP)
    # RFC 5322 §3.6.8: field-name = 1*ftext, printable ASCII except ":".
    if not name or any(b < 33 or b > 126 for b in name):
        return None
    return name, line[colon + 1 :]


def iter_fields(header_block: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(name, value)`` for each field of a header block.

    The value is unfolded (RFC 5322 §2.2.3: the line breaks are removed, the
    white space kept) and stripped of surrounding white space; the name keeps
    its case. CRLF and bare LF line ends are both accepted; reading stops at
    the first empty line. A line that is neither a field nor a continuation
    is skipped: this parser never raises.
    """
    name: bytes | None = None
    parts: list[bytes] = []
    for raw in header_block.split(b"\n"):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if line[:1] in (b" ", b"\t"):
            if name is not None:
                parts.append(line)
            continue
        if name is not None:
            yield name, b"".join(parts).strip(_WSP)
            name, parts = None, []
        if not line:
            return
        split = _field_name(line)
        if split is not None:
            name, parts = split[0], [split[1]]
    if name is not None:
        yield name, b"".join(parts).strip(_WSP)


def _mailbox_key(text: str) -> tuple[str, str]:
    """Compare addresses as our directory does: local part and domain without case."""
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    try:
        return parse_address(text).key
    except (AddressError, UnicodeError):  # UnicodeError: lone surrogates
        local, _, domain = text.rpartition("@")
        return (local.lower(), domain.lower())


def has_delivered_to(header_block: bytes, recipient: str) -> bool:
    """True when some ``Delivered-To:`` field names ``recipient`` (the loop check)."""
    wanted = _mailbox_key(recipient)
    for name, value in iter_fields(header_block):
        if name.lower() != _DELIVERED_TO:
            continue
        if _mailbox_key(value.decode("utf-8", errors="replace")) == wanted:
            return True
    return False
