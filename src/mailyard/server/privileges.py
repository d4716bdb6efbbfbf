"""Who each worker runs as, and the state folder parts each one must own.

qmail SECURITY §2–4 and MODELS §7.3e: the supervisor binds the ports as
root, then every worker runs unprivileged. ``server.user`` is the SMTP
side's user, ``server.mail_user`` the user of mailbox access (IMAP, POP3)
and delivery. A worker starts as root, reads what only root may read (the
TLS key), loads its code, then drops for good (``drop_to``: setgroups,
setresgid, setresuid, checked) before it opens a store or reads a byte
from the network. Dropping after exec rather than between fork and exec
keeps the interpreter and the key out of the unprivileged user's reach:
it needs neither to be readable by it.

Started as a normal user nothing changes hands: every worker runs as that
user (the embedded default). Naming a user other than oneself then is an
error, not a silent no-op.

Until the queue has its own writer process the SMTP side commits to
``queue/`` itself, and every role reads the directory database: the files
there are private to their owner (mode 0600), so ``user`` and
``mail_user`` must name the same user for now (docs/supervision.md).
"""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from typing import Final

from mailyard.config import Config
from mailyard.log import event

__all__ = [
    "Identity",
    "PrivilegeError",
    "RunAs",
    "check_identity",
    "drop_to",
    "identity_args",
    "plan_identities",
    "prepare_state",
    "resolve_user",
]

# The state folder parts the workers write; the configuration, the TLS
# key and everything else stay the administrator's.
_OWNED_TREES: Final = ("queue", "mail", "run")
_OWNED_FILES: Final = ("directory.sqlite", "directory.sqlite-wal", "directory.sqlite-shm")


class PrivilegeError(Exception):
    """A configured user cannot be used, or a drop did not happen."""


@dataclass(frozen=True, slots=True)
class Identity:
    """A user to run as: uid, primary gid, supplementary groups."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class RunAs:
    """The identity of each side; None = stay as the invoking user."""

    smtp: Identity | None
    mail: Identity | None


def resolve_user(name: str) -> Identity:
    """The passwd entry of ``name`` (a name or a numeric uid)."""
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, OverflowError) as exc:
        raise PrivilegeError(f"no such user {name!r}") from exc
    groups = tuple(sorted(set(os.getgrouplist(entry.pw_name, entry.pw_gid))))
    return Identity(entry.pw_name, entry.pw_uid, entry.pw_gid, groups)


def plan_identities(config: Config) -> RunAs:
    """Resolve ``[server] user`` and ``mail_user``; PrivilegeError if unusable."""
    names = config.server.user, config.server.mail_user or config.server.user
    if not any(names):
        return RunAs(None, None)
    smtp, mail = (resolve_user(n) if n else None for n in names)
    if os.geteuid() != 0:
        for who in (smtp, mail):
            if who is not None and who.uid != os.geteuid():
                raise PrivilegeError(f"only root can run workers as {who.name!r}")
        return RunAs(None, None)
    for who in (smtp, mail):
        if who is not None and who.uid == 0:
            raise PrivilegeError(f"{who.name!r} is root: name an unprivileged user")
    if smtp is not None and mail is not None and smtp.uid != mail.uid:
        # The SMTP side still writes queue/ and reads directory.sqlite,
        # both mode 0600: a second uid there would lock it out.
        raise PrivilegeError("server.user and server.mail_user must be the same user until "
                             "the queue has its own writer (docs/supervision.md)")
    return RunAs(smtp or mail, mail or smtp)


def identity_args(who: Identity | None) -> list[str]:
    """The worker command line's part that names its identity (none: no drop)."""
    if who is None:
        return []
    return ["--user", who.name, "--uid", str(who.uid), "--gid", str(who.gid),
            "--groups", ",".join(map(str, who.groups))]


def drop_to(who: Identity) -> None:
    """Become ``who`` for good: groups first, then gid, then uid (setresuid
    also clears the saved uid, so root cannot be taken back), then check."""
    if os.geteuid() == 0:
        os.setgroups(list(who.groups))
        os.setresgid(who.gid, who.gid, who.gid)
        os.setresuid(who.uid, who.uid, who.uid)
    check_identity(who.uid)
    if who.uid != 0:
        try:
            os.setuid(0)
        except PermissionError:
            return
        raise PrivilegeError("root could be taken back after the drop")


def check_identity(expected_uid: int | None) -> None:
    """A worker's first act: refuse to serve as root when a user was configured,
    or as anyone else than the user it was started for."""
    if expected_uid is None:
        return
    ids = os.getresuid(), os.getresgid()
    if any(u != expected_uid for u in ids[0]) or (expected_uid != 0 and 0 in ids[1]):
        raise PrivilegeError(f"running with uids {ids[0]} gids {ids[1]}, "
                             f"expected uid {expected_uid}")


def prepare_state(config: Config, who: Identity | None) -> int:
    """Started as root: give the parts the workers write to ``who``.

    Walks queue/, mail/ and run/ (one lstat per entry; files made by an
    administrator running the CLI as root become the worker's again) and
    the directory database. The state folder itself is made the worker's
    too: SQLite creates its -wal and -shm files next to the database.
    Returns how many entries changed owner.
    """
    if who is None or os.geteuid() != 0:
        return 0
    _check_reachable(config.state_dir, who)
    changed = _chown(config.state_dir, who)
    for name in _OWNED_FILES:
        path = config.path(name)
        if os.path.lexists(path):
            changed += _chown(path, who)
    for tree in _OWNED_TREES:
        for root, dirs, files in os.walk(config.path(tree)):
            changed += _chown(root, who)
            for name in dirs + files:
                changed += _chown(os.path.join(root, name), who)
    if changed:
        event("privileges.chown", user=who.name, entries=changed)
    return changed


def _chown(path: str, who: Identity) -> int:
    st = os.lstat(path)
    if (st.st_uid, st.st_gid) == (who.uid, who.gid):
        return 0
    # lchown: a symlink planted in the tree must not hand its target over.
    os.lchown(path, who.uid, who.gid)
    return 1



def _check_reachable(path: str, who: Identity) -> None:
    """Every folder above the state folder must let ``who`` through (search
    permission), or each worker would fail on its first open."""
    current = os.path.dirname(os.path.abspath(path))
    while True:
        st = os.stat(current)
        if st.st_uid == who.uid:
            bit = stat.S_IXUSR
        elif st.st_gid == who.gid or st.st_gid in who.groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            raise PrivilegeError(f"{who.name} cannot reach {path}: {current} is mode "
                                 f"{stat.S_IMODE(st.st_mode):o} (owner {st.st_uid})")
        parent = os.path.dirname(current)
        if parent == current:
            return
        current = parent
