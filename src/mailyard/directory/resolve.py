"""Where does mail for an address go? A pure function of a directory snapshot.

smtpd calls ``resolve`` at RCPT time (on the event loop) and the queue
manager at delivery time, so it must be cheap and must not do I/O: two
dictionary lookups in an immutable ``Snapshot``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from mailyard.directory.model import Mailbox, Snapshot
from mailyard.message.address import Address

__all__ = ["LocalMailbox", "NotLocal", "Resolution", "UnknownLocal", "resolve"]


@dataclass(frozen=True, slots=True)
class LocalMailbox:
    """One of our mailboxes: deliver into its Maildir."""

    mailbox: Mailbox


@dataclass(frozen=True, slots=True)
class UnknownLocal:
    """One of our domains but no such mailbox: 550 5.1.1 (RFC 3463 bad mailbox)."""


@dataclass(frozen=True, slots=True)
class NotLocal:
    """Not a domain we host: the relay rules decide."""


Resolution: TypeAlias = LocalMailbox | UnknownLocal | NotLocal


def resolve(snapshot: Snapshot, address: Address) -> Resolution:
    """Resolve ``address`` (canonical, as ``parse_address`` makes it) against ``snapshot``.

    Local parts compare case-insensitively through ``Address.key`` (RFC 5321
    §2.4 leaves case to the receiving host; mailyard folds it). A disabled
    mailbox still receives mail: "disabled" means it cannot log in.
    """
    if address.domain not in snapshot.domains:
        return NotLocal()
    mailbox = snapshot.mailboxes.get(address.key)
    if mailbox is None:
        return UnknownLocal()
    return LocalMailbox(mailbox)
