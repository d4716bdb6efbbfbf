"""Automatic replies (vacation), by the rules of RFC 3834.

Two pure functions: ``no_reply_reason`` decides whether a message may be
answered at all (the reason not to, or None), and ``build_reply`` writes the
answer as CRLF bytes. The once-per-sender-per-interval memory and the
queueing are the caller's (dispatch/vacation.py). The time and the seed of
the Message-ID are passed in.

RFC 3834 §2 is the heart of it: never answer mail that was itself sent
automatically (``Auto-Submitted`` other than ``no``), mail from lists or
bulk senders, mail with the null reverse-path or from addresses that exist
to receive bounces and list traffic (``MAILER-DAEMON``, ``owner-*``,
``*-request``), nor mail that did not name the recipient in its visible
recipient fields (it came through a list or a Bcc the recipient did not
see addressed to them). §3 fixes the reply's form: to the envelope sender,
from the recipient, ``Auto-Submitted: auto-replied``, ``In-Reply-To`` and
``References`` pointing at the original.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from mailyard.message.address import AddressError, canonical_domain, parse_address
from mailyard.message.headers import clean_text, fold_field, format_date, iter_fields

__all__ = [
    "AUTO_PREFIX",
    "ReplySpec",
    "address_key",
    "build_reply",
    "no_reply_reason",
]

AUTO_PREFIX: Final = "Auto: "  # RFC 3834 §3.1.5's suggested subject prefix
# Local parts of addresses that receive machine mail, not people's mail
# (RFC 3834 §2: MAILER-DAEMON, owner-*, *-request; and common no-reply names).
_MACHINE_LOCALS: Final = frozenset(
    {"mailer-daemon", "postmaster", "listserv", "majordomo", "bounce", "bounces",
     "mailer", "daemon"}
)
_NOREPLY_PREFIXES: Final = ("noreply", "donotreply")
_RECIPIENT_FIELDS: Final = frozenset(
    {b"to", b"cc", b"bcc", b"resent-to", b"resent-cc", b"resent-bcc"}
)
_BULK: Final = frozenset({"bulk", "list", "junk"})
_MAX_REFERENCES: Final = 20  # ids kept from the original's References
_MAX_ID: Final = 250  # octets of one msg-id we copy
_MAX_SUBJECT: Final = 200
_MAX_BODY: Final = 64 * 1024
_MAX_LINE: Final = 998  # RFC 5322 §2.1.1
_WORD_CHUNK: Final = 45  # octets per encoded word: 60 base64 characters, under 75


def address_key(text: str) -> tuple[str, str] | None:
    """How addresses compare here: local part and domain folded; None if unreadable."""
    text = text.strip().removeprefix("<").removesuffix(">")
    try:
        return parse_address(text).key
    except (AddressError, UnicodeError):
        local, at, domain = text.rpartition("@")
        if not at or not local or not domain:
            return None
        try:
            return (local.lower(), canonical_domain(domain))
        except (AddressError, UnicodeError):
            return (local.lower(), domain.lower())


def _machine_sender(sender: str) -> bool:
    local = sender.rpartition("@")[0].lower().strip('"')
    if local in _MACHINE_LOCALS:
        return True
    if local.startswith("owner-") or local.endswith(("-request", "-owner")):
        return True
    squeezed = local.replace("-", "").replace("_", "").replace(".", "")
    return squeezed.startswith(_NOREPLY_PREFIXES)


def _header_reason(name: bytes, value: bytes) -> str | None:
    lower = name.lower()
    text = value.decode("ascii", "replace").strip().lower()
    if lower == b"auto-submitted" and text.split(";", 1)[0].strip() != "no":
        return "the message was sent automatically (Auto-Submitted)"
    if lower == b"precedence" and text in _BULK:
        return f"the message is {text} mail (Precedence)"
    if lower.startswith(b"list-"):
        return "the message came from a mailing list (List-* field)"
    if lower == b"x-auto-response-suppress":
        return "the sender asked for no automatic replies (X-Auto-Response-Suppress)"
    return None


def no_reply_reason(sender: str, header_block: bytes, addresses: Iterable[str]) -> str | None:
    """Why the message must not be answered, or None when a reply is allowed.

    ``sender`` is the envelope sender ("" for ``<>``); ``addresses`` are the
    recipient's own addresses (the mailbox, the address the mail came to,
    aliases of it); one of them must appear in To/Cc/Bcc (or Resent-*).
    """
    if not sender:
        return "null reverse-path"
    if _machine_sender(sender):
        return "the sender is a machine address"
    own = {key for key in (address_key(a) for a in addresses) if key is not None}
    named: list[str] = []
    for name, value in iter_fields(header_block):
        reason = _header_reason(name, value)
        if reason is not None:
            return reason
        if name.lower() in _RECIPIENT_FIELDS:
            named.append(value.decode("utf-8", "replace"))
    for _, found in email.utils.getaddresses(named):
        if address_key(found) in own:
            return None
    return "the recipient is not named in To or Cc"


@dataclass(frozen=True, slots=True)
class ReplySpec:
    """What the reply says and to whom; the original's header block for threading."""

    sender: str  # the envelope sender of the original: the reply's To
    mailbox: str  # the replying address: the reply's From
    display_name: str
    subject: str  # the vacation subject; "" = "Auto: " + the original subject
    body: str
    original_headers: bytes
    now: float
    host: str  # for the Message-ID
    seed: str  # makes the Message-ID unique (the queue id, a pid)


def _encoded_words(text: str) -> str:
    """RFC 2047 §4.1 "B" encoded words, each under 75 characters, space-separated."""
    raw = text.encode("utf-8")
    words: list[str] = []
    start = 0
    while start < len(raw):
        end = min(start + _WORD_CHUNK, len(raw))
        # Never split a UTF-8 sequence between two words (RFC 2047 §5).
        while end < len(raw) and (raw[end] & 0xC0) == 0x80:
            end -= 1
        words.append("=?UTF-8?B?" + base64.b64encode(raw[start:end]).decode("ascii") + "?=")
        start = end
    return " ".join(words)


def _header_text(text: str) -> str:
    cleaned = clean_text(text, _MAX_SUBJECT)
    return cleaned if cleaned.isascii() else _encoded_words(cleaned)


def _display(name: str) -> str:
    cleaned = clean_text(name, _MAX_SUBJECT).strip()
    if not cleaned:
        return ""
    if not cleaned.isascii():
        return _encoded_words(cleaned) + " "
    escaped = cleaned.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}" '


def _msg_ids(value: bytes) -> list[str]:
    """The ``<...>`` tokens of a Message-ID/References value, cleaned."""
    found: list[str] = []
    for token in value.decode("ascii", "replace").replace(">", "> ").split():
        well_formed = token.startswith("<") and token.endswith(">") and "@" in token
        if well_formed and len(token) <= _MAX_ID and clean_text(token) == token:
            found.append(token)
    return found


def _threading(headers: bytes) -> tuple[str, list[str], str]:
    message_id = ""
    references: list[str] = []
    subject = ""
    for name, value in iter_fields(headers):
        lower = name.lower()
        if lower == b"message-id" and not message_id:
            ids = _msg_ids(value)
            message_id = ids[0] if ids else ""
        elif lower == b"references" and not references:
            references = _msg_ids(value)
        elif lower == b"subject" and not subject:
            subject = value.decode("utf-8", "replace")
    if message_id:
        # RFC 5322 §3.6.4: the parent's References, then the parent itself.
        references = [*references[-(_MAX_REFERENCES - 1):], message_id]
    return message_id, references, subject


def _body_part(body: str) -> tuple[bytes, bytes]:
    """(Content-Transfer-Encoding field value, encoded body with CRLF)."""
    text = body[:_MAX_BODY].replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    raw = text.encode("utf-8", "replace")
    if raw.isascii() and all(len(line) <= _MAX_LINE for line in raw.split(b"\n")):
        return b"7bit", raw.replace(b"\n", b"\r\n")
    return b"quoted-printable", binascii.b2a_qp(raw, istext=True).replace(b"\n", b"\r\n")


def _reply_id(spec: ReplySpec) -> str:
    try:
        host = canonical_domain(spec.host)
    except AddressError:
        host = "mailyard.invalid"  # RFC 2606 §2
    digest = hashlib.sha256(
        "\0".join((spec.seed, repr(spec.now), spec.sender, spec.mailbox)).encode(
            "utf-8", "surrogatepass")
    ).hexdigest()[:24]
    return f"<{int(spec.now // 1)}.{digest}.vacation@{host}>"


def build_reply(spec: ReplySpec) -> bytes:
    """The complete reply (RFC 3834 §3), header and body, CRLF line ends."""
    message_id, references, original_subject = _threading(spec.original_headers)
    subject = spec.subject.strip() or AUTO_PREFIX + original_subject
    encoding, body = _body_part(spec.body)
    to = clean_text(spec.sender, 256)
    sender = clean_text(spec.mailbox, 256)
    head = [
        f"From: {_display(spec.display_name)}<{sender}>\r\n".encode(),
        f"To: <{to}>\r\n".encode(),
        fold_field("Subject", _header_text(subject)),
        f"Date: {format_date(spec.now)}\r\n".encode("ascii"),
        f"Message-ID: {_reply_id(spec)}\r\n".encode("ascii"),
    ]
    if message_id:
        head.append(f"In-Reply-To: {message_id}\r\n".encode("ascii"))
        head.append(fold_field("References", " ".join(references)))
    head += [
        # RFC 3834 §5.1: the mark that keeps other responders from answering.
        b"Auto-Submitted: auto-replied\r\n",
        b"MIME-Version: 1.0\r\n",
        b"Content-Type: text/plain; charset=utf-8\r\n",
        b"Content-Transfer-Encoding: " + encoding + b"\r\n",
    ]
    return b"".join(head) + b"\r\n" + body
