from __future__ import annotations

import shutil

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mailyard.directory import admin
from mailyard.directory.admin import SITE_ADMIN, OwnerActor
from mailyard.directory.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    PermissionDenied,
    StorageError,
)
from mailyard.directory.store import Directory
from mailyard.message.address import Address

ALICE = OwnerActor("alice")


@pytest.fixture
def site(directory: Directory) -> Directory:
    """alice owns a.test; b.test belongs to bob; c.test has no owner."""
    admin.add_owner(directory, "alice", "h")
    admin.add_owner(directory, "bob", "h")
    admin.add_domain(directory, "a.test", owner="alice")
    admin.add_domain(directory, "b.test", owner="bob")
    admin.add_domain(directory, "c.test")
    return directory


def _maildir(mail_root: str, relative: str) -> Path:
    return Path(mail_root) / relative


def test_create_user_makes_the_maildir_then_the_entry(site: Directory, mail_root: str) -> None:
    mailbox = admin.create_user(site, mail_root, Address("Ann.Lee", "a.test"), "h")
    assert mailbox.maildir == "a.test/ann.lee"
    root = _maildir(mail_root, mailbox.maildir)
    assert all((root / sub).is_dir() for sub in ("tmp", "new", "cur"))
    assert site.get_mailbox(Address("ann.lee", "a.test")) == mailbox


def test_create_user_refusals(site: Directory, mail_root: str) -> None:
    admin.create_user(site, mail_root, Address("ann", "a.test"), "h")
    with pytest.raises(AlreadyExists):
        admin.create_user(site, mail_root, Address("ANN", "a.test"), "h")
    with pytest.raises(NotFound, match="no such domain"):
        admin.create_user(site, mail_root, Address("ann", "nowhere.test"), "h")
    with pytest.raises(InvalidInput):
        admin.create_user(site, mail_root, Address("", "a.test"), "h")
    with pytest.raises(InvalidInput):
        admin.create_user(site, mail_root, Address("ctl\x01", "a.test"), "h")
    with pytest.raises(InvalidInput):
        admin.create_user(site, mail_root, Address("ann2", "a.test"), "")


def test_odd_local_parts_get_safe_maildirs(site: Directory, mail_root: str) -> None:
    box = admin.create_user(site, mail_root, Address("../../etc", "a.test"), "h")
    assert box.maildir == "a.test/%2E.%2F..%2Fetc"  # one component: "/" is escaped
    assert _maildir(mail_root, box.maildir).is_dir()
    assert os.listdir(mail_root) == ["a.test"]


def test_unwritable_mail_root_is_a_storage_error(site: Directory, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(StorageError, match="cannot create Maildir"):
        admin.create_user(site, str(blocker), Address("ann", "a.test"), "h")
    assert site.get_mailbox(Address("ann", "a.test")) is None


def test_remove_user_deletes_only_its_maildir(site: Directory, mail_root: str) -> None:
    ann = admin.create_user(site, mail_root, Address("ann", "a.test"), "h")
    ben = admin.create_user(site, mail_root, Address("ben", "a.test"), "h")
    (_maildir(mail_root, ann.maildir) / "new" / "1.msg").write_text("mail")
    admin.remove_user(site, mail_root, Address("ann", "a.test"))
    assert not _maildir(mail_root, ann.maildir).exists()
    assert _maildir(mail_root, ben.maildir).is_dir()
    with pytest.raises(NotFound):
        admin.remove_user(site, mail_root, Address("ann", "a.test"))


def test_remove_user_keep_mail_and_recreate_finds_it(site: Directory, mail_root: str) -> None:
    ann = admin.create_user(site, mail_root, Address("ann", "a.test"), "h")
    (_maildir(mail_root, ann.maildir) / "new" / "1.msg").write_text("mail")
    admin.remove_user(site, mail_root, Address("ann", "a.test"), keep_mail=True)
    assert (_maildir(mail_root, ann.maildir) / "new" / "1.msg").exists()
    admin.create_user(site, mail_root, Address("ann", "a.test"), "h")
    assert (_maildir(mail_root, ann.maildir) / "new" / "1.msg").exists()


def test_remove_user_refuses_a_symlinked_maildir(
    site: Directory, mail_root: str, tmp_path: Path
) -> None:
    ann = admin.create_user(site, mail_root, Address("ann", "a.test"), "h")
    path = _maildir(mail_root, ann.maildir)
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep").write_text("x")
    shutil.rmtree(path)  # the Maildir with its default folders
    path.symlink_to(outside)
    with pytest.raises(StorageError, match="could not be deleted"):
        admin.remove_user(site, mail_root, Address("ann", "a.test"))
    assert (outside / "keep").exists()


def test_remove_domain_force_removes_mailboxes_and_maildirs(
    site: Directory, mail_root: str
) -> None:
    admin.create_user(site, mail_root, Address("ann", "a.test"), "h")
    with pytest.raises(InvalidInput, match="1 mailbox"):
        admin.remove_domain(site, mail_root, "a.test")
    removed = admin.remove_domain(site, mail_root, "a.test", force=True)
    assert [str(m.address) for m in removed] == ["ann@a.test"]
    assert not (Path(mail_root) / "a.test").exists()
    assert site.get_domain("a.test") is None


def test_remove_domain_force_keep_mail(site: Directory, mail_root: str) -> None:
    ann = admin.create_user(site, mail_root, Address("ann", "a.test"), "h")
    admin.remove_domain(site, mail_root, "a.test", force=True, keep_mail=True)
    assert _maildir(mail_root, ann.maildir).is_dir()


# -- who may do what -----------------------------------------------------------------


def test_owner_manages_its_own_domain(site: Directory, mail_root: str) -> None:
    address = Address("ann", "a.test")
    admin.create_user(site, mail_root, address, "h", actor=ALICE)
    admin.set_user_password(site, address, "h2", actor=ALICE)
    admin.set_user_enabled(site, address, False, actor=ALICE)
    assert not admin.get_user(site, address, actor=ALICE).enabled
    assert [str(m.address) for m in admin.list_users(site, actor=ALICE)] == ["ann@a.test"]
    assert [str(m.address) for m in admin.list_users(site, "a.test", actor=ALICE)] == ["ann@a.test"]
    assert [d.name for d in admin.list_domains(site, actor=ALICE)] == ["a.test"]
    assert admin.get_domain(site, "A.TEST", actor=ALICE).name == "a.test"
    admin.remove_user(site, mail_root, address, actor=ALICE)


@pytest.mark.parametrize("domain", ["b.test", "c.test", "missing.test"])
def test_owner_cannot_touch_other_domains(site: Directory, mail_root: str, domain: str) -> None:
    # Someone else's, nobody's and a missing domain are refused alike.
    address = Address("ann", domain)
    if domain != "missing.test":
        admin.create_user(site, mail_root, address, "h")
    calls: list[Callable[[], object]] = [
        lambda: admin.create_user(site, mail_root, Address("new", domain), "h", actor=ALICE),
        lambda: admin.remove_user(site, mail_root, address, actor=ALICE),
        lambda: admin.set_user_password(site, address, "x", actor=ALICE),
        lambda: admin.set_user_enabled(site, address, False, actor=ALICE),
        lambda: admin.get_user(site, address, actor=ALICE),
        lambda: admin.get_domain(site, domain, actor=ALICE),
        lambda: admin.list_users(site, domain, actor=ALICE),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied, match=f"owner alice does not manage domain {domain}"):
            call()
    if domain != "missing.test":
        assert admin.get_user(site, address).password_hash == "h"


def test_site_admin_only_operations(site: Directory, mail_root: str) -> None:
    calls: list[Callable[[], object]] = [
        lambda: admin.add_domain(site, "new.test", owner="alice", actor=ALICE),
        lambda: admin.remove_domain(site, mail_root, "a.test", actor=ALICE),
        lambda: admin.set_domain_owner(site, "c.test", "alice", actor=ALICE),
        lambda: admin.add_owner(site, "carol", "h", actor=ALICE),
        lambda: admin.remove_owner(site, "bob", actor=ALICE),
        lambda: admin.set_owner_password(site, "alice", "h", actor=ALICE),
        lambda: admin.list_owners(site, actor=ALICE),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied, match="only the site administrator"):
            call()
    assert site.get_domain("a.test") is not None
    assert admin.set_domain_owner(site, "c.test", "alice", actor=SITE_ADMIN).owner == "alice"
    assert [d.name for d in admin.list_domains(site, actor=ALICE)] == ["a.test", "c.test"]
