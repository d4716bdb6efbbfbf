"""Preparing a locally injected message (qmail-inject's and sendmail's job).

``prepare_message`` turns what a local program wrote to ``mailyard sendmail``
into a queueable message: line ends made CRLF, recipients taken from the
header when asked (``-t``), ``Bcc:`` removed, and the fields a message must
have (RFC 5322 §3.6: ``Date:`` and ``From:``; ``Message-ID:`` SHOULD) added
when missing, with a ``Received:``-style trace naming the local user. Pure:
the caller passes the time, the id and the names.

Recipients with ``-t`` are the union of the header's To/Cc/Bcc and the
command line (Postfix's rule, not historic sendmail's "subtract"): nothing a
user named is silently dropped. Header recipients are read tolerantly (the
stdlib's address-list parser, groups included) and then each must be a valid
mailbox (``message.address``); a local user's own message is not an attack
surface in the way a remote From: is.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from mailyard.message.address import Address, AddressError, parse_address
from mailyard.message.headers import fold_field, format_date, iter_fields, read_header_block

__all__ = ["InjectError", "Prepared", "normalise_line_ends", "prepare_message"]

_RECIPIENT_FIELDS: Final = (b"to", b"cc", b"bcc")
# RFC 5322 §2.2: a field name is printable ASCII but ":", then ":".
_FIELD_START: Final = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")


class InjectError(ValueError):
    """The message cannot be queued as given; the text says why."""


@dataclass(frozen=True, slots=True)
class Prepared:
    sender: str  # "" for the null reverse-path
    recipients: tuple[str, ...]
    data: bytes


def normalise_line_ends(raw: bytes) -> bytes:
    """CRLF everywhere: a bare LF becomes CRLF (programs write Unix text)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _header_recipients(header: bytes) -> list[str]:
    values = [
        value.decode("utf-8", "replace")
        for name, value in iter_fields(header)
        if name.lower() in _RECIPIENT_FIELDS
    ]
    return [addr for _, addr in email.utils.getaddresses(values) if addr]


def _checked(addresses: Iterable[str]) -> tuple[str, ...]:
    seen: dict[tuple[str, str], str] = {}
    for text in addresses:
        try:
            address = parse_address(text.strip())
        except AddressError as exc:
            raise InjectError(f"invalid recipient address {text!r}: {exc}") from exc
        seen.setdefault(address.key, str(address))
    return tuple(seen.values())


def _without_bcc(header: bytes) -> bytes:
    """The header block minus every Bcc field (with its folded lines)."""
    out: list[bytes] = []
    skipping = False
    for line in header.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):  # a folded continuation of the last field
            if not skipping:
                out.append(line)
            continue
        skipping = line[:4].lower() == b"bcc:"
        if not skipping:
            out.append(line)
    return b"\r\n".join(out)


def _split(data: bytes) -> tuple[bytes, bytes]:
    """(header block incl. its empty line, body). Text that does not start
    with a header field is all body (sendmail's rule for a bare note)."""
    if not _FIELD_START.match(data):
        return b"\r\n", data
    header = read_header_block(data)
    if not header.endswith(b"\r\n\r\n"):
        # All header, no empty line (and perhaps no final line end).
        return (header if header.endswith(b"\r\n") else header + b"\r\n") + b"\r\n", b""
    return header, data[len(header):]


def prepare_message(
    raw: bytes,
    *,
    recipients: Sequence[str],
    read_recipients: bool,
    sender: Address | None,
    full_name: str | None,
    now: float,
    message_id: str,
    trace: str,
) -> Prepared:
    header, body = _split(normalise_line_ends(raw))
    wanted = list(recipients)
    if read_recipients:
        wanted += _header_recipients(header)
    checked = _checked(wanted)
    if not checked:
        raise InjectError("no recipients (give addresses, or -t to read them from the header)")
    present = {name.lower() for name, _ in iter_fields(header)}
    added = [fold_field("Received", f"{trace}; {format_date(now)}")]
    if b"from" not in present:
        if sender is None:
            raise InjectError("the message has no From: and the sender is <>")
        mailbox = str(sender)
        added.append(fold_field(
            "From", email.utils.formataddr((full_name, mailbox)) if full_name else mailbox
        ))
    if b"date" not in present:
        added.append(fold_field("Date", format_date(now)))
    if b"message-id" not in present:
        added.append(fold_field("Message-ID", f"<{message_id}>"))
    # RFC 5322 §3.6.3: Bcc recipients are not revealed to the others.
    return Prepared(
        sender="" if sender is None else str(sender),
        recipients=checked,
        data=b"".join(added) + _without_bcc(header) + body,
    )
