"""A small hosting site for delivery tests: a real directory, queue and Maildirs in tmp_path.

example.test is hosted with mailboxes alice and bob; example.net is not
hosted (its recipients are remote). The clock is fake: every test passes
``now`` explicitly, relative to ``BIRTH``.
"""

from __future__ import annotations

import email
import email.policy
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.message import EmailMessage, Message
from pathlib import Path

import pytest

from mailyard import fsio
from mailyard.directory.admin import create_user
from mailyard.directory.passwords import hash_password
from mailyard.directory.store import Directory
from mailyard.dispatch.process import MessageProcessor
from mailyard.message.address import parse_address
from mailyard.queue.store import Envelope, Queue

BIRTH = 1_733_072_400.5  # 2024-12-01 17:00:00.5 UTC
HOSTNAME = "mx.example.test"
POSTMASTER = "postmaster@example.test"
LIFETIME = 7 * 86400.0
SKIP_LOCAL = 10
USERS = ("alice@example.test", "bob@example.test")
CONTENT = (
    b"From: Sender <sender@example.org>\r\n"
    b"To: alice@example.test\r\n"
    b"Subject: delivery test\r\n"
    b"Message-ID: <t1@example.org>\r\n"
    b"\r\n"
    b"line one\r\n"
    b"\xff binary \x00 stays as it is\r\n"
)


@pytest.fixture(scope="session")
def password_hash() -> str:
    """argon2id costs ~0.15 s: hashed once for the whole session."""
    return hash_password("delivery test pw")


@dataclass
class Site:
    root: Path
    directory: Directory
    queue: Queue
    syncer: fsio.DirSyncer

    @property
    def mail_root(self) -> Path:
        return self.root / "mail"

    def maildir(self, address: str) -> Path:
        local, _, domain = address.partition("@")
        return self.mail_root / domain / local

    def processor(self, **changes: object) -> MessageProcessor:
        settings: dict[str, object] = {
            "queue": self.queue,
            "directory": self.directory,
            "mail_root": str(self.mail_root),
            "hostname": HOSTNAME,
            "postmaster": POSTMASTER,
            "lifetime": LIFETIME,
            "retry_skip_local": SKIP_LOCAL,
            "remote_mode": "hold",
            "syncer": self.syncer,
        }
        settings.update(changes)
        return MessageProcessor(**settings)  # type: ignore[arg-type]

    def enqueue(
        self,
        recipients: Sequence[str],
        content: bytes = CONTENT,
        *,
        sender: str = "sender@example.org",
        birth: float = BIRTH,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> str:
        return enqueue(self.queue, recipients, content, sender=sender, birth=birth, extra=extra)


def enqueue(
    queue: Queue,
    recipients: Sequence[str],
    content: bytes = CONTENT,
    *,
    sender: str = "sender@example.org",
    birth: float = BIRTH,
    extra: tuple[tuple[str, str], ...] = (),
) -> str:
    """Commit one message through the real writer (S0 -> S3)."""
    writer = queue.begin(Envelope(sender, tuple(recipients), birth, extra=extra))
    writer.write(content)
    return writer.commit()


def add_users(directory: Directory, mail_root: Path, users: Sequence[str], hashed: str) -> None:
    for domain in sorted({user.partition("@")[2] for user in users}):
        if directory.get_domain(domain) is None:
            directory.add_domain(domain)
    for user in users:
        create_user(directory, str(mail_root), parse_address(user), hashed)


@pytest.fixture
def site(tmp_path: Path, password_hash: str) -> Iterator[Site]:
    syncer = fsio.DirSyncer()
    queue = Queue(str(tmp_path / "queue"), syncer=syncer)
    queue.ensure_layout()
    directory = Directory.open(str(tmp_path / "directory.sqlite"))
    add_users(directory, tmp_path / "mail", USERS, password_hash)
    # Build the snapshot now, as Directory.open does in the worker. Left cold,
    # concurrent passes race its rebuild and route with the empty one (the bug
    # shown by test_process.py::test_a_mailbox_created_by_another_process_...).
    directory.snapshot()
    try:
        yield Site(tmp_path, directory, queue, syncer)
    finally:
        directory.close()


def mail_in(box: Path, sub: str = "new") -> list[bytes]:
    """The messages in one Maildir subfolder, in name order."""
    folder = box / sub
    return [(folder / name).read_bytes() for name in sorted(os.listdir(folder))]


def delivered(sender: str, recipient: str, content: bytes = CONTENT) -> bytes:
    """What local delivery writes: Return-Path, Delivered-To, then the queued bytes."""
    return f"Return-Path: <{sender}>\r\nDelivered-To: {recipient}\r\n".encode() + content


def parse_mail(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def delivery_status(report: EmailMessage) -> list[dict[str, str]]:
    """The RFC 3464 field groups of a multipart/report: per-message first."""
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    parts = list(report.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers",
    ]
    groups = parts[1].get_payload()
    assert isinstance(groups, list)
    fields: list[dict[str, str]] = []
    for group in groups:
        assert isinstance(group, Message)
        fields.append({k.lower(): str(v) for k, v in group.items()})
    return fields
