"""Untagged updates of the selected mailbox (RFC 9051 §5.2, §7.5.1, RFC 7162).

Before a command completes (and for NOOP, CHECK and all through IDLE) the
session's view is synced and what changed is told, in this order:
EXPUNGE per message, highest number first so each stays right as it is
sent (or one VANISHED once QRESYNC is enabled, RFC 7162 §3.2.10), then
EXISTS, then RECENT (IMAP4rev1 only), then FETCH FLAGS for flags others
changed (with UID, and MODSEQ under CONDSTORE, RFC 7162 §3.1.4).

During FETCH, STORE, SEARCH, SORT and THREAD by sequence number the core
forbids EXPUNGE (RFC 9051 §7.5.1): the view then keeps the expunged
messages as ghosts and the expunges stay pending for a later command.

A handler that already goes to the io pool can sync there too, right after
its own work (``sync_view``), and hand the result to ``complete``: one
round trip to the pool per command instead of two.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailyard.maildir.errors import FolderReset, NoSuchFolder
from mailyard.maildir.view import View, ViewUpdate
from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.events import Command
from mailyard.proto.imap.responses import (
    Condition,
    Exists,
    Expunge,
    FetchData,
    FetchResponse,
    Flags,
    ModSeqData,
    PermanentFlags,
    Recent,
    ResponseCode,
    UidData,
    Untagged,
    Vanished,
)
from mailyard.server.imap.numbers import uid_set
from mailyard.server.imap.state import SelectedGone, Session

__all__ = ["Synced", "complete", "send_updates", "sync_view", "tell"]


@dataclass(frozen=True, slots=True)
class Synced:
    """A view's sync made in the io pool by a handler: the update, or why the mailbox is gone."""

    view: View
    update: ViewUpdate | None
    gone: str = ""


def sync_view(view: View, *, expunges_allowed: bool) -> Synced:
    """``View.sync`` for a handler's own io hop (blocking: call it in the pool)."""
    try:
        return Synced(view, view.sync(expunges_allowed=expunges_allowed))
    except (FolderReset, NoSuchFolder) as exc:
        return Synced(view, None, exc.reason)


async def send_updates(s: Session, *, expunges_allowed: bool = True,
                       synced: Synced | None = None) -> None:
    """Sync the selected mailbox's view (unless ``synced`` did) and tell the client what changed."""
    selected = s.selected
    if selected is None:
        return
    if synced is not None and synced.view is selected.view:
        if synced.update is None:
            raise SelectedGone(synced.gone)
        update = synced.update
    else:
        try:
            update = await s.io(selected.view.sync, expunges_allowed=expunges_allowed)
        except (FolderReset, NoSuchFolder) as exc:
            raise SelectedGone(exc.reason) from exc
    keywords = selected.folder.keywords
    if keywords != selected.told:
        # RFC 9051 §7.3.5: a new keyword changes the mailbox's FLAGS (and
        # PERMANENTFLAGS, which stops offering \* once no letter is left).
        selected.told = keywords
        permanent = PermanentFlags(selected.folder.permanent_flags())
        s.core.send(Flags(keywords.defined()), Condition(Status.OK, "limited", permanent))
    if not update.empty:
        await tell(s, update)


async def tell(s: Session, update: ViewUpdate) -> None:
    core = s.core
    selected = s.sel
    out: list[Untagged] = []
    if update.expunged:
        if core.qresync:
            out.append(Vanished(uid_set(sorted(update.vanished))))
        else:
            out.extend(Expunge(number) for number in update.expunged)
    if update.exists is not None:
        out.append(Exists(update.exists))
    if update.recent is not None and s.recent_flags:
        out.append(Recent(update.recent))
    if out:
        core.send(*out)
    if update.changed:
        columns = await s.io(selected.folder.columns, update.changed)
        view = selected.view
        condstore = core.condstore
        recent = s.recent_flags
        fetches: list[Untagged] = []
        for uid, bits, modseq in zip(columns.uids, columns.flags, columns.modseqs, strict=True):
            number = view.seq_of(uid)
            if number is None:
                continue
            items: tuple[FetchData, ...] = (
                UidData(uid), selected.flags(bits, recent and view.is_recent(uid)))
            if condstore:
                items += (ModSeqData(modseq),)
            fetches.append(FetchResponse(number, items))
        await s.emit(fetches)


async def complete(s: Session, cmd: Command, status: Status = Status.OK,
                   code: ResponseCode | None = None, text: str = "", *,
                   synced: Synced | None = None) -> None:
    """Tell the pending updates, then complete the command (RFC 9051 §5.2:
    the server sends updates before the tagged response). ``synced``: the
    handler synced in its own io hop already (made with ``cmd.expunge_allowed``)."""
    await send_updates(s, expunges_allowed=cmd.expunge_allowed, synced=synced)
    s.finish(status, code, text)
