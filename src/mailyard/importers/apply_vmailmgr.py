"""A VMailMgr domain imported: its passwd.cdb read, its Maildirs adopted in place.

Adopting a Maildir (no copy): the mailbox's ``maildir`` column is
``<domain>/<local>`` below ``<state>/mail`` like every other mailbox, and
that entry is either

* ``LINK`` (the default): a symbolic link to the existing Maildir. The
  store opens the mailbox root by path and everything inside it relative
  to that root; ``O_NOFOLLOW`` guards only the last component of the files
  it opens (uid list, index, locks, messages), never the root, and
  ``fsio.safe_join`` checks the names, not what they point to. So a link at
  the root works, and the old tree keeps serving the old stack during the
  migration. ``user remove`` then removes the entry but not the tree (it
  refuses to delete through a link), which is what one wants for a tree
  another system owns;
* ``MOVE``: the Maildir is renamed into ``<state>/mail`` (same filesystem
  only: a rename, never a copy), after which the old stack no longer sees it.

Password hashes are stored as they are (crypt, MD5-crypt, SHA-crypt):
directory.passwords verifies them with libpass and logins.py replaces them
with argon2id at the user's next login. The mailbox itself is made with
``admin.create_user`` (checked address and domain; it adds the default
folders that are missing), its settings with ``admin.set_user_settings``.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
from dataclasses import asdict, dataclass, field
from typing import Final

import cdblib  # type: ignore[import-untyped]

from mailyard import fsio
from mailyard.directory import admin
from mailyard.directory.errors import DirectoryError
from mailyard.directory.model import maildir_for
from mailyard.directory.store import Directory
from mailyard.importers.report import Created, ImportReport, Progress, Unmapped, no_progress
from mailyard.importers.vmailmgr import (
    PlannedMailbox,
    VmailmgrPlan,
    VpwEntry,
    VpwError,
    decode_vpwentry,
)

__all__ = ["LOCKED_HASH", "Adopt", "apply_vmailmgr", "read_passwd_cdb"]

PASSWD_CDB: Final = "passwd.cdb"  # noqa: S105 (a file name, not a password)
# A hash no password matches: owners created by an import log in only
# after `mailyard owner passwd`.
LOCKED_HASH: Final = "!"
_MAX_CDB: Final = 1 << 30


class Adopt(enum.Enum):
    LINK = "link"
    MOVE = "move"


@dataclass(slots=True)
class _Outcome:
    created: list[Created] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_passwd_cdb(home: str) -> tuple[list[VpwEntry], list[Unmapped]]:
    """Every entry of ``<home>/passwd.cdb``, and the records that could not be read."""
    with open(os.path.join(home, PASSWD_CDB), "rb") as handle:
        data = handle.read(_MAX_CDB)
    entries: list[VpwEntry] = []
    bad: list[Unmapped] = []
    for key, value in cdblib.Reader(data).iteritems():
        try:
            entries.append(decode_vpwentry(bytes(key), bytes(value)))
        except VpwError as exc:
            bad.append(Unmapped(bytes(key).decode("utf-8", "replace"), f"unreadable record: {exc}"))
    return entries, bad


def _inside(path: str, home: str) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(home)
    return real != base and real.startswith(base.rstrip("/") + "/")


def _place(source: str, dest: str, mode: Adopt) -> None:
    parent = os.path.dirname(dest)
    fsio.ensure_dir(parent)
    if mode is Adopt.LINK:
        # fsio has no symlink primitive; the entry is made durable the fsio way.
        os.symlink(os.path.realpath(source), dest)
    else:
        fsio.rename_into(source, dest)
        fsio.fsync_dir(os.path.dirname(source))
    fsio.fsync_dir(parent)


def _undo(source: str, dest: str, mode: Adopt) -> None:
    with contextlib.suppress(OSError):
        if mode is Adopt.LINK:
            os.unlink(dest)
        else:
            fsio.rename_into(dest, source)


def _adopt(directory: Directory, mail_root: str, planned: PlannedMailbox, *, home: str,
           mode: Adopt, dry_run: bool, out: _Outcome) -> None:
    address = planned.address
    label = str(address)
    source = planned.source
    if not os.path.isdir(os.path.join(source, "cur")) or not _inside(source, home):
        out.unmapped.append(Unmapped(label, f"{source} is not a Maildir inside {home}"))
        return
    if directory.get_mailbox(address) is not None:
        out.unmapped.append(Unmapped(label, "the mailbox exists already; left as it is"))
        return
    dest = fsio.safe_join(mail_root, maildir_for(address))
    if os.path.lexists(dest):
        out.unmapped.append(Unmapped(label, f"{dest} exists already"))
        return
    detail = f"{mode.value} {source}"
    if dry_run:
        out.created.append(Created("mailbox", label, detail))
        return
    try:
        _place(source, dest, mode)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EXDEV:
            reason = "another filesystem: --move only renames; adopt it as a link instead"
        out.unmapped.append(Unmapped(label, f"cannot {mode.value} the Maildir: {reason}"))
        return
    try:
        admin.create_user(directory, mail_root, address, planned.password_hash)
    except DirectoryError as exc:
        _undo(source, dest, mode)
        out.unmapped.append(Unmapped(label, str(exc)))
        return
    out.created.append(Created("mailbox", label, detail))
    try:
        admin.set_user_settings(directory, address, **asdict(planned.settings))
    except DirectoryError as exc:
        out.notes.append(f"{label}: created, but its settings were refused: {exc}")


def _domain(directory: Directory, plan: VmailmgrPlan, owner: str | None, dry_run: bool,
            out: _Outcome) -> bool:
    if directory.get_domain(plan.domain) is not None:
        out.notes.append(f"domain {plan.domain} exists already; its mailboxes are added to it")
        return True
    out.created.append(Created("domain", plan.domain, f"owner {owner or '-'}"))
    if dry_run:
        return True
    try:
        if owner is not None and directory.get_owner(owner) is None:
            admin.add_owner(directory, owner, LOCKED_HASH)
            out.created.append(Created("owner", owner, "login disabled until "
                                       f"`mailyard owner passwd {owner}`"))
        admin.add_domain(directory, plan.domain, owner=owner)
    except DirectoryError as exc:
        out.created.pop()
        out.unmapped.append(Unmapped(f"domain {plan.domain}", str(exc)))
        return False
    return True


def _aliases(directory: Directory, plan: VmailmgrPlan, dry_run: bool, out: _Outcome) -> None:
    for alias in plan.aliases:
        label = str(alias.address)
        if dry_run:
            out.created.append(Created("alias", label, ", ".join(alias.targets)))
            continue
        try:
            admin.add_alias(directory, alias.address, alias.targets)
        except DirectoryError as exc:
            out.unmapped.append(Unmapped(label, str(exc)))
            continue
        out.created.append(Created("alias", label, ", ".join(alias.targets)))
    if plan.catch_all:
        if not dry_run:
            try:
                admin.set_domain_settings(directory, plan.domain, catch_all=plan.catch_all)
            except DirectoryError as exc:
                out.unmapped.append(Unmapped(f"catch-all of {plan.domain}", str(exc)))
                return
        out.created.append(Created("catch-all", plan.domain, ", ".join(plan.catch_all)))


def apply_vmailmgr(directory: Directory, mail_root: str, plan: VmailmgrPlan, *, home: str,
                   owner: str | None = None, mode: Adopt = Adopt.LINK, dry_run: bool = False,
                   progress: Progress = no_progress) -> ImportReport:
    """Create the domain, adopt every mailbox, add aliases and the catch-all."""
    out = _Outcome(unmapped=list(plan.unmapped), notes=list(plan.notes))
    if _domain(directory, plan, owner, dry_run, out):
        total = len(plan.mailboxes)
        for done, planned in enumerate(plan.mailboxes, 1):
            _adopt(directory, mail_root, planned, home=home, mode=mode, dry_run=dry_run, out=out)
            progress(done, total)
        _aliases(directory, plan, dry_run, out)
    return ImportReport(tuple(out.created), tuple(out.unmapped), tuple(out.notes), dry_run)
