"""Who acts, and the permission checks every admin operation starts with.

Three kinds of actor (VMailMgr's model, plus its users' own tools):

* the site administrator: whoever can read the state folder; everything;
* a domain owner (``OwnerActor``): its own domains, their mailboxes,
  aliases and settings; nothing that changes which domains the site hosts;
* a user (``UserActor``), authenticated with the mailbox password: its own
  password, forwards and autoresponder, nothing else.

Refusals do not tell whether the thing exists: for an owner, a domain it
does not manage is refused the same way whether or not it is hosted, and
a user asking about another address is refused before any lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypeAlias

from mailyard.directory.errors import InvalidInput, NotFound, PermissionDenied
from mailyard.directory.model import Domain, hosted_domain
from mailyard.directory.store import Directory
from mailyard.message.address import Address, AddressError, parse_address, validate_localpart

__all__ = [
    "SITE_ADMIN",
    "Actor",
    "OwnerActor",
    "SiteAdmin",
    "UserActor",
    "checked_address",
    "require_admin",
    "require_domain",
    "require_mailbox",
    "require_manager",
]


@dataclass(frozen=True, slots=True)
class SiteAdmin:
    """The site administrator: anyone who can read the state folder."""


@dataclass(frozen=True, slots=True)
class OwnerActor:
    """An authenticated domain owner."""

    name: str


@dataclass(frozen=True, slots=True)
class UserActor:
    """A user authenticated with its mailbox password; acts only on that mailbox."""

    address: Address


Actor: TypeAlias = SiteAdmin | OwnerActor | UserActor
SITE_ADMIN: Final = SiteAdmin()


def _user_refusal(actor: UserActor) -> PermissionDenied:
    return PermissionDenied(f"user {actor.address} may only manage its own mailbox")


def require_admin(actor: Actor, action: str) -> None:
    """Refuse anyone but the site administrator."""
    if not isinstance(actor, SiteAdmin):
        raise PermissionDenied(f"only the site administrator may {action}")


def require_manager(actor: Actor) -> None:
    """Refuse a user: domain-wide operations and lists are for owners and the site."""
    if isinstance(actor, UserActor):
        raise _user_refusal(actor)


def require_domain(directory: Directory, actor: Actor, name: str) -> Domain:
    """The domain, if ``actor`` may manage it (see module doc for the refusal rule)."""
    require_manager(actor)
    canonical = hosted_domain(name)
    domain = directory.get_domain(canonical)
    if isinstance(actor, OwnerActor):
        if domain is None or domain.owner != actor.name:
            raise PermissionDenied(f"owner {actor.name} does not manage domain {canonical}")
    elif domain is None:
        raise NotFound(f"no such domain {canonical}")
    return domain


def require_mailbox(directory: Directory, actor: Actor, address: Address) -> None:
    """``actor`` may act on the mailbox ``address``: its own (a user) or its domain's."""
    if isinstance(actor, UserActor):
        if actor.address.key != address.key:
            raise _user_refusal(actor)
        return
    require_domain(directory, actor, address.domain)


def checked_address(address: Address | str) -> Address:
    """A local address in canonical form (parsed first when given as text)."""
    if isinstance(address, str):
        try:
            address = parse_address(address.strip())
        except AddressError as exc:
            raise InvalidInput(f"invalid address {address!r}: {exc}") from exc
    try:
        validate_localpart(address.local, utf8=True)
    except AddressError as exc:
        raise InvalidInput(f"invalid address {address}: {exc}") from exc
    return Address(address.local, hosted_domain(address.domain))
