"""APPEND (RFC 9051 §6.3.12) streamed into the store, with UIDPLUS
APPENDUID (RFC 4315 §3), QUOTA (RFC 9208 §4.4) and APPENDLIMIT (RFC 7889).

The core stops before the message literal. Here the mailbox and the quota
are checked (the literal's size is known, so an over-quota message is
refused before a single octet of it is read), then the message streams
chunk by chunk into the folder's ``tmp/`` file in the io pool, and the
commit links it into place and gives it its uid. Nothing holds the whole
message in memory; a refused or aborted APPEND leaves nothing behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mailyard.log import event
from mailyard.maildir.errors import NoSuchFolder, StoreError
from mailyard.maildir.folder import Folder
from mailyard.maildir.mailstore import Mailstore
from mailyard.maildir.transfer import AppendWriter
from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.events import Command
from mailyard.proto.imap.responses import AppendUid, Code
from mailyard.proto.imap.sequence import SequenceSet
from mailyard.server.imap.errors import code_of, os_error_answer
from mailyard.server.imap.state import Session
from mailyard.server.imap.updates import send_updates

__all__ = ["Appending", "abort", "begin", "chunk", "end"]


@dataclass(slots=True)
class Appending:
    """An APPEND whose message is streaming in."""

    folder: Folder
    writer: AppendWriter
    failed: bool = False  # refused half-way: the rest is dropped by the core


def _open(store: Mailstore, body: c.Append) -> tuple[Folder, AppendWriter]:
    folder = store.folder(body.mailbox)
    when = body.date.timestamp() if body.date is not None else None
    # RFC 9051 §2.3.2: \Recent cannot be set by a client.
    flags = [f for f in body.flags if f.lower() != "\\recent"]
    folder.keywords.with_keywords(f for f in flags if not f.startswith("\\"))
    return folder, folder.append(flags, when, size=body.size)


async def begin(s: Session, cmd: Command) -> Appending | None:
    """The APPEND command line: accept the literal, or refuse it unread."""
    body = cmd.body
    assert isinstance(body, c.Append)
    try:
        folder, writer = await s.io(_open, s.store, body)
    except NoSuchFolder:
        # RFC 9051 §6.3.12: TRYCREATE when the mailbox does not exist.
        s.finish(Status.NO, Code.TRYCREATE, "no such mailbox")
        return None
    except StoreError as exc:
        s.finish(Status.NO, code_of(exc), exc.reason)
        return None
    s.core.accept_append()
    return Appending(folder, writer)


async def chunk(s: Session, appending: Appending, data: bytes) -> None:
    if appending.failed:
        return
    try:
        await s.io(appending.writer.write, data)
    except OSError as exc:
        appending.failed = True
        await s.io(appending.writer.abort)
        code, text = os_error_answer(exc)
        event("imap.append_failed", level=logging.ERROR, ip=s.client_ip,
              error=exc.strerror or str(exc))
        s.finish(Status.NO, code, text)


async def end(s: Session, cmd: Command, appending: Appending) -> None:
    """The message and the command line are complete: commit."""
    if appending.failed:
        return
    folder = appending.folder
    try:
        uid = await s.io(appending.writer.commit)
    except StoreError as exc:
        await s.io(appending.writer.abort)
        s.finish(Status.NO, code_of(exc), exc.reason)
        return
    except OSError as exc:
        await s.io(appending.writer.abort)
        code, text = os_error_answer(exc)
        s.finish(Status.NO, code, text)
        return
    # RFC 9051 §6.3.12: a new message in the selected mailbox is told (EXISTS).
    await send_updates(s, expunges_allowed=cmd.expunge_allowed)
    s.finish(Status.OK, AppendUid(folder.uidvalidity, SequenceSet.of_range(uid, uid)))


async def abort(s: Session, appending: Appending) -> None:
    """The command ended without us (BAD, or the connection closed)."""
    await s.io(appending.writer.abort)
