"""Who each worker runs as, and the state folder parts each one must own.

qmail SECURITY §2–4 and MODELS §7.3e: the supervisor binds the ports as
root, then every worker runs unprivileged. ``server.user`` is the SMTP
side's user, ``server.mail_user`` the user of mailbox access (IMAP, POP3)
and delivery. A worker starts as root, reads what only root may read (the
TLS key), loads its code, then drops for good (``drop_to``: setgroups,
setresgid, setresuid, checked) before it opens a store or reads a byte
from the network. Dropping after exec rather than between fork and exec
keeps the interpreter and the key out of the unprivileged user's reach:
it needs neither to be readable by it (what Python would load on first
use, codecs for instance, is then loaded before the drop: server/preload.py).

Started as a normal user nothing changes hands: every worker runs as that
user (the embedded default). Naming a user other than oneself then is an
error, not a silent no-op.

``user`` and ``mail_user`` may differ: the SMTP side then cannot write
``queue/`` (the queue writer, ``server/injector.py``, commits for it) nor
read ``mail/``, but it reads the directory database (RCPT checks, AUTH)
and reaches the writer's socket in ``run/``. Those are shared through one
group (``[server] group``, default the mail user's primary group), which
the SMTP worker gets as a supplementary group at its drop, so nothing has
to be added to /etc/group: the state folder and ``run/`` are mode 2750,
``directory.sqlite`` and its -wal and -shm 0640 (read-only to the SMTP
side: it cannot change a password), ``run/metrics`` 3770,
everything else stays the mail user's alone (docs/supervision.md).
"""

from __future__ import annotations

import grp
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
    "granted",
    "identity_args",
    "plan_identities",
    "prepare_state",
    "queue_writer_separate",
    "resolve_group",
    "resolve_user",
]

# The state folder parts the workers write; the configuration, the TLS
# key and everything else stay the administrator's.
_OWNED_TREES: Final = ("queue", "mail", "run")
_OWNED_FILES: Final = ("directory.sqlite", "directory.sqlite-wal", "directory.sqlite-shm")
# With two users: what the shared group may read, and the modes that say
# so. The database is read-only to the group: SQLite (3.22+) reads a WAL
# database without writing -shm when -wal and -shm exist, which the
# supervisor ensures by holding a connection open.
_SHARED_DIR_MODE: Final = 0o2750  # setgid: new entries keep the group
_SHARED_FILE_MODE: Final = 0o640
_METRICS_MODE: Final = 0o3770  # every worker adds its file; sticky: only its own


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
    """The identity of each side; None = stay as the invoking user.

    ``group`` is the gid both sides share when they are different users
    (None when they are one user, or nobody changes user).
    """

    smtp: Identity | None
    mail: Identity | None
    group: int | None = None


def resolve_user(name: str) -> Identity:
    """The passwd entry of ``name`` (a name or a numeric uid)."""
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, OverflowError) as exc:
        raise PrivilegeError(f"no such user {name!r}") from exc
    groups = tuple(sorted(set(os.getgrouplist(entry.pw_name, entry.pw_gid))))
    return Identity(entry.pw_name, entry.pw_uid, entry.pw_gid, groups)


def resolve_group(name: str) -> int:
    """The gid of group ``name`` (a name or a number)."""
    try:
        return grp.getgrgid(int(name)).gr_gid if name.isdigit() else grp.getgrnam(name).gr_gid
    except (KeyError, OverflowError) as exc:
        raise PrivilegeError(f"no such group {name!r}") from exc


def queue_writer_separate(config: Config) -> bool:
    """Whether the queue has a writer process of its own (``[server] queue_writer``):
    "auto" means so when started as root with a ``user`` to drop the SMTP side to."""
    mode = config.server.queue_writer
    if mode == "auto":
        return os.geteuid() == 0 and bool(config.server.user)
    return mode == "separate"


def _with_group(who: Identity, gid: int) -> Identity:
    groups = tuple(sorted({*who.groups, gid}))
    return Identity(who.name, who.uid, who.gid, groups)


def plan_identities(config: Config) -> RunAs:
    """Resolve ``[server] user``, ``mail_user`` and ``group``; PrivilegeError if unusable."""
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
    smtp, mail = smtp or mail, mail or smtp
    assert smtp is not None and mail is not None
    if smtp.uid == mail.uid:
        return RunAs(smtp, mail)
    if not queue_writer_separate(config):
        # Inline, the SMTP side writes queue/ itself: it would be locked out.
        raise PrivilegeError('a server.user other than server.mail_user needs '
                             'server.queue_writer = "auto" or "separate"')
    gid = resolve_group(config.server.group) if config.server.group else mail.gid
    # The shared group travels as a supplementary group of each drop, so
    # the administrator need not add the users to it.
    return RunAs(_with_group(smtp, gid), _with_group(mail, gid), gid)


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


def prepare_state(config: Config, who: Identity | None, group: int | None = None) -> int:
    """Started as root: give the parts the workers write to ``who``.

    Walks queue/, mail/ and run/ (one lstat per entry; files made by an
    administrator running the CLI as root become the worker's again) and
    the directory database. The state folder itself is made the worker's
    too: SQLite creates its -wal and -shm files next to the database.
    With a shared ``group`` (two users), the state folder, ``run/`` and the
    database get that group and the modes of the module doc. Returns how
    many entries changed owner or mode.
    """
    if who is None or os.geteuid() != 0:
        return 0
    _check_reachable(config.state_dir, who)
    modes = _shared_modes(config) if group is not None else {}

    def own(path: str) -> int:
        return _chown(path, who, group if path in modes else None)

    changed = own(config.state_dir)
    for name in _OWNED_FILES:
        path = config.path(name)
        if os.path.lexists(path):
            changed += own(path)
    for tree in _OWNED_TREES:
        for root, dirs, files in os.walk(config.path(tree)):
            changed += own(root)
            for name in dirs + files:
                changed += own(os.path.join(root, name))
    for path, mode in modes.items():
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            raise PrivilegeError(f"{path} is a symbolic link")
        if stat.S_IMODE(st.st_mode) != mode:
            os.chmod(path, mode)
            changed += 1
    if changed:
        event("privileges.chown", user=who.name, entries=changed)
    return changed


def _shared_modes(config: Config) -> dict[str, int]:
    """What the SMTP side reads, with its mode; the group gets them (module doc)."""
    metrics = config.path("run", "metrics")
    os.makedirs(metrics, mode=0o700, exist_ok=True)
    modes = {config.state_dir: _SHARED_DIR_MODE, config.path("run"): _SHARED_DIR_MODE,
             metrics: _METRICS_MODE}
    modes.update((config.path(n), _SHARED_FILE_MODE) for n in _OWNED_FILES
                 if os.path.lexists(config.path(n)))
    return modes


def _chown(path: str, who: Identity, gid: int | None = None) -> int:
    st = os.lstat(path)
    gid = who.gid if gid is None else gid
    if (st.st_uid, st.st_gid) == (who.uid, gid):
        return 0
    # lchown: a symlink planted in the tree must not hand its target over.
    os.lchown(path, who.uid, gid)
    return 1


def granted(st: os.stat_result, who: Identity) -> int:
    """The rwx bits (as "other" bits, 0–7) the kernel grants ``who``, not
    root, on a file with status ``st``: owner, else group, else other."""
    if st.st_uid == who.uid:
        return (st.st_mode >> 6) & 0o7
    if st.st_gid == who.gid or st.st_gid in who.groups:
        return (st.st_mode >> 3) & 0o7
    return st.st_mode & 0o7


def _check_reachable(path: str, who: Identity) -> None:
    """Every folder above the state folder must let ``who`` through (search
    permission), or each worker would fail on its first open."""
    current = os.path.dirname(os.path.abspath(path))
    while True:
        st = os.stat(current)
        if not granted(st, who) & stat.S_IXOTH:
            raise PrivilegeError(f"{who.name} cannot reach {path}: {current} is mode "
                                 f"{stat.S_IMODE(st.st_mode):o} (owner {st.st_uid})")
        parent = os.path.dirname(current)
        if parent == current:
            return
        current = parent
