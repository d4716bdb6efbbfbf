"""Checked alias operations: addresses without a mailbox, and mailing lists.

An alias lives in a hosted domain the actor manages (owners: their own;
users: none). Its address is not a mailbox's, its targets are 1 to
``MAX_ALIAS_TARGETS`` parsed addresses, local or remote, never the alias
itself. With a list owner it is a mailing list: the expanded copies carry
the owner as envelope sender, so bounces go to the owner.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from mailyard.directory.access import (
    SITE_ADMIN,
    Actor,
    OwnerActor,
    checked_address,
    require_domain,
    require_manager,
)
from mailyard.directory.checks import checked_target, checked_targets
from mailyard.directory.errors import AlreadyExists, InvalidInput, NotFound
from mailyard.directory.model import Alias
from mailyard.directory.store import Directory
from mailyard.message.address import Address, parse_address

__all__ = ["add_alias", "get_alias", "list_aliases", "remove_alias", "update_alias"]


def _checked_alias(
    directory: Directory,
    actor: Actor,
    address: Address | str,
    targets: Iterable[str],
    owner: str | None,
) -> Alias:
    parsed = checked_address(address)
    domain = require_domain(directory, actor, parsed.domain)
    if domain.settings.alias_of is not None:
        raise InvalidInput(
            f"domain {domain.name} is an alias of {domain.settings.alias_of}; "
            "add the alias there instead"
        )
    checked = checked_targets(targets, "alias target", minimum=1, itself=parsed)
    list_owner = None
    if owner is not None:
        list_owner = checked_target(owner, "list owner")
        # Bounces to the list itself would go out to every member again.
        if parse_address(list_owner).key == parsed.key:
            raise InvalidInput(f"the owner of list {parsed} cannot be the list itself")
    return Alias(parsed, checked, list_owner, time.time())


def add_alias(
    directory: Directory,
    address: Address | str,
    targets: Iterable[str],
    *,
    owner: str | None = None,
    actor: Actor = SITE_ADMIN,
) -> Alias:
    """Create an alias (AlreadyExists if an alias or a mailbox has the address)."""
    alias = _checked_alias(directory, actor, address, targets, owner)
    # Checked again by the store in its transaction; this gives the clearer message first.
    if directory.get_mailbox(alias.address) is not None:
        raise AlreadyExists(f"{alias.address} is a mailbox; an alias cannot take its address")
    return directory.add_alias(alias)


def update_alias(
    directory: Directory,
    address: Address | str,
    targets: Iterable[str],
    *,
    owner: str | None = None,
    actor: Actor = SITE_ADMIN,
) -> Alias:
    """Replace an existing alias's targets and list owner (NotFound if there is none)."""
    return directory.update_alias(_checked_alias(directory, actor, address, targets, owner))


def remove_alias(
    directory: Directory, address: Address | str, *, actor: Actor = SITE_ADMIN
) -> Alias:
    """Remove an alias; return what it was."""
    parsed = checked_address(address)
    require_domain(directory, actor, parsed.domain)
    return directory.remove_alias(parsed)


def get_alias(directory: Directory, address: Address | str, *, actor: Actor = SITE_ADMIN) -> Alias:
    """One alias (NotFound if there is none)."""
    parsed = checked_address(address)
    require_domain(directory, actor, parsed.domain)
    alias = directory.get_alias(parsed)
    if alias is None:
        raise NotFound(f"no such alias {parsed}")
    return alias


def list_aliases(
    directory: Directory, domain: str | None = None, *, actor: Actor = SITE_ADMIN
) -> list[Alias]:
    """Aliases of one domain, or of every domain the actor manages."""
    if domain is not None:
        return directory.list_aliases(require_domain(directory, actor, domain).name)
    require_manager(actor)
    if isinstance(actor, OwnerActor):
        return [
            alias
            for owned in directory.list_domains(owner=actor.name)
            for alias in directory.list_aliases(owned.name)
        ]
    return directory.list_aliases()
