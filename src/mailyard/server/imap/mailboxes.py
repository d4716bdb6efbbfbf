"""Mailbox commands (RFC 9051 §6.3): LIST (RFC 5258 LIST-EXTENDED, RFC 5819
LIST-STATUS, RFC 6154 SPECIAL-USE), LSUB, CREATE, DELETE, RENAME,
SUBSCRIBE, UNSUBSCRIBE, STATUS. NAMESPACE is the core's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mailyard.maildir.errors import StoreError
from mailyard.maildir.flags import DELETED
from mailyard.maildir.folders import canonical
from mailyard.maildir.mailstore import FolderEntry, Mailstore
from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.events import Command
from mailyard.proto.imap.responses import Code, ListResponse, StatusResponse, Untagged
from mailyard.server.imap.errors import code_of
from mailyard.server.imap.listing import list_answer, lsub_answer
from mailyard.server.imap.state import Session
from mailyard.server.imap.updates import complete

__all__ = ["HANDLERS", "status_items", "status_of"]


def status_of(store: Mailstore, name: str, items: tuple[c.StatusItem, ...],
              append_limit: int) -> StatusResponse:
    """RFC 9051 §6.3.11 STATUS (RFC 8438 SIZE, RFC 7162 HIGHESTMODSEQ,
    RFC 7889 APPENDLIMIT), in the io pool."""
    folder = store.folder(name)
    status = folder.status()
    deleted = 0
    if c.StatusItem.DELETED in items:
        deleted = sum(1 for bits in folder.columns().flags if bits & DELETED)
    return StatusResponse(name, status_items(status.messages, status.recent, status.uidnext,
                                             status.uidvalidity, status.unseen, deleted,
                                             status.size, status.highest_modseq,
                                             append_limit, items))


def status_items(messages: int, recent: int, uidnext: int, uidvalidity: int, unseen: int,
                 deleted: int, size: int, modseq: int, append_limit: int,
                 items: tuple[c.StatusItem, ...]) -> tuple[tuple[c.StatusItem, int], ...]:
    values = {
        c.StatusItem.MESSAGES: messages, c.StatusItem.RECENT: recent,
        c.StatusItem.UIDNEXT: uidnext, c.StatusItem.UIDVALIDITY: uidvalidity,
        c.StatusItem.UNSEEN: unseen, c.StatusItem.DELETED: deleted, c.StatusItem.SIZE: size,
        c.StatusItem.HIGHESTMODSEQ: modseq, c.StatusItem.APPENDLIMIT: append_limit,
    }  # fmt: skip
    return tuple((item, values[item]) for item in items)


def _tree(store: Mailstore) -> tuple[list[FolderEntry], list[str]]:
    return store.list_folders(), store.subscriptions()


def _list_with_status(store: Mailstore, body: c.List, rev2: bool,
                      append_limit: int) -> list[Untagged]:
    entries, subscriptions = _tree(store)
    out: list[Untagged] = []
    for listed in list_answer(entries, subscriptions, body, rev2=rev2):
        out.append(listed.response)
        if body.returns.status and listed.selectable:
            # RFC 5819 §1: STATUS follows the LIST line of each selectable mailbox.
            try:
                out.append(status_of(store, listed.response.mailbox, body.returns.status,
                                     append_limit))
            except StoreError:
                continue  # went away meanwhile: RFC 5819 lets the server skip it
    return out


async def _list(s: Session, cmd: Command) -> None:
    body = cmd.body
    assert isinstance(body, c.List)
    if body.patterns == ("",):
        # RFC 9051 §6.3.9: the delimiter and the root of the reference.
        s.core.send(ListResponse("", ("\\Noselect",)))
        await complete(s, cmd)
        return
    out = await s.io(_list_with_status, s.store, body, s.core.imap4rev2,
                     s.settings.max_append_size)
    await s.emit(out)
    await complete(s, cmd)


async def _lsub(s: Session, cmd: Command) -> None:
    body = cmd.body
    assert isinstance(body, c.Lsub)
    entries, subscriptions = await s.io(_tree, s.store)
    await s.emit(lsub_answer(subscriptions, entries, body))
    await complete(s, cmd)


async def _status(s: Session, cmd: Command) -> None:
    body = cmd.body
    assert isinstance(body, c.Status)
    try:
        response = await s.io(status_of, s.store, body.mailbox, body.items,
                              s.settings.max_append_size)
    except StoreError as exc:
        await complete(s, cmd, Status.NO, code_of(exc), exc.reason)
        return
    s.core.send(response)
    await complete(s, cmd)


def _is_selected(s: Session, name: str) -> bool:
    """This session has ``name`` selected (INBOX aside: it never goes away)."""
    selected = s.selected
    try:
        canon = canonical(name)
        return selected is not None and canon != "INBOX" and canon == canonical(selected.name)
    except StoreError:
        return False


async def _change(s: Session, cmd: Command, work: Callable[[], None]) -> None:
    try:
        await s.io(work)
    except StoreError as exc:
        await complete(s, cmd, Status.NO, code_of(exc), exc.reason)
        return
    await complete(s, cmd)


async def _create(s: Session, cmd: Command) -> None:
    body = cmd.body
    assert isinstance(body, c.Create)
    # RFC 6154 §3: CREATE (USE (…)) gives the new mailbox its special use.
    await _change(s, cmd, lambda: s.store.create(body.mailbox, special_use=body.special_use))


async def _delete(s: Session, cmd: Command) -> None:
    body = cmd.body
    assert isinstance(body, c.Delete)
    if _is_selected(s, body.mailbox):
        # Deleting it would end this very session (its uids would be gone).
        await complete(s, cmd, Status.NO, Code.CANNOT, "the mailbox is selected; close it first")
        return
    await _change(s, cmd, lambda: s.store.delete(body.mailbox))


async def _rename(s: Session, cmd: Command) -> None:
    body = cmd.body
    assert isinstance(body, c.Rename)
    if _is_selected(s, body.old):
        await complete(s, cmd, Status.NO, Code.CANNOT, "the mailbox is selected; close it first")
        return
    # RFC 9051 §6.3.6: inferiors move along; renaming INBOX moves its messages.
    await _change(s, cmd, lambda: s.store.rename(body.old, body.new))


async def _subscribe(s: Session, cmd: Command) -> None:
    body = cmd.body
    assert isinstance(body, c.Subscribe)
    # RFC 9051 §6.3.7: a name need not exist to be subscribed; it must be valid.
    await _change(s, cmd, lambda: s.store.subscribe(body.mailbox))


async def _unsubscribe(s: Session, cmd: Command) -> None:
    body = cmd.body
    assert isinstance(body, c.Unsubscribe)
    await _change(s, cmd, lambda: s.store.unsubscribe(body.mailbox))


HANDLERS: dict[type, Callable[[Session, Command], Awaitable[None]]] = {
    c.List: _list,
    c.Lsub: _lsub,
    c.Status: _status,
    c.Create: _create,
    c.Delete: _delete,
    c.Rename: _rename,
    c.Subscribe: _subscribe,
    c.Unsubscribe: _unsubscribe,
}
