"""Bounce messages: RFC 3464 delivery status notifications in RFC 6522 multipart/report.

Pure: the time, the host names and the seed for the MIME boundary and the
Message-ID are passed in; the result is the complete message as CRLF bytes,
ready to be queued with the null reverse-path.

Every string that a client or a remote server chose (addresses, diagnostic
texts, the original header block) is treated as hostile:

* header fields and delivery-status fields are single cleaned lines, folded
  only at spaces, so no CR or LF of theirs reaches the output;
* the human-readable part is quoted-printable, and the original headers are
  quoted-printable whenever they hold 8-bit data, so every line is short and
  every line end is ours;
* the boundary is checked against the whole content and changed until it
  does not occur there (RFC 2046 §5.1.1), so no part can end early.

The delivery-status part stays 7-bit US-ASCII (RFC 3464 §2.1.1 fields;
non-ASCII addresses use RFC 6533 §3 ``utf-8;`` xtext), which any MTA and
any report parser handles; the UTF-8 text is in the human part.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from mailyard.message.address import AddressError, canonical_domain, parse_address
from mailyard.message.headers import clean_text, fold_field, format_date

__all__ = [
    "MAX_ORIGINAL_HEADERS",
    "FailedRecipient",
    "build_bounce",
    "build_double_bounce",
]

MAX_ORIGINAL_HEADERS: Final = 64 * 1024  # octets of the original header block we return
_MAX_DIAGNOSTIC: Final = 2000  # characters of a remote server's reply we keep
_MAX_ADDRESS: Final = 900  # octets of an encoded address in a report field (RFC 5322 §2.1.1)
_MAX_LINE: Final = 998  # RFC 5322 §2.1.1
_WRAP: Final = 72  # human text column
_STATUS: Final = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}")  # RFC 3463 §2 status-code
_DIAGNOSTIC: Final = re.compile(r"([A-Za-z][A-Za-z0-9-]*)[ \t]*;[ \t]*(.*)", re.DOTALL)
# RFC 6533 §3 QCHAR: printable ASCII except SP, "\", "+" and "=".
_QCHAR: Final = frozenset(chr(c) for c in range(0x21, 0x7F)) - frozenset("\\+=")
_PREAMBLE: Final = b"This is a MIME-formatted delivery status notification (RFC 3464).\r\n"


@dataclass(frozen=True, slots=True)
class FailedRecipient:
    """One recipient that will not get the message."""

    address: str  # final recipient, as in the envelope
    status: str  # RFC 3463 enhanced status code, e.g. "5.1.1"
    diagnostic: str  # "type; text", e.g. "smtp; 550 5.1.1 no such user"
    remote_mta: str | None  # DNS name of the remote host; None for local failures


@dataclass(frozen=True, slots=True)
class _Report:
    """What both kinds of bounce share."""

    reporting_mta: str
    failed: tuple[FailedRecipient, ...]
    original_headers: bytes
    queue_id: str
    arrival: float
    now: float
    message_id_host: str
    boundary_seed: str


# -- encoding helpers ------------------------------------------------------------


def _xtext(text: str, limit: int) -> str:
    """RFC 6533 §3 utf-8-addr-xtext: ``\\x{HEX}`` for anything but QCHAR.

    The result is ASCII and cut (between characters) to ``limit`` octets.
    """
    out: list[str] = []
    size = 0
    for ch in text:
        piece = ch if ch in _QCHAR else f"\\x{{{ord(ch):02X}}}"
        if size + len(piece) > limit:
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)


def _ascii_text(text: str) -> str:
    """Report text in US-ASCII: other characters written as ``\\x{HEX}``
    (RFC 6533's notation), so the delivery-status part stays 7-bit."""
    return "".join(ch if " " <= ch <= "~" else f"\\x{{{ord(ch):02X}}}" for ch in text)


def _dns_name(name: str) -> str:
    """A remote host name for a ``dns;`` field (RFC 3464 §2.3.5): A-label form,
    or xtext-escaped when it is no valid name, so always one ASCII word."""
    try:
        return canonical_domain(name)
    except AddressError:
        return _xtext(name, 255) or "unknown"


def _our_host(name: str) -> str:
    """Our own host name (config) for addresses and the Message-ID: a valid
    domain or address literal, else a reserved name (RFC 2606 §2 .invalid)."""
    try:
        return canonical_domain(name)
    except AddressError:
        return "mailyard.invalid"


def _address_type(address: str) -> str:
    """RFC 3464 §2.3.2 address-type + address: ``rfc822; a@b`` when the address
    is printable ASCII, else RFC 6533 §3 ``utf-8; <xtext>``."""
    if address and all(" " < ch <= "~" for ch in address):
        return f"rfc822; {address[:_MAX_ADDRESS]}"
    return f"utf-8; {_xtext(address, _MAX_ADDRESS)}"


def _split_diagnostic(diagnostic: str) -> tuple[str, str]:
    """``(type, text)`` of a diagnostic; text without a type is our own."""
    flat = " ".join(diagnostic[:_MAX_DIAGNOSTIC].split())
    match = _DIAGNOSTIC.fullmatch(flat)
    if match is None:
        return "x-mailyard", flat
    return match.group(1).lower(), match.group(2)


def _status(status: str) -> str:
    return status if _STATUS.fullmatch(status) else "5.0.0"


def _mailbox(address: str) -> str | None:
    """An address fit for a header field (``<...>``), or None if it is not one."""
    try:
        return f"<{parse_address(clean_text(address, 256))}>"
    except AddressError:
        return None


def _quoted_printable(data: bytes) -> bytes:
    """RFC 2045 §6.7 quoted-printable with CRLF line ends; ``data`` uses LF.

    Besides being 7-bit with short lines, QP output can never contain "=_",
    which starts every boundary we choose.
    """
    return binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")


# -- the three parts ---------------------------------------------------------------


def _recipient_lines(item: FailedRecipient) -> list[str]:
    kind, text = _split_diagnostic(item.diagnostic)
    text = clean_text(text, _MAX_DIAGNOSTIC)
    if item.remote_mta and kind == "smtp":
        text = f"{clean_text(item.remote_mta, 255)} said: {text}"
    lines = [f"  <{clean_text(item.address, 256)}>"]
    lines += textwrap.wrap(
        f"{text} (status {_status(item.status)})",
        width=_WRAP,
        initial_indent="      ",
        subsequent_indent="      ",
        break_on_hyphens=False,  # keep host names and addresses whole
    )
    return lines


def _human_part(intro: str, report: _Report, outro: str) -> bytes:
    lines = [f"This is the mail delivery system at {_our_host(report.reporting_mta)}.", ""]
    lines += textwrap.wrap(intro, width=_WRAP, break_on_hyphens=False)
    for item in report.failed:
        lines += ["", *_recipient_lines(item)]
    when = format_date(report.arrival)
    qid = clean_text(report.queue_id, 64)
    closing = f"The message arrived on {when} (queue id {qid}). {outro}"
    lines += ["", *textwrap.wrap(closing, width=_WRAP, break_on_hyphens=False)]
    text = "\n".join(lines) + "\n"
    head = (
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n"
        b"Content-Description: Notification\r\n"
    )
    return head + b"\r\n" + _quoted_printable(text.encode("utf-8"))


def _status_part(report: _Report) -> bytes:
    # RFC 3464 §2.2: per-message fields, then one block per recipient (§2.3),
    # blocks separated by an empty line.
    fields = [
        fold_field("Reporting-MTA", f"dns; {_our_host(report.reporting_mta)}"),
        fold_field("X-Mailyard-Queue-ID", _ascii_text(clean_text(report.queue_id, 255))),
        fold_field("Arrival-Date", format_date(report.arrival)),
    ]
    blocks = [b"".join(fields)]
    for item in report.failed:
        kind, text = _split_diagnostic(item.diagnostic)
        block = [
            f"Final-Recipient: {_address_type(item.address)}\r\n".encode("ascii"),
            b"Action: failed\r\n",
            f"Status: {_status(item.status)}\r\n".encode("ascii"),
        ]
        if item.remote_mta:
            block.append(fold_field("Remote-MTA", f"dns; {_dns_name(item.remote_mta)}"))
        text = _ascii_text(clean_text(text, _MAX_DIAGNOSTIC))
        block.append(fold_field("Diagnostic-Code", f"{kind}; {text}"))
        block.append(fold_field("Last-Attempt-Date", format_date(report.now)))
        blocks.append(b"".join(block))
    head = b"Content-Type: message/delivery-status\r\nContent-Description: Delivery report\r\n"
    return head + b"\r\n" + b"\r\n".join(blocks)


def _header_lines(original: bytes) -> list[bytes]:
    """The original header section as lines: any line end accepted, cut at the
    first empty line and at MAX_ORIGINAL_HEADERS (between lines), over-long
    lines folded so every line stays within 998 octets."""
    flat = original.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    lines: list[bytes] = []
    size = 0
    for line in flat.split(b"\n"):
        if not line:
            break
        pieces = [line[i : i + _MAX_LINE - 2] for i in range(0, len(line), _MAX_LINE - 2)]
        # Continuations of a cut line start with a space, as folded lines do.
        pieces = pieces[:1] + [b" " + piece for piece in pieces[1:]]
        cost = sum(len(piece) + 2 for piece in pieces)
        if size + cost > MAX_ORIGINAL_HEADERS:
            break
        lines += pieces
        size += cost
    return lines


def _headers_part(original: bytes) -> bytes:
    # RFC 6522 §4: text/rfc822-headers carries the header section only.
    lines = _header_lines(original)
    data = b"\n".join(lines)
    if data.isascii() and b"\0" not in data:
        head = b"Content-Type: text/rfc822-headers\r\n"
        body = (data.replace(b"\n", b"\r\n") + b"\r\n") if lines else b""
    else:
        # RFC 2045 §2.7: 7bit data has no NUL and no 8-bit octets; QP keeps the
        # part 7-bit whatever the client sent (RFC 6532 UTF-8 headers included).
        try:
            data.decode("utf-8")
            charset = b"; charset=utf-8"
        except UnicodeDecodeError:
            charset = b""
        head = (
            b"Content-Type: text/rfc822-headers" + charset + b"\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n"
        )
        body = _quoted_printable(data + b"\n")
    head += b"Content-Description: Undelivered message headers\r\n"
    return head + b"\r\n" + body


# -- the whole message ---------------------------------------------------------------


def _digest(*values: str) -> str:
    return hashlib.sha256("\0".join(values).encode("utf-8", "surrogatepass")).hexdigest()


def _boundary(seed: str, parts: Sequence[bytes]) -> str:
    """A boundary from the seed that occurs nowhere in the parts (RFC 2046 §5.1.1).

    It also depends on the content, so a sender who knows the seed still
    cannot plant the delimiter in advance; and the loop ends, since the
    content can hold only finitely many candidates.
    """
    content = b"".join(parts)
    content_digest = hashlib.sha256(content).hexdigest()
    counter = 0
    while True:
        boundary = f"=_mailyard_{_digest(seed, content_digest, str(counter))[:32]}"
        if boundary.encode("ascii") not in content:
            return boundary
        counter += 1


def _message_id(report: _Report) -> str:
    # RFC 5322 §3.6.4 msg-id: id-left "@" id-right, both without folding.
    host = _our_host(report.message_id_host)
    stamp = _digest(report.queue_id, repr(report.now), report.boundary_seed, host)[:24]
    return f"<{int(report.now // 1)}.{stamp}@{host}>"


def _assemble(*, report: _Report, to: str, reply_to: str | None, subject: str,
              intro: str, outro: str) -> bytes:
    parts = [
        _human_part(intro, report, outro),
        _status_part(report),
        _headers_part(report.original_headers),
    ]
    boundary = _boundary(report.boundary_seed, [_PREAMBLE, *parts])
    mta = _our_host(report.reporting_mta)
    head = [
        f"From: Mail Delivery System <MAILER-DAEMON@{mta}>\r\n".encode("ascii"),
        f"To: {to}\r\n".encode(),
    ]
    if reply_to is not None:
        head.append(f"Reply-To: {reply_to}\r\n".encode())
    head += [
        fold_field("Subject", subject),
        f"Date: {format_date(report.now)}\r\n".encode("ascii"),
        f"Message-ID: {_message_id(report)}\r\n".encode("ascii"),
        b"MIME-Version: 1.0\r\n",
        # RFC 3834 §5.2: "auto-replied" MAY be used on DSNs ("auto-generated"
        # MUST NOT be); it keeps vacation responders from answering bounces.
        b"Auto-Submitted: auto-replied\r\n",
        # RFC 6522 §3: report-type names the machine-readable second part.
        b"Content-Type: multipart/report; report-type=delivery-status;\r\n"
        + f'\tboundary="{boundary}"\r\n'.encode("ascii"),
    ]
    out = [*head, b"\r\n", _PREAMBLE]
    for part in parts:
        out += [f"\r\n--{boundary}\r\n".encode("ascii"), part]
    out.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
    return b"".join(out)


def _report(
    reporting_mta: str, failed: Sequence[FailedRecipient], original_headers: bytes,
    queue_id: str, arrival: float, now: float, message_id_host: str, boundary_seed: str,
) -> _Report:
    if not failed:
        # RFC 3464 §2.1: a DSN has at least one per-recipient block.
        raise ValueError("a bounce needs at least one failed recipient")
    return _Report(reporting_mta, tuple(failed), original_headers, queue_id, arrival, now,
                   message_id_host, boundary_seed)


def build_bounce(
    *,
    reporting_mta: str,
    postmaster_from: str,
    original_sender: str,
    failed: Sequence[FailedRecipient],
    original_headers: bytes,
    queue_id: str,
    arrival: float,
    now: float,
    message_id_host: str,
    boundary_seed: str,
) -> bytes:
    """The DSN for ``original_sender`` listing every failed recipient.

    RFC 3464 §2: the report goes to the envelope's return address. Its From is
    MAILER-DAEMON (nothing answers there), so a Reply-To names the postmaster,
    the person RFC 3464 §2 wants replies to reach.
    """
    report = _report(reporting_mta, failed, original_headers, queue_id, arrival, now,
                     message_id_host, boundary_seed)
    count = len(report.failed)
    whom = "one recipient" if count == 1 else f"{count} recipients"
    postmaster = _mailbox(postmaster_from)
    help_text = f" For help, write to the postmaster at {postmaster}." if postmaster else ""
    return _assemble(
        report=report,
        # RFC 5322 §3.4: an empty group when the sender is no usable address.
        to=_mailbox(original_sender) or "undisclosed-recipients:;",
        reply_to=postmaster,
        subject="Undelivered Mail Returned to Sender",
        intro=(
            f"Your message could not be delivered to {whom}. This is a permanent "
            "error: delivery has been given up and will not be tried again."
        ),
        outro=f"Its header section is attached below.{help_text}",
    )


def build_double_bounce(
    *,
    reporting_mta: str,
    postmaster: str,
    failed: Sequence[FailedRecipient],
    original_headers: bytes,
    queue_id: str,
    arrival: float,
    now: float,
    message_id_host: str,
    boundary_seed: str,
) -> bytes:
    """The report for the postmaster about mail that had nobody to bounce to.

    RFC 5321 §6.1 / RFC 3464 §2: a message with the null reverse-path (a
    bounce itself, or any other report) must not be bounced; qmail's double
    bounce tells the postmaster instead.
    """
    report = _report(reporting_mta, failed, original_headers, queue_id, arrival, now,
                     message_id_host, boundary_seed)
    return _assemble(
        report=report,
        to=_mailbox(postmaster) or "undisclosed-recipients:;",
        reply_to=None,
        subject="Postmaster notice: undeliverable mail without a return address",
        intro=(
            "A message could not be delivered, and it cannot be returned to its "
            "sender: its envelope sender was empty (<>), because it was itself a "
            "bounce or another delivery report, or because a bounce could not be "
            "delivered. This copy goes to the postmaster instead."
        ),
        outro="Its header section is attached below.",
    )
