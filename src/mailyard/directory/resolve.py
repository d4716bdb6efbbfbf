"""Where does mail for an address go? Pure functions of a directory snapshot.

smtpd calls ``resolve`` at RCPT time (on the event loop) and the delivery
side at delivery time, so it must be cheap and must not do I/O: a few
dictionary lookups in an immutable ``Snapshot``.

The order of the rules, first match wins (VMailMgr's and qmail-local's,
in one table):

1. a domain we do not host: ``NotLocal``;
2. a domain alias (``DomainSettings.alias_of``): the same local part at the
   aliased domain, one level only (the admin refuses chains);
3. a mailbox or an alias with exactly that local part;
4. an extension address ``base<sep>ext`` for each separator of the domain,
   the longest base first (qmail's rule for ``a-b-c``: ``a-b`` before
   ``a``), matched as in 3 with the extension kept for delivery rules;
5. the domain's catch-all;
6. ``UnknownLocal``.

A mailbox that does not take mail now (receiving off, or expired) is
``Refused``; one with forwards is a ``Forward`` that may keep a copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypeAlias

from mailyard.directory.model import Alias, Domain, Mailbox, Snapshot
from mailyard.message.address import Address, AddressError, parse_address

__all__ = [
    "MAX_EXPANSION",
    "MAX_EXPANSION_DEPTH",
    "Forward",
    "LocalMailbox",
    "NotLocal",
    "Refused",
    "Resolution",
    "UnknownLocal",
    "expand",
    "resolve",
]

# Aliases within aliases are followed this deep (qmail-local gives up on a
# .qmail chain at a similar depth); deeper is a misconfiguration or a loop.
MAX_EXPANSION_DEPTH: Final = 8
# One expansion yields at most this many recipients, whatever the nesting.
MAX_EXPANSION: Final = 20000


@dataclass(frozen=True, slots=True)
class LocalMailbox:
    """One of our mailboxes: deliver into its Maildir.

    ``extension`` is what followed the separator when the mail was
    addressed to ``user+ext``: delivery files it into that folder when the
    mailbox has one.
    """

    mailbox: Mailbox
    extension: str | None = None


@dataclass(frozen=True, slots=True)
class Forward:
    """An alias, a catch-all or a mailbox with forwards: the mail goes on.

    ``source`` is the address whose rule this is; ``owner`` (mailing lists)
    becomes the envelope sender of the copies; ``keep`` is the mailbox that
    keeps its own copy as well (forwards with keep_copy).
    """

    source: Address
    targets: tuple[str, ...]
    owner: str | None = None
    keep: Mailbox | None = None
    extension: str | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """A mailbox that does not take mail now: 550 with ``status`` (RFC 3463)."""

    reason: str
    status: str = "5.2.1"


@dataclass(frozen=True, slots=True)
class UnknownLocal:
    """One of our domains but no such address: 550 5.1.1 (RFC 3463 bad mailbox)."""


@dataclass(frozen=True, slots=True)
class NotLocal:
    """Not a domain we host: the relay rules decide."""


Resolution: TypeAlias = LocalMailbox | Forward | Refused | UnknownLocal | NotLocal


def resolve(snapshot: Snapshot, address: Address, now: float | None = None) -> Resolution:
    """Resolve ``address`` (canonical, as ``parse_address`` makes it) against ``snapshot``.

    Local parts compare case-insensitively through ``Address.key`` (RFC 5321
    §2.4 leaves case to the receiving host; mailyard folds it). ``now``
    (epoch seconds) decides expiry; None ignores it.
    """
    domain = snapshot.domains.get(address.domain)
    if domain is None:
        return NotLocal()
    target_domain = domain.settings.alias_of
    if target_domain is not None:
        domain = snapshot.domains.get(target_domain)
        if domain is None or domain.settings.alias_of is not None:
            return UnknownLocal()
        address = Address(address.local, domain.name)
    found = _exact(snapshot, address, None, now)
    if found is not None:
        return found
    found = _by_extension(snapshot, domain, address, now)
    if found is not None:
        return found
    if domain.settings.catch_all:
        return Forward(address, domain.settings.catch_all)
    return UnknownLocal()


def _exact(
    snapshot: Snapshot, address: Address, extension: str | None, now: float | None
) -> Resolution | None:
    key = address.key
    mailbox = snapshot.mailboxes.get(key)
    if mailbox is not None:
        return _mailbox(mailbox, extension, now)
    alias = snapshot.aliases.get(key)
    if alias is not None:
        return _alias(alias, extension)
    return None


def _by_extension(
    snapshot: Snapshot, domain: Domain, address: Address, now: float | None
) -> Resolution | None:
    separators = domain.settings.extension_chars
    if not separators:
        return None
    local = address.local
    # Longest base first: scan separator positions from the right.
    for position in range(len(local) - 1, 0, -1):
        if local[position] not in separators:
            continue
        base, extension = local[:position], local[position + 1 :]
        if not extension:
            continue
        found = _exact(snapshot, Address(base, domain.name), extension, now)
        if found is not None:
            return found
    return None


def _mailbox(mailbox: Mailbox, extension: str | None, now: float | None) -> Resolution:
    if now is not None and mailbox.expired(now):
        return Refused("this mailbox has expired")
    if not mailbox.receive:
        return Refused("this mailbox does not accept mail")
    if mailbox.forwards:
        keep = mailbox if mailbox.keep_copy else None
        return Forward(mailbox.address, mailbox.forwards, None, keep, extension)
    return LocalMailbox(mailbox, extension)


def _alias(alias: Alias, extension: str | None) -> Forward:
    return Forward(alias.address, alias.targets, alias.owner, None, extension)


def expand(
    snapshot: Snapshot,
    forward: Forward,
    now: float | None = None,
    *,
    exclude: set[tuple[str, str]] | None = None,
) -> tuple[str, ...]:
    """The final recipients of ``forward``, in order, without duplicates.

    Aliases (and catch-alls) among the targets are flattened, at most
    ``MAX_EXPANSION_DEPTH`` deep, each alias once (a cycle is cut where it
    closes). A mailbox is kept as a recipient even when it has forwards of
    its own: those apply when the copy is delivered to it, where the
    ``Delivered-To:`` loop check sees them. Duplicates are recognised by the
    key of the mailbox a target reaches (``bob@`` and ``Bob+x@`` are one
    copy), by the address key for other hosts. ``exclude`` holds keys that
    already have a copy of this message; the keys reached here are added to
    it, so a delivery pass can share it across recipients. A target that is
    not a valid address is dropped: the admin checks targets when they are
    stored, so only a hand-edited database has them.
    """
    seen = exclude if exclude is not None else set()
    if forward.keep is not None:
        seen.add(forward.keep.address.key)
    out: list[str] = []
    _flatten(snapshot, forward, now, seen, {forward.source.key}, 0, out)
    return tuple(out)


def _flatten(
    snapshot: Snapshot,
    forward: Forward,
    now: float | None,
    seen: set[tuple[str, str]],
    aliases_open: set[tuple[str, str]],
    depth: int,
    out: list[str],
) -> None:
    for text in forward.targets:
        if len(out) >= MAX_EXPANSION:
            return
        try:
            target = parse_address(text)
        except AddressError:
            continue
        found = resolve(snapshot, target, now)
        if isinstance(found, Forward) and found.source.key not in snapshot.mailboxes:
            # An alias or a catch-all: follow it, once, not too deep.
            key = found.source.key
            if key in aliases_open or depth + 1 >= MAX_EXPANSION_DEPTH:
                continue
            aliases_open.add(key)
            _flatten(snapshot, found, now, seen, aliases_open, depth + 1, out)
            continue
        key = _copy_key(found, target)
        if key in seen:
            continue
        seen.add(key)
        out.append(text)


def _copy_key(found: Resolution, target: Address) -> tuple[str, str]:
    """What identifies one copy: the mailbox reached, else the address itself."""
    if isinstance(found, LocalMailbox):
        return found.mailbox.address.key
    if isinstance(found, Forward):
        return found.source.key
    return target.key
