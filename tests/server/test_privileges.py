"""Who the workers run as: resolving users, planning, the drop, the state folder's owners.

The drop itself is tested in a child process (a drop cannot be undone);
the end-to-end test (tests/e2e/test_supervise_e2e.py) checks real workers
through /proc.
"""

from __future__ import annotations

import multiprocessing
import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailyard.config import Config, ConfigError, load_config
from mailyard.server.privileges import (
    Identity,
    PrivilegeError,
    RunAs,
    check_identity,
    drop_to,
    identity_args,
    plan_identities,
    prepare_state,
    queue_writer_separate,
    resolve_user,
)

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="changing owners and users needs root")


def config_with(state: Path, server: str) -> Config:
    state.mkdir(parents=True, exist_ok=True)
    (state / "mailyard.toml").write_text(f"[server]\n{server}\n")
    return load_config(str(state))


def test_resolve_user_by_name_and_by_number() -> None:
    nobody = pwd.getpwnam("nobody")
    by_name = resolve_user("nobody")
    assert (by_name.uid, by_name.gid) == (nobody.pw_uid, nobody.pw_gid)
    assert nobody.pw_gid in by_name.groups
    assert resolve_user(str(nobody.pw_uid)) == by_name
    with pytest.raises(PrivilegeError, match="no such user"):
        resolve_user("no-such-user-mailyard")


def test_no_users_configured_means_no_change(tmp_path: Path) -> None:
    config = config_with(tmp_path / "s", "")
    assert plan_identities(config) == RunAs(None, None)
    assert identity_args(None) == []


@needs_root
def test_as_root_both_sides_get_the_configured_user(tmp_path: Path) -> None:
    config = config_with(tmp_path / "s", 'user = "nobody"')
    nobody = resolve_user("nobody")
    assert plan_identities(config) == RunAs(nobody, nobody)
    args = identity_args(nobody)
    assert args[:4] == ["--user", "nobody", "--uid", str(nobody.uid)]


def _second_user() -> str:
    daemon = next((p.pw_name for p in pwd.getpwall()
                   if p.pw_uid not in (0, pwd.getpwnam("nobody").pw_uid)), None)
    if daemon is None:
        pytest.skip("no second unprivileged user on this system")
    return daemon


@needs_root
def test_as_root_refuses_root_and_split_users_with_an_inline_queue(tmp_path: Path) -> None:
    with pytest.raises(PrivilegeError, match="unprivileged"):
        plan_identities(config_with(tmp_path / "a", 'user = "root"'))
    daemon = _second_user()
    with pytest.raises(PrivilegeError, match="queue_writer"):
        plan_identities(config_with(
            tmp_path / "b", f'user = "nobody"\nmail_user = "{daemon}"\nqueue_writer = "inline"'))


@needs_root
def test_split_users_share_the_mail_users_group(tmp_path: Path) -> None:
    daemon = resolve_user(_second_user())
    run_as = plan_identities(config_with(
        tmp_path / "s", f'user = "nobody"\nmail_user = "{daemon.name}"'))
    assert run_as.group == daemon.gid
    assert run_as.smtp is not None and run_as.mail is not None
    assert run_as.smtp.uid == resolve_user("nobody").uid
    assert daemon.gid in run_as.smtp.groups  # given at the drop, not by /etc/group
    assert run_as.mail.uid == daemon.uid
    root_group = plan_identities(config_with(
        tmp_path / "g", f'user = "nobody"\nmail_user = "{daemon.name}"\ngroup = "0"'))
    assert root_group.group == 0
    with pytest.raises(PrivilegeError, match="no such group"):
        plan_identities(config_with(
            tmp_path / "n", f'user = "nobody"\nmail_user = "{daemon.name}"\n'
                            'group = "no-such-group-mailyard"'))


def test_queue_writer_setting(tmp_path: Path) -> None:
    auto = config_with(tmp_path / "a", "")
    assert queue_writer_separate(auto) is False  # no user: inline, whoever runs it
    assert queue_writer_separate(config_with(tmp_path / "s", 'queue_writer = "separate"'))
    assert not queue_writer_separate(config_with(tmp_path / "i", 'queue_writer = "inline"'))
    with pytest.raises(ConfigError, match="queue_writer"):
        config_with(tmp_path / "bad", 'queue_writer = "sometimes"')
    if ROOT:
        assert queue_writer_separate(config_with(tmp_path / "r", 'user = "nobody"'))


@pytest.mark.skipif(ROOT, reason="run as an unprivileged user")
def test_a_normal_user_cannot_name_another(tmp_path: Path) -> None:
    with pytest.raises(PrivilegeError, match="only root"):
        plan_identities(config_with(tmp_path / "s", 'user = "root"'))


def test_check_identity_accepts_the_expected_uid_only() -> None:
    check_identity(None)
    check_identity(os.getuid())
    with pytest.raises(PrivilegeError, match="expected uid"):
        check_identity(os.getuid() + 1)


def _drop_and_report(who: Identity, queue: multiprocessing.Queue[object]) -> None:
    try:
        drop_to(who)
        queue.put((os.getresuid(), os.getresgid(), sorted(os.getgroups())))
    except PrivilegeError as exc:
        queue.put(str(exc))


@needs_root
def test_drop_changes_every_id_and_cannot_be_undone() -> None:
    nobody = resolve_user("nobody")
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[object] = context.Queue()
    child = context.Process(target=_drop_and_report, args=(nobody, queue))
    child.start()
    result = queue.get(timeout=30)
    child.join(30)
    assert result == ((nobody.uid,) * 3, (nobody.gid,) * 3, sorted(nobody.groups))


@pytest.fixture
def open_state() -> Iterator[Path]:
    """A state folder nobody can reach (pytest's tmp folders are root's, mode 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="mailyard-priv-", dir="/tmp"))
    folder.chmod(0o711)
    try:
        yield folder / "state"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@needs_root
def test_prepare_state_gives_the_written_parts_to_the_worker(open_state: Path) -> None:
    config = config_with(open_state, 'user = "nobody"')
    for part in ("queue/mess/0", "mail/example.test/alice/new", "run", "tls"):
        (open_state / part).mkdir(parents=True)
    (open_state / "mail/example.test/alice/new/1.msg").write_bytes(b"x")
    (open_state / "directory.sqlite").write_bytes(b"")
    (open_state / "tls/key.pem").write_bytes(b"secret")
    outside = open_state.parent / "outside"
    outside.write_bytes(b"not ours")
    (open_state / "mail/link").symlink_to(outside)
    nobody = resolve_user("nobody")
    changed = prepare_state(config, nobody)
    assert changed >= 8
    for part in ("", "queue/mess/0", "mail/example.test/alice/new/1.msg", "run",
                 "directory.sqlite"):
        assert (open_state / part).stat().st_uid == nobody.uid, part
    assert (open_state / "mail/link").lstat().st_uid == nobody.uid
    # Not followed out of the tree, and the key and configuration stay root's.
    assert outside.stat().st_uid == 0
    assert (open_state / "tls/key.pem").stat().st_uid == 0
    assert (open_state / "mailyard.toml").stat().st_uid == 0
    assert prepare_state(config, nobody) == 0


@needs_root
def test_prepare_state_refuses_a_folder_the_worker_cannot_reach(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    config = config_with(tmp_path / "state", 'user = "nobody"')
    with pytest.raises(PrivilegeError, match="cannot reach"):
        prepare_state(config, resolve_user("nobody"))


@needs_root
def test_prepare_state_with_a_shared_group(open_state: Path) -> None:
    config = config_with(open_state, 'user = "nobody"')
    (open_state / "queue").mkdir()
    (open_state / "run").mkdir()
    for name in ("directory.sqlite", "directory.sqlite-wal", "directory.sqlite-shm"):
        (open_state / name).write_bytes(b"")
    nobody = resolve_user("nobody")
    group = 4242  # a gid with no entry: ownership and modes need none
    assert prepare_state(config, nobody, group) > 0
    for part, mode in (("", 0o2750), ("run", 0o2750), ("run/metrics", 0o3770),
                       ("directory.sqlite", 0o640), ("directory.sqlite-shm", 0o640)):
        st = (open_state / part).stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (nobody.uid, group, mode), part
    assert (open_state / "queue").stat().st_gid == nobody.gid  # not shared
    assert prepare_state(config, nobody, group) == 0
