"""The folder tree: LIST, CREATE, DELETE, RENAME (INBOX too), subscriptions, special use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailyard.maildir.deliver import ensure_maildir
from mailyard.maildir.errors import (
    ErrorCode,
    FolderExists,
    FolderNameError,
    NoSuchFolder,
    StoreError,
)
from mailyard.maildir.folder import StoreMode
from mailyard.maildir.mailstore import FolderEntry, Mailstore, create_default_folders
from mailyard.maildir.quota import QuotaLimits
from tests.maildir.storehelp import deliver_to, names as listed


@pytest.fixture
def store(tmp_path: Path) -> Mailstore:
    root = tmp_path / "box"
    ensure_maildir(str(root))
    return Mailstore(str(root), hostname="imap.example")


def _entries(store: Mailstore) -> dict[str, tuple[bool, bool]]:
    return {e.name: (e.exists, e.has_children) for e in store.list_folders()}


def test_create_with_superiors_and_list(store: Mailstore) -> None:
    root = Path(store.root)
    store.create("Work/Projects/2024/")  # RFC 3501 §6.3.3: trailing delimiter dropped
    for dirname in (".Work", ".Work.Projects", ".Work.Projects.2024"):
        assert (root / dirname / "maildirfolder").is_file()
        assert all((root / dirname / sub).is_dir() for sub in ("tmp", "new", "cur"))
    assert _entries(store) == {"INBOX": (True, False), "Work": (True, True),
                               "Work/Projects": (True, True),
                               "Work/Projects/2024": (True, False)}
    with pytest.raises(FolderExists):
        store.create("Work/Projects")
    with pytest.raises(FolderExists):
        store.create("inbox")
    assert os.listdir(root / "tmp") == []


def test_names_are_checked(store: Mailstore) -> None:
    for bad in ("../evil", "a/../../b", "/abs", "a\0b", "tab\there", "a//b", "x" * 300):
        with pytest.raises(FolderNameError) as caught:
            store.create(bad)
        assert caught.value.code is ErrorCode.CANNOT
    assert [e.name for e in store.list_folders()] == ["INBOX"]


def test_unicode_and_dots_on_disk(store: Mailstore) -> None:
    root = Path(store.root)
    store.create("Entwürfe")
    store.create("v1.2/notes")
    assert (root / ".Entw&APw-rfe").is_dir()
    assert (root / ".v1&AC4-2.notes").is_dir()
    assert set(_entries(store)) == {"INBOX", "Entwürfe", "v1.2", "v1.2/notes"}
    # A folder another tool created with a raw UTF-8 name is found too.
    ensure_maildir(str(root / ".Brouillons-é"))
    assert store.exists("Brouillons-é")
    assert store.folder("Brouillons-é").path == str(root / ".Brouillons-é")


def test_missing_superiors_are_listed_as_nonexistent(store: Mailstore) -> None:
    ensure_maildir(str(Path(store.root) / ".A.B"))  # Maildir++ allows a child alone
    entries = {e.name: e for e in store.list_folders()}
    assert entries["A"] == FolderEntry("A", False, True, (), False)
    assert entries["A/B"].exists
    with pytest.raises(StoreError) as caught:
        store.delete("A")  # RFC 3501 §6.3.4: \Noselect with inferiors
    assert caught.value.code is ErrorCode.CANNOT
    with pytest.raises(NoSuchFolder):
        store.delete("Nothing")
    with pytest.raises(StoreError):
        store.delete("INBOX")


def test_delete_keeps_inferiors(store: Mailstore) -> None:
    store.create("A/B")
    deliver_to(Path(store.root) / ".A")
    folder = store.folder("A")
    folder.sync()
    store.delete("A")
    # RFC 3501 §6.3.4: A loses its messages and becomes \Noselect; A/B stays.
    assert _entries(store) == {"INBOX": (True, False), "A": (False, True), "A/B": (True, False)}
    with pytest.raises(NoSuchFolder):
        folder.sync()
    with pytest.raises(NoSuchFolder):
        store.folder("A")
    assert os.listdir(Path(store.root) / "tmp") == []
    store.create("A")  # a new A: a new UIDVALIDITY
    assert store.folder("A").uidvalidity > folder.uidvalidity


def test_rename_with_inferiors(store: Mailstore) -> None:
    store.create("Old/Sub", special_use=["\\Archive"])
    store.subscribe("Old")
    store.subscribe("Old/Sub")
    deliver_to(Path(store.root) / ".Old.Sub")
    sub = store.folder("Old/Sub")
    sub.sync()
    uidvalidity = sub.uidvalidity
    store.rename("Old", "New/Place")
    assert _entries(store) == {"INBOX": (True, False), "New": (True, True),
                               "New/Place": (True, True), "New/Place/Sub": (True, False)}
    moved = store.folder("New/Place/Sub")
    assert moved.uidvalidity == uidvalidity and list(moved.uids) == [1]
    assert store.subscriptions() == ["New/Place", "New/Place/Sub"]
    assert store.special_use() == {"New/Place/Sub": ("\\Archive",)}
    with pytest.raises(NoSuchFolder):
        sub.sync()
    with pytest.raises(NoSuchFolder):
        store.rename("Old", "Other")
    store.create("Taken")
    with pytest.raises(FolderExists):
        store.rename("New", "Taken")
    with pytest.raises(StoreError):
        store.rename("New", "New/Inside")


def test_rename_inbox_moves_its_messages(store: Mailstore) -> None:
    root = Path(store.root)
    store.create("INBOX/Child")
    for i in range(3):
        deliver_to(root, b"m%d\r\n" % i)
    inbox = store.folder("INBOX")
    view = inbox.view()
    inbox.store([2], StoreMode.ADD, ["Work", "\\Seen"])
    store.rename("INBOX", "Saved")
    saved = store.folder("Saved")
    saved.sync()
    assert len(saved.uids) == 3
    assert saved.flag_names(saved.info(2).flags) == ("\\Seen", "Work")
    assert listed(root, "cur") == [] and listed(root, "new") == []
    assert view.sync().expunged == (3, 2, 1)
    assert store.exists("INBOX") and store.exists("INBOX/Child")
    deliver_to(root)
    assert inbox.sync() == () and list(inbox.uids) == [4]


def test_subscriptions(store: Mailstore) -> None:
    store.subscribe("Sent")
    store.subscribe("Sent")
    store.subscribe("Ghost")  # RFC 3501 §6.3.6: need not exist
    assert store.subscriptions() == ["Sent", "Ghost"]
    store.unsubscribe("Ghost")
    store.unsubscribe("Never")
    assert store.subscriptions() == ["Sent"]
    assert (Path(store.root) / "subscriptions").read_text() == "Sent\n"


def test_special_use(store: Mailstore) -> None:
    store.create("Stuff", special_use=["\\junk"])
    store.set_special_use("Stuff", ["\\Junk", "\\Flagged"])
    assert store.special_use() == {"Stuff": ("\\Flagged", "\\Junk")}
    store.set_special_use("Stuff", [])
    assert store.special_use() == {}
    with pytest.raises(FolderNameError):
        store.create("Bad", special_use=["\\Nope"])
    assert not store.exists("Bad")


def test_default_folders(tmp_path: Path) -> None:
    root = tmp_path / "new-user"
    create_default_folders(str(root))
    create_default_folders(str(root))  # idempotent
    store = Mailstore(str(root))
    entries = {e.name: e for e in store.list_folders()}
    assert set(entries) == {"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"}
    assert entries["Sent"].special_use == ("\\Sent",) and entries["Sent"].subscribed
    assert entries["Trash"].special_use == ("\\Trash",)
    assert all(entries[n].subscribed for n in entries if n != "INBOX")


def test_deleting_a_folder_gives_back_its_quota(store: Mailstore) -> None:
    store.create("Big")
    store.quota.set_limits(QuotaLimits(storage=10_000))
    big = store.folder("Big")
    with big.append([], size=100) as writer:
        writer.write(b"z" * 100)
        writer.commit()
    assert store.quota.usage().storage == 100
    store.delete("Big")
    assert store.quota.usage().storage == 0
