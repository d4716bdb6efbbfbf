"""The delay warning: an RFC 3464 report with ``Action: delayed``.

Sent once per recipient when a message has waited ``[queue] delay_warning``
seconds and that recipient is still deferred; it tells the sender nothing
is lost and when the queue will give up. Pure, like message/dsn.py (whose
bounce builder has no "delayed" form): time, names and the boundary seed are
passed in, the result is the complete message as CRLF bytes, to be queued
with the null reverse-path (RFC 3464 §2: never answered by another report).

Hostile text (addresses, remote replies, original headers) is kept out of
the structure the same way dsn.py does: single cleaned lines folded only at
spaces, quoted-printable for the human part and the original headers
(QP output never contains "=_", which starts the boundary), and a boundary
checked against the content.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import textwrap
from dataclasses import dataclass
from typing import Final

from mailyard.message.address import AddressError, canonical_domain
from mailyard.message.dsn import MAX_ORIGINAL_HEADERS, FailedRecipient
from mailyard.message.headers import clean_text, fold_field, format_date

__all__ = ["DelayReport", "build_delay_warning"]

_MAX_TEXT: Final = 2000
_MAX_ADDRESS: Final = 900
_WRAP: Final = 72
_STATUS: Final = re.compile(r"4\.[0-9]{1,3}\.[0-9]{1,3}")
_QCHAR: Final = frozenset(chr(c) for c in range(0x21, 0x7F)) - frozenset("\\+=")


@dataclass(frozen=True, slots=True)
class DelayReport:
    reporting_mta: str
    sender: str  # the envelope sender the warning goes to
    delayed: tuple[FailedRecipient, ...]  # status 4.x.x, diagnostic, remote host
    original_headers: bytes
    queue_id: str
    arrival: float
    now: float
    retry_until: float  # when the queue gives up (birth + lifetime)
    boundary_seed: str


def _host(name: str) -> str:
    try:
        return canonical_domain(name)
    except AddressError:
        return "mailyard.invalid"  # RFC 2606 §2


def _ascii(text: str) -> str:
    return "".join(ch if " " <= ch <= "~" else f"\\x{{{ord(ch):02X}}}" for ch in text)


def _address_type(address: str) -> str:
    """RFC 3464 §2.3.2, or RFC 6533 §3 ``utf-8;`` xtext for anything else."""
    if address and all(" " < ch <= "~" for ch in address):
        return f"rfc822; {address[:_MAX_ADDRESS]}"
    out = "".join(ch if ch in _QCHAR else f"\\x{{{ord(ch):02X}}}" for ch in address)
    return f"utf-8; {out[:_MAX_ADDRESS]}"


def _diagnostic(item: FailedRecipient) -> tuple[str, str]:
    kind, sep, text = item.diagnostic.partition(";")
    if not sep or not kind.strip().replace("-", "").isalnum():
        return "x-mailyard", " ".join(item.diagnostic.split())
    return kind.strip().lower(), " ".join(text.split())


def _qp(text: str) -> bytes:
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


def _human(report: DelayReport) -> bytes:
    count = len(report.delayed)
    whom = "one recipient" if count == 1 else f"{count} recipients"
    intro = (f"Your message has not yet been delivered to {whom}. This is only a "
             "warning: delivery is being retried and you do not need to send the "
             f"message again. If it still cannot be delivered by "
             f"{format_date(report.retry_until)}, it will be returned to you.")
    lines = [f"This is the mail delivery system at {_host(report.reporting_mta)}.", "",
             *textwrap.wrap(intro, _WRAP, break_on_hyphens=False)]
    for item in report.delayed:
        _, text = _diagnostic(item)
        lines += ["", f"  <{clean_text(item.address, 256)}>"]
        lines += textwrap.wrap(clean_text(text, _MAX_TEXT), _WRAP, initial_indent="      ",
                               subsequent_indent="      ", break_on_hyphens=False)
    head = (b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n"
            b"Content-Description: Notification\r\n\r\n")
    return head + _qp("\n".join(lines) + "\n")


def _status(report: DelayReport) -> bytes:
    blocks = [b"".join([
        fold_field("Reporting-MTA", f"dns; {_host(report.reporting_mta)}"),
        fold_field("X-Mailyard-Queue-ID", _ascii(clean_text(report.queue_id, 255))),
        fold_field("Arrival-Date", format_date(report.arrival)),
    ])]
    for item in report.delayed:
        kind, text = _diagnostic(item)
        # RFC 3463 §2: a delay is a 4.x.y; anything else becomes the generic one.
        status = item.status if _STATUS.fullmatch(item.status) else "4.0.0"
        block = [
            f"Final-Recipient: {_address_type(item.address)}\r\n".encode("ascii"),
            b"Action: delayed\r\n",  # RFC 3464 §2.3.3
            f"Status: {status}\r\n".encode("ascii"),
        ]
        if item.remote_mta:
            block.append(fold_field("Remote-MTA", f"dns; {_host(item.remote_mta)}"))
        block += [
            fold_field("Diagnostic-Code", f"{kind}; {_ascii(clean_text(text, _MAX_TEXT))}"),
            fold_field("Last-Attempt-Date", format_date(report.now)),
            fold_field("Will-Retry-Until", format_date(report.retry_until)),  # §2.3.8
        ]
        blocks.append(b"".join(block))
    head = b"Content-Type: message/delivery-status\r\nContent-Description: Delivery report\r\n"
    return head + b"\r\n" + b"\r\n".join(blocks)


def _headers(original: bytes) -> bytes:
    # RFC 6522 §4: the header section only, cut between lines, always QP here.
    flat = original.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n\n", 1)[0]
    data = flat[:MAX_ORIGINAL_HEADERS]
    if b"\n" in data and len(flat) > MAX_ORIGINAL_HEADERS:
        data = data[: data.rindex(b"\n")]
    head = (b"Content-Type: text/rfc822-headers\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n"
            b"Content-Description: Delayed message headers\r\n\r\n")
    body = binascii.b2a_qp(data + b"\n", istext=True).replace(b"\n", b"\r\n")
    return head + body


def build_delay_warning(report: DelayReport) -> bytes:
    if not report.delayed:
        raise ValueError("a delay warning needs at least one delayed recipient")
    parts = [_human(report), _status(report), _headers(report.original_headers)]
    content = b"".join(parts)
    digest = hashlib.sha256(content).hexdigest()
    counter = 0
    while True:
        seed = f"{report.boundary_seed}\0{digest}\0{counter}".encode("utf-8", "replace")
        boundary = "=_mailyard_delay_" + hashlib.sha256(seed).hexdigest()[:32]
        if boundary.encode("ascii") not in content:
            break
        counter += 1
    host = _host(report.reporting_mta)
    stamp = hashlib.sha256(f"{report.queue_id}\0{report.now!r}\0delay".encode()).hexdigest()
    to = clean_text(report.sender, 900)
    head = [
        f"From: Mail Delivery System <MAILER-DAEMON@{host}>\r\n".encode("ascii"),
        f"To: <{to}>\r\n".encode(),
        fold_field("Subject", "Delayed Mail (still being retried)"),
        f"Date: {format_date(report.now)}\r\n".encode("ascii"),
        f"Message-ID: <{int(report.now)}.{stamp[:24]}@{host}>\r\n".encode("ascii"),
        b"MIME-Version: 1.0\r\n",
        b"Auto-Submitted: auto-replied\r\n",  # RFC 3834 §5.2, as for bounces
        b"Content-Type: multipart/report; report-type=delivery-status;\r\n"
        + f'\tboundary="{boundary}"\r\n'.encode("ascii"),
        b"\r\n",
        b"This is a MIME-formatted delivery status notification (RFC 3464).\r\n",
    ]
    out = head
    for part in parts:
        out += [f"\r\n--{boundary}\r\n".encode("ascii"), part]
    out.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
    return b"".join(out)
