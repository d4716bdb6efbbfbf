"""The appliers against a real directory and real Maildirs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from passlib.hash import md5_crypt, sha512_crypt

from mailyard.directory import admin
from mailyard.directory.logins import authenticate
from mailyard.directory.passwords import is_argon2
from mailyard.directory.store import Directory
from mailyard.importers import qmail
from mailyard.importers.apply_courier import import_courier
from mailyard.importers.apply_qmail import apply_qmail, read_control
from mailyard.importers.apply_vmailmgr import Adopt, apply_vmailmgr, read_passwd_cdb
from mailyard.importers.courier import KeywordList
from mailyard.importers.vmailmgr import VpwEntry, plan_vmailmgr
from mailyard.maildir.folders import INBOX
from mailyard.maildir.mailstore import Mailstore
from mailyard.message.address import Address
from tests.importers.fixtures import courier_folder, put, vmailmgr_home


@pytest.fixture
def directory(tmp_path: Path):
    d = Directory.open(str(tmp_path / "directory.sqlite"))
    yield d
    d.close()


@pytest.fixture
def mail_root(tmp_path: Path) -> str:
    root = tmp_path / "mail"
    root.mkdir()
    return str(root)


def test_qmail_creates_domains_and_locked_owners(tmp_path: Path, directory: Directory) -> None:
    control = tmp_path / "control"
    control.mkdir()
    (control / "virtualdomains").write_text("example.com:alice\nexample.org:bob-org\n")
    (control / "rcpthosts").write_text("example.com\nexample.org\n")
    plan = qmail.plan_qmail(read_control(str(control)), owners=True)
    dry = apply_qmail(directory, plan, dry_run=True)
    assert dry.dry_run and {c.item for c in dry.created} >= {"example.com", "alice"}
    assert directory.list_domains() == []
    done = apply_qmail(directory, plan)
    assert [(d.name, d.owner) for d in directory.list_domains()] == [
        ("example.com", "alice"), ("example.org", "bob")]
    assert directory.get_owner("alice") is not None
    again = apply_qmail(directory, plan)
    assert [u.item for u in again.unmapped] == ["domain example.com", "domain example.org"]
    assert done.unmapped == ()


def _entries() -> list[VpwEntry]:
    return [
        VpwEntry("bob", md5_crypt.hash("bob secret"), "./users/bob", ("x@remote.test",), "Bob",
                 hardquota=10_000_000, msgcount=5000, msgsize=1_000_000),
        VpwEntry("carol", sha512_crypt.hash("carol secret"), "./users/carol"),
        VpwEntry("sales", "*", "", ("bob", "carol"), has_mailbox=False),
        VpwEntry("+", "*", "", ("bob",), has_mailbox=False),
    ]


def _import(tmp_path: Path, directory: Directory, mail_root: str, mode: Adopt = Adopt.LINK):
    home = vmailmgr_home(tmp_path / "vhome", _entries())
    put(home / "users" / "bob", "new", "1100000000.1.oldhost")
    entries, bad = read_passwd_cdb(str(home))
    assert bad == []
    plan = plan_vmailmgr(entries, "example.com", str(home))
    return home, apply_vmailmgr(directory, mail_root, plan, home=str(home), mode=mode)


def test_vmailmgr_adopts_maildirs_by_link(tmp_path: Path, directory: Directory,
                                          mail_root: str) -> None:
    home, result = _import(tmp_path, directory, mail_root)
    assert result.unmapped == ()
    bob = directory.get_mailbox(Address("bob", "example.com"))
    assert bob is not None and bob.maildir == "example.com/bob"
    link = Path(mail_root) / "example.com" / "bob"
    assert link.is_symlink() and link.resolve() == (home / "users" / "bob").resolve()
    # The adopted Maildir is read through the link, old mail and all.
    folder = Mailstore(str(link)).folder(INBOX)
    folder.sync()
    assert len(folder.uids) == 1
    assert bob.forwards == ("x@remote.test",) and bob.display_name == "Bob"
    assert (bob.quota_bytes, bob.quota_messages, bob.max_message_size) == (
        10_000_000, 5000, 1_000_000)
    alias = directory.get_alias(Address("sales", "example.com"))
    assert alias is not None and alias.targets == ("bob@example.com", "carol@example.com")
    domain = directory.get_domain("example.com")
    assert domain is not None and domain.settings.catch_all == ("bob@example.com",)


def test_vmailmgr_move(tmp_path: Path, directory: Directory, mail_root: str) -> None:
    home, result = _import(tmp_path, directory, mail_root, Adopt.MOVE)
    assert result.unmapped == ()
    moved = Path(mail_root) / "example.com" / "carol"
    assert moved.is_dir() and not moved.is_symlink()
    assert not (home / "users" / "carol").exists()


@pytest.mark.parametrize(("user", "password"), [("bob", "bob secret"), ("carol", "carol secret")])
def test_imported_crypt_hash_logs_in_and_is_upgraded(
        tmp_path: Path, directory: Directory, mail_root: str, user: str, password: str) -> None:
    _import(tmp_path, directory, mail_root)
    before = directory.get_mailbox(Address(user, "example.com"))
    assert before is not None and before.password_hash.startswith(("$1$", "$6$"))
    assert authenticate(directory, f"{user}@example.com", "wrong", None) is None
    mailbox = authenticate(directory, f"{user}@example.com", password, None)
    assert mailbox is not None
    after = directory.get_mailbox(Address(user, "example.com"))
    assert after is not None and is_argon2(after.password_hash)
    assert authenticate(directory, f"{user}@example.com", password, None) is not None


def test_vmailmgr_dry_run_changes_nothing(tmp_path: Path, directory: Directory,
                                          mail_root: str) -> None:
    home = vmailmgr_home(tmp_path / "vhome", _entries())
    entries, _ = read_passwd_cdb(str(home))
    plan = plan_vmailmgr(entries, "example.com", str(home))
    result = apply_vmailmgr(directory, mail_root, plan, home=str(home), dry_run=True)
    assert {c.item for c in result.created} >= {"bob@example.com", "sales@example.com"}
    assert directory.list_domains() == [] and os.listdir(mail_root) == []


def _courier_tree(root: Path) -> None:
    keywords = KeywordList(("$Label1", "Work"), {"1100000002.b.host": ("Work", "$Label1")})
    courier_folder(root, 123456789, [
        ("cur", "1100000001.a.host:2,S", 4),
        ("cur", "1100000002.b.host:2,RS", 9),
        ("new", "1100000003.c.host", 10),
        ("cur", "1100000004.d.host:2,", None),  # Courier never numbered it
    ], keywords, nextuid=15)
    courier_folder(root / ".Sent", 987654, [("cur", "1100000005.e.host:2,S", 2)])
    (root / ".Sent" / "maildirfolder").write_bytes(b"")
    (root / "courierimapsubscribed").write_text("INBOX.Sent\n")


def test_courier_uids_keywords_and_subscriptions(tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    _courier_tree(root)
    result = import_courier(str(root))
    assert result.unmapped == ()
    store = Mailstore(str(root))
    inbox = store.folder(INBOX)
    inbox.sync()
    assert inbox.uidvalidity == 123456789
    assert list(inbox.uids) == [4, 9, 10, 15]  # the unnumbered one comes after nextuid
    info = inbox.info(9)
    assert info is not None
    assert set(inbox.flag_names(info.flags)) == {"\\Seen", "\\Answered", "Work", "$Label1"}
    sent = store.folder("Sent")
    sent.sync()
    assert (sent.uidvalidity, list(sent.uids)) == (987654, [2])
    assert "Sent" in store.subscriptions()
    assert int((root / "mailyard-uidvalidity").read_text()) >= 123456789


def test_courier_refuses_to_replace_without_force(tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    _courier_tree(root)
    import_courier(str(root))
    again = import_courier(str(root))
    assert {u.item for u in again.unmapped} == {"INBOX", "Sent"}
    assert import_courier(str(root), force=True).unmapped == ()


def test_courier_dry_run(tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    _courier_tree(root)
    result = import_courier(str(root), dry_run=True)
    assert result.dry_run and [c.item for c in result.created][:2] == ["INBOX", "Sent"]
    assert not (root / "mailyard-uidlist").exists()
    assert (root / "new" / "1100000003.c.host").exists()


def test_admin_refuses_user_that_exists(tmp_path: Path, directory: Directory,
                                        mail_root: str) -> None:
    admin.add_domain(directory, "example.com")
    admin.create_user(directory, mail_root, Address("bob", "example.com"), "*")
    _, result = _import(tmp_path, directory, mail_root)
    assert [u.item for u in result.unmapped] == ["bob@example.com"]
