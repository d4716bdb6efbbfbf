"""Message submission policy (RFC 6409): whose addresses a user may send as,
and the header fields the MSA adds.

* ``owns(mailbox, address, snapshot)`` is the one ownership rule: a user
  owns their own address, its extension forms (``user+tag@``), the same
  local part at the domain's aliases, and every alias (without a list
  owner) whose expansion reaches their mailbox; a list (an alias with an
  owner) belongs to the mailbox of its owner address.
* ``HeaderGate`` sits between the SMTP core's content chunks and the spool.
  It holds back only the header section (bounded by ``limit``), asks
  ``review_header`` for a verdict once the section is complete, then lets
  the added fields, the held bytes and everything after pass unchanged. The
  body is never buffered, and apart from the fields added in front the
  message is stored byte for byte as received.
* ``review_header`` checks the originator fields (``From:``, ``Sender:``)
  when the sender check is on, and adds ``Date:`` (RFC 6409 §8.2) and
  ``Message-ID:`` (RFC 6409 §8.3) when the message has none.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from mailyard.directory.model import Mailbox, Snapshot
from mailyard.directory.resolve import Forward, LocalMailbox, expand, resolve
from mailyard.message.address import Address, AddressError, canonical_domain, parse_address
from mailyard.message.headers import fold_field, format_date, iter_fields
from mailyard.proto.smtp import Reply
from mailyard.server.addrlist import MailboxListError, parse_mailbox_list

__all__ = [
    "R550_FROM_NOT_OWNED",
    "R553_SENDER_NOT_OWNED",
    "R554_HEADER_TOO_LARGE",
    "HeaderGate",
    "HeaderVerdict",
    "message_id",
    "owns",
    "review_header",
]

# RFC 6409 §6.1 (sender rights, refused at MAIL) and §6.3 (message data,
# refused after the data): 5.7.1 "delivery not authorized" (RFC 3463).
R553_SENDER_NOT_OWNED: Final = Reply(553, "5.7.1", "sender address is not yours to use")
R550_FROM_NOT_OWNED: Final = Reply(550, "5.7.1", "From: must name your own address")
R554_HEADER_TOO_LARGE: Final = Reply(554, "5.6.0", "header section too large to check")

_ORIGINATORS: Final = (b"from", b"sender")  # RFC 5322 §3.6.2


def owns(mailbox: Mailbox, address: Address | None, snapshot: Snapshot | None = None) -> bool:
    """May the user of ``mailbox`` send as ``address``? (``None`` is ``<>``.)

    Without a snapshot only the user's own address counts.
    """
    if address is None:
        return False
    mine = mailbox.address.key
    if address.key == mine:
        return True
    if snapshot is None:
        return False
    target = resolve(snapshot, address)
    if isinstance(target, LocalMailbox):
        return target.mailbox.address.key == mine
    if not isinstance(target, Forward):
        return False
    if target.source.key == mine or (target.keep is not None and target.keep.address.key == mine):
        return True  # the user's own address through a domain alias or an extension
    if target.owner is not None:
        return _reaches(snapshot, target.owner, mine)
    return any(_reaches(snapshot, text, mine) for text in expand(snapshot, target))


def _reaches(snapshot: Snapshot, text: str, mine: tuple[str, str]) -> bool:
    """Does the address ``text`` lead (directly) to the mailbox keyed ``mine``?"""
    try:
        target = resolve(snapshot, parse_address(text))
    except AddressError:
        return False
    if isinstance(target, LocalMailbox):
        return target.mailbox.address.key == mine
    return isinstance(target, Forward) and target.source.key == mine


def message_id(queue_id: str, hostname: str) -> str:
    """A new msg-id (RFC 5322 §3.6.4): unique by queue id and random bits."""
    try:
        right = canonical_domain(hostname)
    except AddressError:
        right = "localhost"
    return f"<{queue_id}.{secrets.token_hex(6)}@{right}>"


@dataclass(frozen=True, slots=True)
class HeaderVerdict:
    added: bytes = b""  # fields to put in front of the message
    refusal: Reply | None = None  # the end-of-data reply, when refused
    reason: str = ""  # for the log


def review_header(
    block: bytes, *, complete: bool, owner: Mailbox | None, check_sender: bool,
    new_message_id: str, now: float, snapshot: Snapshot | None = None,
) -> HeaderVerdict:
    """The verdict on a header section (``complete`` False: cut at the limit);
    ``new_message_id`` and ``now`` are used when Message-ID: or Date: is missing."""
    if not complete:
        if check_sender:
            return HeaderVerdict(refusal=R554_HEADER_TOO_LARGE, reason="header too large")
        # Unchecked and unread: add nothing, since a Date: or Message-ID:
        # may follow beyond the limit.
        return HeaderVerdict()
    names: set[bytes] = set()
    for name, value in iter_fields(block):
        lower = name.lower()
        names.add(lower)
        if check_sender and lower in _ORIGINATORS:
            problem = _originator_problem(value, owner, snapshot)
            if problem:
                return HeaderVerdict(refusal=R550_FROM_NOT_OWNED,
                                     reason=f"{lower.decode()}: {problem}")
    added = b""
    if b"date" not in names:
        added += fold_field("Date", format_date(now))
    if b"message-id" not in names:
        added += fold_field("Message-ID", new_message_id)
    return HeaderVerdict(added=added)


def _originator_problem(value: bytes, owner: Mailbox | None, snapshot: Snapshot | None) -> str:
    if owner is None:
        return "not authenticated"
    try:
        # Raw 8-bit display names from old clients are not UTF-8; replacing
        # the bytes keeps them readable, and an address with a replaced
        # byte can only fail the comparison below.
        addresses = parse_mailbox_list(value.decode("utf-8", errors="replace"))
    except MailboxListError as exc:
        return f"unreadable ({exc})"
    for address in addresses:
        if not owns(owner, address, snapshot):
            return f"{address} is not the user's"
    return ""


class HeaderGate:
    """Hold back the header section of a streaming message until decided.

    ``feed(data)`` returns the bytes to store now (``b""`` while the header
    is still arriving); ``finish()`` returns what is left at end of data.
    Once ``verdict`` has a refusal nothing more is returned.
    """

    def __init__(self, limit: int, decide: Callable[[bytes, bool], HeaderVerdict]) -> None:
        self._limit = limit
        self._decide = decide
        self._held = bytearray()
        self.verdict: HeaderVerdict | None = None

    @property
    def refusal(self) -> Reply | None:
        return None if self.verdict is None else self.verdict.refusal

    def feed(self, data: bytes) -> bytes:
        if self.verdict is not None:
            return b"" if self.verdict.refusal else data
        searched = max(len(self._held) - 3, 0)
        self._held += data
        end = self._header_end(searched)
        if end is not None and end <= self._limit:
            return self._release(end, complete=True)
        if end is not None or len(self._held) > self._limit:
            # Over the limit wherever the chunks happened to be cut.
            return self._release(self._limit, complete=False)
        return b""

    def finish(self) -> bytes:
        """End of data: a message without an empty line is all header."""
        if self.verdict is not None:
            return b""
        return self._release(len(self._held), complete=True)

    def _header_end(self, searched: int) -> int | None:
        # RFC 5322 §2.1: the header section ends at the first empty line.
        if self._held.startswith(b"\r\n"):
            return 2
        at = self._held.find(b"\r\n\r\n", searched)
        return None if at < 0 else at + 4

    def _release(self, end: int, *, complete: bool) -> bytes:
        verdict = self._decide(bytes(self._held[:end]), complete)
        self.verdict = verdict
        held, self._held = bytes(self._held), bytearray()
        if verdict.refusal is not None:
            return b""
        return verdict.added + held

