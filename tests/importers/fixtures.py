"""Fixture trees in the formats qmail, VMailMgr and Courier-IMAP write."""

from __future__ import annotations

import os
from pathlib import Path

import cdblib

from mailyard.importers.courier import KeywordList, UidDb, format_keyword_list, format_uiddb
from mailyard.importers.vmailmgr import VpwEntry, encode_vpwentry

MESSAGE = b"From: a@example.net\r\nSubject: hello\r\n\r\nbody\r\n"


def maildir(path: Path) -> Path:
    for sub in ("tmp", "new", "cur"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def put(path: Path, sub: str, name: str, data: bytes = MESSAGE, mtime: int = 1_100_000_000) -> None:
    target = path / sub / name
    target.write_bytes(data)
    os.utime(target, (mtime, mtime))


def vmailmgr_home(home: Path, entries: list[VpwEntry]) -> Path:
    """A VMailMgr domain home: passwd.cdb (written with cdblib) and users/<name> Maildirs."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "passwd.cdb", "wb") as handle, cdblib.Writer(handle) as writer:
        for entry in entries:
            writer.put(entry.name.encode(), encode_vpwentry(entry))
    for entry in entries:
        if entry.directory:
            maildir(home / entry.directory)
    return home


def courier_folder(path: Path, uidvalidity: int, files: list[tuple[str, str, int | None]],
                   keywords: KeywordList | None = None, nextuid: int | None = None) -> None:
    """Messages (sub, name, courier uid or None) and Courier's uid list and keywords."""
    maildir(path)
    for sub, name, _ in files:
        put(path, sub, name)
    entries = tuple(sorted((uid, name.partition(":")[0]) for _, name, uid in files
                           if uid is not None))
    top = max((uid for uid, _ in entries), default=0)
    db = UidDb(1, uidvalidity, nextuid or top + 1, entries)
    (path / "courierimapuiddb").write_bytes(format_uiddb(db))
    if keywords is not None:
        (path / "courierimapkeywords").mkdir()
        (path / "courierimapkeywords" / ":list").write_bytes(format_keyword_list(keywords))
