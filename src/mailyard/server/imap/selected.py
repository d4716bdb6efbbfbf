"""SELECT / EXAMINE (with CONDSTORE and QRESYNC), CLOSE, UNSELECT, EXPUNGE,
UID EXPUNGE, CHECK and NOOP."""

from __future__ import annotations

from array import array
from dataclasses import dataclass

from mailyard.maildir.errors import NoSuchFolder, StoreError
from mailyard.maildir.flags import SEEN
from mailyard.maildir.folder import Folder
from mailyard.maildir.folders import canonical
from mailyard.maildir.mailstore import Mailstore
from mailyard.maildir.view import View
from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.events import Command
from mailyard.proto.imap.responses import (
    Code,
    Condition,
    Exists,
    FetchResponse,
    Flags,
    HighestModSeq,
    ListResponse,
    ModSeqData,
    PermanentFlags,
    Recent,
    UidData,
    UidNext,
    UidValidity,
    Unseen,
    Untagged,
    Vanished,
)
from mailyard.proto.imap.sequence import SequenceSet
from mailyard.server.imap.errors import code_of
from mailyard.server.imap.numbers import index_spans, member, pick
from mailyard.server.imap.state import Selected, Session
from mailyard.server.imap.updates import Synced, complete, send_updates, sync_view

__all__ = ["close", "drop_selection", "expunge", "noop", "select", "unselect", "vanished_in"]


@dataclass(frozen=True, slots=True)
class _Opened:
    folder: Folder
    view: View
    defined: tuple[str, ...]
    permanent: tuple[str, ...]
    first_unseen: int | None  # its sequence number
    uidnext: int
    highest_modseq: int
    changes: tuple[tuple[int, int, int], ...]  # QRESYNC: (uid, flags, modseq)
    vanished: tuple[tuple[int, int], ...]  # QRESYNC: uid ranges
    listed: ListResponse | None  # IMAP4rev2: the mailbox's LIST line


def _list_line(store: Mailstore, name: str) -> ListResponse | None:
    """RFC 9051 §6.3.2: an IMAP4rev2 SELECT tells the mailbox's LIST line."""
    canon = canonical(name)
    for entry in store.list_folders():
        if entry.name == canon:
            attributes = ("\\HasChildren" if entry.has_children else "\\HasNoChildren",
                          *entry.special_use)
            return ListResponse(canon, attributes)
    return None


def _open(store: Mailstore, name: str, body: c.Select, rev2: bool) -> _Opened:
    """Everything SELECT says, gathered in one trip to the io pool."""
    folder = store.folder(name)
    listed = _list_line(store, name) if rev2 else None
    view = folder.view(readonly=body.read_only)
    with folder.mutex:
        columns = folder.columns(view.uids)
        first = next((i for i, bits in enumerate(columns.flags) if not bits & SEEN), None)
        changes: tuple[tuple[int, int, int], ...] = ()
        vanished: tuple[tuple[int, int], ...] = ()
        q = body.qresync
        if q is not None and q.uidvalidity == folder.uidvalidity:
            # RFC 7162 §3.2.5.1: what changed and what vanished since the
            # client's mod-sequence (only among its known uids, if given).
            known = q.known_uids
            inside = member(known, folder.uidnext) if known is not None else None
            wanted = [(uid, seq) for uid, seq in folder.changes_since(q.modseq)
                      if inside is None or inside(uid)]
            info = folder.columns([uid for uid, _ in wanted])
            changes = tuple(zip(info.uids, info.flags, info.modseqs, strict=True))
            vanished = vanished_in(folder.vanished_since(q.modseq), known)
        return _Opened(folder, view, folder.keywords.defined(), folder.permanent_flags(),
                       None if first is None else first + 1, folder.uidnext,
                       folder.highest_modseq, changes, vanished, listed)


def vanished_in(ranges: list[tuple[int, int]],
                known: SequenceSet | None) -> tuple[tuple[int, int], ...]:
    """Uid ranges limited to the client's known uids (RFC 7162 §3.2.5)."""
    if known is None or not ranges:
        return tuple(ranges)
    limit = ranges[-1][1]
    out: list[tuple[int, int]] = []
    for first, last in known.ranges(limit):
        for low, high in ranges:
            a, b = max(first, low), min(last, high)
            if a <= b:
                out.append((a, b))
    out.sort()
    return tuple(out)


async def drop_selection(s: Session) -> None:
    s.selected = None


async def select(s: Session, cmd: Command) -> None:
    """RFC 9051 §6.3.2 SELECT / §6.3.3 EXAMINE; a failed SELECT leaves no
    mailbox selected (the core already closed the previous one)."""
    body = cmd.body
    assert isinstance(body, c.Select)
    await drop_selection(s)
    try:
        opened = await s.io(_open, s.store, body.mailbox, body, s.core.imap4rev2)
    except StoreError as exc:
        s.finish(Status.NO, code_of(exc), exc.reason)
        return
    view = opened.view
    s.selected = Selected(body.mailbox, opened.folder, view, readonly=body.read_only)
    out: list[Untagged] = [Flags(opened.defined), Exists(len(view))]
    if opened.listed is not None:
        out.append(opened.listed)
    if s.recent_flags:
        out.append(Recent(view.recent))  # IMAP4rev1 only
    if opened.first_unseen is not None and s.recent_flags:
        # RFC 3501 §6.3.1 (IMAP4rev1; RFC 9051 dropped it).
        out.append(Condition(Status.OK, "first unseen", Unseen(opened.first_unseen)))
    out += [
        Condition(Status.OK, "UIDs valid", UidValidity(view.uidvalidity)),
        Condition(Status.OK, "predicted next UID", UidNext(opened.uidnext)),
        Condition(Status.OK, "limited", PermanentFlags(opened.permanent)),
    ]
    if body.condstore or s.core.condstore:
        # RFC 7162 §3.1.2.1 / §3.1.8.
        out.append(Condition(Status.OK, "highest", HighestModSeq(opened.highest_modseq)))
    s.core.send(*out)
    if opened.vanished:
        s.core.send(Vanished(SequenceSet(opened.vanished), earlier=True))
    fetches: list[Untagged] = []
    selected = s.sel
    for uid, bits, modseq in opened.changes:
        number = view.seq_of(uid)
        if number is not None:
            flags = selected.flags(bits, s.recent_flags and view.is_recent(uid))
            fetches.append(FetchResponse(number, (UidData(uid), flags, ModSeqData(modseq))))
    await s.emit(fetches)
    s.finish(Status.OK, Code.READ_ONLY if body.read_only else Code.READ_WRITE)


async def unselect(s: Session, cmd: Command) -> None:
    """RFC 3691 UNSELECT: close without expunging."""
    await drop_selection(s)
    s.finish(Status.OK)


async def close(s: Session, cmd: Command) -> None:
    """RFC 9051 §6.4.1 CLOSE: expunge silently unless read-only, then close."""
    selected = s.sel
    await drop_selection(s)
    if not selected.readonly:
        try:
            await s.io(selected.folder.expunge)
        except NoSuchFolder:
            pass  # deleted meanwhile: nothing left to expunge; CLOSE still succeeds
    s.finish(Status.OK)


async def expunge(s: Session, cmd: Command) -> None:
    """RFC 9051 §6.4.3 EXPUNGE and RFC 4315 §2.1 UID EXPUNGE: the updates
    (our expunges among them) are told by ``complete``."""
    body = cmd.body
    assert isinstance(body, c.Expunge)
    selected = s.sel
    if selected.readonly:
        await complete(s, cmd, Status.NO, Code.CANNOT, "the mailbox is read-only")
        return
    uids = None
    if body.uids is not None:
        view_uids = selected.view.uids
        uids = pick(view_uids, index_spans(view_uids, body.uids, uid=True,
                                           saved=selected.saved))
    synced = await s.io(_expunge, selected.view, uids, cmd.expunge_allowed)
    await complete(s, cmd, synced=synced)


def _expunge(view: View, uids: array[int] | None, expunges_allowed: bool) -> Synced:
    # The expunge and the sync that reports it, in one trip to the io pool.
    view.folder.expunge(uids)
    return sync_view(view, expunges_allowed=expunges_allowed)


async def noop(s: Session, cmd: Command) -> None:
    """NOOP and CHECK (RFC 9051 §6.1.2: a chance for pending updates)."""
    await send_updates(s)
    s.finish(Status.OK)

