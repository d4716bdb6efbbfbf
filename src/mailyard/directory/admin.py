"""Checked directory operations: who may change what, and the Maildirs that go with it.

VMailMgr's rule: an owner manages only its own domains and their mailboxes,
aliases and settings; whoever can read the state folder is the site
administrator and manages everything, including owners and the list of
hosted domains (adding a domain changes where the site accepts mail, so
owners cannot); a user, authenticated with its mailbox password, changes
only its own password, forwards and vacation message. Each operation takes
an ``actor`` (see ``access``); the CLI authenticates an owner or a user
before it builds an ``OwnerActor`` or a ``UserActor``.

This module holds owners, domains and mailboxes; aliases are in
``admin_aliases``, settings and vacations in ``admin_settings``, and all
are importable from here.
"""

from __future__ import annotations

import contextlib
import os
import shutil

from mailyard import fsio
from mailyard.directory.access import (
    SITE_ADMIN,
    Actor,
    OwnerActor,
    SiteAdmin,
    UserActor,
    checked_address,
    require_admin,
    require_domain,
    require_mailbox,
    require_manager,
)
from mailyard.directory.admin_aliases import (
    add_alias,
    get_alias,
    list_aliases,
    remove_alias,
    update_alias,
)
from mailyard.directory.admin_settings import (
    clear_vacation,
    get_vacation,
    set_domain_settings,
    set_user_settings,
    set_vacation,
)
from mailyard.directory.errors import (
    AlreadyExists,
    DirectoryError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    StorageError,
)
from mailyard.directory.model import (
    Domain,
    Mailbox,
    Owner,
    canonical_owner_name,
    hosted_domain,
    maildir_for,
)
from mailyard.directory.store import Directory
from mailyard.maildir.errors import StoreError
from mailyard.maildir.mailstore import create_default_folders
from mailyard.message.address import Address

__all__ = [
    "SITE_ADMIN",
    "Actor",
    "AlreadyExists",
    "DirectoryError",
    "InvalidInput",
    "NotFound",
    "OwnerActor",
    "PermissionDenied",
    "SiteAdmin",
    "StorageError",
    "UserActor",
    "add_alias",
    "add_domain",
    "add_owner",
    "clear_vacation",
    "create_user",
    "get_alias",
    "get_domain",
    "get_user",
    "get_vacation",
    "list_aliases",
    "list_domains",
    "list_owners",
    "list_users",
    "remove_alias",
    "remove_domain",
    "remove_owner",
    "remove_user",
    "set_domain_owner",
    "set_domain_settings",
    "set_owner_password",
    "set_user_enabled",
    "set_user_password",
    "set_user_settings",
    "set_vacation",
    "update_alias",
]


def _maildir_path(mail_root: str, maildir: str) -> str:
    try:
        return fsio.safe_join(mail_root, maildir)
    except fsio.UnsafePathError as exc:
        raise InvalidInput(f"unsafe maildir path {maildir!r}") from exc


def _delete_maildir(mail_root: str, maildir: str) -> None:
    """Delete a mailbox's Maildir tree: only the stored path, only below mail_root.

    shutil.rmtree refuses a symlink at the top and, on Linux, walks by file
    descriptor without following links, so nothing outside the tree goes.
    """
    path = _maildir_path(mail_root, maildir)
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StorageError(
            f"entry removed, but its Maildir {maildir} could not be deleted: {exc.strerror or exc}"
        ) from exc


# -- owners (site administrator only) ------------------------------------------


def add_owner(
    directory: Directory, name: str, password_hash: str, *, actor: Actor = SITE_ADMIN
) -> Owner:
    require_admin(actor, "add owners")
    return directory.add_owner(canonical_owner_name(name), password_hash)


def remove_owner(directory: Directory, name: str, *, actor: Actor = SITE_ADMIN) -> None:
    require_admin(actor, "remove owners")
    directory.remove_owner(name)


def set_owner_password(
    directory: Directory, name: str, password_hash: str, *, actor: Actor = SITE_ADMIN
) -> None:
    require_admin(actor, "change owner passwords")
    directory.set_owner_password(name, password_hash)


def list_owners(directory: Directory, *, actor: Actor = SITE_ADMIN) -> list[Owner]:
    require_admin(actor, "list owners")
    return directory.list_owners()


# -- domains ---------------------------------------------------------------------


def add_domain(
    directory: Directory, name: str, *, owner: str | None = None, actor: Actor = SITE_ADMIN
) -> Domain:
    require_admin(actor, "add domains")
    return directory.add_domain(name, owner)


def set_domain_owner(
    directory: Directory, name: str, owner: str | None, *, actor: Actor = SITE_ADMIN
) -> Domain:
    require_admin(actor, "change a domain's owner")
    return directory.set_domain_owner(name, owner)


def remove_domain(
    directory: Directory,
    mail_root: str,
    name: str,
    *,
    force: bool = False,
    keep_mail: bool = False,
    actor: Actor = SITE_ADMIN,
) -> list[Mailbox]:
    """Remove a domain (refused while it has mailboxes unless ``force``).

    With ``force`` its mailboxes go too and, unless ``keep_mail``, their
    Maildirs. Returns the mailboxes removed.
    """
    require_admin(actor, "remove domains")
    canonical = hosted_domain(name)
    removed = directory.remove_domain(canonical, force=force)
    if not keep_mail:
        for mailbox in removed:
            _delete_maildir(mail_root, mailbox.maildir)
        # The domain's folder goes too, but only if nothing else is left in it
        # (rmdir fails on a non-empty or missing folder, which is fine).
        with contextlib.suppress(OSError):
            os.rmdir(_maildir_path(mail_root, canonical))
    return removed


def list_domains(directory: Directory, *, actor: Actor = SITE_ADMIN) -> list[Domain]:
    require_manager(actor)
    if isinstance(actor, OwnerActor):
        return directory.list_domains(owner=actor.name)
    return directory.list_domains()


def get_domain(directory: Directory, name: str, *, actor: Actor = SITE_ADMIN) -> Domain:
    return require_domain(directory, actor, name)


# -- users -----------------------------------------------------------------------


def create_user(
    directory: Directory,
    mail_root: str,
    address: Address,
    password_hash: str,
    *,
    actor: Actor = SITE_ADMIN,
) -> Mailbox:
    """Create a mailbox: check, choose its Maildir path, create the Maildir, insert the entry.

    The Maildir exists before the entry does, so mail accepted for the new
    address always has somewhere to go. A Maildir left by an earlier
    ``remove --keep-mail`` of the same address is reused, old mail and all.
    """
    address = checked_address(address)
    if not password_hash:
        raise InvalidInput("a mailbox needs a password hash")
    domain = require_domain(directory, actor, address.domain)
    # Checked again by the store in its transaction; checked here too so a
    # refused address does not leave a Maildir behind.
    if domain.settings.alias_of is not None:
        raise InvalidInput(
            f"domain {domain.name} is an alias of {domain.settings.alias_of}; "
            "add the mailbox there instead"
        )
    if directory.get_mailbox(address) is not None:
        raise AlreadyExists(f"mailbox {address} already exists")
    if directory.get_alias(address) is not None:
        raise AlreadyExists(f"{address} is an alias; a mailbox cannot take its address")
    maildir = maildir_for(address)
    try:
        # INBOX plus Drafts, Sent, Trash, Junk and Archive (RFC 6154), as
        # IMAP clients expect to find them.
        create_default_folders(_maildir_path(mail_root, maildir))
    except OSError as exc:
        raise StorageError(f"cannot create Maildir {maildir}: {exc.strerror or exc}") from exc
    except StoreError as exc:
        raise StorageError(f"cannot create Maildir {maildir}: {exc.reason}") from exc
    return directory.add_mailbox(address, maildir, password_hash)


def remove_user(
    directory: Directory,
    mail_root: str,
    address: Address,
    *,
    keep_mail: bool = False,
    actor: Actor = SITE_ADMIN,
) -> Mailbox:
    """Remove a mailbox's entry, then (unless ``keep_mail``) its Maildir tree."""
    address = checked_address(address)
    require_domain(directory, actor, address.domain)
    # The entry goes first: from then on no new mail is routed to the Maildir.
    mailbox = directory.remove_mailbox(address)
    if not keep_mail:
        _delete_maildir(mail_root, mailbox.maildir)
    return mailbox


def set_user_password(
    directory: Directory, address: Address, password_hash: str, *, actor: Actor = SITE_ADMIN
) -> None:
    """Set a mailbox's password hash (a user: its own)."""
    address = checked_address(address)
    if not password_hash:
        raise InvalidInput("a mailbox needs a password hash")
    require_mailbox(directory, actor, address)
    directory.set_password(address, password_hash)


def set_user_enabled(
    directory: Directory, address: Address, enabled: bool, *, actor: Actor = SITE_ADMIN
) -> None:
    address = checked_address(address)
    require_domain(directory, actor, address.domain)
    directory.set_enabled(address, enabled)


def get_user(directory: Directory, address: Address, *, actor: Actor = SITE_ADMIN) -> Mailbox:
    """One mailbox (a user: its own)."""
    address = checked_address(address)
    require_mailbox(directory, actor, address)
    mailbox = directory.get_mailbox(address)
    if mailbox is None:
        raise NotFound(f"no such mailbox {address}")
    return mailbox


def list_users(
    directory: Directory, domain: str | None = None, *, actor: Actor = SITE_ADMIN
) -> list[Mailbox]:
    """Mailboxes of one domain, or of every domain the actor manages."""
    require_manager(actor)
    if domain is not None:
        return directory.list_mailboxes(require_domain(directory, actor, domain).name)
    if isinstance(actor, OwnerActor):
        return [
            mailbox
            for owned in directory.list_domains(owner=actor.name)
            for mailbox in directory.list_mailboxes(owned.name)
        ]
    return directory.list_mailboxes()
