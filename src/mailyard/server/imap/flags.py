"""STORE and UID STORE (RFC 9051 §6.4.6) with RFC 7162 §3.1.3 UNCHANGEDSINCE.

The store renames the files (the flags live in the names) under the
folder lock and gives all changed messages one new mod-sequence. Unless
.SILENT, each message of the set gets a FETCH with its flags (UID for UID
STORE, MODSEQ once CONDSTORE is on); messages UNCHANGEDSINCE refused are
listed in [MODIFIED] and get no FETCH. RFC 7162 §3.1.3: a conditional
STORE reports MODSEQ even with .SILENT.
"""

from __future__ import annotations

from array import array

from mailyard.maildir.errors import StoreError
from mailyard.maildir.values import Columns, StoreMode, StoreResult
from mailyard.maildir.view import View
from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.events import Command
from mailyard.proto.imap.responses import (
    Code,
    FetchData,
    FetchResponse,
    ModSeqData,
    Modified,
    ResponseCode,
    UidData,
    Untagged,
)
from mailyard.server.imap.errors import code_of
from mailyard.server.imap.fetch import row_numbers
from mailyard.server.imap.numbers import OutOfRange, index_spans, pick, uid_set
from mailyard.server.imap.state import Session
from mailyard.server.imap.updates import Synced, complete, sync_view

__all__ = ["store"]

_MODES = {
    c.StoreMode.REPLACE: StoreMode.REPLACE,
    c.StoreMode.ADD: StoreMode.ADD,
    c.StoreMode.REMOVE: StoreMode.REMOVE,
}


def _store(view: View, uids: array[int], body: c.Store,
           expunges_allowed: bool) -> tuple[StoreResult, Columns, Synced]:
    # RFC 9051 §2.3.2: \Recent cannot be stored; the store skips it.
    result = view.store(uids, _MODES[body.mode], body.flags,
                        unchanged_since=body.unchanged_since)
    # The sync ``complete`` needs, in the same trip to the io pool.
    return result, view.folder.columns(uids), sync_view(view, expunges_allowed=expunges_allowed)


async def store(s: Session, cmd: Command) -> None:
    body = cmd.body
    assert isinstance(body, c.Store)
    selected = s.sel
    if selected.readonly:
        await complete(s, cmd, Status.NO, Code.CANNOT, "the mailbox is read-only")
        return
    view = selected.view
    view_uids = view.uids
    try:
        spans = index_spans(view_uids, body.sequence, uid=body.uid, saved=selected.saved)
    except OutOfRange as exc:
        await complete(s, cmd, Status.BAD, None, str(exc))
        return
    picked = pick(view_uids, spans)
    try:
        result, columns, synced = await s.io(_store, view, picked, body, cmd.expunge_allowed)
    except StoreError as exc:
        await complete(s, cmd, Status.NO, code_of(exc), exc.reason)
        return
    modified = set(result.modified)
    condstore = s.core.condstore
    report = not body.silent or (body.unchanged_since is not None and condstore)
    if report:
        out: list[Untagged] = []
        numbers = row_numbers(view_uids, spans, len(picked), columns.uids)
        recent = s.recent_flags
        for number, uid, bits, modseq in zip(numbers, columns.uids, columns.flags,
                                             columns.modseqs, strict=True):
            if uid in modified:
                continue
            items: list[FetchData] = []
            if body.uid:
                items.append(UidData(uid))
            if not body.silent:
                items.append(selected.flags(bits, recent and view.is_recent(uid)))
            if condstore:
                items.append(ModSeqData(modseq))
            if items:
                out.append(FetchResponse(number, tuple(items)))
        await s.emit(out)
    code: ResponseCode | None = None
    if modified:
        # RFC 7162 §3.1.3: MODIFIED lists sequence numbers, or uids for UID STORE.
        listed = sorted(modified) if body.uid else sorted(
            n for n in (view.seq_of(uid) for uid in modified) if n is not None)
        code = Modified(uid_set(listed))
    await complete(s, cmd, Status.OK, code, synced=synced)
