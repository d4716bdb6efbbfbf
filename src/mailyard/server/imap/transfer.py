"""COPY and MOVE (RFC 9051 §6.4.7, RFC 6851), with UIDPLUS COPYUID (RFC 4315 §3)."""

from __future__ import annotations

from mailyard.maildir.errors import NoSuchFolder, StoreError
from mailyard.maildir.folder import Folder
from mailyard.maildir.mailstore import Mailstore
from mailyard.maildir.transfer import CopyResult
from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.events import Command
from mailyard.proto.imap.responses import Code, Condition, CopyUid
from mailyard.server.imap.errors import code_of
from mailyard.server.imap.numbers import OutOfRange, index_spans, pick, uid_set
from mailyard.server.imap.state import Session
from mailyard.server.imap.updates import complete

__all__ = ["copy", "copyuid"]


def _transfer(store: Mailstore, source: Folder, uids: list[int], target_name: str, *,
              move: bool) -> CopyResult:
    target = store.folder(target_name)
    return source.move(uids, target) if move else source.copy(uids, target)


def copyuid(result: CopyResult) -> CopyUid | None:
    """RFC 4315 §3: source and destination uids, paired by position."""
    if not result.pairs:
        return None
    source = uid_set([old for old, _ in result.pairs])
    # Sorted by source uid, the new uids ascend too (they are given in order).
    destination = uid_set([new for _, new in result.pairs])
    return CopyUid(result.uidvalidity, source, destination)


async def copy(s: Session, cmd: Command) -> None:
    """COPY, UID COPY, MOVE and UID MOVE."""
    body = cmd.body
    assert isinstance(body, c.Copy | c.Move)
    move = isinstance(body, c.Move)
    selected = s.sel
    if move and selected.readonly:
        await complete(s, cmd, Status.NO, Code.CANNOT, "the mailbox is read-only")
        return
    view_uids = selected.view.uids
    try:
        spans = index_spans(view_uids, body.sequence, uid=body.uid, saved=selected.saved)
    except OutOfRange as exc:
        await complete(s, cmd, Status.BAD, None, str(exc))
        return
    uids = list(pick(view_uids, spans))
    try:
        result = await s.io(_transfer, s.store, selected.folder, uids, body.mailbox, move=move)
    except NoSuchFolder:
        # RFC 9051 §6.4.7: the client may create the mailbox and try again.
        await complete(s, cmd, Status.NO, Code.TRYCREATE, "no such mailbox")
        return
    except StoreError as exc:
        await complete(s, cmd, Status.NO, code_of(exc), exc.reason)
        return
    code = copyuid(result)
    if not move:
        await complete(s, cmd, Status.OK, code)
        return
    if code is not None:
        # RFC 6851 §4.3: COPYUID in an untagged OK before the expunges.
        s.core.send(Condition(Status.OK, "moved", code))
    await complete(s, cmd)
